"""The simulated cell: sim_cell (MuJoCo behind the drivers' topics) + pose_tracker,
and dream's push executor (/dream/push/run) and sysid node (/dream/sysid/identify).
With grasp_model_dir (a grasp twin scene): the LEAP driver on the simulated hand's
emulated bus and the grasp node (/dream/grasp/execute) instead of the push executor.

    ros2 launch dream_hw sim.launch.py scene:=/path/to/twin/scene.xml program:=flick
    ros2 launch dream_hw sim.launch.py scene:=/tmp/light_block_grasp/scene.xml \
        grasp_model_dir:=/path/to/policy grasp_object:=light_block

Build a twin first: `dream twin build --object domino --out /tmp/domino_twin`
(`--kind grasp` for grasping).
Needs the ROS 2 launch stack (ros2 CLI, launch, launch_ros), which is not on PyPI:
on a machine without it, run the nodes directly (see README, "Without ros2 launch").
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    scene = LaunchConfiguration("scene")
    rtf = LaunchConfiguration("real_time_factor")
    bag_root = LaunchConfiguration("bag_root")
    model_dir = LaunchConfiguration("grasp_model_dir")
    leap_port = LaunchConfiguration("leap_port_link")
    grasping = PythonExpression(["'", model_dir, "' != ''"])
    return LaunchDescription([
        DeclareLaunchArgument("scene", description="twin MJCF built by `dream twin build`"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0", description="simulation speed"),
        DeclareLaunchArgument("program", default_value="sweep_release",
                              description="push program: name in config/push_programs/ or a YAML path"),
        DeclareLaunchArgument("bag_root", default_value="~/.dream/push_bags", description="where push bags go"),
        DeclareLaunchArgument("pushes", default_value="1",
                              description="sysid: identify from the newest this many push bags together"),
        DeclareLaunchArgument("grasp_model_dir", default_value="",
                              description="exported grasp policy: set it (with a grasp twin scene) to grasp"),
        DeclareLaunchArgument("grasp_object", default_value="",
                              description="catalogue id of the object to grasp (default: the policy's)"),
        DeclareLaunchArgument("leap_port_link", default_value="/tmp/dream_leap_hand",
                              description="grasp twins: the emulated LEAP bus's pty link"),
        Node(package="dream_hw", executable="sim_cell", name="sim_cell", output="screen",
             parameters=[{"scene": scene, "real_time_factor": rtf, "use_sim_time": False,
                          "leap_port_link": leap_port}]),
        Node(package="dream_perception", executable="pose_tracker", name="pose_tracker", output="screen",
             parameters=[{"backend": "sim", "use_sim_time": True}]),
        Node(package="dream_sysid", executable="push_executor", name="push_executor", output="screen",
             condition=UnlessCondition(grasping),
             parameters=[{"scene": scene, "program": LaunchConfiguration("program"), "bag_root": bag_root,
                          "record_ground_truth": True, "use_sim_time": True}]),
        Node(package="dream_hw", executable="leap_driver", name="leap_driver", output="screen",
             condition=IfCondition(grasping), parameters=[{"port": leap_port}]),
        Node(package="dream_grasp", executable="grasp_node", name="grasp_node", output="screen",
             condition=IfCondition(grasping),
             parameters=[{"model_dir": model_dir, "object_id": LaunchConfiguration("grasp_object"),
                          "use_sim_time": True}]),
        Node(package="dream_sysid", executable="sysid_node", name="sysid_node", output="screen",
             parameters=[{"bag_root": bag_root, "use_sim_time": True,
                          "pushes": ParameterValue(LaunchConfiguration("pushes"), value_type=int)}]),
    ])
