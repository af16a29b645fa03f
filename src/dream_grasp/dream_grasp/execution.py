"""The grasp sequence, ROS-free: which candidate, what to command when, and whether it worked.

  choose_grasp   candidates in the policy's ranking (contact score, then fingers); the
                 first the planner reaches without collision (and that passes an optional
                 check, twin_check.TwinCheck) wins; the others' reasons are kept
  GraspSequence  approach (open pre-shape) -> insert -> close the LEAP hand (positions
                 ramped to the predicted joint targets, efforts = GripForceMapper's
                 capped currents for the force head and the palm's orientation)
                 -> squeeze -> lift -> hold
  GraspRunner    runs the steps through a GraspIO (the node's ROS topics, or a simulation
                 in-process), corrects the arm's steady-state tracking error after each
                 motion (TrackingOffset) and asks judge.LiftJudge whether the object stayed up
  run_attempts   re-grasps after a slip (RetryRule): the object is back on the table, so
                 the next candidate is tried with a firmer grip

The node (nodes/grasp_node.py) only implements GraspIO on its topics and clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Protocol

import numpy as np

from dream_grasp.force import GripCommand, GripForceMapper
from dream_grasp.judge import HOLD_S, MIN_RISE_M, LiftJudge, Verdict
from dream_grasp.planner.base import GraspMotion, GraspRequest, Planner, PlanningFailed
from dream_grasp.planner.trajectory import TimedPath, time_path
from dream_grasp.policy import GraspPrediction
from dream_grasp.trial import preshape

TIME_EPS = 1e-6       # s: clocks that stop a hair short of a deadline still end the step
BASELINE_SAMPLES = 15  # the pre-grasp height: median of the last tracked poses (~0.5 s at 30 Hz)


@dataclass(frozen=True)
class GraspTiming:
    """Speeds (fractions of the cell's joint velocity limits) and phase durations (s)."""

    approach_speed: float = 0.5
    insert_speed: float = 0.15       # the last centimetres in: slow, fingers near the object
    lift_speed: float = 0.15         # slow enough that the grip does not lose the object to inertia
    accel: float = 1.0               # 1/s: full `speed` after 1/accel seconds
    close_s: float = 1.0             # finger targets ramped from the pre-shape over this time
    squeeze_s: float = 0.5           # then the grip settles before the lift
    hold_s: float = HOLD_S           # the object must stay up this long ...
    hold_margin_s: float = 1.0       # ... within hold_s + this after the lift ends


@dataclass(frozen=True)
class HandCommand:
    """One /leap_hand/joint_cmd: positions (rad, Allegro-style) and per-joint torque limits (N m)."""

    positions: np.ndarray
    effort_nm: np.ndarray


@dataclass(frozen=True)
class Step:
    """One phase: an arm trajectory (or None: the arm holds) and the hand command over the step."""

    name: str
    duration: float
    arm: TimedPath | None = None
    hand_from: HandCommand | None = None     # the hand command ramps from this ...
    hand_to: HandCommand | None = None       # ... to this over the step (None: unchanged)

    def hand_at(self, t: float) -> HandCommand | None:
        """The hand command t seconds into the step (positions interpolated, efforts of the target)."""
        if self.hand_to is None:
            return None
        if self.hand_from is None or self.duration <= 0:
            return self.hand_to
        s = float(np.clip(t / self.duration, 0.0, 1.0))
        q = self.hand_from.positions + s * (self.hand_to.positions - self.hand_from.positions)
        return HandCommand(q, self.hand_to.effort_nm)


@dataclass(frozen=True)
class ChosenGrasp:
    index: int
    score: float
    motion: GraspMotion
    palm_grasp: np.ndarray          # (4, 4) world palm pose at the grasp
    hand_open: np.ndarray
    joint_targets: np.ndarray
    force_head: float
    fingers: np.ndarray
    rejected: tuple[tuple[int, str], ...] = field(default_factory=tuple)


def choose_grasp(prediction: GraspPrediction, planner: Planner, arm_q: np.ndarray, object_pose: np.ndarray,
                 thumb: np.ndarray, max_candidates: int | None = None,
                 check: Callable[[GraspPrediction, int], str | None] | None = None,
                 exclude: frozenset[int] = frozenset()) -> ChosenGrasp:
    """The best-ranked candidate the planner can reach (and `check`, e.g. a twin_check.TwinCheck,
    passes: it returns None or the reason); PlanningFailed listing every reason if none.
    Candidates in `exclude` (tried already) are skipped."""
    rejected: list[tuple[int, str]] = []
    order = [i for i in prediction.ranking() if int(i) not in exclude][: max_candidates or len(prediction)]
    for i in order:
        q_target = prediction.joint_targets[i]
        hand_open = preshape(q_target, thumb)
        try:
            motion = planner.plan(GraspRequest(np.asarray(arm_q, float), np.asarray(object_pose, float),
                                               prediction.palm_world[i], hand_open))
        except PlanningFailed as exc:
            rejected.append((int(i), str(exc)))
            continue
        why = check(prediction, int(i)) if check is not None else None
        if why is not None:
            rejected.append((int(i), why))
            continue
        return ChosenGrasp(int(i), float(prediction.score[i]), motion, prediction.palm_world[i].copy(),
                           hand_open, q_target.copy(),
                           float(prediction.force[i]), prediction.fingers[i].copy(), tuple(rejected))
    reasons = "; ".join(f"#{i}: {why}" for i, why in rejected[:5])
    raise PlanningFailed(f"none of {len(order)} grasp candidates is usable ({reasons}"
                         + (" ..." if len(rejected) > 5 else "") + ")")


class GraspSequence:
    """The timed steps of one grasp; built once the candidate and its motion are chosen."""

    def __init__(self, chosen: ChosenGrasp, mapper: GripForceMapper, arm_q: np.ndarray,
                 max_velocity: np.ndarray, timing: GraspTiming = GraspTiming()):
        self.chosen, self.timing = chosen, timing
        self.grip: GripCommand = mapper.command(chosen.joint_targets, chosen.force_head, chosen.fingers,
                                                palm_rot=chosen.palm_grasp[:3, :3])
        posture = np.broadcast_to(np.asarray(mapper.posture_ma, float), chosen.hand_open.shape)
        self.open = HandCommand(chosen.hand_open.copy(), posture * 1e-3 * mapper.kt)
        self.closed = HandCommand(self.grip.positions, self.grip.effort_nm)
        m, vmax, t = chosen.motion, np.asarray(max_velocity, float), timing
        self.max_velocity, self.arm_start = vmax, np.asarray(arm_q, float).copy()
        approach = time_path(arm_q, m.approach, vmax, speed=t.approach_speed, accel=t.accel)
        insert = time_path(approach.end, m.insert, vmax, speed=t.insert_speed, accel=t.accel)
        lift = time_path(insert.end, m.lift, vmax, speed=t.lift_speed, accel=t.accel)
        self.steps = (
            Step("approach", approach.duration, approach, None, self.open),
            Step("insert", insert.duration, insert),
            Step("close", t.close_s, None, self.open, self.closed),
            Step("squeeze", t.squeeze_s, None, None, self.closed),
            Step("lift", lift.duration, lift, None, self.closed),
            Step("hold", t.hold_s + t.hold_margin_s, None, None, self.closed),
        )

    @property
    def duration(self) -> float:
        return float(sum(s.duration for s in self.steps))

    def summary(self) -> dict:
        c, g = self.chosen, self.grip
        return {
            "candidate": c.index, "score": round(c.score, 4), "rejected": len(c.rejected),
            "force_head": round(c.force_head, 4), "weight_n": round(g.weight_n, 4),
            "contact_force_n": round(g.contact_force_n, 4), "fingers": [bool(f) for f in c.fingers],
            "current_ma_max": round(float(g.current_ma.max()), 1), "saturated_joints": int(g.saturated.sum()),
            "steps": {s.name: round(s.duration, 3) for s in self.steps},
        }




class GraspAborted(Exception):
    """The run cannot go on (shutdown, a clock that stopped, lost joint states): say why."""


class GraspIO(Protocol):
    """What the runner needs of the cell; times are on the clock the steps are timed on."""

    def now(self) -> float: ...

    def sleep_until(self, t: float) -> None:
        """Returns once now() >= t, keeping the last hand command alive; GraspAborted if it cannot."""

    def send_arm(self, path: TimedPath) -> None: ...

    def send_hand(self, cmd: HandCommand) -> None: ...

    def arm_joints(self) -> np.ndarray:
        """Measured arm joints, the cell's MJCF order."""

    def object_heights(self) -> list[tuple[float, float]]:
        """(stamp, z) of the object poses tracked since the last call."""


@dataclass(frozen=True)
class SettleRule:
    """After each arm motion: re-aim until the measured joints are within tolerance of the plan."""

    tolerance_rad: float = 0.0015
    max_corrections: int = 3
    move_s: float = 0.3              # each correction's trajectory ...
    wait_s: float = 0.3              # ... and the settling after it
    max_offset_rad: float = 0.05     # a larger error is not sag: it is not corrected away


class TrackingOffset:
    """A position-servoed arm settles short of its target where gravity loads it (the simulated
    Panda's P servos by a few mm with the LEAP hand, without a controller's gravity compensation
    or integral action); a few mm decide a fingertip grasp. The error measured at rest is added
    to later targets too (it changes slowly with the configuration). Zero on an arm that tracks."""

    def __init__(self, n: int, rule: SettleRule = SettleRule()):
        self.offset = np.zeros(n)
        self.rule = rule

    def apply(self, path: TimedPath) -> TimedPath:
        return TimedPath(path.times, path.positions + self.offset, path.velocities)

    def correct(self, target: np.ndarray, measured: np.ndarray) -> bool:
        """Adds the error (target - measured) to the offset; False when already within tolerance."""
        err = np.asarray(target, float) - np.asarray(measured, float)
        if np.abs(err).max() <= self.rule.tolerance_rad:
            return False
        self.offset = np.clip(self.offset + err, -self.rule.max_offset_rad, self.rule.max_offset_rad)
        return True


@dataclass(frozen=True)
class GraspOutcome:
    verdict: Verdict
    summary: dict

    @property
    def success(self) -> bool:
        return self.verdict.success


class GraspRunner:
    """Runs a GraspSequence through a GraspIO and judges it."""

    def __init__(self, sequence: GraspSequence, object_z: float, *, min_rise_m: float = MIN_RISE_M,
                 settle: SettleRule = SettleRule(), hand_period_s: float = 0.05):
        self.sequence, self.settle, self.hand_period = sequence, settle, hand_period_s
        self.min_rise = min_rise_m
        self.recent_z: list[float] = [float(object_z)]     # the baseline is their median (tracker noise)
        self.judge: LiftJudge | None = None
        self.phase = "start"
        self.corrections = 0

    def _poses(self, io: GraspIO) -> None:
        for t, z in io.object_heights():
            self.recent_z = (self.recent_z + [z])[-BASELINE_SAMPLES:]
            if self.judge is not None:
                self.judge.feed(t, z)

    def run(self, io: GraspIO) -> GraspOutcome:
        seq = self.sequence
        offset = TrackingOffset(len(seq.chosen.motion.approach[-1]), self.settle)
        for step in seq.steps:
            self.phase = step.name
            t0 = io.now()
            if step.arm is not None:
                io.send_arm(offset.apply(step.arm))
            ramp = step.hand_from is not None
            if step.hand_to is not None:
                io.send_hand(step.hand_at(0.0))
            while True:
                self._poses(io)
                t = io.now()
                held = step.name == "hold" and self.judge is not None and self.judge.success
                if t - t0 >= step.duration - TIME_EPS or held:
                    break
                io.sleep_until(min(t + self.hand_period, t0 + step.duration))
                if ramp:
                    io.send_hand(step.hand_at(io.now() - t0))
            if ramp:
                io.send_hand(step.hand_to)
            if step.arm is not None:
                self._settle(io, step.arm.end, offset)
            if step.name == "approach":
                self._poses(io)
                self.judge = LiftJudge(float(np.median(self.recent_z)), self.min_rise, seq.timing.hold_s)
        self._poses(io)
        assert self.judge is not None
        verdict = self.judge.verdict()
        if not verdict.success:
            io.send_hand(seq.open)        # let go of whatever is (not) in the hand
        summary = dict(seq.summary(), judge=verdict.summary(), corrections=self.corrections,
                       tracking_offset_rad=round(float(np.abs(offset.offset).max()), 5),
                       baseline_z=round(self.judge.baseline_z, 4))
        return GraspOutcome(verdict, summary)

    def _settle(self, io: GraspIO, target: np.ndarray, offset: TrackingOffset) -> None:
        rule = self.settle
        for _ in range(rule.max_corrections):
            if not offset.correct(target, io.arm_joints()):
                return
            self.corrections += 1
            io.send_arm(TimedPath(np.array([rule.move_s]), (target + offset.offset)[None], np.zeros((1, len(target)))))
            io.sleep_until(io.now() + rule.move_s + rule.wait_s)
            self._poses(io)


@dataclass(frozen=True)
class RetryRule:
    """After a failed lift that left the object on the table: let it settle, then try the
    next-ranked candidate (or, if none is usable, the same one) with `force_gain` times the
    force head (a slip says the grip was too weak for this object: unmodelled friction or mass
    error; the driver still caps the current)."""

    attempts: int = 2
    force_gain: float = 1.5
    settle_s: float = 1.0
    on_table_m: float = 0.02         # tracked height within this of the pre-grasp height: back down


def firmer(chosen: ChosenGrasp, gain: float) -> ChosenGrasp:
    """The same grasp with its force head scaled by `gain` (the head's range [0, 1] bounds it)."""
    return replace(chosen, force_head=float(min(1.0, chosen.force_head * gain)))


def run_attempts(io: GraspIO, prepare: Callable[[frozenset[int], float], GraspRunner],
                 rule: RetryRule = RetryRule()) -> tuple[GraspOutcome, list[dict]]:
    """Grasps until success or rule.attempts runs: `prepare(tried, gain)` plans one attempt from
    fresh inputs (skipping the tried candidates, force head x gain). Stops early when the object
    is not back on the table (it may be tilted in the hand or off the table: a person should look).
    Returns the last outcome and every attempt's summary."""
    tried: set[int] = set()
    gain, history = 1.0, []
    prepared = prepare(frozenset(tried), gain)
    for k in range(max(1, rule.attempts)):
        runner = prepared
        outcome = runner.run(io)
        history.append(dict(outcome.summary, attempt=k + 1, force_gain=round(gain, 3)))
        if outcome.success or k + 1 >= rule.attempts:
            break
        tried.add(runner.sequence.chosen.index)
        # Back to where this attempt started (open hand, straight up and out in joint space): the
        # next plan starts from a configuration its IK is seeded well from, not the lifted arm.
        seq = runner.sequence
        back = time_path(io.arm_joints(), seq.arm_start[None], seq.max_velocity,
                         speed=seq.timing.approach_speed, accel=seq.timing.accel)
        io.send_arm(back)
        io.sleep_until(io.now() + max(back.duration, rule.settle_s))
        heights = [z for _, z in io.object_heights()]
        baseline = runner.judge.baseline_z if runner.judge is not None else runner.recent_z[-1]
        if not heights or abs(float(np.median(heights[-BASELINE_SAMPLES:])) - baseline) > rule.on_table_m:
            history[-1]["retry"] = "object not back on the table: no re-grasp"
            break
        gain *= rule.force_gain
        try:
            runner = prepare(frozenset(tried), gain)
        except PlanningFailed as exc:
            # No other candidate is usable where the object now lies (seen in the simulated cell:
            # the next-ranked palm orientations out of the arm's reach). The grasp that slipped,
            # firmer, is still a better bet than none: a slip says the grip was too weak.
            try:
                runner = prepare(frozenset(), gain)
            except PlanningFailed as again:   # report the attempt that ran, and why no other could
                history[-1]["retry"] = f"no re-grasp: {again}"
                break
            history[-1]["retry"] = f"no other candidate usable, the same grasp again firmer ({exc})"
        prepared = runner
    return outcome, history
