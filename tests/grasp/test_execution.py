"""The grasp sequence without ROS or physics: the lift judge on synthetic pose sequences,
candidate choice, the tracking offset, and the runner driving a scripted cell."""
from __future__ import annotations

import numpy as np
import pytest

from dream_grasp.execution import (ChosenGrasp, GraspRunner, GraspSequence, GraspTiming, HandCommand, RetryRule,
                                   SettleRule, Step, TrackingOffset, choose_grasp, firmer, run_attempts)
from dream_grasp.force import GripCommand
from dream_grasp.judge import LiftJudge
from dream_grasp.planner.base import GraspMotion, PlanningFailed
from dream_grasp.policy import GraspPrediction

VMAX = np.full(7, 1.0)
THUMB = np.array([False] * 12 + [True] * 4)


# -- the judge -----------------------------------------------------------------------------------
def feed(judge: LiftJudge, t: np.ndarray, z: np.ndarray) -> LiftJudge:
    for ti, zi in zip(t, z):
        judge.feed(float(ti), float(zi))
    return judge


def test_judge_lifted_and_held_for_3_s():
    t = np.arange(0.0, 8.0, 1 / 30)
    z = 0.025 + np.clip((t - 2.0) / 2.0, 0.0, 1.0) * 0.13          # up 13 cm by t = 4 s, stays
    v = feed(LiftJudge(0.025), t, z).verdict()
    assert v.success and v.rise_m == pytest.approx(0.13) and v.held_s >= 3.0


def test_judge_not_high_enough_or_not_long_enough():
    t = np.arange(0.0, 8.0, 1 / 30)
    assert not feed(LiftJudge(0.025), t, np.full_like(t, 0.025 + 0.099)).success       # 9.9 cm only
    z = np.where((t > 1.0) & (t < 3.9), 0.15, 0.025)                                    # up 2.9 s, dropped
    v = feed(LiftJudge(0.025), t, z).verdict()
    assert not v.success and 2.8 < v.held_s < 3.0 and v.max_rise_m == pytest.approx(0.125)


def test_judge_restarts_after_a_dip_and_after_a_tracking_gap():
    t = np.arange(0.0, 10.0, 1 / 30)
    dip = np.where((t > 2.0) & ~((t > 3.5) & (t < 3.6)), 0.2, 0.025)   # up from 2 s, a dip at 3.5 s
    judge = feed(LiftJudge(0.025), t[t < 5.5], dip[t < 5.5])
    assert not judge.success                                           # 2 s since the dip: not yet
    assert feed(judge, t[t >= 5.5], dip[t >= 5.5]).success             # 3 s after the dip
    t = t[t < 6.5]
    up = np.where(t > 2.0, 0.2, 0.025)                                 # up from 2 s: 4.5 s by the end ...
    assert feed(LiftJudge(0.025), t, up).success
    seen = (t < 4.0) | (t > 5.0)                                       # ... but the tracker is silent 4-5 s
    v = feed(LiftJudge(0.025), t[seen], up[seen]).verdict()
    assert not v.success and v.held_s == pytest.approx(2.0, abs=0.1)   # 2 s before the gap, 1.5 s after
    old = LiftJudge(0.0)
    old.feed(1.0, 0.2)
    old.feed(0.5, 0.0)                                                 # older than the last: ignored
    assert old.samples == 1 and old.rise == pytest.approx(0.2)


def test_judge_needs_the_object_up_even_with_no_hold_time():
    judge = feed(LiftJudge(0.0, hold_s=0.0), np.arange(0, 1, 0.1), np.zeros(10))
    assert not judge.success
    judge.feed(2.0, 0.11)
    assert judge.success


# -- pieces of the sequence ------------------------------------------------------------------------
def test_hand_ramp_and_tracking_offset():
    a = HandCommand(np.zeros(16), np.full(16, 0.1))
    b = HandCommand(np.ones(16), np.full(16, 0.2))
    step = Step("close", 2.0, None, a, b)
    np.testing.assert_allclose(step.hand_at(0.5).positions, 0.25)
    np.testing.assert_allclose(step.hand_at(0.5).effort_nm, 0.2)      # the grip's limits from the start
    np.testing.assert_allclose(step.hand_at(5.0).positions, 1.0)
    assert Step("hold", 1.0).hand_at(0.3) is None

    off = TrackingOffset(7, SettleRule(tolerance_rad=0.001, max_offset_rad=0.01))
    target = np.zeros(7)
    assert not off.correct(target, np.full(7, 0.0005))                 # within tolerance: nothing
    assert off.correct(target, np.full(7, -0.004))                     # sagged 4 mrad: aim 4 mrad higher
    np.testing.assert_allclose(off.offset, 0.004)
    off.correct(target, np.full(7, -0.05))
    np.testing.assert_allclose(off.offset, 0.01)                        # never more than max_offset_rad


