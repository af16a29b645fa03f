"""ROS-free RealSense capture on pyrealsense2: `clock` (device time -> ROS time),
`capture` (colour + depth aligned to colour as numpy, intrinsics), `software`
(a pyrealsense2 software device: the same code path without a camera)."""
