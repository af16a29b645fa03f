"""Replaying the push in the MuJoCo twin itself, for the final profile over mass.

The differentiable push is a reduced model: fast, batched and differentiable, but
its finger and contacts only approximate the twin's. The estimate and its interval
are therefore settled on the twin: the arm follows the recorded joints
kinematically, the hand its commands under its PD actuators, the object is free,
and only the contact window is simulated (a few hundred steps per replay).

The arm, like the hand, replays its commands where the bag has them (the
arm's JointTrajectory messages, interpolated as joint_trajectory_controller
does) through the twin's own arm actuators. Without commands it follows the
measured joints through stiff servos with a velocity feed-forward (overwriting
qpos and qvel each step would let the actuators' damping decelerate the arm
inside the step, and the compliant fingers swing from that phantom
deceleration). The commanded replay is the faithful one: measured here on a
noise-free twin push of the Lego brick, the stiff-servo replay of the measured
joints left the object 1-1.8 mm behind the recording during contact (the
finger's MCP 0.006-0.011 rad apart), enough to bias its mass 2x, while the
commanded replay reproduced it to 0.1 mm.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import mujoco
import numpy as np
import torch

from dream_hw.mjcf import joint_actuator
from dream_sysid.bag.recording import PushRecording
from dream_sysid.identification.prepare import PreparedPush, _arm_from_trajectories, _hold, _interp, joint_columns


ARM_KP = 2.0e5   # N m/rad: the replayed arm follows its recording within ~0.1 mrad
ARM_KV = 2.0e3   # N m s/rad


@dataclass
class TwinReplay:
    model: mujoco.MjModel
    prep: PreparedPush
    arm_q: np.ndarray        # (T, 7) per simulation step: the arm's state at the start (row 0)
    arm_qd: np.ndarray
    arm_ctrl: np.ndarray     # (T, 7) arm actuator targets (commands, or stiff-servo references)
    hand_ctrl: np.ndarray    # (T, 16)
    hand_q0: np.ndarray
    hand_qd0: np.ndarray
    object_qpos0: np.ndarray
    oid: int
    tip_geom: int
    arm_qadr: np.ndarray
    arm_dadr: np.ndarray
    arm_act: np.ndarray
    hand_qadr: np.ndarray
    hand_dadr: np.ndarray
    hand_act: np.ndarray
    obj_qadr: int
    obj_geoms: np.ndarray
    mass0: float
    inertia0: np.ndarray

    @classmethod
    def build(cls, model: mujoco.MjModel, rec: PushRecording, prep: PreparedPush, *, object_body: str,
              arm_joints: tuple[str, ...], hand_prefix: str) -> "TwinReplay":
        m = copy.deepcopy(model)
        scn = prep.scenario
        steps = int(round(scn.steps * scn.dt / m.opt.timestep))
        t = prep.t0 + m.opt.timestep * np.arange(steps)
        hs = rec.hand_states
        hand_mjcf = [rec.joint_map.get(n, n) for n in hs.names]

        hand_j = [m.joint(n).id for n in hand_mjcf]
        arm_j = [m.joint(n).id for n in arm_joints]
        hand_act = np.array([joint_actuator(m, j) for j in hand_j])
        kp = m.actuator_gainprm[hand_act, 0]
        if rec.hand_cmds is not None and len(rec.hand_cmds.t):
            ctrl = _hold(t, rec.hand_cmds.t, rec.hand_cmds.position)
        elif hs.effort is not None:
            ctrl = _interp(t, hs.t, hs.position + hs.effort / kp)
        else:
            ctrl = _interp(t, hs.t, hs.position)
        data = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, data, m.key("home").id)
        q_home = data.qpos[[m.jnt_qposadr[j] for j in arm_j]].copy()
        measured = rec.arm_states is not None and len(rec.arm_states.t) > 1
        if measured:
            cols = joint_columns(rec.arm_states, rec.joint_map, arm_joints, "the arm's joint states")
            arm_q = _interp(t, rec.arm_states.t, rec.arm_states.position[:, cols])
        arm_act = np.array([joint_actuator(m, j) for j in arm_j])
        if rec.arm_trajectories:
            first = min(a.t_received for a in rec.arm_trajectories)
            q_start = _interp(np.array([first]), rec.arm_states.t, rec.arm_states.position[:, cols])[0] \
                if measured else q_home
            arm_ctrl = _arm_from_trajectories(rec, t, arm_joints, q_start)
            if not measured:
                arm_q = arm_ctrl.copy()
            arm_qd = np.gradient(arm_q, m.opt.timestep, axis=0)
        else:
            if not measured:
                arm_q = np.repeat(q_home[None, :], steps, axis=0)
            arm_qd = np.gradient(arm_q, m.opt.timestep, axis=0)
            # Position + velocity feed-forward: kp (q* + kv/kp qd* - q) - kv qd = kp (q* - q) + kv (qd* - qd).
            arm_ctrl = arm_q + (ARM_KV / ARM_KP) * arm_qd
            m.actuator_gainprm[arm_act, 0] = ARM_KP
            m.actuator_biasprm[arm_act, :3] = [0.0, -ARM_KP, -ARM_KV]
            m.actuator_forcelimited[arm_act] = 0
            m.actuator_ctrllimited[arm_act] = 0
        q0 = _interp(np.array([prep.t0]), hs.t, hs.position)[0]
        qd0 = _interp(np.array([prep.t0]), hs.t, hs.velocity)[0] if hs.velocity is not None else np.zeros(len(q0))

        oid = m.body(object_body).id
        jnt = m.body_jntadr[oid]
        data = mujoco.MjData(m)
        mujoco.mj_resetDataKeyframe(m, data, m.key("home").id)
        obj_adr = m.jnt_qposadr[jnt]
        rest_z = float(data.qpos[obj_adr + 2])
        qpos0 = np.concatenate([[prep.pos0[0], prep.pos0[1], rest_z], prep.quat0])
        tip_body = m.body(hand_prefix + prep.finger).id
        tip_geom = next(g for g in range(m.ngeom) if m.geom_bodyid[g] == tip_body and m.geom_contype[g])
        return cls(
            model=m, prep=prep, arm_q=arm_q, arm_qd=arm_qd, arm_ctrl=arm_ctrl, hand_ctrl=ctrl, hand_q0=q0, hand_qd0=qd0,
            object_qpos0=qpos0, oid=oid, tip_geom=tip_geom,
            arm_qadr=np.array([m.jnt_qposadr[j] for j in arm_j]), arm_dadr=np.array([m.jnt_dofadr[j] for j in arm_j]),
            arm_act=arm_act,
            hand_qadr=np.array([m.jnt_qposadr[j] for j in hand_j]), hand_dadr=np.array([m.jnt_dofadr[j] for j in hand_j]),
            hand_act=hand_act, obj_qadr=int(obj_adr),
            obj_geoms=np.array([g for g in range(m.ngeom) if m.geom_bodyid[g] == oid and m.geom_contype[g]]),
            mass0=float(m.body_mass[oid]), inertia0=m.body_inertia[oid].copy(),
        )

    def rollout(self, mass: float, mu: float) -> dict[str, torch.Tensor]:
        """One replay; outputs on the differentiable push's time grid, shaped like its rollout (B=1)."""
        m = self.model
        m.body_mass[self.oid] = mass
        m.body_inertia[self.oid] = self.inertia0 * (mass / self.mass0)
        m.geom_friction[self.obj_geoms, 0] = mu
        d = mujoco.MjData(m)
        mujoco.mj_setConst(m, d)  # derived constants (invweight0, subtree masses) follow the new mass
        mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
        d.qpos[self.arm_qadr] = self.arm_q[0]
        d.qpos[self.hand_qadr] = self.hand_q0
        d.qvel[self.hand_dadr] = self.hand_qd0
        d.qpos[self.obj_qadr:self.obj_qadr + 7] = self.object_qpos0
        d.ctrl[self.hand_act] = self.hand_ctrl[0]
        mujoco.mj_forward(m, d)
        scn = self.prep.scenario
        every = max(1, int(round(scn.dt / m.opt.timestep)))
        com, yaw, tip = [], [], []
        d.qvel[self.arm_dadr] = self.arm_qd[0]
        for k in range(len(self.arm_q)):
            d.ctrl[self.arm_act] = self.arm_ctrl[k]
            d.ctrl[self.hand_act] = self.hand_ctrl[k]
            mujoco.mj_step(m, d)
            if k % every == 0:
                com.append(d.xipos[self.oid, :2].copy())
                w, x, y, z = d.xquat[self.oid]
                yaw.append(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))
                tip.append(d.geom_xpos[self.tip_geom, :2].copy())
        yaw = np.unwrap(np.array(yaw))
        n = scn.steps
        pad = lambda a: np.concatenate([a, np.repeat(a[-1:], max(0, n - len(a)), axis=0)])[:n]  # noqa: E731
        return {"com": torch.as_tensor(pad(np.array(com)))[None], "yaw": torch.as_tensor(pad(yaw))[None],
                "tip": torch.as_tensor(pad(np.array(tip)))[None]}


