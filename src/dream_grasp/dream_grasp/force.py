"""Force head -> LEAP current limits: what the grasp node puts in /leap_hand/joint_cmd effort.

Chain (paper Eq. 10 and Alg. 2, made physical):
  force head f_hat in [0, 1]   ->  F = f_hat * f_max = m g n   (Alg. 2's scaling)
  per-contact load              f = F / n / n = m g / n        (Eq. 10)
  normal force at each contact  f_n = f / mu * margin          (friction cone: tangential <= mu normal)
  joint torques of finger i     tau = |J_i^T (f_n u_i)|        (u_i: tip -> grasp centre, J_i at the grasp q)
  Goal Current                  I = tau / Kt, clamped to [floor, cap]; never above the cap.
Joints of fingers not in contact keep a posture current (default_current_ma, capped).
The efforts sent are I * Kt (N m), which the LEAP driver turns back into the same
current (its own CurrentLimiter caps again).
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from dream_grasp.hand_scene import FINGERS, FloatingHandScene
from dream_hw.errors import UserError

G = 9.81


@dataclass(frozen=True)
class GripCommand:
    positions: np.ndarray      # (16,) joint targets, Allegro-style rad, Dynamixel id order
    effort_nm: np.ndarray      # (16,) per-joint torque limit for /leap_hand/joint_cmd
    current_ma: np.ndarray     # (16,) the Goal Current those efforts mean
    contact_force_n: float     # normal force asked of each active fingertip
    weight_n: float            # m g recovered from the force head
    saturated: np.ndarray      # (16,) bool: the cap cut the wanted current


class GripForceMapper:
    """Turns the force head and a grasp configuration into capped current limits."""

    def __init__(self, scene: FloatingHandScene, f_max: float, friction: float | None = None,
                 margin: float = 1.5, floor_ma: float = 50.0):
        if f_max <= 0:
            raise UserError(f"f_max must be positive, got {f_max}")
        self.scene = scene
        self.f_max = float(f_max)
        self.mu = float(friction if friction is not None else scene.twin.request.friction)
        self.margin = float(margin)
        self.kt = scene.servo.torque_constant
        self.cap = scene.servo.current_cap_ma.astype(float)
        self.posture_ma = np.minimum(scene.servo.default_current_ma, self.cap)
        self.floor_ma = np.minimum(float(floor_ma), self.cap)
        self.finger_of_joint = np.array([FINGERS.index(j.split("/")[-1][:2]) for j in scene.twin.hand_joints])
        self._data = mujoco.MjData(scene.model)     # own data: never disturbs a running rollout

    def tip_jacobians(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fingertip positions (4, 3) in the palm frame and their Jacobians (4, 3, 16) w.r.t. hand joints."""
        m, d = self.scene.model, self._data
        d.qpos[:] = 0.0
        d.qpos[self.scene.hand_qadr] = np.clip(q, self.scene.lower, self.scene.upper)
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        palm_rot = d.xmat[self.scene.palm_body].reshape(3, 3)
        palm_pos = d.xpos[self.scene.palm_body]
        pos = np.zeros((len(FINGERS), 3))
        jac = np.zeros((len(FINGERS), 3, 16))
        jacp = np.zeros((3, m.nv))
        for i, g in enumerate(self.scene.tip_geoms):
            mujoco.mj_jac(m, d, jacp, None, d.geom_xpos[g], m.geom_bodyid[g])
            pos[i] = palm_rot.T @ (d.geom_xpos[g] - palm_pos)
            jac[i] = palm_rot.T @ jacp[:, self.scene.hand_dadr]
        return pos, jac

    def command(self, q: np.ndarray, force_head: float, active: np.ndarray) -> GripCommand:
        """Capped currents for grasp configuration q, force-head output and active fingers (4 bools)."""
        active = np.asarray(active, dtype=bool)
        if active.shape != (len(FINGERS),):
            raise UserError(f"active fingers must be {len(FINGERS)} flags, got shape {active.shape}")
        q = np.asarray(q, dtype=float)
        n = int(active.sum())
        current = np.array(self.posture_ma, dtype=float)
        f_hat = float(np.clip(force_head, 0.0, 1.0))
        weight = f_hat * self.f_max / max(n, 1)
        f_normal = 0.0
        if n > 0:
            f_normal = weight / n / self.mu * self.margin
            tips, jac = self.tip_jacobians(q)
            centre = tips[active].mean(axis=0)
            for i in np.flatnonzero(active):
                u = centre - tips[i]
                norm = np.linalg.norm(u)
                u = u / norm if norm > 1e-6 else np.zeros(3)
                tau = np.abs(jac[i].T @ (f_normal * u))
                joints = self.finger_of_joint == i
                current[joints] = np.maximum(tau[joints] / self.kt * 1e3, self.floor_ma[joints])
        wanted = current.copy()
        current = np.clip(current, 0.0, self.cap)
        effort = current * 1e-3 * self.kt
        return GripCommand(positions=q.copy(), effort_nm=effort, current_ma=current,
                           contact_force_n=f_normal, weight_n=weight, saturated=wanted > self.cap)


def force_head_for(mass_kg: float, n_contacts: int, f_max: float) -> float:
    """The force-head value Alg. 2 trains toward: clip(m g n / f_max, 0, 1)."""
    return float(np.clip(mass_kg * G * n_contacts / f_max, 0.0, 1.0))
