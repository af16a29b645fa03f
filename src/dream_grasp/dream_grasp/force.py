"""Force head -> LEAP current limits: what the grasp node puts in /leap_hand/joint_cmd effort.

Chain (paper Eq. 10 and Alg. 2, made physical):
  force head f_hat in [0, 1]   ->  F = f_hat * f_max = m g n   (Alg. 2's scaling)
  load to carry                 W = F / n = m g                 (Eq. 10: m g / n per contact, n contacts)
  friction support              mu * sum(normal forces) >= W * margin
  opposition                    the thumb pushes against the fingers, so its normal force equals
                                the fingers' sum: thumb N = W margin / (2 mu), each of the
                                n_f other active fingers N / n_f (without the thumb the palm
                                is the opposing side and the fingers share the same N)
  joint torques of finger i     tau_j = |J_i[:, j]| N_i + |tau_g,j|   (J_i: tip Jacobian at the grasp q, so
                                |J_ij| N_i is the torque to press N_i at the tip in the worst direction:
                                the contact normal is not known in advance; tau_g: the finger's own
                                weight on the joint, for the palm orientation if given, else the worst)
  Goal Current                  I = max over the finger's joints of tau / Kt, for all its joints (a
                                position servo yields at its weakest joint), clamped to [floor, cap];
                                never above the cap.
Joints of fingers not in contact keep a posture current (default_current_ma, capped).
The efforts sent are I * Kt (N m), which the LEAP driver turns back into the same
current (its own CurrentLimiter caps again).

`margin` is a safety factor over the static friction bound, calibrated in the grasp
twin: the lift accelerates the object, contacts are not antipodal, and MuJoCo's soft
friction lets a weak grip creep out within the 3 s hold. Replaying 60 grasps
demonstrated at the cap with the mass-aware current instead: margins 1.5 / 2 / 3 / 4
held 22 / 32 / 52 / 60 % of the 50 g cube's, 8 / 13 / 47 / 77 % of the 58 g lego
brick's and 45 / 62 / 90 / 90 % of the 106 g domino's. Searching demonstrations at the
mass-aware current itself (500 trials): margin 2 found 10 lego / 22 domino grasps,
margin 4 found 35 / 47. With 4, the cube's mean active-finger current is ~200 mA at
30 g, ~360 mA at 60 g and ~520 mA at 120 g; heavier objects all get the 550 mA cap.
"""
from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from dream_grasp.hand_scene import FINGERS, FloatingHandScene
from dream_hw.errors import UserError

G = 9.81
GRIP_MARGIN = 4.0          # calibrated in the grasp twin (module docstring)


@dataclass(frozen=True)
class GripCommand:
    positions: np.ndarray      # (16,) joint targets, Allegro-style rad, Dynamixel id order
    effort_nm: np.ndarray      # (16,) per-joint torque limit for /leap_hand/joint_cmd
    current_ma: np.ndarray     # (16,) the Goal Current those efforts mean
    contact_force_n: float     # normal force asked of each side of the grip (thumb; fingers share it)
    weight_n: float            # m g recovered from the force head
    saturated: np.ndarray      # (16,) bool: the cap cut the wanted current


class GripForceMapper:
    """Turns the force head and a grasp configuration into capped current limits."""

    def __init__(self, scene: FloatingHandScene, f_max: float, friction: float | None = None,
                 margin: float = GRIP_MARGIN, floor_ma: float = 50.0):
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
        self._joint_body = [int(scene.model.jnt_bodyid[scene.model.joint(j).id]) for j in scene.twin.hand_joints]

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

    def gravity_torques(self, q: np.ndarray, palm_rot: np.ndarray | None = None) -> np.ndarray:
        """(16,) |joint torque| (N m) the hand's own links put on each joint at configuration q.

        With palm_rot (world orientation of the palm) the torque for that orientation; without,
        the largest over all orientations (|sum of m_b dc_b/dq_j| g). The thumb's links carry
        servos: holding them up takes ~0.07 N m, a quarter of the cap."""
        m, d = self.scene.model, self._data
        d.qpos[:] = 0.0
        d.qpos[self.scene.hand_qadr] = np.clip(q, self.scene.lower, self.scene.upper)
        mujoco.mj_kinematics(m, d)
        mujoco.mj_comPos(m, d)
        rot = d.xmat[self.scene.palm_body].reshape(3, 3)
        jac = np.zeros((3, m.nv))
        w = np.zeros((3, 16))                      # palm frame: sum_b m_b dc_b/dq_j over the subtree of joint j
        for j, (body, dof) in enumerate(zip(self._joint_body, self.scene.hand_dadr)):
            mujoco.mj_jacSubtreeCom(m, d, jac, body)
            w[:, j] = m.body_subtreemass[body] * (rot.T @ jac[:, dof])
        if palm_rot is None:
            return G * np.linalg.norm(w, axis=0)
        g_palm = np.asarray(palm_rot, float).reshape(3, 3).T @ np.array([0.0, 0.0, -G])
        return np.abs(w.T @ g_palm)

    def command(self, q: np.ndarray, force_head: float, active: np.ndarray,
                palm_rot: np.ndarray | None = None) -> GripCommand:
        """Capped currents for grasp configuration q, force-head output and active fingers (4 bools);
        palm_rot (the palm's world orientation) sharpens the gravity term (see gravity_torques)."""
        active = np.asarray(active, dtype=bool)
        if active.shape != (len(FINGERS),):
            raise UserError(f"active fingers must be {len(FINGERS)} flags, got shape {active.shape}")
        q = np.asarray(q, dtype=float)
        n = int(active.sum())
        current = np.array(self.posture_ma, dtype=float)
        f_hat = float(np.clip(force_head, 0.0, 1.0))
        weight = f_hat * self.f_max / max(n, 1)
        f_side = 0.0
        if n > 0:
            f_side = weight * self.margin / (2.0 * self.mu)        # normal force of each side of the grip
            _, jac = self.tip_jacobians(q)
            gravity = self.gravity_torques(q, palm_rot)
            thumb = len(FINGERS) - 1
            others = active.copy()
            others[thumb] = False
            n_f = int(others.sum())
            lever = np.linalg.norm(jac, axis=1)                     # (4, 16): |d tip / d q_j|, m per rad
            for i in np.flatnonzero(active):
                f_i = f_side if i == thumb else f_side / max(n_f, 1)
                joints = self.finger_of_joint == i
                # The contact normal is not known in advance: each joint must be able to press
                # f_i at the tip in any direction (|J_ij| f_i), plus hold its own links up. One
                # current for the whole finger (its largest need): position servos with per-joint
                # limits yield at their weakest joint, wherever the contact sits.
                tau = lever[i] * f_i + gravity
                need = float(np.max(tau[joints])) / self.kt * 1e3
                current[joints] = np.maximum(need, self.floor_ma[joints])
        wanted = current.copy()
        current = np.clip(current, 0.0, self.cap)
        effort = current * 1e-3 * self.kt
        return GripCommand(positions=q.copy(), effort_nm=effort, current_ma=current,
                           contact_force_n=f_side, weight_n=weight, saturated=wanted > self.cap)


def force_head_for(mass_kg: float, n_contacts: int, f_max: float) -> float:
    """The force-head value Alg. 2 trains toward: clip(m g n / f_max, 0, 1)."""
    return float(np.clip(mass_kg * G * n_contacts / f_max, 0.0, 1.0))
