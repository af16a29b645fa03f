"""One grasp trial in the floating-hand scene: close, lift, hold, judge.

Used to keep synthetic demonstrations (a grasp counts if the object rises
>= 10 cm with the palm and is still in the hand at the end), as phase 2's
environment (its contact flags are the paper's contact rewards, Eq. 11) and by
the simulation study (dream_grasp.study).

The hand opens to `preshape(q_target)` before it closes (fingers at 10 % of
their targets, the thumb at 30 %: the rule the runtime policy uses too), so a
grasp is fully described by the wrist pose and the joint targets.

A trial also guards against the simulator: if the object ever moves faster than
MAX_OBJECT_SPEED (a solver blow-up, not a grasp), the trial is marked unstable
and does not count as a success.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from dream_grasp.hand_scene import FINGERS, FloatingHandScene

LIFT_M = 0.12            # the palm rises this much
MIN_LIFT_M = 0.10        # the object must follow at least this much
N_MIN = 2                # sustained-contact threshold (fingers touching), paper's N_min
OPEN_FRACTION = 0.1      # pre-shape: fingers at this fraction of their targets ...
OPEN_FRACTION_THUMB = 0.3   # ... the thumb further
MAX_OBJECT_SPEED = 3.0   # m/s: the lift peaks at ~0.4 m/s; faster means the solver blew up
LOST_S = 0.1             # no finger on the object this long during lift/hold: dropped, stop early


@dataclass(frozen=True)
class TrialTimes:
    """Phase durations (s): finger closing, squeeze settle, lift, hold.

    The hold is the cell's success criterion (dream_grasp.judge: 3 s up). It matters in
    MuJoCo: friction there is soft, a weak grip creeps, and of 12 cube grasps held for
    0.4 s at 350 mA, 5 had slipped out by 3 s (all held at 550 mA)."""

    close: float = 0.35
    settle: float = 0.15
    lift: float = 0.5
    hold: float = 3.0


@dataclass(frozen=True)
class TrialResult:
    success: bool                  # lifted >= MIN_LIFT_M and still in hand
    sustained: bool                # >= N_MIN fingers on the object through lift and hold
    in_hand: bool                  # any finger on the object at the end
    object_rise_m: float
    fingers_at_grasp: np.ndarray   # (4,) bool: if, mf, rf, th touching after closing
    n_contacts: int                # fingers touching after closing (the load-sharing count)
    initial_penetration_m: float
    unstable: bool = False         # the simulation blew up (object faster than MAX_OBJECT_SPEED)
    hand_q: np.ndarray | None = None   # (16,) hand joints after closing and settling (before the lift)

    @property
    def contact_flags(self) -> np.ndarray:
        """The two contact rewards (sustained, retained) as float32."""
        return np.array([float(self.sustained), float(self.in_hand and self.success)], dtype=np.float32)


def thumb_mask(scene: FloatingHandScene) -> np.ndarray:
    """(16,) bool: which hand joints (Dynamixel order) belong to the thumb."""
    return np.array([j.split("/")[-1].startswith("th_") for j in scene.twin.hand_joints])


def preshape(q_target: np.ndarray, thumb: np.ndarray) -> np.ndarray:
    """The open hand placed at the wrist pose: a fraction of the targets (thumb further)."""
    return np.where(thumb, OPEN_FRACTION_THUMB, OPEN_FRACTION) * np.asarray(q_target, float)


def set_mass(scene: FloatingHandScene, mass_kg: float) -> None:
    """Rescales the object's mass and lets MuJoCo recompute its mass-dependent constants.

    FloatingHandScene.set_object_mass changes body_mass/body_inertia only; without
    mj_setConst the solver keeps the compile-time inverse weights and grasps of a
    rescaled object blow up (measured: the 50 g cube rescaled to 80 g flew off in
    every trial). Call this instead.
    """
    scene.set_object_mass(mass_kg)
    mujoco.mj_setConst(scene.model, scene.data)


def object_pose_offset(scene: FloatingHandScene, dx: float, dy: float, dyaw: float) -> np.ndarray:
    """The object's free-joint qpos (7,) moved by (dx, dy) m and turned by dyaw rad about world z."""
    home = scene.object_home.copy()
    turn = np.array([np.cos(dyaw / 2), 0.0, 0.0, np.sin(dyaw / 2)])
    quat = np.zeros(4)
    mujoco.mju_mulQuat(quat, turn, home[3:])
    return np.concatenate([home[:3] + [dx, dy, 0.0], quat])


