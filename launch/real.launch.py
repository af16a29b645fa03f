"""The real cell: dream's nodes beside the vendors' drivers.

    ros2 launch dream_hw real.launch.py tracker_input:=/foundationpose/pose scene:=/path/to/twin/scene.xml

franka_ros2 (joint_trajectory_controller `fr3_arm_controller`), allegro_hand_ros
(/allegroHand_0/*) and realsense-ros (align_depth.enable:=true, >= 4.55.1) are
launched by their own packages; this file starts what dream adds: the pose
tracker, the push executor (/dream/push/run, records push bags) and the sysid
node (/dream/sysid/identify); with grasp_model_dir, also dream's LEAP driver
and the grasp node (/dream/grasp/execute). Topic names
come from config/cell.yaml; pass remaps here if your cell differs.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    model_dir = LaunchConfiguration("grasp_model_dir")
    grasping = IfCondition(PythonExpression(["'", model_dir, "' != ''"]))
    return LaunchDescription([
        DeclareLaunchArgument("tracker_backend", default_value="external",
                              description="pose tracker backend: external | model | foundationpose"),
        DeclareLaunchArgument("tracker_input", default_value="/foundationpose/pose",
                              description="PoseStamped topic relayed by the external backend"),
        DeclareLaunchArgument("scene", description="twin MJCF of the cell with the object (dream twin build)"),
        DeclareLaunchArgument("program", default_value="sweep_release",
                              description="push program: name in config/push_programs/ or a YAML path"),
        DeclareLaunchArgument("bag_root", default_value="~/.dream/push_bags", description="where push bags go"),
        DeclareLaunchArgument("pushes", default_value="1",
                              description="sysid: identify from the newest this many push bags together"),
        DeclareLaunchArgument("record_camera", default_value="true",
                              description="record the camera topics in push bags (to re-track offline)"),
        Node(package="dream_perception", executable="pose_tracker", name="pose_tracker", output="screen",
             parameters=[{"backend": LaunchConfiguration("tracker_backend"),
                          "input_topic": LaunchConfiguration("tracker_input")}]),
        Node(package="dream_sysid", executable="push_executor", name="push_executor", output="screen",
             parameters=[{"scene": LaunchConfiguration("scene"), "program": LaunchConfiguration("program"),
                          "bag_root": LaunchConfiguration("bag_root"),
                          "record_camera": LaunchConfiguration("record_camera")}]),
        DeclareLaunchArgument("grasp_model_dir", default_value="",
                              description="exported grasp policy: set it to start the LEAP driver and grasp node"),
        DeclareLaunchArgument("grasp_object", default_value="",
                              description="catalogue id of the object to grasp (default: the policy's)"),
        DeclareLaunchArgument("grasp_planner", default_value="cpu", description="grasp motion planner: cpu | curobo"),
        DeclareLaunchArgument("leap_port", default_value="/dev/ttyUSB0", description="the LEAP hand's serial port"),
        Node(package="dream_sysid", executable="sysid_node", name="sysid_node", output="screen",
             parameters=[{"bag_root": LaunchConfiguration("bag_root"),
                          "pushes": ParameterValue(LaunchConfiguration("pushes"), value_type=int)}]),
        Node(package="dream_hw", executable="leap_driver", name="leap_driver", output="screen",
             condition=grasping, parameters=[{"port": LaunchConfiguration("leap_port")}]),
        Node(package="dream_grasp", executable="grasp_node", name="grasp_node", output="screen",
             condition=grasping,
             parameters=[{"model_dir": model_dir, "object_id": LaunchConfiguration("grasp_object"),
                          "planner": LaunchConfiguration("grasp_planner")}]),
    ])
