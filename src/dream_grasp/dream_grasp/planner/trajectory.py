"""A joint-space path -> the points of one JointTrajectory, by the contract's rules.

Rules (../shared/interfaces.md, and what joint_trajectory_controller accepts): all
7 arm joints, time_from_start strictly increasing from > 0, the last point at zero
velocity, no joint faster than the cell's limit (cell.arm.max_velocity).

The path is timed along its own length measured in "seconds at full speed"
(s = sum of max_j |dq_j| / v_max_j), with the push planner's trapezoidal profile
(dream_sysid.push.planner.Trapezoid: accelerate, cruise, decelerate, rest at both
ends) at a fraction `speed` <= 1 of that full speed, then sampled every `dt`
so a controller interpolating linearly between points follows the profile. Since
|dq_j/ds| <= v_max_j on the path and ds/dt <= speed, no joint exceeds
speed x v_max_j between any two points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dream_hw.errors import UserError
from dream_hw.sim.trajectory import JointTrajectory
from dream_sysid.push.planner import Trapezoid

SAMPLE_DT = 0.02          # s between trajectory points (50 Hz, as the push planner samples)
MIN_DURATION = 0.05       # s: a path of (nearly) zero length still becomes one valid point


@dataclass(frozen=True)
class TimedPath:
    """One JointTrajectory's points: times (N,), positions and velocities (N, joints)."""

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray

    def __post_init__(self) -> None:
        JointTrajectory(self.times, self.positions)      # strictly increasing, non-negative, same length
        if self.times[0] <= 0.0:
            raise ValueError("time_from_start of the first point must be > 0")
        if self.velocities.shape != self.positions.shape or np.any(self.velocities[-1] != 0.0):
            raise ValueError("velocities must match positions and the last point must be at rest")

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    @property
    def end(self) -> np.ndarray:
        return self.positions[-1].copy()

    def points(self) -> list[tuple[list[float], list[float], float]]:
        """(positions, velocities, time_from_start) per point, ready for JointTrajectoryPoint."""
        return [([float(v) for v in q], [float(v) for v in dq], float(t))
                for q, dq, t in zip(self.positions, self.velocities, self.times)]

    def peak_speed_ratio(self, start: np.ndarray, max_velocity: np.ndarray) -> float:
        """Largest |dq/dt| / v_max over the segments a linear-interpolating controller runs from `start`."""
        q = np.vstack([np.asarray(start, float)[None], self.positions])
        t = np.concatenate([[0.0], self.times])
        return float((np.abs(np.diff(q, axis=0)) / np.diff(t)[:, None] / np.asarray(max_velocity)).max())


def time_path(start: np.ndarray, waypoints: np.ndarray, max_velocity: np.ndarray, *, speed: float = 0.5,
              accel: float = 1.0, dt: float = SAMPLE_DT) -> TimedPath:
    """Times the piecewise-linear joint path start -> waypoints (N, joints); starts and ends at rest.

    speed: fraction of max_velocity the fastest joint may reach; accel: how fast that fraction
    is reached (1/s, e.g. 1.0 = full speed after one second)."""
    start = np.asarray(start, float)
    vmax = np.asarray(max_velocity, float)
    nodes = np.vstack([start[None], np.asarray(waypoints, float).reshape(-1, start.size)])
    if not (0.0 < speed <= 1.0) or accel <= 0.0 or dt <= 0.0:
        raise UserError(f"trajectory timing needs 0 < speed <= 1, accel > 0 and dt > 0 "
                        f"(got {speed}, {accel}, {dt})")
    if np.any(vmax <= 0) or vmax.shape != start.shape or not np.all(np.isfinite(nodes)):
        raise UserError("trajectory timing needs finite waypoints and a positive velocity limit per joint")
    step = np.abs(np.diff(nodes, axis=0)) / vmax          # seconds at full speed, per joint
    ds = step.max(axis=1)
    keep = np.concatenate([[True], ds > 1e-9])            # drop repeated waypoints
    nodes, s = nodes[keep], np.concatenate([[0.0], np.cumsum(ds[ds > 1e-9])])
    if s[-1] <= 0.0:                                      # nothing to move: one point, at rest
        return TimedPath(np.array([MIN_DURATION]), nodes[-1:].copy(), np.zeros((1, start.size)))
    profile = Trapezoid.plan(float(s[-1]), speed, accel)
    n = max(1, int(math.ceil(profile.duration / dt)))
    t = np.linspace(0.0, profile.duration, n + 1)
    along = profile.distance(t)
    q = np.stack([np.interp(along, s, nodes[:, j]) for j in range(start.size)], axis=1)
    vel = np.zeros_like(q)
    vel[1:-1] = (q[2:] - q[:-2]) / (t[2:] - t[:-2])[:, None]
    vel = np.clip(vel, -vmax, vmax)
    vel[-1] = 0.0
    return TimedPath(t[1:], q[1:], vel[1:])
