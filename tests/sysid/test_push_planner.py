"""Push programs and the push planner: validated YAML, and trajectories the arm's
joint_trajectory_controller accepts (7 named joints, strictly increasing times
from > 0, last point at rest, joint speeds within the cell's limits) that carry
the fingertip along the program's line and speed profile."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dream_hw.errors import UserError
from dream_sysid.push.planner import PushPlanner, Trapezoid
from dream_sysid.push.program import available_programs, load_program, program_from_dict


@pytest.fixture(scope="module")
def box_twin():
    from dream_hw.cell import load_cell
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    return build_twin(load_cell(), ObjectGeometry.box((0.06, 0.04, 0.03)), kind="push", mass_kg=0.2,
                      friction=0.5, placement=ObjectPlacement(0.55, 0.02, 0.3))


@pytest.fixture(scope="module")
def planner(box_twin):
    from dream_hw.cell import load_cell

    return PushPlanner(box_twin, load_cell())


def test_shipped_programs_load_and_differ():
    names = {p.stem for p in available_programs()}
    assert {"slow_sweep", "flick"} <= names
    slow, flick = load_program("slow_sweep"), load_program("flick")
    assert slow.push.max_speed_m_s == pytest.approx(0.05)
    assert 2.0 <= flick.push.acceleration_m_s2 <= 4.0 and 0.3 <= flick.push.max_speed_m_s <= 0.4
    # The flick stops faster than friction (mu ~ 0.5) decelerates the object, so it slides free.
    assert flick.push.decel > 0.5 * 9.81
    for program in (slow, flick):
        assert program.description and program.approach.tip_clearance_m == pytest.approx(0.006)


def _valid() -> dict:
    return {"direction_deg": 0, "approach": {"offset_m": 0.02, "tip_clearance_m": 0.006, "pre_push_height_m": 0.1},
            "push": {"max_speed_m_s": 0.1, "acceleration_m_s2": 1.0, "distance_past_contact_m": 0.05},
            "retreat": {"back_m": 0.02, "lift_m": 0.1}}


@pytest.mark.parametrize("edit, words", [
    (lambda d: d["push"].update(max_speed_m_s=3.0), ["'push.max_speed_m_s'", "(0, 1]", "3.0"]),
    (lambda d: d["push"].pop("acceleration_m_s2"), ["missing key 'push.acceleration_m_s2'"]),
    (lambda d: d["push"].update(max_sped_m_s=0.1), ["unknown key 'push.max_sped_m_s'"]),
    (lambda d: d.update(hand={"posture": [0.1] * 15}), ["'hand.posture'", "16 numbers"]),
    (lambda d: d["approach"].update(offset_m="far"), ["'approach.offset_m' should be a number"]),
    (lambda d: d["retreat"].update(back_m=0, lift_m=0), ["'retreat' moves nowhere"]),
])
def test_program_errors_name_file_and_key(edit, words):
    data = _valid()
    edit(data)
    with pytest.raises(UserError) as err:
        program_from_dict(data, "programs/bad.yaml")
    text = str(err.value)
    assert "\n" not in text and text.startswith("programs/bad.yaml: ")
    for word in words:
        assert word in text, text


def test_program_file_errors(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_program(tmp_path / "nope.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("push: [1, 2\n")
    with pytest.raises(UserError, match="broken.yaml is not valid YAML") as err:
        load_program(bad)
    assert "\n" not in str(err.value)


def test_trapezoid_profile():
    tri = Trapezoid.plan(0.01, v_max=1.0, accel=2.0, decel=8.0)     # too short to reach v_max
    assert tri.v_peak < 1.0 and tri.t_cruise == 0.0
    trap = Trapezoid.plan(0.2, v_max=0.3, accel=3.0, decel=6.0)
    assert trap.v_peak == pytest.approx(0.3)
    assert trap.duration == pytest.approx(0.1 + 0.05 + (0.2 - 0.015 - 0.0075) / 0.3)
    t = np.linspace(0.0, trap.duration, 2001)
    s = trap.distance(t)
    assert s[0] == 0.0 and s[-1] == pytest.approx(0.2) and np.all(np.diff(s) >= -1e-12)
    v = np.diff(s) / np.diff(t)
    assert v.max() == pytest.approx(0.3, abs=1e-3)
    for d in (0.001, 0.05, 0.199):
        assert trap.distance(trap.time_at(d)) == pytest.approx(d, abs=1e-9)


def _check_controller_rules(plan, cell):
    assert plan.joint_names == tuple(cell.arm.driver_joint_names) and len(plan.joint_names) == 7
    assert plan.positions.shape == (len(plan.times), 7) == plan.velocities.shape
    assert plan.times[0] > 0 and np.all(np.diff(plan.times) > 0)
    assert np.all(plan.velocities[-1] == 0.0)
    vmax = np.array(cell.arm.max_velocity)
    steps = np.abs(np.diff(plan.positions, axis=0)) / np.diff(plan.times)[:, None]
    assert np.all(steps <= vmax * 1.0001) and np.all(np.abs(plan.velocities) <= vmax)


@pytest.mark.parametrize("name", ["slow_sweep", "flick"])
def test_plan_obeys_controller_rules_and_program(planner, box_twin, cell, name):
    program = load_program(name)
    pos, quat = box_twin.object_qpos[:3], box_twin.object_qpos[3:]
    plan = planner.plan(program, np.array(cell.arm.home), pos, quat)
    _check_controller_rules(plan, cell)
    assert [s.name for s in plan.segments][:3] == ["approach", "descend", "push"]
    assert plan.segments[-1].name == "retreat"
    np.testing.assert_allclose(plan.hand_posture, cell.push_hand.extra["push_posture"])

    # The IK solution puts the fingertip where the plan says: check with forward kinematics.
    ik = planner.ik
    q = ik.model.qpos0.copy()
    for k in range(0, len(plan.times), 7):
        q[ik.arm_qadr] = plan.positions[k]
        q[planner.hand_qadr] = plan.hand_posture
        assert np.linalg.norm(ik.frame_pose(q).translation() - plan.tip_targets[k]) < 0.004

    push = next(s for s in plan.segments if s.name == "push")
    sel = (plan.times >= push.t_start) & (plan.times <= push.t_end)
    tips = plan.tip_targets[sel]
    # Along +x (direction 0), at the clearance above the table, through the object's back face.
    assert np.ptp(tips[:, 1]) < 1e-9 and np.ptp(tips[:, 2]) < 1e-9
    assert tips[-1, 0] - tips[0, 0] == pytest.approx(program.approach.offset_m
                                                     + program.push.distance_past_contact_m, abs=1e-6)
    speeds = np.linalg.norm(np.diff(tips, axis=0), axis=1) / np.diff(plan.times[sel])
    assert speeds.max() <= program.push.max_speed_m_s * 1.001
    if push.time_scale == 1.0:
        assert speeds.max() > 0.9 * program.push.max_speed_m_s
    assert push.t_start < plan.contact_time < push.t_end


def test_plan_turns_to_the_push_direction(planner, box_twin, cell):
    from dataclasses import replace

    program = replace(load_program("slow_sweep"), direction_deg=30.0)
    plan = planner.plan(program, np.array(cell.arm.home), box_twin.object_qpos[:3], box_twin.object_qpos[3:])
    _check_controller_rules(plan, cell)
    push = next(s for s in plan.segments if s.name == "push")
    tips = plan.tip_targets[(plan.times >= push.t_start) & (plan.times <= push.t_end)]
    step = tips[-1, :2] - tips[0, :2]
    assert math.degrees(math.atan2(step[1], step[0])) == pytest.approx(30.0, abs=0.01)


def test_fast_program_is_slowed_to_velocity_limits(planner, box_twin, cell):
    from dataclasses import replace

    program = load_program("flick")
    fast = replace(program, push=replace(program.push, max_speed_m_s=1.0, acceleration_m_s2=20.0,
                                         deceleration_m_s2=20.0, distance_past_contact_m=0.15))
    plan = planner.plan(fast, np.array(cell.arm.home), box_twin.object_qpos[:3], box_twin.object_qpos[3:])
    _check_controller_rules(plan, cell)
    push = next(s for s in plan.segments if s.name == "push")
    assert push.time_scale > 1.0 and any("slowed down" in w for w in plan.warnings)


def test_unplannable_pushes_are_user_errors(planner, box_twin, cell):
    from dataclasses import replace

    program = load_program("slow_sweep")
    high = replace(program, approach=replace(program.approach, tip_clearance_m=0.04))
    with pytest.raises(UserError, match="pass over it"):
        planner.plan(high, np.array(cell.arm.home), box_twin.object_qpos[:3], box_twin.object_qpos[3:])
    far = np.array([2.5, 0.0, 0.015])
    with pytest.raises(UserError, match="out of the arm's reach"):
        planner.plan(program, np.array(cell.arm.home), far, box_twin.object_qpos[3:])
