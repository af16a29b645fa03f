"""Synthetic pushes: what a push bag would hold if the cell were the twin.

The data-generating twin deliberately differs from the identification twin
(timestep, solver iterations, contact softness) so benchmarks are not an inverse
crime, and the tracked poses get the tracker's noise, latency and dropped frames.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from dream_hw.mjcf import joint_actuator
from dream_sysid.bag.recording import ArmTrajectory, PoseSeries, PushRecording, Series
from dream_sysid.push.planner import PushPlan
from dream_sysid.twin.builder import OBJECT_BODY, Twin


@dataclass(frozen=True)
class SimulatorMismatch:
    """How the 'real' simulator differs from the identification twin."""

    timestep: float = 0.001
    iterations: int = 50
    contact_timeconst: float = 0.012   # object contact solref[0] (twin: MuJoCo's 0.02)

    def apply(self, model: mujoco.MjModel) -> None:
        model.opt.timestep = self.timestep
        model.opt.iterations = self.iterations
        oid = model.body(OBJECT_BODY).id
        for g in range(model.ngeom):
            if model.geom_bodyid[g] == oid:
                model.geom_solref[g, 0] = self.contact_timeconst


@dataclass(frozen=True)
class TrackerModel:
    rate_hz: float = 30.0
    position_sigma_m: float = 0.002
    rotation_sigma_rad: float = float(np.radians(1.0))
    latency_s: float = 0.03
    drop_rate: float = 0.05
    state_rate_hz: float = 100.0      # joint states


def _perturb_quat(rng: np.random.Generator, quat: np.ndarray, sigma: float) -> np.ndarray:
    rv = rng.normal(0.0, sigma, 3)
    angle = float(np.linalg.norm(rv))
    if angle == 0.0:
        return quat
    delta = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * rv / angle])
    out = np.zeros(4)
    mujoco.mju_mulQuat(out, delta, quat)
    return out / np.linalg.norm(out)


def record_push(twin: Twin, plan: PushPlan, scene: Path, *, tracker: TrackerModel = TrackerModel(),
                mismatch: SimulatorMismatch | None = SimulatorMismatch(), seed: int = 0,
                settle_s: float = 0.8, t_start: float = 0.5) -> PushRecording:
    """Runs a planned push in a copy of the twin (the 'real' cell) and records what a bag would hold.

    The trajectory is sent at `t_start` (s) and followed as joint_trajectory_controller does.
    """
    rng = np.random.default_rng(seed)
    model = copy.deepcopy(twin.model)
    if mismatch is not None:
        mismatch.apply(model)
    data = mujoco.MjData(model)
    mujoco.mj_resetDataKeyframe(model, data, model.key("home").id)
    mujoco.mj_forward(model, data)
    arm_act = np.array([joint_actuator(model, j) for j in twin.arm_joints])
    hand_act = np.array([model.actuator(a).id for a in twin.hand_actuators])
    arm_q = np.array([model.jnt_qposadr[model.joint(j).id] for j in twin.arm_joints])
    hand_q = np.array([model.jnt_qposadr[model.joint(j).id] for j in twin.hand_joints])
    hand_v = np.array([model.jnt_dofadr[model.joint(j).id] for j in twin.hand_joints])
    oid = model.body(OBJECT_BODY).id
    hand_cmd = np.asarray(plan.hand_posture, float)
    data.ctrl[hand_act] = hand_cmd
    arm_start = data.qpos[arm_q].copy()

    t_state, arm_pos, hand_pos, hand_vel, hand_eff = [], [], [], [], []
    t_pose, gt_pos, gt_quat = [], [], []
    next_state, next_pose = 0.0, 0.0
    end = t_start + plan.duration + settle_s
    while data.time < end:
        data.ctrl[arm_act] = arm_start if data.time < t_start else plan.arm_target(data.time - t_start, arm_start)
        mujoco.mj_step(model, data)
        if data.time >= next_state - 1e-12:
            next_state += 1.0 / tracker.state_rate_hz
            t_state.append(data.time)
            arm_pos.append(data.qpos[arm_q].copy())
            hand_pos.append(data.qpos[hand_q].copy())
            hand_vel.append(data.qvel[hand_v].copy())
            hand_eff.append(data.actuator_force[hand_act].copy())
        if data.time >= next_pose - 1e-12:
            next_pose += 1.0 / tracker.rate_hz
            t_pose.append(data.time)
            gt_pos.append(data.xpos[oid].copy())
            gt_quat.append(data.xquat[oid].copy())

    t_pose = np.array(t_pose)
    gt_pos, gt_quat = np.array(gt_pos), np.array(gt_quat)
    keep = rng.random(len(t_pose)) >= tracker.drop_rate
    keep[:3] = True
    meas_pos = gt_pos + rng.normal(0.0, tracker.position_sigma_m, gt_pos.shape)
    meas_quat = np.array([_perturb_quat(rng, q, tracker.rotation_sigma_rad) for q in gt_quat])
    # The tracker's stamps lag the robot's clock by the latency.
    poses = PoseSeries(t_pose[keep] + tracker.latency_s, meas_pos[keep], meas_quat[keep])
    names = tuple(plan.hand_names)
    arm_names = tuple(plan.joint_names)
    joint_map = dict(zip(names, twin.hand_joints)) | dict(zip(arm_names, twin.arm_joints))
    t_state = np.array(t_state)
    return PushRecording(
        path=Path("<simulated>"),
        info={"object_id": twin.request.object_id, "scene": str(scene), "object_body": OBJECT_BODY,
              "joint_map": joint_map, "program": "simulated"},
        scene=Path(scene), object_body=OBJECT_BODY, joint_map=joint_map, poses=poses,
        hand_states=Series(t_state, names, np.array(hand_pos), np.array(hand_vel), np.array(hand_eff)),
        hand_cmds=Series(np.array([0.0]), names, hand_cmd[None, :]),
        arm_states=Series(t_state, arm_names, np.array(arm_pos)),
        arm_trajectories=(ArmTrajectory(t_start, arm_names, np.asarray(plan.times), np.asarray(plan.positions)),),
        ground_truth=PoseSeries(t_pose, gt_pos, gt_quat),
    )