def twin_cost(obj, replay: TwinReplay, log_mass: float, log_mu: float, latencies) -> float:
    """Robust cost of one twin replay, minimised over the given latencies."""
    sim = replay.rollout(float(np.exp(log_mass)), float(np.exp(log_mu)))
    return min(float((obj.stacked(obj.residuals(sim, torch.tensor([float(lat)], dtype=torch.float64))) ** 2).sum())
               for lat in latencies)


def profile_on_twin(obj, replay: TwinReplay, log_mu_m: float, latency: float, lm: np.ndarray, *,
                    valley_half_width: float = 0.4, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Profile cost over the log-mass grid `lm` on the MuJoCo twin.

    For each mass the friction is minimised by a bounded Brent search along the
    valley mu m = exp(log_mu_m) (+- valley_half_width in log), latency within
    +- 10 ms of the fitted one: a coarse friction grid makes the profile jagged,
    because the cost is sharp across the valley. Returns (profile cost, best
    log-friction per mass)."""
    from scipy.optimize import minimize_scalar

    lats = np.clip(latency + np.array([-0.01, 0.0, 0.01]), 0.0, 0.15)
    prof, lmu_best = np.empty(len(lm)), np.empty(len(lm))
    for i, lmi in enumerate(lm):
        centre = log_mu_m - lmi
        res = minimize_scalar(lambda u: twin_cost(obj, replay, lmi, u, lats),
                              bounds=(centre - valley_half_width, centre + valley_half_width),
                              method="bounded", options={"xatol": 5e-3})
        prof[i], lmu_best[i] = float(res.fun), float(res.x)
        if progress is not None:
            progress(i + 1, len(lm))
    return prof, lmu_best
