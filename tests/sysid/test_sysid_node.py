"""sysid_node: /dream/sysid/identify uses the newest push bag, answers with the
contract's JSON and latches the mass on /dream/object/inertia (transient local)."""
from __future__ import annotations

import json
import os
import sys
import types

import numpy as np
import pytest
from geometry_msgs.msg import InertiaStamped
from rclpy.parameter import Parameter
from std_srvs.srv import Trigger

from dream_sysid.bag.export import write_push_bag
from dream_sysid.bag.recording import PoseSeries, PushRecording

SCENE = ('<mujoco><worldbody><body name="object"><freejoint/>'
         '<geom type="box" size="0.04 0.02 0.011" mass="0.2"/></body></worldbody></mujoco>')


def _bag(root, name, scene, mtime):
    n = 15
    t = 5.0 + np.arange(n) / 30.0
    rec = PushRecording(path=root, info={"object_id": "domino", "scene": str(scene), "object_body": "object",
                                         "joint_map": {}, "program": {"name": "flick"}},
                        scene=scene, object_body="object", joint_map={},
                        poses=PoseSeries(t, np.zeros((n, 3)), np.tile([1.0, 0, 0, 0], (n, 1))))
    path = write_push_bag(rec, root / name)
    os.utime(path / "metadata.yaml", ns=(mtime, mtime))
    return path


def _call(ros_node, timeout=30.0):
    client = ros_node.node.create_client(Trigger, "/dream/sysid/identify")
    ros_node.spin_until(client.service_is_ready, 10.0, "/dream/sysid/identify")
    future = client.call_async(Trigger.Request())
    ros_node.spin_until(future.done, timeout, "the identify response")
    return future.result()


@pytest.fixture
def fake_identify(monkeypatch):
    from dream_sysid.identification.result import IdentificationResult

    calls = []

    def identify(recordings, *, scene, object_body, report_dir, progress):
        calls.append(recordings)
        return IdentificationResult(0.1, (0.09, 0.12), 0.45, True, None, 0.002, 0.02, 7, 0.5)

    fake = types.ModuleType("dream_sysid.identification.api")
    fake.identify = identify
    monkeypatch.setitem(sys.modules, "dream_sysid.identification.api", fake)
    return calls


def _node(ros_node, root, **params):
    from dream_sysid.nodes.sysid_node import SysidNode

    overrides = [Parameter("bag_root", value=str(root))] + [Parameter(k, value=v) for k, v in params.items()]
    return ros_node.add(SysidNode(context=ros_node.context, parameter_overrides=overrides))


def test_identifies_newest_bag_and_latches_inertia(ros_node, tmp_path, fake_identify):
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    good = tmp_path / "scene.xml"
    good.write_text(SCENE)
    bad = tmp_path / "bad.xml"
    bad.write_text(SCENE.replace('name="object"', 'name="other"'))
    root = tmp_path / "bags"
    _bag(root, "push-old", bad, 1_000_000_000)
    newest = _bag(root, "push-new", good, 2_000_000_000)
    _node(ros_node, root)

    response = _call(ros_node)
    assert response.success, response.message
    result = json.loads(response.message)
    assert result["mass_kg"] == 0.1 and result["identifiable"] is True
    assert [[r.path for r in recs] for recs in fake_identify] == [[newest]]

    # A subscriber that comes later still gets the mass (transient local).
    qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    got = ros_node.collect(InertiaStamped, "/dream/object/inertia", qos)
    ros_node.spin_until(lambda: got, 10.0, "the latched inertia")
    msg = got[-1]
    assert msg.header.frame_id == "object" and msg.inertia.m == pytest.approx(0.1)
    # The twin's box inertia (0.2 kg) scaled to the identified 0.1 kg.
    assert msg.inertia.ixx == pytest.approx(0.1 / 12 * (0.04**2 + 0.022**2), rel=1e-6)
    assert msg.inertia.izz == pytest.approx(0.1 / 12 * (0.08**2 + 0.04**2), rel=1e-6)

    # A newer bad bag is the one used, and its problem is the answer.
    _bag(root, "push-newer", bad, 3_000_000_000)
    response = _call(ros_node)
    assert not response.success and "bad.xml has no body 'object'" in response.message
    assert "\n" not in response.message and len(fake_identify) == 1


def test_no_bags_is_an_answer_not_a_crash(ros_node, tmp_path, fake_identify):
    _node(ros_node, tmp_path / "empty")
    response = _call(ros_node)
    assert not response.success and "does not exist" in response.message
    (tmp_path / "empty").mkdir()
    response = _call(ros_node)
    assert not response.success and "holds no push bags" in response.message
    assert fake_identify == []


def test_several_pushes_are_identified_together(ros_node, tmp_path, fake_identify):
    """pushes=2: the newest two bags, oldest first, in one identification; more pushes asked for
    than the bag root holds is an answer naming both numbers."""
    scene = tmp_path / "scene.xml"
    scene.write_text(SCENE)
    root = tmp_path / "bags"
    _bag(root, "push-a", scene, 1_000_000_000)
    second = _bag(root, "push-b", scene, 2_000_000_000)
    third = _bag(root, "push-c", scene, 3_000_000_000)
    node = _node(ros_node, root, pushes=2)
    response = _call(ros_node)
    assert response.success, response.message
    assert [[r.path for r in recs] for recs in fake_identify] == [[second, third]]

    node.pushes = 4
    response = _call(ros_node)
    assert not response.success and "holds 3 push bag(s); 4 asked for" in response.message
    assert len(fake_identify) == 1
