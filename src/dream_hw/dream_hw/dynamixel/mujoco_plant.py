"""The LEAP hand's physics behind the emulated servos (Menagerie MJCF).

Servo i drives one MJCF joint through that joint's position actuator:
ctrl = goal angle - pi (LEAP -> Allegro-style, the model's zero), and the
actuator force is clamped to +-(current limit * torque constant), which is
what current-based position mode does on the XC330. Present current is read
back as actuator force / torque constant. Standalone, physics advances per
request, in simulated time that follows the wall clock (no thread spinning a
core); a long idle gap is not replayed beyond `max_catchup_s`. Attached to the
simulated cell (`on_model`), the cell steps the physics and the plant only
applies the servos' drives and reads the joints, under the cell's lock.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

import mujoco
import numpy as np

from dream_hw.dynamixel.plant import JointReading, Plant, ServoDrive
from dream_hw.leap.conventions import LEAP_OFFSET
from dream_hw.mjcf import joint_actuator


class MujocoLeapPlant(Plant):
    """MuJoCo LEAP hand whose joints follow the servos' goals."""

    def __init__(self, xml: str | Path, joint_names: Sequence[str], torque_constant: float = 0.52,
                 max_catchup_s: float = 0.05):
        model = mujoco.MjModel.from_xml_path(str(xml))
        self._setup(model, mujoco.MjData(model), joint_names, torque_constant, max_catchup_s,
                    threading.Lock(), steps_physics=True, source=str(xml))

    @classmethod
    def on_model(cls, model: mujoco.MjModel, data: mujoco.MjData, joint_names: Sequence[str],
                 torque_constant: float, lock: threading.Lock) -> "MujocoLeapPlant":
        """Drives the LEAP joints of a model someone else steps (the simulated cell)."""
        plant = cls.__new__(cls)
        plant._setup(model, data, joint_names, torque_constant, 0.0, lock, steps_physics=False, source="the twin")
        return plant

    def _setup(self, model, data, joint_names, torque_constant, max_catchup_s, lock, *, steps_physics, source):
        self.model, self.data = model, data
        self.steps_physics = steps_physics
        xml = source
        self.kt = torque_constant
        self.max_catchup_s = max_catchup_s
        self.joint_names = list(joint_names)
        m = self.model
        self._qadr, self._dadr, self._act = [], [], []
        for name in self.joint_names:
            jid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)
            if jid < 0:
                raise ValueError(f"joint {name!r} not in {xml}")
            act = joint_actuator(m, jid)
            if act is None:
                raise ValueError(f"joint {name!r} has no actuator in {xml}")
            self._qadr.append(int(m.jnt_qposadr[jid]))
            self._dadr.append(int(m.jnt_dofadr[jid]))
            self._act.append(act)
        m.actuator_forcelimited[self._act] = 1
        m.actuator_forcerange[self._act] = 0.0      # torque off until a servo says otherwise
        mujoco.mj_forward(m, self.data)
        self._t: float | None = None
        self._lock = lock

    @classmethod
    def from_cell(cls, cell=None) -> "MujocoLeapPlant":
        """The cell's LEAP hand: servo index = Dynamixel id order of grasp_hand.joint_map."""
        from dream_hw.cell import load_cell
        from dream_hw.models import menagerie_xml

        cell = cell or load_cell()
        hand = cell.grasp_hand
        names = [hand.joint_map[k] for k in sorted(hand.joint_map, key=int)]
        kt = float((hand.extra.get("servo") or {}).get("torque_constant_nm_per_a", 0.52))
        return cls(menagerie_xml(hand.menagerie.robot, hand.menagerie.file), names, kt)

    @property
    def size(self) -> int:
        return len(self.joint_names)

    def joint_positions(self) -> np.ndarray:
        """MJCF (Allegro-style) joint angles in servo order, thread-safe."""
        with self._lock:
            return self.data.qpos[self._qadr].copy()

    def update(self, t: float, drives: Sequence[ServoDrive]) -> list[JointReading]:
        m, d = self.model, self.data
        with self._lock:
            for i, drv in enumerate(drives[: self.size]):
                a, dof = self._act[i], self._dadr[i]
                d.qfrc_applied[dof] = 0.0
                if not drv.torque_on:
                    m.actuator_forcerange[a] = 0.0
                elif drv.mode == 0:          # current control: a pure torque
                    m.actuator_forcerange[a] = 0.0
                    tau = np.clip(drv.goal_current, -drv.current_limit, drv.current_limit) * self.kt
                    d.qfrc_applied[dof] = tau
                else:
                    f = drv.current_limit * self.kt
                    m.actuator_forcerange[a] = (-f, f)
                    d.ctrl[a] = drv.goal_position - LEAP_OFFSET
            if self.steps_physics:
                if self._t is None:
                    self._t = t
                dt = m.opt.timestep
                if t - self._t > self.max_catchup_s:
                    self._t = t - self.max_catchup_s
                while self._t + dt <= t:
                    mujoco.mj_step(m, d)
                    self._t += dt
            out = []
            for i in range(self.size):
                force = float(d.actuator_force[self._act[i]]) + float(d.qfrc_applied[self._dadr[i]])
                out.append(JointReading(float(d.qpos[self._qadr[i]]) + LEAP_OFFSET,
                                        float(d.qvel[self._dadr[i]]), force / self.kt))
            return out