class FakePlanner:
    """Reaches only the candidates in `reachable`; paths are straight joint lines."""

    name = "fake"

    def __init__(self, reachable):
        self.reachable, self.asked = set(reachable), []

    def plan(self, request):
        i = int(round(request.palm_grasp[0, 3]))       # the test encodes the candidate index in x
        self.asked.append(i)
        if i not in self.reachable:
            raise PlanningFailed(f"candidate {i}: collision")
        q = request.arm_q
        line = lambda a, b, n: np.linspace(a, b, n + 1)[1:]   # noqa: E731
        pre, grasp, lift = q + 0.3, q + 0.35, q + 0.25
        return GraspMotion(line(q, pre, 5), line(pre, grasp, 3), line(grasp, lift, 4),
                           request.palm_grasp, request.palm_grasp)


def prediction(scores, fingers) -> GraspPrediction:
    k = len(scores)
    palms = np.repeat(np.eye(4)[None], k, axis=0)
    palms[:, 0, 3] = np.arange(k)
    return GraspPrediction(palm_in_object=palms, palm_world=palms, joint_targets=np.full((k, 16), 0.8),
                           contact=np.column_stack([scores, np.ones(k)]), force=np.full(k, 0.2),
                           fingers=np.asarray(fingers, bool), mass_kg=0.05)


def test_choose_takes_the_best_ranked_reachable_candidate():
    pred = prediction([0.2, 0.99, 0.995, 0.9], [[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 0, 1], [1, 1, 1, 1]])
    assert list(pred.ranking()) == [2, 1, 3, 0]        # score to 0.01 (0.99 ~ 0.995), then more fingers
    planner = FakePlanner({1, 3})
    chosen = choose_grasp(pred, planner, np.zeros(7), np.eye(4), THUMB)
    assert chosen.index == 1 and planner.asked == [2, 1]
    assert [i for i, _ in chosen.rejected] == [2]
    np.testing.assert_allclose(chosen.hand_open, np.where(THUMB, 0.3, 0.1) * 0.8)      # the pre-shape
    check = lambda p, i: "twin: dropped" if i == 1 else None   # noqa: E731
    chosen = choose_grasp(pred, FakePlanner({1, 3}), np.zeros(7), np.eye(4), THUMB, check=check)
    assert chosen.index == 3 and "twin: dropped" in dict(chosen.rejected)[1]
    with pytest.raises(PlanningFailed, match="none of 2 grasp candidates") as err:
        choose_grasp(pred, FakePlanner(set()), np.zeros(7), np.eye(4), THUMB, max_candidates=2)
    assert "#2: candidate 2: collision" in str(err.value)


# -- the runner on a scripted cell -------------------------------------------------------------------
class FakeMapper:
    kt, posture_ma = 0.52, 350.0

    def command(self, q, force_head, fingers, palm_rot=None):
        current = np.full(16, 100.0 + 400.0 * force_head)
        return GripCommand(np.asarray(q, float), current * 1e-3 * self.kt, current, 1.0, 0.5, np.zeros(16, bool))


class ScriptedCell:
    """A GraspIO whose arm sags 3 mrad below every target and whose object follows the hand
    only if `holds` (it rises with the lift once the hand has closed)."""

    def __init__(self, holds: bool):
        self.t, self.holds = 0.0, holds
        self.arm_cmds, self.hand_cmds = [], []
        self.q = np.zeros(7)
        self.lift_start = None
        self._next_pose = 0.0
        self._heights = []

    def now(self):
        return self.t

    def sleep_until(self, t):
        while self.t < t:
            self.t = min(t, self.t + 0.01)
            if self.t >= self._next_pose:
                self._next_pose += 1 / 30
                self._heights.append((self.t, self.z()))

    def z(self):
        if not self.holds or self.lift_start is None:
            return 0.025
        return 0.025 + min(0.15, 0.06 * (self.t - self.lift_start))

    def send_arm(self, path):
        self.arm_cmds.append((self.t, path))
        self.q = path.end - 0.003
        closed = self.hand_cmds and self.hand_cmds[-1][1].positions[1] >= 0.8 - 1e-9
        if self.lift_start is None and closed and len(path.times) > 1:       # not a one-point correction
            self.lift_start = self.t

    def send_hand(self, cmd):
        self.hand_cmds.append((self.t, cmd))

    def arm_joints(self):
        return self.q

    def object_heights(self):
        out, self._heights = self._heights, []
        return out


def sequence() -> GraspSequence:
    pred = prediction([1.0], [[1, 1, 0, 1]])
    chosen = choose_grasp(pred, FakePlanner({0}), np.zeros(7), np.eye(4), THUMB)
    return GraspSequence(chosen, FakeMapper(), np.zeros(7), VMAX, GraspTiming(hold_s=3.0))


