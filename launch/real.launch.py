"""The real cell: dream's nodes beside the vendors' drivers.

    ros2 launch dream_hw real.launch.py tracker_input:=/foundationpose/pose

franka_ros2 (joint_trajectory_controller `fr3_arm_controller`), allegro_hand_ros
(/allegroHand_0/*) and realsense-ros (align_depth.enable:=true, >= 4.55.1) are
launched by their own packages; this file starts what dream adds. Topic names
come from config/cell.yaml; pass remaps here if your cell differs.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("tracker_backend", default_value="external",
                              description="pose tracker backend: external | model | foundationpose"),
        DeclareLaunchArgument("tracker_input", default_value="/foundationpose/pose",
                              description="PoseStamped topic relayed by the external backend"),
        Node(package="dream_perception", executable="pose_tracker", name="pose_tracker", output="screen",
             parameters=[{"backend": LaunchConfiguration("tracker_backend"),
                          "input_topic": LaunchConfiguration("tracker_input")}]),
    ])
