"""The simulated cell: sim_cell (MuJoCo behind the drivers' topics) + pose_tracker,
and dream's push executor (/dream/push/run) and sysid node (/dream/sysid/identify).

    ros2 launch dream_hw sim.launch.py scene:=/path/to/twin/scene.xml program:=flick

Build a twin first: `dream twin build --object domino --out /tmp/domino_twin`.
Needs the ROS 2 launch stack (ros2 CLI, launch, launch_ros), which is not on PyPI:
on a machine without it, run the nodes directly (see README, "Without ros2 launch").
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    scene = LaunchConfiguration("scene")
    rtf = LaunchConfiguration("real_time_factor")
    bag_root = LaunchConfiguration("bag_root")
    return LaunchDescription([
        DeclareLaunchArgument("scene", description="twin MJCF built by `dream twin build`"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0", description="simulation speed"),
        DeclareLaunchArgument("program", default_value="slow_sweep",
                              description="push program: name in config/push_programs/ or a YAML path"),
        DeclareLaunchArgument("bag_root", default_value="~/.dream/push_bags", description="where push bags go"),
        Node(package="dream_hw", executable="sim_cell", name="sim_cell", output="screen",
             parameters=[{"scene": scene, "real_time_factor": rtf, "use_sim_time": False}]),
        Node(package="dream_perception", executable="pose_tracker", name="pose_tracker", output="screen",
             parameters=[{"backend": "sim", "use_sim_time": True}]),
        Node(package="dream_sysid", executable="push_executor", name="push_executor", output="screen",
             parameters=[{"scene": scene, "program": LaunchConfiguration("program"), "bag_root": bag_root,
                          "record_ground_truth": True, "use_sim_time": True}]),
        Node(package="dream_sysid", executable="sysid_node", name="sysid_node", output="screen",
             parameters=[{"bag_root": bag_root, "use_sim_time": True}]),
    ])