def fingers_touching(scene: FloatingHandScene) -> np.ndarray:
    """(4,) bool: which of index, middle, ring, thumb touch the object now.

    Same answer as scene.contact_groups()[:4], vectorised (that loop was a fifth of a trial)."""
    d, m = scene.data, scene.model
    touch = np.zeros(len(FINGERS), dtype=bool)
    if d.ncon == 0:
        return touch
    geom = d.contact.geom
    body = m.geom_bodyid[geom]
    group = scene.geom_group[geom]
    other = np.where(body[:, 0] == scene.object_body, group[:, 1], np.where(body[:, 1] == scene.object_body,
                                                                               group[:, 0], -1))
    hit = other[(other >= 0) & (other < len(FINGERS))]
    touch[hit] = True
    return touch


def run_grasp(scene: FloatingHandScene, palm_pos: np.ndarray, palm_rot: np.ndarray, q_open: np.ndarray,
              q_target: np.ndarray, current_ma: np.ndarray | float, times: TrialTimes = TrialTimes(),
              max_penetration_m: float = 0.002, object_qpos: np.ndarray | None = None) -> TrialResult:
    """Places the open hand at the palm pose, closes to q_target under the current limit, lifts, holds.

    object_qpos (7,) puts the object somewhere other than its home pose (e.g. to test a
    grasp planned for the home pose against a misplaced object)."""
    scene.set_current_limit(current_ma)
    scene.reset(palm_pos, palm_rot, q_open)
    m, d = scene.model, scene.data
    if object_qpos is not None:
        d.qpos[scene.object_qadr:scene.object_qadr + 7] = object_qpos
        mujoco.mj_forward(m, d)
    pen = scene.hand_penetration()
    z0 = float(scene.object_pose()[0][2])
    none = np.zeros(4, dtype=bool)
    if pen > max_penetration_m:
        return TrialResult(False, False, False, 0.0, none, 0, pen)
    dt = m.opt.timestep
    q_open = d.qpos[scene.hand_qadr].copy()
    q_target = np.clip(q_target, scene.lower, scene.upper)
    lin = slice(scene.object_dadr, scene.object_dadr + 3)
    too_fast = False
    stride = 10
    n = max(1, int(times.close / dt))
    for k in range(n):
        d.ctrl[scene.hand_act] = q_open + (q_target - q_open) * (k + 1) / n
        scene.step()
        if k % stride == 0:
            too_fast |= bool(np.linalg.norm(d.qvel[lin]) > MAX_OBJECT_SPEED)
    n_settle = int(times.settle / dt)
    for k in range(0, n_settle, stride):
        scene.step(min(stride, n_settle - k))
        too_fast |= bool(np.linalg.norm(d.qvel[lin]) > MAX_OBJECT_SPEED)
    fingers = fingers_touching(scene)
    hand_q = d.qpos[scene.hand_qadr].copy()
    n_lift = max(1, int(times.lift / dt))
    start = d.ctrl[scene.wrist_act].copy()
    sustained = True
    lost_checks = max(1, int(round(LOST_S / (stride * dt))))
    untouched = 0

    def check() -> bool:
        """Contact bookkeeping every `stride` steps; False once the object is lost."""
        nonlocal sustained, too_fast, untouched
        touching = int(fingers_touching(scene).sum())
        sustained &= touching >= N_MIN
        untouched = 0 if touching else untouched + 1
        too_fast |= bool(np.linalg.norm(d.qvel[lin]) > MAX_OBJECT_SPEED)
        return untouched < lost_checks and not too_fast

    going = True
    for k in range(n_lift):
        s = (k + 1) / n_lift
        d.ctrl[scene.wrist_act[2]] = start[2] + LIFT_M * (3 * s * s - 2 * s ** 3)   # smooth start and stop
        scene.step()
        if k % stride == 0 and not check():
            going = False
            break
    n_hold = int(times.hold / dt)
    for k in range(0, n_hold if going else 0, stride):
        scene.step(min(stride, n_hold - k))
        if not check():
            break
    warned = any(d.warning[w].number for w in (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL))
    if warned or too_fast:                      # MuJoCo reset the state, or the solver blew up
        return TrialResult(False, False, False, 0.0, fingers, int(fingers.sum()), pen, unstable=True, hand_q=hand_q)
    rise = float(scene.object_pose()[0][2]) - z0
    in_hand = bool(fingers_touching(scene).any())
    success = rise >= MIN_LIFT_M and in_hand
    return TrialResult(success, sustained and success, in_hand, rise, fingers, int(fingers.sum()), pen,
                       hand_q=hand_q)
