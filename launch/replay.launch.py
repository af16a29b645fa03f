"""Replay: run dream's nodes on simulation time against a recorded push bag.

    ros2 launch dream_hw replay.launch.py
    ros2 bag play <push bag> --clock

Offline identification needs no ROS at all: `dream-sysid identify BAG`.
"""
from launch import LaunchDescription
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        Node(package="dream_perception", executable="pose_tracker", name="pose_tracker", output="screen",
             parameters=[{"backend": "external", "input_topic": "/dream/object/pose_replayed",
                          "use_sim_time": True}]),
    ])
