"""Force head -> currents: never above the cap; and the cap/limit really bounds the grip in the sim."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import DEMO_MASS_KG, object_to_world
from dream_grasp.force import GripForceMapper, force_head_for
from dream_grasp.trial import run_grasp
from dream_hw.leap.safety import CurrentLimiter


def test_current_never_exceeds_cap(scene):
    mapper = GripForceMapper(scene, f_max=40.0)
    cap = scene.servo.current_cap_ma
    limiter = CurrentLimiter(cap, scene.servo.torque_constant, 350)
    rng = np.random.default_rng(0)
    saturated = 0
    for _ in range(200):
        mass = rng.uniform(0.0, 5.0)
        active = rng.random(4) < 0.6
        q = rng.uniform(scene.lower, scene.upper)
        cmd = mapper.command(q, force_head_for(mass, int(active.sum()), 40.0) * rng.uniform(0.5, 2.0), active)
        assert np.all(cmd.current_ma <= cap) and np.all(cmd.current_ma >= 0)
        assert np.all(cmd.effort_nm / scene.servo.torque_constant * 1e3 <= cap + 1e-9)
        assert np.all(limiter.set_torque_limits(cmd.effort_nm) <= cap)
        saturated += int(cmd.saturated.any())
    assert saturated > 0          # heavy masses did ask for more than the cap: the clamp was exercised


def test_current_grows_with_mass(scene):
    mapper = GripForceMapper(scene, f_max=40.0)
    q = np.full(16, 0.6)
    active = np.array([True, True, False, True])
    joints = np.repeat(active, 4)
    light = mapper.command(q, force_head_for(0.02, 3, 40.0), active).current_ma
    heavy = mapper.command(q, force_head_for(0.4, 3, 40.0), active).current_ma
    assert np.all(heavy >= light) and heavy[joints].sum() > light[joints].sum() * 1.5
    assert np.all(light[~joints] == heavy[~joints])          # the finger not in contact keeps its posture


def test_gravity_term_bounds_every_orientation(scene):
    """The worst-orientation gravity torque bounds the torque for any palm orientation, and holding
    the thumb up alone needs a real share of the cap (its links carry servos)."""
    mapper = GripForceMapper(scene, f_max=10.0)
    rng = np.random.default_rng(3)
    q = np.clip(np.full(16, 0.7), scene.lower, scene.upper)
    worst = mapper.gravity_torques(q)
    for _ in range(20):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = rng.uniform(0, np.pi)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k
        assert np.all(mapper.gravity_torques(q, rot) <= worst + 1e-9)
    thumb = np.array([j.split("/")[-1].startswith("th_") for j in scene.twin.hand_joints])
    assert worst[thumb].max() > 0.02                                      # N m
    # with no grip force asked, an active finger still gets what holds its own links up
    idle = mapper.command(q, 0.0, np.array([False, False, False, True])).current_ma
    assert idle[thumb].min() >= worst[thumb].max() / scene.servo.torque_constant * 1e3 - 1e-6


def test_weak_current_limit_drops_what_the_cap_holds(scene, demos):
    demo, _ = demos
    assert len(demo) > 0
    obj = object_to_world(scene)
    thumb = np.array([j.split("/")[-1].startswith("th_") for j in scene.twin.hand_joints])
    cap = scene.servo.current_cap_ma
    held = None
    for i in range(len(demo)):
        palm = obj @ demo.palm_in_object[i]
        q = demo.joint_targets[i].astype(float)
        res = run_grasp(scene, palm[:3, 3], palm[:3, :3], np.where(thumb, 0.3, 0.1) * q, q, cap)
        if res.success:
            held = (palm, q, res)
            break
    if held is None:
        pytest.fail("no demonstrated grasp holds the object at the current cap")
    palm, q, strong = held
    weak = run_grasp(scene, palm[:3, 3], palm[:3, :3], np.where(thumb, 0.3, 0.1) * q, q, 0.1 * cap)
    assert strong.object_rise_m >= 0.10
    assert not weak.success and weak.object_rise_m < 0.05
    assert scene.object_mass == pytest.approx(DEMO_MASS_KG)
