"""The simulated cell (ROS-free): a twin MJCF stepped in MuJoCo, with the arm
following joint trajectories and the Allegro hand following joint commands the
way their real drivers do, read back as the drivers would report it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from dream_hw.cell import Cell
from dream_hw.errors import UserError
from dream_hw.mjcf import joint_actuator
from dream_hw.sim.trajectory import JointTrajectory, TrajectoryFollower

OBJECT_BODY = "object"


@dataclass(frozen=True)
class JointGroupState:
    names: tuple[str, ...]
    position: np.ndarray
    velocity: np.ndarray
    effort: np.ndarray


class SimCell:
    """One twin in MuJoCo, exposed through driver-shaped state and commands."""

    def __init__(self, scene: str | Path, cell: Cell):
        scene = Path(scene)
        if not scene.is_file():
            raise UserError(f"twin scene {scene} does not exist (build one with `dream twin build`)")
        try:
            self.model = mujoco.MjModel.from_xml_path(str(scene))
        except ValueError as exc:
            raise UserError(f"twin scene {scene} does not load: {exc}".splitlines()[0]) from None
        self.data = mujoco.MjData(self.model)
        self.cell = cell
        self.arm_joints = cell.arm.mjcf_joints
        self.arm_names = cell.arm.driver_joint_names
        self._arm_qadr = self._qadr(self.arm_joints)
        self._arm_dadr = self._dadr(self.arm_joints)
        self._arm_act = self._actuators(self.arm_joints)
        self.hand = self._find_hand()
        self.hand_names: tuple[str, ...] = ()
        if self.hand is not None:
            mjcf = [self.hand.prefix + j for j in self.hand.joint_map.values()]
            self.hand_names = tuple(self.hand.joint_map)
            self._hand_qadr = self._qadr(mjcf)
            self._hand_dadr = self._dadr(mjcf)
            self._hand_act = self._actuators(mjcf)
        self.has_object = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, OBJECT_BODY) >= 0
        self.hand_external = False  # True when something else (the LEAP servo bus) drives the hand
        self.reset()

    # -- model lookups -------------------------------------------------------
    def _find_hand(self):
        for hand in (self.cell.push_hand, self.cell.grasp_hand):
            first = hand.prefix + next(iter(hand.joint_map.values()))
            if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, first) >= 0:
                return hand
        return None

    def _joint_id(self, name: str) -> int:
        jid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            raise UserError(f"twin scene has no joint {name!r} (is it a dream twin of this cell?)")
        return jid

    def _qadr(self, joints) -> np.ndarray:
        return np.array([self.model.jnt_qposadr[self._joint_id(j)] for j in joints])

    def _dadr(self, joints) -> np.ndarray:
        return np.array([self.model.jnt_dofadr[self._joint_id(j)] for j in joints])

    def _actuators(self, joints) -> np.ndarray:
        out = []
        for j in joints:
            act = joint_actuator(self.model, self._joint_id(j))
            if act is None:
                raise UserError(f"twin scene has no actuator on joint {j!r}")
            out.append(act)
        return np.array(out)

    # -- state ---------------------------------------------------------------
    def reset(self) -> None:
        key = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_KEY, "home")
        if key >= 0:
            mujoco.mj_resetDataKeyframe(self.model, self.data, key)
        else:
            mujoco.mj_resetData(self.model, self.data)
        mujoco.mj_forward(self.model, self.data)
        self.arm = TrajectoryFollower(self.data.qpos[self._arm_qadr])
        if self.hand is not None:
            self.hand_target = self.data.ctrl[self._hand_act].copy()

    @property
    def time(self) -> float:
        return float(self.data.time)

    def arm_state(self) -> JointGroupState:
        d = self.data
        # Franka reports measured joint torque: here the actuator torque at the joint.
        return JointGroupState(self.arm_names, d.qpos[self._arm_qadr].copy(), d.qvel[self._arm_dadr].copy(),
                               d.actuator_force[self._arm_act].copy())

    def hand_state(self) -> JointGroupState:
        d = self.data
        # The Allegro driver reports its commanded torque: the PD actuator's output.
        return JointGroupState(self.hand_names, d.qpos[self._hand_qadr].copy(), d.qvel[self._hand_dadr].copy(),
                               d.actuator_force[self._hand_act].copy())

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """Object origin position and quaternion [w, x, y, z] in world."""
        oid = self.model.body(OBJECT_BODY).id
        return self.data.xpos[oid].copy(), self.data.xquat[oid].copy()

    # -- commands ------------------------------------------------------------
    def command_arm(self, names: list[str], times: np.ndarray, positions: np.ndarray) -> None:
        """A JointTrajectory by driver names (any joint_map name); replaces the current one."""
        order = self._arm_order(names)
        traj = JointTrajectory(np.asarray(times, float), np.asarray(positions, float)[:, order])
        self.arm.replace(traj, self.time, self.data.qpos[self._arm_qadr])

    def _arm_order(self, names: list[str]) -> np.ndarray:
        mapped = [self.cell.arm.joint_map.get(n, n) for n in names]
        missing = [j for j in self.arm_joints if j not in mapped]
        if missing:
            raise ValueError(f"trajectory must name all arm joints; missing {missing}")
        return np.array([mapped.index(j) for j in self.arm_joints])

    def command_hand(self, positions: np.ndarray) -> None:
        """16 joint targets in the driver's order (the Allegro driver ignores names)."""
        if self.hand is None:
            raise ValueError("this twin has no hand")
        positions = np.asarray(positions, float)
        if positions.shape != (len(self.hand_names),):
            raise ValueError(f"expected {len(self.hand_names)} hand positions, got {positions.shape}")
        lo = self.model.actuator_ctrlrange[self._hand_act, 0]
        hi = self.model.actuator_ctrlrange[self._hand_act, 1]
        self.hand_target = np.clip(positions, lo, hi)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            self.data.ctrl[self._arm_act] = self.arm.target(self.time)
            if self.hand is not None and not self.hand_external:
                self.data.ctrl[self._hand_act] = self.hand_target
            mujoco.mj_step(self.model, self.data)
