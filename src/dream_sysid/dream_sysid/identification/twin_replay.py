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
from contextlib import contextmanager
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch

from dream_hw.mjcf import joint_actuator
from dream_sysid.bag.recording import PushRecording
from dream_sysid.identification.prepare import PreparedPush, _arm_from_trajectories, _hold, _interp, joint_columns


ARM_KP = 2.0e5   # N m/rad: the replayed arm follows its recording within ~0.1 mrad
ARM_KV = 2.0e3   # N m s/rad
BATCH_THREADS = 2      # mujoco.rollout threads (the machines here have 2 cores)
# Model copies kept for batched replays (0.6 MB each without the visual meshes,
# twin/physics_only.py): 32 or all of a pass at once were no faster than 8 (four
# identifications, twice each: within the run-to-run scatter).
BATCH_CHUNK = 8
PROFILE_PASSES = 3        # full-range friction grid, then two finer grids around the best
# Seeded from a coarser profile's valley: two halvings further, to ~0.7 % friction steps.
# The twin's cost is that sharp across the mu*m valley: on perfect data at the true mass
# (sweep_release, a 0.1 kg domino), friction 1 % off costs +20, 2.5 % off +30-50, 5 % off
# +110-140, while the best friction at a mass 10 % off costs only +25: with ~2.7 % steps,
# where the grid happened to fall on the valley outweighed the mass. Five passes instead of
# three: sweep_release bench, moved-object mean error 12.9 -> 11.7 %, median 9.4 -> 6.5 %.
SEEDED_PASSES = 5
KINEMATICS_EVERY_S = 0.01   # profile replays: kinematics at 100 Hz (the joint-state rate), linear between
DELAY_RANGE_S = (-0.05, 0.1)   # the arm trajectory's execution delay searched over this
DELAY_STEP_S = 0.001
# What mj_setConst derives from the object's mass (found by diffing two models after it).
MASS_CONSTANTS = ("body_subtreemass", "body_invweight0", "dof_invweight0", "dof_M0", "cam_poscom0", "light_poscom0")
START_JITTER_M = 3e-4       # m, start shifts for the interval's jitter allowance (the tracked start's ~0.3 mm)


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
    arm_delay: float = 0.0   # s, the arm's commands replayed this much after their bag stamps
    _consts: dict = field(default_factory=dict, repr=False)     # mass -> its MASS_CONSTANTS
    _pool: list = field(default_factory=list, repr=False)       # (model, data) copies for rollout_batch
    _threads: list = field(default_factory=list, repr=False)    # one MjData per rollout thread

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
        rest_z = float(data.qpos[obj_adr + 2]) + prep.rest_dz      # (an object on another face sits lower)
        qpos0 = np.concatenate([[prep.pos0[0], prep.pos0[1], rest_z], prep.quat0])
        tip_body = m.body(hand_prefix + prep.finger).id
        tip_geom = next(g for g in range(m.ngeom) if m.geom_bodyid[g] == tip_body and m.geom_contype[g])
        replay = cls(
            model=m, prep=prep, arm_q=arm_q, arm_qd=arm_qd, arm_ctrl=arm_ctrl, hand_ctrl=ctrl, hand_q0=q0, hand_qd0=qd0,
            object_qpos0=qpos0, oid=oid, tip_geom=tip_geom,
            arm_qadr=np.array([m.jnt_qposadr[j] for j in arm_j]), arm_dadr=np.array([m.jnt_dofadr[j] for j in arm_j]),
            arm_act=arm_act,
            hand_qadr=np.array([m.jnt_qposadr[j] for j in hand_j]), hand_dadr=np.array([m.jnt_dofadr[j] for j in hand_j]),
            hand_act=hand_act, obj_qadr=int(obj_adr),
            obj_geoms=np.array([g for g in range(m.ngeom) if m.geom_bodyid[g] == oid and m.geom_contype[g]]),
            mass0=float(m.body_mass[oid]), inertia0=m.body_inertia[oid].copy(),
        )
        if measured and rec.arm_trajectories:
            replay.arm_delay = replay._execution_delay(rec.arm_states.t, rec.arm_states.position[:, cols])
            replay.arm_ctrl = _arm_from_trajectories(rec, t - replay.arm_delay, arm_joints, q_start)
        return replay

    def _execution_delay(self, meas_t: np.ndarray, meas_q: np.ndarray) -> float:
        """How much later than its bag stamp the arm really executed its trajectory (s).

        A JointTrajectory is stamped when the recorder receives it; the controller starts it
        when it receives it, at its next control cycle. On the simulated cell, over DDS, that
        was 3-9 ms later: replayed from the stamp (5 ms), the twin's arm ran 0.9 mrad (~0.5 mm
        at the fingertip, twice the fingertip's weight) ahead of the measured one, and three
        domino identifications came out 29-82 % off. The arm barely feels the object, so one
        replay of the commands as stamped, matched against the measured joints over shifts of
        its time axis, gives it."""
        m, d = self.model, mujoco.MjData(self.model)
        self._start(m, d)
        sim = np.empty_like(self.arm_ctrl)
        for k in range(len(sim)):
            sim[k] = d.qpos[self.arm_qadr]
            self._step(m, d, k)
        if np.ptp(sim, axis=0).max() < 1e-3:       # the arm hardly moves: nothing to align
            return 0.0
        t = self.prep.t0 + m.opt.timestep * np.arange(len(sim))
        delays = np.arange(DELAY_RANGE_S[0], DELAY_RANGE_S[1] + 1e-9, DELAY_STEP_S)
        err = np.array([np.mean((_interp(t + dl, meas_t, meas_q) - sim) ** 2) for dl in delays])
        i = int(np.argmin(err))
        delay = float(delays[i])
        if 0 < i < len(err) - 1:                    # parabola through the lowest three
            a, b, c = err[i - 1], err[i], err[i + 1]
            if a - 2 * b + c > 0:
                delay += 0.5 * (a - c) / (a - 2 * b + c) * DELAY_STEP_S
        # In whole simulation steps: the replay is chaotic (3 us of shift moved a slow sweep's
        # object 0.7 mm), so a bag stamped when the arm ran must replay exactly as recorded.
        return float(np.round(delay / m.opt.timestep) * m.opt.timestep)

    @contextmanager
    def object_shifted(self, dx: float, dy: float):
        """Replays inside the block start the object (dx, dy) m off its tracked start (for
        probing how chaotic the push is); the tracked start is restored after it."""
        start = self.object_qpos0
        self.object_qpos0 = start + np.array([dx, dy, 0.0, 0.0, 0.0, 0.0, 0.0])
        try:
            yield self
        finally:
            self.object_qpos0 = start

    def _set_params(self, m: mujoco.MjModel, d: mujoco.MjData, mass: float, mu: float) -> None:
        m.body_mass[self.oid] = mass
        m.body_inertia[self.oid] = self.inertia0 * (mass / self.mass0)
        m.geom_friction[self.obj_geoms, 0] = mu
        # mj_setConst's derived constants (invweight0, subtree masses, ...) follow the new mass.
        # A replay changes nothing else they depend on, so each mass computes them once (a
        # profile replays each mass at 10-22 frictions; mj_setConst took 0.3 s an identification).
        consts = self._consts.get(mass)
        if consts is None:
            mujoco.mj_setConst(m, d)
            self._consts[mass] = {name: getattr(m, name).copy() for name in MASS_CONSTANTS}
        else:
            for name, value in consts.items():
                getattr(m, name)[:] = value

    def _start(self, m: mujoco.MjModel, d: mujoco.MjData) -> None:
        """The replay's initial state in d (forward-computed)."""
        mujoco.mj_resetDataKeyframe(m, d, m.key("home").id)
        d.qpos[self.arm_qadr] = self.arm_q[0]
        d.qpos[self.hand_qadr] = self.hand_q0
        d.qvel[self.hand_dadr] = self.hand_qd0
        d.qpos[self.obj_qadr:self.obj_qadr + 7] = self.object_qpos0
        d.ctrl[self.hand_act] = self.hand_ctrl[0]
        mujoco.mj_forward(m, d)
        d.qvel[self.arm_dadr] = self.arm_qd[0]

    def _started(self, mass: float, mu: float) -> tuple[mujoco.MjModel, mujoco.MjData]:
        """The twin set to (mass, mu) and a fresh MjData at the replay's initial state."""
        m = self.model
        d = mujoco.MjData(m)
        self._set_params(m, d, mass, mu)
        self._start(m, d)
        return m, d

    def _step(self, m: mujoco.MjModel, d: mujoco.MjData, k: int) -> None:
        """Simulation step k of a sequential replay under the recorded arm and hand commands
        (rollout_batch hands the same commands to mujoco.rollout as one array)."""
        d.ctrl[self.arm_act] = self.arm_ctrl[k]
        d.ctrl[self.hand_act] = self.hand_ctrl[k]
        mujoco.mj_step(m, d)

    def rollout(self, mass: float, mu: float) -> dict[str, torch.Tensor]:
        """One replay; outputs on the differentiable push's time grid, shaped like its rollout (B=1)."""
        m, d = self._started(mass, mu)
        every = max(1, int(round(self.prep.scenario.dt / m.opt.timestep)))
        qpos = []
        for k in range(len(self.arm_q)):
            if k % every == 0:
                qpos.append(d.qpos.copy())      # the state at t0 + k dt, before step k
            self._step(m, d, k)
        return self._outputs(self._kinematics(np.array(qpos)[None], data=d))

    def hand_force(self, mass: float, mu: float) -> tuple[np.ndarray, float]:
        """One replay's force of the robot on the object (world frame, N, per simulation step:
        (T, 3)), i.e. every contact of the object with a body that is not welded to the world,
        and how far the object's origin went by the end (m)."""
        m, d = self._started(mass, mu)
        obj = set(self.obj_geoms.tolist())
        f6 = np.zeros(6)
        force = np.zeros((len(self.arm_q), 3))
        for k in range(len(self.arm_q)):
            self._step(m, d, k)
            for i in range(d.ncon):
                c = d.contact[i]
                if (c.geom1 in obj) == (c.geom2 in obj):
                    continue
                other = c.geom2 if c.geom1 in obj else c.geom1
                if m.body_weldid[m.geom_bodyid[other]] == 0:       # the table, the floor
                    continue
                mujoco.mj_contactForce(m, d, i, f6)
                # The contact frame's rows are world axes, its normal from geom1 to geom2:
                # f6[:3] is what geom1 exerts on geom2.
                f = c.frame.reshape(3, 3).T @ f6[:3]
                force[k] += f if c.geom2 in obj else -f
        travel = float(np.linalg.norm(d.qpos[self.obj_qadr:self.obj_qadr + 2] - self.object_qpos0[:2]))
        return force, travel

    def _outputs(self, signals: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """(B, T', ...) recorded arrays -> the differentiable push's (B, steps, ...) tensors."""
        n = self.prep.scenario.steps

        def pad(a: np.ndarray) -> np.ndarray:
            extra = max(0, n - a.shape[1])
            return np.concatenate([a, np.repeat(a[:, -1:], extra, axis=1)], axis=1)[:, :n]

        smooth = {"yaw": lambda a: np.unwrap(a, axis=1), "quat": _continuous}
        return {key: torch.as_tensor(pad(smooth.get(key, lambda a: a)(a))) for key, a in signals.items()}

    def rollout_batch(self, masses: np.ndarray, mus: np.ndarray, *, nthread: int = BATCH_THREADS,
                      chunk: int = BATCH_CHUNK, kinematics_every_s: float = 0.0) -> dict[str, torch.Tensor]:
        """Many replays at once with mujoco.rollout (C threads, open-loop controls),
        the same physics as `rollout`: outputs (B, steps, ...) for B = len(masses).

        Outputs come from forward kinematics of the returned positions, every
        `kinematics_every_s` of simulated time (0: every sample) and linearly
        interpolated between: the poses are tracked at 30 Hz and the joints at 100 Hz,
        and the kinematics, not the physics, is the Python-bound part."""
        from mujoco import rollout as mj_rollout

        m0 = self.model
        masses, mus = np.atleast_1d(masses).astype(float), np.atleast_1d(mus).astype(float)
        if not self._pool:
            self._pool = [(copy.copy(m0), None) for _ in range(min(chunk, len(masses)))]
            self._pool = [(m, mujoco.MjData(m)) for m, _ in self._pool]
            self._threads = [mujoco.MjData(m0) for _ in range(max(1, nthread))]
        d0 = self._threads[0]
        self._start(m0, d0)
        q_init = d0.qpos.copy()
        spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        state0 = np.empty(mujoco.mj_stateSize(m0, spec))
        mujoco.mj_getState(m0, d0, state0, spec)
        nstep = len(self.arm_q)
        ctrl = np.zeros((nstep, m0.nu))
        ctrl[:, self.arm_act] = self.arm_ctrl
        ctrl[:, self.hand_act] = self.hand_ctrl
        q0 = mujoco.mj_stateSize(m0, mujoco.mjtState.mjSTATE_TIME)         # qpos follows time
        every = max(1, int(round(self.prep.scenario.dt / m0.opt.timestep)))
        rec = np.arange(0, nstep, every)
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(masses), len(self._pool)):
            batch = self._pool[: len(masses[start:start + len(self._pool)])]
            for (m, d), mass, mu in zip(batch, masses[start:], mus[start:]):
                self._set_params(m, d, mass, mu)
            # An explicit zero warm start, as a fresh MjData has: the reused thread data
            # would otherwise carry the last replay's, and the contacts diverge from it.
            states, _ = mj_rollout.rollout([m for m, _ in batch], self._threads, state0[None], ctrl[None],
                                           control_spec=mujoco.mjtState.mjSTATE_CTRL,
                                           initial_warmstart=np.zeros((1, m0.nv)))
            # Sample k of `rollout` is the state at t0 + k dt, i.e. before step k (after
            # mj_step, MjData's kinematics are still those of the step's start).
            qpos = np.concatenate([np.repeat(q_init[None, None], len(batch), axis=0),
                                   states[:, :-1, q0:q0 + m0.nq]], axis=1)
            stride = max(1, int(round(kinematics_every_s / (m0.opt.timestep * every))))
            parts.append(self._kinematics(qpos[:, rec], stride))
        return self._outputs({key: np.concatenate([p[key] for p in parts]) for key in parts[0]})

    def _kinematics(self, qpos: np.ndarray, stride: int = 1,
                    data: mujoco.MjData | None = None) -> dict[str, np.ndarray]:
        """What a replay reports, for (b, T', nq) positions: the object's COM xy and yaw (as the
        planar push does), its frame's origin xy and orientation (what the tracker reports: for
        an object that tips, the COM offset turned by the yaw alone missed a fallen ketchup
        bottle's origin by 19 mm, and its yaw is ill-defined) and the fingertip's xy. Forward
        kinematics every `stride` samples (and the last), linear in between (written into
        arrays directly: this loop is the profile's Python-bound part); `data` is scratch."""
        m, oid, tip_geom = self.model, self.oid, self.tip_geom
        d = data if data is not None else self._threads[0]
        b, n = qpos.shape[:2]
        idx = np.unique(np.append(np.arange(0, n, stride), n - 1))
        shape = (b, len(idx))
        com, origin, tip = np.empty(shape + (2,)), np.empty(shape + (2,)), np.empty(shape + (2,))
        quat = np.empty(shape + (4,))
        for i in range(b):
            for j, k in enumerate(idx):
                d.qpos[:] = qpos[i, k]
                mujoco.mj_kinematics(m, d)
                com[i, j] = d.xipos[oid, :2]
                origin[i, j] = d.xpos[oid, :2]
                quat[i, j] = d.xquat[oid]
                tip[i, j] = d.geom_xpos[tip_geom, :2]
        w, x, y, z = np.moveaxis(quat, -1, 0)
        out = {"com": com, "yaw": np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)), "tip": tip,
               "origin": origin, "quat": quat}
        if len(idx) == n:
            return out
        out["yaw"] = np.unwrap(out["yaw"], axis=1)
        out["quat"] = _continuous(out["quat"])        # q and -q are one rotation: no sign flips to lerp across
        grid = np.arange(n)
        lerp = lambda a: np.stack([np.interp(grid, idx, row) for row in a])  # noqa: E731
        return {key: lerp(a) if a.ndim == 2 else np.stack([lerp(a[..., c]) for c in range(a.shape[-1])], -1)
                for key, a in out.items()}


