"""Push bags: a ROS-free rosbag2 recorder over rosbags, and the reader that turns a
push bag into a PushRecording for identification."""
