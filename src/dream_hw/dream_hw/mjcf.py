"""Small lookups on compiled MuJoCo models that every layer needs."""
from __future__ import annotations

import mujoco


def joint_actuator(model: mujoco.MjModel, joint: str | int) -> int | None:
    """Index of the first actuator that drives `joint` (name or id) directly, or None."""
    jid = model.joint(joint).id if isinstance(joint, str) else int(joint)
    for a in range(model.nu):
        if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT and model.actuator_trnid[a, 0] == jid:
            return a
    return None
