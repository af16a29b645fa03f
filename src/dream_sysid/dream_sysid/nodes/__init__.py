"""Thin rclpy nodes of dream_sysid: push_executor, sysid_node."""
