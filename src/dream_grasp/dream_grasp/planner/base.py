"""What every grasp motion planner takes and returns (the CPU and cuRobo backends).

A planner gets the arm's current joints, the tracked object pose, one candidate
palm pose and the hand's open (pre-shape) configuration, and returns three
joint-space paths: approach (to the pre-grasp, backed off along the palm normal),
insert (straight in to the grasp pose) and lift (straight up). Timing is not the
planner's business: planner.trajectory.time_path turns each path into trajectory
points under the cell's velocity limits, whatever backend produced it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


class PlanningFailed(Exception):
    """A candidate the planner cannot reach without collision; the message says why."""


@dataclass(frozen=True)
class GraspRequest:
    arm_q: np.ndarray            # (7,) current arm joints, the cell's MJCF order
    object_pose: np.ndarray      # (4, 4) object in world (tracked)
    palm_grasp: np.ndarray       # (4, 4) LEAP palm body in world at the grasp
    hand_open: np.ndarray        # (16,) pre-shape carried in, Dynamixel id order (Allegro-style rad)


@dataclass(frozen=True)
class GraspMotion:
    """Arm joint waypoints (each (N, 7), excluding the point the segment starts from)."""

    approach: np.ndarray         # current joints -> pre-grasp
    insert: np.ndarray           # pre-grasp -> grasp, palm on a straight line
    lift: np.ndarray             # grasp -> lifted, palm straight up
    palm_pre: np.ndarray         # (4, 4) palm at the pre-grasp
    palm_lift: np.ndarray        # (4, 4) palm at the end of the lift

    @property
    def q_pre(self) -> np.ndarray:
        return self.approach[-1]

    @property
    def q_grasp(self) -> np.ndarray:
        return self.insert[-1]


@runtime_checkable
class Planner(Protocol):
    """Plans the arm motion of one grasp candidate, or raises PlanningFailed naming why not."""

    name: str

    def plan(self, request: GraspRequest) -> GraspMotion: ...


def pre_grasp_pose(palm_grasp: np.ndarray, backoff_m: float) -> np.ndarray:
    """The palm backed off along its normal: the palm grasps with its -z side, so +z is away."""
    pre = np.array(palm_grasp, float)
    pre[:3, 3] = pre[:3, 3] + backoff_m * pre[:3, 2]
    return pre


def lifted_pose(palm_grasp: np.ndarray, lift_m: float) -> np.ndarray:
    """The palm raised straight up (world z) by lift_m, orientation kept."""
    out = np.array(palm_grasp, float)
    out[2, 3] += lift_m
    return out
