"""Push programs (config/push_programs/*.yaml) and the push planner (ROS-free)."""
