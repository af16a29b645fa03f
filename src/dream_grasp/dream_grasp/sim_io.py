"""The grasp sequence against the simulated cell in-process, without ROS: a GraspIO over
dream_hw's SimCell (arm following trajectories like joint_trajectory_controller) and
the LEAP servos' MuJoCo plant (current-limited position servos, as the emulated bus
drives them for leap_driver). For tests and for trying policies quickly: ~10x faster
than real time, deterministic, and the same physics the ROS graph runs on.
"""
from __future__ import annotations

import threading

import numpy as np

from dream_grasp.execution import HandCommand
from dream_grasp.planner.trajectory import TimedPath
from dream_hw.cell import Cell
from dream_hw.dynamixel.mujoco_plant import MujocoLeapPlant
from dream_hw.dynamixel.plant import ServoDrive
from dream_hw.leap.conventions import LEAP_OFFSET, torque_to_current_ma
from dream_hw.sim.cell_sim import SimCell

CONTROL_DT = 0.005        # s: the LEAP driver's 200 Hz loop
POSE_DT = 1.0 / 30.0      # s: the tracker's rate


class SimGraspIO:
    """GraspIO on a SimCell of a grasp twin; hand commands go through the servo model."""

    def __init__(self, sim: SimCell, cell: Cell):
        hand = cell.grasp_hand
        ids = sorted(hand.joint_map, key=int)
        servo = dict(hand.extra.get("servo") or {})
        cap = (hand.extra.get("safety") or {}).get("current_cap_ma", 550)
        self.kt = float(servo.get("torque_constant_nm_per_a", 0.52))
        self.cap_ma = np.broadcast_to(np.asarray(cap, float), (len(ids),)).copy()
        self.sim, self.cell = sim, cell
        self.plant = MujocoLeapPlant.on_model(sim.model, sim.data, [hand.prefix + hand.joint_map[k] for k in ids],
                                              self.kt, threading.Lock())
        sim.hand_external = True
        self.lower = sim.model.jnt_range[[sim.model.joint(hand.prefix + hand.joint_map[k]).id for k in ids], 0]
        self.upper = sim.model.jnt_range[[sim.model.joint(hand.prefix + hand.joint_map[k]).id for k in ids], 1]
        self.hand: HandCommand | None = None
        self._heights: list[tuple[float, float]] = []
        self._next_pose = 0.0
        self._steps = max(1, int(round(CONTROL_DT / sim.model.opt.timestep)))

    def now(self) -> float:
        return self.sim.time

    def sleep_until(self, t: float) -> None:
        while self.sim.time < t:
            if self.hand is not None:
                amps = np.minimum(torque_to_current_ma(self.hand.effort_nm, self.kt), self.cap_ma) * 1e-3
                goals = np.clip(self.hand.positions, self.lower, self.upper) + LEAP_OFFSET
                self.plant.update(self.sim.time, [ServoDrive(True, 5, float(g), float(a)) for g, a in zip(goals, amps)])
            self.sim.step(self._steps)
            if self.sim.time >= self._next_pose or self.sim.time + POSE_DT < self._next_pose:  # due, or sim reset
                self._next_pose = self.sim.time + POSE_DT
                self._heights.append((self.sim.time, float(self.sim.object_pose()[0][2])))

    def send_arm(self, path: TimedPath) -> None:
        self.sim.command_arm(list(self.cell.arm.driver_joint_names), path.times, path.positions)

    def send_hand(self, cmd: HandCommand) -> None:
        self.hand = cmd

    def arm_joints(self) -> np.ndarray:
        return self.sim.arm_state().position

    def object_heights(self) -> list[tuple[float, float]]:
        out, self._heights = self._heights, []
        return out
