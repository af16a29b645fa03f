"""Grasp motion planning: trajectory timing by the contract's rules, mink IK to the palm
within a millimetre, straight insert and lift, and rejection of candidates that would
touch the table or the object (MuJoCo collisions on the grasp twin)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from dream_grasp.planner import PlanningFailed, make_planner
from dream_grasp.planner.base import GraspRequest
from dream_grasp.planner.trajectory import time_path
from dream_grasp.policy import pose_matrix
from dream_hw.errors import UserError

VMAX = np.array([1.087, 1.087, 1.087, 1.087, 1.305, 1.305, 1.305])


@pytest.fixture(scope="module")
def twin(cell):
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    obj = get_object("light_block")
    return build_twin(cell, ObjectGeometry.from_file(obj.mesh_path), kind="grasp", mass_kg=obj.mass_kg,
                      friction=obj.friction, placement=ObjectPlacement(*obj.pose_xy_yaw), object_id=obj.id)


@pytest.fixture(scope="module")
def planner(twin, cell):
    return make_planner("cpu", twin, cell)


def top_grasp(z: float, x: float = 0.55, y: float = 0.0, psi: float = -0.96) -> np.ndarray:
    """Palm facing down (its -z), fingers horizontal at yaw psi, palm origin at (x, y, z)."""
    pose = np.eye(4)
    ax = np.array([math.cos(psi), math.sin(psi), 0.0])
    az = np.array([0.0, 0.0, 1.0])
    pose[:3, :3] = np.column_stack([ax, np.cross(az, ax), az])
    pose[:3, 3] = [x, y, z]
    return pose


def object_pose(twin) -> np.ndarray:
    return pose_matrix(twin.object_qpos[:3], twin.object_qpos[3:])


# -- timing ------------------------------------------------------------------------------------
@pytest.mark.parametrize("speed", [0.2, 0.5, 1.0])
def test_time_path_follows_the_contract(speed):
    rng = np.random.default_rng(3)
    start = rng.uniform(-1, 1, 7)
    waypoints = start + np.cumsum(rng.uniform(-0.3, 0.3, (12, 7)), axis=0)
    path = time_path(start, waypoints, VMAX, speed=speed, accel=2.0)
    assert path.positions.shape[1] == 7 and path.velocities.shape == path.positions.shape
    assert path.times[0] > 0 and np.all(np.diff(path.times) > 0)
    assert np.all(path.velocities[-1] == 0.0)
    np.testing.assert_allclose(path.end, waypoints[-1], atol=1e-12)
    assert np.all(np.abs(path.velocities) <= VMAX + 1e-12)
    # what a controller interpolating linearly between the points runs, from where the arm is
    ratio = path.peak_speed_ratio(start, VMAX)
    assert ratio <= speed + 1e-9 and ratio > 0.8 * speed          # reaches its cruise speed, never more
    pts = path.points()
    assert len(pts) == len(path.times) and pts[-1][2] == path.duration and len(pts[0][0]) == 7


def test_time_path_of_no_motion_is_one_point_at_rest():
    start = np.linspace(-1, 1, 7)
    path = time_path(start, np.vstack([start, start]), VMAX)
    assert len(path.times) == 1 and path.times[0] > 0
    np.testing.assert_array_equal(path.positions[0], start)
    assert np.all(path.velocities == 0)


def test_time_path_rejects_bad_timing():
    with pytest.raises(UserError):
        time_path(np.zeros(7), np.ones((2, 7)), VMAX, speed=1.5)
    with pytest.raises(UserError):
        time_path(np.zeros(7), np.full((2, 7), np.nan), VMAX)


# -- IK ------------------------------------------------------------------------------------------
def test_ik_reaches_the_palm_pose_within_a_millimetre(planner, cell):
    home = np.array(cell.arm.home)
    q_true = home + np.array([0.3, 0.4, -0.2, 0.5, 0.1, -0.3, 0.2])
    target = planner.palm_pose(q_true)
    assert np.linalg.norm(target[:3, 3] - planner.palm_pose(home)[:3, 3]) > 0.1    # a real move
    q = planner.solve(home, target, np.zeros(16), "test")
    got = planner.palm_pose(q)
    assert np.linalg.norm(got[:3, 3] - target[:3, 3]) < 1e-3
    assert np.linalg.norm(got[:3, :3] - target[:3, :3]) < 0.01


def test_unreachable_palm_pose_is_rejected(planner, twin, cell):
    far = top_grasp(0.2, x=1.6)
    with pytest.raises(PlanningFailed, match="out of reach"):
        planner.plan(GraspRequest(np.array(cell.arm.home), object_pose(twin), far, np.zeros(16)))


# -- a grasp motion --------------------------------------------------------------------------------
def test_plan_approaches_inserts_straight_and_lifts(planner, twin, cell):
    home = np.array(cell.arm.home)
    grasp = top_grasp(0.14)
    motion = planner.plan(GraspRequest(home, object_pose(twin), grasp, np.zeros(16)))
    pre = planner.palm_pose(motion.q_pre)
    np.testing.assert_allclose(pre[:3, 3], grasp[:3, 3] + [0.0, 0.0, planner.pre_grasp_m], atol=1e-3)
    for q in motion.insert:                       # on the line pre-grasp -> grasp, orientation kept
        p = planner.palm_pose(q)
        assert np.linalg.norm(p[:2, 3] - grasp[:2, 3]) < 1e-3 and np.linalg.norm(p[:3, :3] - grasp[:3, :3]) < 0.01
    np.testing.assert_allclose(planner.palm_pose(motion.q_grasp)[:3, 3], grasp[:3, 3], atol=1e-3)
    np.testing.assert_allclose(planner.palm_pose(motion.lift[-1])[:3, 3], grasp[:3, 3] + [0, 0, planner.lift_m],
                               atol=1e-3)
    checker = planner.checker
    assert checker.first_collision_on_path(home, motion.approach, np.zeros(16)) is None
    assert checker.first_collision_on_path(motion.q_pre, motion.insert, np.zeros(16)) is None
    # and the timed trajectories obey the contract
    path = time_path(home, motion.approach, VMAX, speed=0.5)
    assert path.peak_speed_ratio(home, VMAX) <= 0.5 + 1e-9


def test_candidates_touching_the_object_or_the_table_are_rejected(planner, twin, cell):
    home, obj = np.array(cell.arm.home), object_pose(twin)
    with pytest.raises(PlanningFailed, match="in the object"):
        planner.plan(GraspRequest(home, obj, top_grasp(0.06), np.zeros(16)))       # palm into the cube
    with pytest.raises(PlanningFailed, match="in the table"):
        planner.plan(GraspRequest(home, obj, top_grasp(0.02, x=0.45, y=0.2), np.zeros(16)))   # no cube there
    # the same pose is fine once the object is elsewhere: it was the object, not the arm
    moved = obj.copy()
    moved[:2, 3] += [-0.15, 0.25]
    planner.plan(GraspRequest(home, moved, top_grasp(0.09), np.zeros(16)))


def test_collision_checker_sees_the_arm_in_the_table(planner, cell):
    checker = planner.checker
    home = np.array(cell.arm.home)
    assert checker.collisions(home, np.zeros(16)) == []
    folded = home.copy()
    folded[1] = 1.6                                    # shoulder pitched forward: hand into the table
    hits = checker.collisions(folded, np.zeros(16))
    assert hits and any(h.other == "table" for h in hits)


def test_unknown_or_unavailable_planners_fail_in_one_line(twin, cell):
    with pytest.raises(UserError, match="planner must be one of"):
        make_planner("rrt", twin, cell)
    try:
        import curobo  # noqa: F401
    except ImportError:
        with pytest.raises(UserError, match="cuRobo") as err:
            make_planner("curobo", twin, cell)
        assert "\n" not in str(err.value)
