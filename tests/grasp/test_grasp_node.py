"""The grasp node end to end over DDS: sim_cell (grasp twin of the light block, camera
off), leap_driver on the simulated hand's emulated Dynamixel bus, pose_tracker (sim
backend) and grasp_node, each its own OS process, with a policy trained here from
synthetic demonstrations. One call of /dream/grasp/execute must lift the block >= 10 cm
and keep it up; the test checks that on the simulator's true pose, not on the node's word.

The light block (5 cm cube, 50 g) is the catalogue's graspable light object: the flat
ones (domino, lego brick) give the synthetic demonstration sampler almost no successful
grasps for the LEAP hand at its current cap (0 of 320 and 1 of 320 trials).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from geometry_msgs.msg import InertiaStamped, PoseStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from ros_helpers import NodeProcess

OBJECT = "light_block"
F_MAX_N = 10.0      # force-head scale for a 50 g object: labels m g n / f_max ~ 0.1-0.3, learnable


@pytest.fixture(scope="module")
def policy_dir(tmp_path_factory, cell):
    """Synthetic top-down demonstrations of the light block -> a small GraspMLP, exported (~30 s)."""
    import torch

    from dream_grasp.demos.synthetic import generate
    from dream_grasp.hand_scene import FloatingHandScene
    from dream_grasp.train import TrainConfig, export, train
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.object_geometry import ObjectGeometry

    torch.manual_seed(0)
    obj = get_object(OBJECT)
    geometry = ObjectGeometry.from_file(obj.mesh_path)
    scene = FloatingHandScene.for_object(cell, geometry, mass_kg=obj.mass_kg, friction=obj.friction, object_id=obj.id)
    demos, stats = generate(scene, 10, seed=0, f_max=F_MAX_N, approaches=("top",), progress=False, current="mass")
    assert len(demos) >= 4, stats
    cfg = TrainConfig(masses=(0.5 * obj.mass_kg, obj.mass_kg, 2.0 * obj.mass_kg), f_max=F_MAX_N, n_points=128,
                      hidden=128, epochs1=600, steps2=0, batch=16, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # 2 shared cores: one thread trains this small net fastest
    try:
        result = train(demos, geometry.mesh, None, cfg)
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("grasp_policy")
    export(result, out, obj.id, list(scene.twin.hand_joints), grasps=demos)
    return out


@pytest.fixture(scope="module")
def grasp_scene(tmp_path_factory, cell):
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    obj = get_object(OBJECT)
    twin = build_twin(cell, ObjectGeometry.from_file(obj.mesh_path), kind="grasp", mass_kg=obj.mass_kg,
                      friction=obj.friction, placement=ObjectPlacement(*obj.pose_xy_yaw), object_id=obj.id)
    return twin.save(tmp_path_factory.mktemp("light_block_grasp_twin"))


def _z(msg: PoseStamped) -> float:
    return float(msg.pose.position.z)


# Measured in this test (30 runs, default grip margin): the first grasp of the 50 g block
# slipped in 11 (3-finger top grasp; at the 550 mA cap still 2 in 10), as the grasp study finds
# for this block (65 % at its mass-aware current). The node re-grasps (here up to
# 3 attempts, the same grasp firmer when no other candidate is reachable). Still, the whole call
# failed in 2 of 16 local runs and needed its rerun in 2 of 3 fresh-clone CI runs (issue-5 stop):
# after the drop, no candidate, not even the one that had just been reached from 3-8 cm away,
# could be planned (IK misses of 63-411 mm, or the arm in the table). The error, which now gives
# the object's tilt, said why: the cube had rolled onto a side face (z axis 90 deg from vertical),
# and candidates in its frame pointed the palm sideways. The node now plans a symmetric object in
# its upright frame (dream_grasp.symmetry); after that, 5 of 5 runs passed, then 6 of 6 without
# reruns, and two fresh-clone CI runs needed none: back to one rerun.
@pytest.mark.flaky(reruns=1)
def test_grasp_execute_lifts_the_block(ros_node, policy_dir, grasp_scene, tmp_path, cell):
    link = tmp_path / "leap_bus"
    procs: list[NodeProcess] = []
    sim = NodeProcess("dream_hw.nodes.sim_cell", params={"scene": str(grasp_scene), "camera_enabled": False,
                                                         "leap_port_link": str(link)})
    procs.append(sim)
    try:
        truth = ros_node.collect(PoseStamped, "/sim/object/pose_gt")
        ros_node.spin_until(lambda: (link.is_symlink() and len(truth) > 5) or not sim.alive(), 60.0,
                            "the simulated cell (LEAP bus and true object pose)")
        assert sim.alive(), sim.output()
        # health_period_s: on a loaded machine the emulated bus now and then hands the health poll a
        # late status packet of another read, taken for error bits -> servo reboot (torque off)
        # mid-grasp. The driver now confirms an overload with a single-servo read, but that read can
        # be fooled the same way (seen here: all error bits on servo 0). Open in dream_hw; the poll
        # is rare in this test so that it tests the grasp.
        procs.append(NodeProcess("dream_hw.nodes.leap_driver", params={"port": str(link), "health_period_s": 10.0}))
        procs.append(NodeProcess("dream_perception.nodes.pose_tracker",
                                 params={"backend": "sim", "latency_s": 0.0, "drop_rate": 0.0, "seed": 1,
                                         "use_sim_time": True}))
        node = NodeProcess("dream_grasp.nodes.grasp_node",
                           params={"model_dir": str(policy_dir), "use_sim_time": True, "wait_timeout_s": 30.0,
                                   "attempts": 3})
        procs.append(node)
        # The identified mass arrives as sysid_node publishes it: transient local, before the call.
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        inertia = InertiaStamped()
        inertia.header.frame_id = "object"
        inertia.inertia.m = 0.05
        ros_node.node.create_publisher(InertiaStamped, "/dream/object/inertia", qos).publish(inertia)

        client = ros_node.node.create_client(Trigger, "/dream/grasp/execute")
        ros_node.spin_until(lambda: client.service_is_ready() or not all(p.alive() for p in procs), 90.0,
                            "/dream/grasp/execute")
        assert all(p.alive() for p in procs), "".join(p.output() for p in procs)
        z0 = _z(truth[-1])
        n0 = len(truth)
        future = client.call_async(Trigger.Request())
        ros_node.spin_until(lambda: future.done() or not node.alive(), 240.0, "the grasp to finish")
        assert future.done(), node.output()
        response = future.result()
        result = json.loads(response.message)
        assert response.success, response.message + "".join(p.output()[-3000:] for p in procs)
        # The node's verdict, checked on the simulator's true pose: up >= 10 cm, and still up now.
        rise = np.array([_z(m) for m in truth[n0:]]) - z0
        assert rise.max() >= 0.10 and rise[-1] >= 0.10, (rise.max(), rise[-1], result)
        assert result["judge"]["held_s"] >= 3.0 and result["judge"]["rise_m"] >= 0.10
        assert result["mass_source"] == "identified" and result["mass_kg"] == pytest.approx(0.05)
        assert result["current_ma_max"] <= 550.0
        # a re-grasp after a slip is allowed (up to 3 attempts, firmer grip) but also stays under the cap
        assert result["attempts"] == len(result["earlier_attempts"]) + 1 <= 3
        assert all(a["current_ma_max"] <= 550.0 for a in result["earlier_attempts"])
    finally:
        codes = [p.stop() for p in reversed(procs)]
    assert codes == [0] * len(procs), "".join(p.output() for p in procs)


def test_grasp_node_without_a_model_exits_2_with_one_line():
    node = NodeProcess("dream_grasp.nodes.grasp_node", params={"model_dir": "/nonexistent/policy"})
    assert node.proc.wait(60) == 2
    out = node.output().strip().splitlines()
    node.stop()
    assert out and out[-1].startswith("grasp_node: error:") and "/nonexistent/policy" in out[-1], out