def test_runner_runs_the_steps_and_judges_a_held_object():
    seq = sequence()
    assert [s.name for s in seq.steps] == ["approach", "insert", "close", "squeeze", "lift", "hold"]
    cell = ScriptedCell(holds=True)
    outcome = GraspRunner(seq, object_z=0.025).run(cell)
    assert outcome.success and outcome.verdict.held_s >= 3.0
    assert outcome.summary["judge"]["success"] and outcome.summary["candidate"] == 0
    # the arm sagged 3 mrad: re-aimed once after the approach; later motions carry the offset and land
    assert outcome.summary["corrections"] == 1
    assert outcome.summary["tracking_offset_rad"] == pytest.approx(0.003)
    lift_cmd = [p for t, p in cell.arm_cmds if len(p.times) > 1][-1]
    np.testing.assert_allclose(lift_cmd.end, seq.steps[4].arm.end + 0.003)
    # the hand: pre-shape with the posture current, then a ramp to the grip (monotonic), held
    positions = np.array([c.positions[1] for _, c in cell.hand_cmds])
    assert positions[0] == pytest.approx(0.08) and positions[-1] == pytest.approx(0.8)
    assert np.all(np.diff(positions) >= -1e-12)
    assert np.allclose(cell.hand_cmds[0][1].effort_nm, 0.35 * 0.52)
    assert cell.hand_cmds[-1][1].effort_nm[0] == pytest.approx((100 + 400 * 0.2) * 1e-3 * 0.52)
    # it stopped once the judge was satisfied, before the hold step's end
    assert cell.t < seq.duration + 3 * (0.3 + 0.3)


def test_runner_reports_a_drop_and_opens_the_hand():
    seq = sequence()
    cell = ScriptedCell(holds=False)
    outcome = GraspRunner(seq, object_z=0.025).run(cell)
    assert not outcome.success and outcome.verdict.max_rise_m < 0.01
    assert np.allclose(cell.hand_cmds[-1][1].positions, seq.open.positions)     # let go


def test_sequence_steps_are_valid_trajectories():
    seq = sequence()
    for step in seq.steps:
        if step.arm is not None:
            assert step.arm.times[0] > 0 and np.all(np.diff(step.arm.times) > 0)
            assert np.all(step.arm.velocities[-1] == 0)
    assert seq.steps[0].arm.peak_speed_ratio(np.zeros(7), VMAX) <= GraspTiming().approach_speed + 1e-9
    assert isinstance(seq.chosen, ChosenGrasp)


# -- the in-process simulated cell (what the node's topics reach, without ROS) -----------------------
def test_sim_io_moves_arm_and_hand_and_reports_the_object(tmp_path, cell):
    from dream_grasp.planner.trajectory import time_path
    from dream_grasp.sim_io import SimGraspIO
    from dream_hw.sim.cell_sim import SimCell
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    twin = build_twin(cell, ObjectGeometry.box((0.05, 0.05, 0.05)), kind="grasp", mass_kg=0.05, friction=0.5,
                      placement=ObjectPlacement(0.55, 0.0))
    io = SimGraspIO(SimCell(twin.save(tmp_path), cell), cell)
    start = io.arm_joints()
    target = start + np.array([0.2, -0.1, 0.0, 0.15, 0.0, -0.1, 0.3])
    io.send_arm(time_path(start, target[None], np.array(cell.arm.max_velocity), speed=0.5))
    mcp = [cell.grasp_hand.joint_map[k] for k in sorted(cell.grasp_hand.joint_map, key=int)].index("if_mcp")
    q_hand = np.zeros(16)
    q_hand[mcp] = 1.0
    io.send_hand(HandCommand(q_hand, np.full(16, 0.2)))
    io.sleep_until(io.now() + 3.0)
    assert io.now() >= 3.0
    assert np.abs(io.arm_joints() - target).max() < 0.02            # followed (a few mrad of sag)
    assert abs(io.sim.data.qpos[io.plant._qadr[mcp]] - 1.0) < 0.1    # the servo reached its goal
    heights = io.object_heights()
    assert 80 <= len(heights) <= 100 and io.object_heights() == []   # ~30 Hz, handed out once
    assert all(abs(z - 0.025) < 1e-3 for _, z in heights)            # the cube rests on the table
    q_hand[mcp] = 1.6
    io.send_hand(HandCommand(q_hand, np.zeros(16)))                  # a new goal, but no current for it
    io.sleep_until(io.now() + 1.0)
    assert io.sim.data.qpos[io.plant._qadr[mcp]] < 1.3               # the current limit, not the goal, rules


