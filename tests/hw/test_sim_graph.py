"""The simulated cell as separate OS processes over DDS: sim_cell (physics behind
the drivers' topics) and pose_tracker (sim backend) talk to this test process."""
from __future__ import annotations

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from ros_helpers import NodeProcess, wait_for_subscriber


@pytest.fixture(scope="module")
def push_scene(tmp_path_factory):
    from dream_hw.cell import load_cell
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    root = tmp_path_factory.mktemp("twins")
    for name, y in (("moved", 0.1), ("twin", 0.0)):
        twin = build_twin(load_cell(), ObjectGeometry.box((0.06, 0.04, 0.03)), kind="push", mass_kg=0.2,
                          friction=0.5, placement=ObjectPlacement(0.55, y))
        scene = twin.save(root / name)
    return scene


def _stamp(msg) -> int:
    return msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec


def test_sim_graph_over_dds(ros_node, push_scene):
    sim = NodeProcess("dream_hw.nodes.sim_cell", params={"scene": str(push_scene), "real_time_factor": 1.0})
    tracker = NodeProcess("dream_perception.nodes.pose_tracker",
                          params={"backend": "sim", "latency_s": 0.0, "drop_rate": 0.0, "seed": 3})
    try:
        truth = ros_node.collect(PoseStamped, "/sim/object/pose_gt")
        tracked = ros_node.collect(PoseStamped, "/dream/object/pose")
        arm = ros_node.collect(JointState, "/joint_states")
        hand = ros_node.collect(JointState, "/allegroHand_0/joint_states")
        ros_node.spin_until(lambda: len(tracked) >= 20 and len(truth) >= 20 and arm and hand, 30.0,
                            "tracked and true poses and joint states from the sim processes")
        assert sim.alive() and tracker.alive(), sim.output() + tracker.output()

        # Tracked poses carry the stamp of the true pose they came from, within the noise.
        by_stamp = {_stamp(m): m for m in truth}
        matched = [(m, by_stamp[_stamp(m)]) for m in tracked if _stamp(m) in by_stamp]
        assert len(matched) >= 10
        for m, gt in matched:
            err = np.linalg.norm([m.pose.position.x - gt.pose.position.x, m.pose.position.y - gt.pose.position.y,
                                  m.pose.position.z - gt.pose.position.z])
            assert err < 0.012  # 2 mm sigma in 3-D: 6 sigma
            assert m.header.frame_id == "world"
        assert abs(truth[-1].pose.position.x - 0.55) < 1e-3  # the object rests where the twin put it

        assert arm[-1].name == [f"fr3_joint{i}" for i in range(1, 8)]
        assert hand[-1].name == [f"joint_{i}.0" for i in range(16)] and len(hand[-1].effort) == 16

        # Allegro joint_cmd moves the simulated hand (index proximal joint = joint_1.0).
        cmd_pub = ros_node.node.create_publisher(JointState, "/allegroHand_0/joint_cmd", 10)
        wait_for_subscriber(ros_node, "/allegroHand_0/joint_cmd")
        target = np.array(hand[-1].position)
        target[1] = 0.8
        cmd = JointState(name=[f"joint_{i}.0" for i in range(16)], position=target.tolist())
        cmd_pub.publish(cmd)
        ros_node.spin_until(lambda: hand[-1].position[1] > 0.7, 10.0, "the index finger to follow joint_cmd")

        # A JointTrajectory on the controller's topic moves the arm to its final point.
        traj_pub = ros_node.node.create_publisher(JointTrajectory, "/fr3_arm_controller/joint_trajectory", 10)
        wait_for_subscriber(ros_node, "/fr3_arm_controller/joint_trajectory")
        start = np.array(arm[-1].position)
        goal = start + np.array([0.2, 0.1, 0.0, 0.1, 0.0, -0.1, 0.0])
        traj = JointTrajectory(joint_names=[f"fr3_joint{i}" for i in range(1, 8)])
        mid = JointTrajectoryPoint(positions=((start + goal) / 2).tolist(), time_from_start=Duration(sec=0, nanosec=600_000_000))
        end = JointTrajectoryPoint(positions=goal.tolist(), velocities=[0.0] * 7, time_from_start=Duration(sec=1))
        traj.points = [mid, end]
        traj_pub.publish(traj)
        ros_node.spin_until(lambda: np.abs(np.array(arm[-1].position) - goal).max() < 0.01, 15.0,
                            "the arm to reach the trajectory's final point")

        # /sim/reload swaps in another twin (here: the object 10 cm further along y).
        from rclpy.parameter import Parameter  # noqa: F401
        from std_srvs.srv import Trigger
        from rcl_interfaces.srv import SetParameters
        from rcl_interfaces.msg import Parameter as ParamMsg, ParameterValue, ParameterType
        setp = ros_node.node.create_client(SetParameters, "/sim_cell/set_parameters")
        reload = ros_node.node.create_client(Trigger, "/sim/reload")
        ros_node.spin_until(lambda: setp.service_is_ready() and reload.service_is_ready(), 15.0, "sim_cell services")
        moved_scene = push_scene.parent.parent / "moved" / "scene.xml"
        fut = setp.call_async(SetParameters.Request(parameters=[ParamMsg(name="scene", value=ParameterValue(
            type=ParameterType.PARAMETER_STRING, string_value=str(moved_scene)))]))
        ros_node.spin_until(fut.done, 10.0, "set_parameters")
        fut = reload.call_async(Trigger.Request())
        ros_node.spin_until(fut.done, 20.0, "/sim/reload")
        assert fut.result().success, fut.result().message
        truth.clear()
        ros_node.spin_until(lambda: truth and abs(truth[-1].pose.position.y - 0.1) < 1e-3, 15.0,
                            "the reloaded twin's object pose")
    finally:
        codes = (sim.stop(), tracker.stop())
    assert codes == (0, 0), sim.output() + tracker.output()


def test_sim_cell_without_scene_is_one_line_error():
    proc = NodeProcess("dream_hw.nodes.sim_cell", params={"scene": "/nonexistent/scene.xml"})
    proc.proc.wait(30)
    out = proc.output()
    assert proc.proc.returncode == 2
    assert "scene.xml does not exist" in out and "Traceback" not in out
