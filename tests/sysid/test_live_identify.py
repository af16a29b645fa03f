"""Push -> bag -> /dream/sysid/identify on the simulated cell, every node its own
OS process over DDS: sim_cell (cookie at its catalogue mass), pose_tracker (sim
backend: 2 mm / 1 deg noise, 30 ms latency, 5 % drops), push_executor
(`slow_sweep`, the program bench/push_information.py finds most informative)
and sysid_node, whose identification twin starts from a wrong mass and friction.
The answer follows the contract, its interval holds the estimate, and the
estimate is latched on /dream/object/inertia.

Not asserted, because it does not hold yet (issue 5): a mass within 10 % of the
truth. With the fingertip weighed at 0.25 mm, the chaos allowance and the gradient
step's batched line search, three runs for the 0.21 kg cookie returned 0.226
(0.098-0.404), 0.193 (0.128-0.370) and 0.330 kg (0.150-0.469): two within 10 %, every
interval holding the truth, each flagged not identifiable. (Without the allowance's
spread term: 0.193, 0.199, 0.291 and 0.241 kg; `sweep_release` 0.176 kg, one run.)
Before them, with the push twin's pyramidal cone, 0.176 (0.106-1.00),
0.273 (0.181-0.570) and 0.212 kg (0.187-0.294). With the elliptic cone
it had returned 0.37, 0.55 and 0.48 kg, and (before the interval admitted the profile's
jaggedness) once 0.29 kg with 0.287-0.295 kg: confidently wrong. The notes below are
from those elliptic runs.
Measured on the 0.48 kg bag: the object's start, the median of the tracked resting
poses, was 0.3 mm (x) and 0.2 mm (y) off the truth, and the finger's encoders see that
in the contact onset. Replayed from the true start, the cost at
the truth drops below the cost at 0.48 kg (164 vs 173), but the twin's profile is
still nearly flat from 0.18 to 0.48 kg (within 3 of each other): stick-slip of the
soft finger makes it jagged at the percent scale. See bench/results/sysid.json."""
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
                               params={"scene": str(real), "program": "slow_sweep", "bag_root": str(bags),
                                       "use_sim_time": True, "wait_timeout_s": 30.0})
        procs.append(executor)
        pushed = _call(ros_node, "/dream/push/run", executor, 180.0)
        assert pushed.success, pushed.message + executor.output()
        assert Path(pushed.message).parent == bags

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
        assert result["pose_rmse_m"] < 0.006, result     # the replayed push follows the tracked cookie
        assert (result["warning"] is None) == result["identifiable"]
        ros_node.spin_until(lambda: bool(inertia), 30.0, "the latched inertia")
        assert inertia[-1].inertia.m == pytest.approx(mass, rel=1e-4)      # the JSON rounds to 5 digits
    finally:
        codes = [p.stop() for p in reversed(procs)]
    assert all(c == 0 for c in codes), "\n".join(p.output() for p in procs)