# -- re-grasping after a slip ------------------------------------------------------------------------
def test_a_slip_is_regrasped_with_the_next_candidate_and_a_firmer_grip():
    pred = prediction([0.99, 0.98, 0.5], [[1, 1, 0, 1]] * 3)
    cell = ScriptedCell(holds=False)
    calls = []

    def prepare(tried, gain):
        calls.append((tried, gain))
        if len(calls) == 2:                       # the second grasp holds
            cell.holds, cell.lift_start = True, None
        chosen = firmer(choose_grasp(pred, FakePlanner({0, 1, 2}), cell.q, np.eye(4), THUMB, exclude=tried), gain)
        return GraspRunner(GraspSequence(chosen, FakeMapper(), cell.q, VMAX, GraspTiming(hold_s=3.0)), 0.025)

    outcome, attempts = run_attempts(cell, prepare, RetryRule(attempts=3, force_gain=1.5))
    assert outcome.success and len(attempts) == 2
    assert calls == [(frozenset(), 1.0), (frozenset({0}), 1.5)]
    assert [a["candidate"] for a in attempts] == [0, 1]
    assert not attempts[0]["judge"]["success"] and attempts[1]["judge"]["success"]
    assert attempts[1]["force_head"] == pytest.approx(0.3) and attempts[1]["current_ma_max"] > attempts[0]["current_ma_max"]


def test_no_regrasp_when_the_object_is_not_back_on_the_table():
    class StuckCell(ScriptedCell):            # the object comes up 4 cm and stays there, tilted in the hand
        def z(self):
            return 0.025 if self.lift_start is None else 0.065

    pred = prediction([0.99, 0.98], [[1, 1, 0, 1]] * 2)
    cell = StuckCell(holds=False)
    prepare = lambda tried, gain: GraspRunner(GraspSequence(   # noqa: E731
        firmer(choose_grasp(pred, FakePlanner({0, 1}), cell.q, np.eye(4), THUMB, exclude=tried), gain),
        FakeMapper(), cell.q, VMAX, GraspTiming(hold_s=3.0)), 0.025)
    outcome, attempts = run_attempts(cell, prepare, RetryRule(attempts=3))
    assert not outcome.success and len(attempts) == 1 and "not back on the table" in attempts[0]["retry"]


def test_firmer_is_bounded_by_the_force_head_range():
    chosen = choose_grasp(prediction([1.0], [[1, 1, 0, 1]]), FakePlanner({0}), np.zeros(7), np.eye(4), THUMB)
    assert firmer(chosen, 1.5).force_head == pytest.approx(0.3)
    assert firmer(chosen, 10.0).force_head == 1.0


def test_with_no_other_candidate_usable_the_same_grasp_is_tried_again_firmer():
    pred = prediction([0.99, 0.98], [[1, 1, 0, 1]] * 2)
    cell = ScriptedCell(holds=False)
    calls = []

    def prepare(tried, gain):
        calls.append((tried, gain))
        return GraspRunner(GraspSequence(firmer(choose_grasp(pred, FakePlanner({0}), cell.q, np.eye(4), THUMB,
                                                             exclude=tried), gain),
                                         FakeMapper(), cell.q, VMAX, GraspTiming(hold_s=3.0)), 0.025)

    outcome, attempts = run_attempts(cell, prepare, RetryRule(attempts=2))
    assert not outcome.success and len(attempts) == 2
    assert calls == [(frozenset(), 1.0), (frozenset({0}), 1.5), (frozenset(), 1.5)]
    assert [a["candidate"] for a in attempts] == [0, 0]
    assert attempts[1]["current_ma_max"] > attempts[0]["current_ma_max"]
    assert attempts[0]["retry"].startswith("no other candidate usable, the same grasp again firmer")


def test_a_regrasp_that_cannot_be_planned_reports_the_attempt_that_ran():
    pred = prediction([0.99, 0.98], [[1, 1, 0, 1]] * 2)
    cell = ScriptedCell(holds=False)
    planners = iter([FakePlanner({0}), FakePlanner(set()), FakePlanner(set())])   # then nothing is reachable
    prepare = lambda tried, gain: GraspRunner(GraspSequence(   # noqa: E731
        firmer(choose_grasp(pred, next(planners), cell.q, np.eye(4), THUMB, exclude=tried), gain),
        FakeMapper(), cell.q, VMAX, GraspTiming(hold_s=3.0)), 0.025)
    outcome, attempts = run_attempts(cell, prepare, RetryRule(attempts=2))
    assert not outcome.success and len(attempts) == 1
    assert attempts[0]["retry"].startswith("no re-grasp: none of 2 grasp candidates")
    # the arm went back to where the attempt started before the re-plan was tried
    np.testing.assert_allclose(cell.arm_cmds[-1][1].end, np.zeros(7))