def _continuous(quat: np.ndarray) -> np.ndarray:
    """(B, T, 4) quaternions with signs chosen so that neighbours in time agree (dot >= 0)."""
    flips = np.where((quat[:, 1:] * quat[:, :-1]).sum(-1) < 0, -1.0, 1.0)
    signs = np.concatenate([np.ones((quat.shape[0], 1)), np.cumprod(flips, axis=1)], axis=1)
    return quat * signs[..., None]


def _latencies_around(latency: float) -> np.ndarray:
    """The latencies a twin replay's cost is minimised over: the fitted one and +- 10 ms."""
    return np.clip(latency + np.array([-0.01, 0.0, 0.01]), 0.0, 0.15)


def profile_on_twin(obj, replay: TwinReplay, log_mu_m: float, latency: float, lm: np.ndarray,
                    friction_range: tuple[float, float], *, n_friction: int = 9,
                    seed_log_mu: np.ndarray | None = None, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Profile cost over the log-mass grid `lm` on the MuJoCo twin.

    For each mass the friction is searched on `n_friction` log-spaced values across
    `friction_range`, plus the point on the reduced model's valley mu m = exp(log_mu_m)
    (not only along that valley: where the reduced model is far off, as on a tall bottle
    that rocks, its valley misses the twin's); then on grids of +- 1/2, 1/4 and +- 1/4,
    1/8 of a step around the best (the cost is sharp across the valley, so a coarse grid
    alone makes the profile jagged). With `seed_log_mu` (per mass, e.g. read off a coarser
    profile's valley) the first pass is only the seed +- 1/4, 1/2 of a step and the valley
    point, and SEEDED_PASSES passes go one halving further each. Latency within +- 10 ms of the
    fitted one. All replays of a pass run as one batch (TwinReplay.rollout_batch).
    Returns (profile cost, best log-friction per mass)."""
    lats = _latencies_around(latency)
    lm = np.asarray(lm, float)
    span = np.linspace(np.log(friction_range[0]), np.log(friction_range[1]), n_friction)
    step = span[1] - span[0]
    valley = (log_mu_m - lm)[:, None]
    if seed_log_mu is None:
        first = np.concatenate([np.broadcast_to(span, (len(lm), n_friction)), valley], axis=1)
    else:
        around = np.array([-0.5, -0.25, 0.0, 0.25, 0.5]) * step
        first = np.concatenate([np.asarray(seed_log_mu, float)[:, None] + around[None, :], valley], axis=1)
    refine = np.array([-1.0, -0.5, 0.5, 1.0]) * step / (2 if seed_log_mu is None else 4)
    best_u = np.empty(len(lm))
    best_c = np.full(len(lm), np.inf)
    passes = PROFILE_PASSES if seed_log_mu is None else SEEDED_PASSES
    # Each halving pass lands about half its points on frictions a pass before it replayed
    # (the old +-1/4 step is the new +-1/2; a best point that moved lands its neighbours on old
    # points). A replay is deterministic, so those costs are looked up, not replayed again:
    # about a fifth of an identification's replays. Only exactly equal frictions: the push is
    # so chaotic that frictions one rounding error apart (1e-16 in log) replayed to costs
    # 5-70 % apart (a Letter U, sweep_release).
    tried: list[dict[float, float]] = [{} for _ in lm]
    for k in range(passes):
        U = first if k == 0 else best_u[:, None] + refine[None, :] / 2 ** (k - 1)
        mu = np.exp(U)                   # keyed by the friction replayed: log-frictions 1 ulp apart can be one
        costs = np.array([[tried[i].get(float(u), np.nan) for u in row] for i, row in enumerate(mu)])
        todo: dict[tuple[int, float], list[int]] = {}        # (mass, friction) -> its places in U
        for i, jj in zip(*np.nonzero(np.isnan(costs))):
            todo.setdefault((int(i), float(mu[i, jj])), []).append(int(jj))
        if todo:
            rows = [i for i, _ in todo]
            new = _batch_costs(obj, replay, lm[rows], U[rows, [places[0] for places in todo.values()]], lats)
            for ((i, u), places), c in zip(todo.items(), new):
                tried[i][u] = float(c)
                costs[i, places] = c
        j = np.argmin(costs, axis=1)
        better = costs[np.arange(len(lm)), j] < best_c
        best_c = np.where(better, costs[np.arange(len(lm)), j], best_c)
        best_u = np.where(better, U[np.arange(len(lm)), j], best_u)
        if progress is not None:
            progress(k + 1, passes)
    return best_c, best_u


def _batch_costs(obj, replay: TwinReplay, log_m: np.ndarray, log_mu: np.ndarray, latencies) -> np.ndarray:
    """Robust cost per (log m, log mu) row, minimised over the latencies."""
    sim = replay.rollout_batch(np.exp(log_m), np.exp(log_mu), kinematics_every_s=KINEMATICS_EVERY_S)
    costs = [(obj.stacked(obj.residuals(sim, torch.full((len(log_m),), float(lat), dtype=torch.float64))) ** 2)
             .sum(dim=1).numpy() for lat in latencies]
    return np.min(costs, axis=0)


def start_jitter(obj, replay: TwinReplay, log_m: float, log_mu: float, latency: float, cost_min: float,
                 shift_m: float = START_JITTER_M) -> float:
    """The interval's allowance for the push's chaos: how much more the estimate costs, at the
    median, replayed with the object's start `shift_m` off the tracked one in four directions
    (+-x, +-y) than the profile's minimum, plus twice the spread (sample standard deviation)
    of those four costs.

    The tracked start is uncertain by a fraction of a millimetre, and a push in the twin
    is chaotic (bench/replay_sensitivity.py: 1 um moves a slow sweep's object path by half
    a millimetre): each profile value is one draw of that jitter. The lowest of many draws
    is a lucky one (the median term), and the value at the true mass is itself a draw that
    may fall high (the spread term): a Letter U under sweep_release, true 0.7 kg, came out
    at 0.41 kg with its four shifted costs 4.8 above the minimum at the median but 197-398
    apart, and the median alone gave it an interval (0.35-0.46 kg) that missed the truth."""
    lats = _latencies_around(latency)
    costs = []
    for dx, dy in ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0)):
        with replay.object_shifted(dx * shift_m, dy * shift_m):
            costs.append(float(_batch_costs(obj, replay, np.array([log_m]), np.array([log_mu]), lats)[0]))
    return max(0.0, float(np.median(costs)) - cost_min) + 2.0 * float(np.std(costs, ddof=1))
