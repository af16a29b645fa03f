"""Push -> bag -> /dream/sysid/identify on the simulated cell, every node its own
OS process over DDS: sim_cell (ketchup bottle at its catalogue 0.725 kg), pose_tracker
(sim backend: 2 mm / 1 deg noise, 30 ms latency, 5 % drops), push_executor (its default
program, `sweep_release`, the most accurate on bench/sysid.py), run PUSHES times, each
push planned from where the tracker sees the bottle (the first topples it), and
sysid_node identifying from those PUSHES bags together, its twin starting from a wrong
mass and friction. The answer
follows the contract, its interval holds the estimate and the true mass, it is within
10 % of the truth, and it is latched on /dream/object/inertia.

Why this object and three pushes (measured with single pushes, the estimate the profile
likelihood's mean, each run a fresh graph):
- ketchup bottle: -4.5, -2.4, -1.8, +1.6, -4.8, +1.6, -1.9 % (7 of 7 within 5 %);
- cookie: -1.2, -4.8, +6.9, -9.5, -10.6, -20.0, -5.4, -10.7, +0.2, -7.2 % (3 of 10 off by
  more than 10 %: the fit slid along the mu*m valley, mu*m right to 1 %);
- domino +1.6, -15.8, -8.6, -2.9, +0.7, -15.6 %; light block +39, 0.0, -0.9, +5.6, -1.4,
  +20.0 %; Letter U +11.7, -1.0, -2.8, -4.3, -8.8 %; Lego brick -3.4, -1.6, +29.9, +9.9,
  -14.3, +24.6 %.
Every interval held the truth. A push is chaotic (bench/replay_sensitivity.py): one push
is one draw, and several pushes' likelihoods added are less of one (bench/sysid.py
--repeats / --together). See bench/results/sysid*.json.

This test as it stands (three pushes together; the first topples the bottle, the next two
push it lying on its side): -4.0, +3.3, +5.3, +0.1, -2.2, -4.0 %, and four more runs
within 10 %; identification 25-32 s (the simulated cell keeps running beside it).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from geometry_msgs.msg import InertiaStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from ros_helpers import NodeProcess

OBJECT = "ketchup_bottle"
TRUE_MASS = 0.725      # its catalogue mass
PUSHES = 3


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, cell):
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    entry = get_object(OBJECT)
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
        for _ in range(PUSHES):
            pushed = _call(ros_node, "/dream/push/run", executor, 180.0)
            assert pushed.success, pushed.message + executor.output()
            assert Path(pushed.message).parent == bags
            assert Path(pushed.message).name.startswith("push-sweep_release-")      # the executor's default
        assert len(list(bags.glob("*/metadata.yaml"))) == PUSHES

        sysid = NodeProcess("dream_sysid.nodes.sysid_node",
                            params={"bag_root": str(bags), "scene": str(prior), "pushes": PUSHES})
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
        assert lo <= TRUE_MASS <= hi, result          # an honest interval
        assert abs(mass / TRUE_MASS - 1.0) < 0.10, result
        assert result["pose_rmse_m"] < 0.006, result     # the replayed pushes follow the tracked bottle
        assert (result["warning"] is None) == result["identifiable"]
        ros_node.spin_until(lambda: bool(inertia), 30.0, "the latched inertia")
        assert inertia[-1].inertia.m == pytest.approx(mass, abs=5.1e-6)     # the JSON rounds to 5 decimals
    finally:
        codes = [p.stop() for p in reversed(procs)]
    assert all(c == 0 for c in codes), "\n".join(p.output() for p in procs)
