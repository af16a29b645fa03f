"""One grasp trial in the floating-hand scene: close, lift, hold, judge.

Used both to keep synthetic demonstrations (a grasp counts if the object rises
>= 10 cm with the palm and is still in the hand at the end) and as phase 2's
environment (its contact flags are the paper's contact rewards, Eq. 11).
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from dream_grasp.hand_scene import FINGERS, FloatingHandScene

LIFT_M = 0.12            # the palm rises this much
MIN_LIFT_M = 0.10        # the object must follow at least this much
N_MIN = 2                # sustained-contact threshold (fingers touching), paper's N_min


@dataclass(frozen=True)
class TrialTimes:
    """Phase durations (s): finger closing, squeeze settle, lift, hold."""

    close: float = 0.35
    settle: float = 0.15
    lift: float = 0.5
    hold: float = 0.4


@dataclass(frozen=True)
class TrialResult:
    success: bool                  # lifted >= MIN_LIFT_M and still in hand
    sustained: bool                # >= N_MIN fingers on the object through lift and hold
    in_hand: bool                  # any finger on the object at the end
    object_rise_m: float
    fingers_at_grasp: np.ndarray   # (4,) bool: if, mf, rf, th touching after closing
    n_contacts: int                # fingers touching after closing (the load-sharing count)
    initial_penetration_m: float

    @property
    def contact_flags(self) -> np.ndarray:
        """The two contact rewards (sustained, retained) as float32."""
        return np.array([float(self.sustained), float(self.in_hand and self.success)], dtype=np.float32)


def run_grasp(scene: FloatingHandScene, palm_pos: np.ndarray, palm_rot: np.ndarray, q_open: np.ndarray,
              q_target: np.ndarray, current_ma: np.ndarray | float, times: TrialTimes = TrialTimes(),
              max_penetration_m: float = 0.002) -> TrialResult:
    """Places the open hand at the palm pose, closes to q_target under the current limit, lifts, holds."""
    scene.set_current_limit(current_ma)
    scene.reset(palm_pos, palm_rot, q_open)
    pen = scene.hand_penetration()
    z0 = float(scene.object_pose()[0][2])
    none = np.zeros(4, dtype=bool)
    if pen > max_penetration_m:
        return TrialResult(False, False, False, 0.0, none, 0, pen)
    m, d = scene.model, scene.data
    dt = m.opt.timestep
    q_open = d.qpos[scene.hand_qadr].copy()
    q_target = np.clip(q_target, scene.lower, scene.upper)
    n = max(1, int(times.close / dt))
    for k in range(n):
        d.ctrl[scene.hand_act] = q_open + (q_target - q_open) * (k + 1) / n
        scene.step()
    scene.step(int(times.settle / dt))
    fingers = scene.contact_groups()[: len(FINGERS)]
    n_lift = max(1, int(times.lift / dt))
    start = d.ctrl[scene.wrist_act].copy()
    sustained = True
    stride = 10
    for k in range(n_lift):
        s = (k + 1) / n_lift
        d.ctrl[scene.wrist_act[2]] = start[2] + LIFT_M * (3 * s * s - 2 * s ** 3)   # smooth start and stop
        scene.step()
        if k % stride == 0 and scene.contact_groups()[: len(FINGERS)].sum() < N_MIN:
            sustained = False
    n_hold = int(times.hold / dt)
    for k in range(0, n_hold, stride):
        scene.step(min(stride, n_hold - k))
        if scene.contact_groups()[: len(FINGERS)].sum() < N_MIN:
            sustained = False
    if any(d.warning[w].number for w in (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL)):
        return TrialResult(False, False, False, 0.0, fingers, int(fingers.sum()), pen)   # MuJoCo reset the state
    rise = float(scene.object_pose()[0][2]) - z0
    in_hand = bool(scene.contact_groups()[: len(FINGERS)].any())
    success = rise >= MIN_LIFT_M and in_hand
    return TrialResult(success, sustained and success, in_hand, rise, fingers, int(fingers.sum()), pen)
