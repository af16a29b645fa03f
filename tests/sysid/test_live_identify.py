"""Push -> bag -> /dream/sysid/identify on the simulated cell, every node its own
OS process over DDS: sim_cell (cookie at its catalogue mass), pose_tracker (sim
backend: 2 mm / 1 deg noise, 30 ms latency, 5 % drops), push_executor (its default
program, `sweep_release`, the most accurate on bench/sysid.py) and sysid_node, whose
identification twin starts from a wrong mass and friction. The answer follows the
contract, its interval holds the estimate and the true mass, and the estimate is
latched on /dream/object/inertia.

Not asserted, because it does not hold reliably yet (issue 5): a mass within 10 % of
the truth. The live bags differ from the bench's in one way that mattered: the arm
executes its JointTrajectory 3-9 ms after the bag stamps it (twin_replay finds that
delay from the measured joints). With the estimate as the profile likelihood's mean,
three runs each of six catalogue objects at their catalogue masses came out within
10 % 14 times in 18: cookie -1.2, -4.8, +6.9 %; domino +1.6, -15.8, -8.6 %; ketchup
bottle -4.5, -2.4, -1.8 %; light block +39, 0.0, -0.9 %; Letter U +11.7, -1.0, -2.8 %;
Lego brick -3.4, -1.6, +29.9 %. Four more cookie runs a stop later: -9.5, -10.6, -20.0,
-5.4 % (friction 0.53-0.62 against 0.5: the fit slid along the mu*m valley, mu*m right to
1 %). Every interval held the truth (44 of 44) and every run was flagged not
identifiable: the profile over mass is nearly flat, so which mass comes out is partly
the push's chaos (bench/replay_sensitivity.py).
See bench/results/sysid.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from geometry_msgs.msg import InertiaStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from ros_helpers import NodeProcess

TRUE_MASS = 0.21       # cookie, catalogue


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, cell):
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    entry = get_object("cookie")
    assert entry.mass_kg == TRUE_MASS
    geometry = ObjectGeometry.from_file(entry.mesh_path)
    place = ObjectPlacement(*entry.pose_xy_yaw)
    real = build_twin(cell, geometry, kind="push", mass_kg=TRUE_MASS, friction=entry.friction, placement=place,
                      object_id=entry.id).save(tmp_path_factory.mktemp("cell"))
    prior = build_twin(cell, geometry, kind="push", mass_kg=0.1, friction=0.3, placement=place,
                       object_id=entry.id).save(tmp_path_factory.mktemp("prior"))
    return real, prior


def _call(ros_node, name: str, owner: NodeProcess, timeout: float):
    client = ros_node.node.create_client(Trigger, name)
    ros_node.spin_until(lambda: client.service_is_ready() or not owner.alive(), 60.0, name)
    assert owner.alive(), owner.output()
    future = client.call_async(Trigger.Request())
    ros_node.spin_until(lambda: future.done() or not owner.alive(), timeout, f"the {name} response")
    assert future.done(), owner.output()
    return future.result()


def test_push_bag_identify_over_dds(ros_node, scenes, tmp_path):
    real, prior = scenes
    bags = tmp_path / "bags"
    procs = [
        NodeProcess("dream_hw.nodes.sim_cell", params={"scene": str(real), "camera_enabled": False}),
        NodeProcess("dream_perception.nodes.pose_tracker",
                    params={"backend": "sim", "seed": 7, "use_sim_time": True}),
    ]
    try:
        executor = NodeProcess("dream_sysid.nodes.push_executor",
                               params={"scene": str(real), "bag_root": str(bags),
                                       "use_sim_time": True, "wait_timeout_s": 30.0})
        procs.append(executor)
        pushed = _call(ros_node, "/dream/push/run", executor, 180.0)
        assert pushed.success, pushed.message + executor.output()
        assert Path(pushed.message).parent == bags
        assert Path(pushed.message).name.startswith("push-sweep_release-")      # the executor's default

        sysid = NodeProcess("dream_sysid.nodes.sysid_node", params={"bag_root": str(bags), "scene": str(prior)})
        procs.append(sysid)
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        inertia = ros_node.collect(InertiaStamped, "/dream/object/inertia", qos)
        answer = _call(ros_node, "/dream/sysid/identify", sysid, 600.0)
        assert answer.success, answer.message + sysid.output()
        result = json.loads(answer.message)
        assert list(result) == ["mass_kg", "mass_ci95_kg", "friction", "identifiable", "warning", "pose_rmse_m",
                                "rot_rmse_rad", "iterations", "seconds"]
        mass = result["mass_kg"]
        lo, hi = result["mass_ci95_kg"]
        assert 0.015 <= lo <= mass <= hi <= 3.0, result
        assert lo <= TRUE_MASS <= hi, result          # an honest interval (44 of 44 live runs, three stops)
        assert result["pose_rmse_m"] < 0.006, result     # the replayed push follows the tracked cookie
        assert (result["warning"] is None) == result["identifiable"]
        ros_node.spin_until(lambda: bool(inertia), 30.0, "the latched inertia")
        assert inertia[-1].inertia.m == pytest.approx(mass, abs=5.1e-6)     # the JSON rounds to 5 decimals
    finally:
        codes = [p.stop() for p in reversed(procs)]
    assert all(c == 0 for c in codes), "\n".join(p.output() for p in procs)
