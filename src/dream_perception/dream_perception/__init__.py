"""dream_perception: RealSense capture and 6-DoF object pose tracking."""
