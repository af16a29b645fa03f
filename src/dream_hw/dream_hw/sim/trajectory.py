"""Joint trajectory following as joint_trajectory_controller does it: positions
interpolated in time_from_start from the moment the trajectory arrives, and a
new trajectory replaces the one being executed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class JointTrajectory:
    """Times (s from start, strictly increasing) and positions (N x joints)."""

    times: np.ndarray
    positions: np.ndarray

    def __post_init__(self) -> None:
        if len(self.times) == 0 or len(self.times) != len(self.positions):
            raise ValueError("a trajectory needs as many positions as times, and at least one point")
        if np.any(np.diff(self.times) <= 0) or self.times[0] < 0:
            raise ValueError("time_from_start must be non-negative and strictly increasing")


def interpolate_from(start: np.ndarray, times: np.ndarray, positions: np.ndarray, t) -> np.ndarray:
    """Positions at t (scalar or array, s since the trajectory arrived), as the controller
    interpolates: linearly from `start` to the first point (unless it is at t=0), then
    point to point, holding the last."""
    times = np.asarray(times, float)
    positions = np.asarray(positions, float)
    if times[0] > 0:
        times = np.concatenate([[0.0], times])
        positions = np.vstack([np.asarray(start, float)[None, :], positions])
    t = np.asarray(t, float)
    return np.stack([np.interp(t, times, positions[:, j]) for j in range(positions.shape[1])], axis=-1)


class TrajectoryFollower:
    """Holds the current joint target; starts each new trajectory from where the arm is."""

    def __init__(self, initial: np.ndarray):
        self._hold = np.asarray(initial, float).copy()
        self._traj: JointTrajectory | None = None
        self._start_time = 0.0
        self._start_pos = self._hold

    def replace(self, traj: JointTrajectory, now: float, current: np.ndarray) -> None:
        self._traj = traj
        self._start_time = now
        self._start_pos = np.asarray(current, float).copy()

    def hold(self, position: np.ndarray) -> None:
        self._traj = None
        self._hold = np.asarray(position, float).copy()

    @property
    def active(self) -> bool:
        return self._traj is not None

    def target(self, now: float) -> np.ndarray:
        if self._traj is None:
            return self._hold
        t = now - self._start_time
        if t >= self._traj.times[-1]:
            self._hold = np.asarray(self._traj.positions[-1], float).copy()
            self._traj = None
            return self._hold
        return interpolate_from(self._start_pos, self._traj.times, self._traj.positions, t)
