"""A tracker's imperfections, applied to true poses: Gaussian position noise,
rotation noise about a random axis, and dropped frames. Used to stand in for a
real tracker in simulation, with the noise the benchmarks assume."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrackingNoise:
    position_sigma_m: float = 0.002
    rotation_sigma_rad: float = np.radians(1.0)
    drop_rate: float = 0.05

    def __post_init__(self) -> None:
        if self.position_sigma_m < 0 or self.rotation_sigma_rad < 0:
            raise ValueError("noise sigmas must be non-negative")
        if not 0.0 <= self.drop_rate < 1.0:
            raise ValueError("drop_rate must be in [0, 1)")


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of [w, x, y, z] quaternions."""
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
                     w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
                     w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


class NoisyTracker:
    """Turns true poses into tracker-like measurements (None = frame dropped)."""

    def __init__(self, noise: TrackingNoise, seed: int = 0):
        self.noise = noise
        self.rng = np.random.default_rng(seed)

    def measure(self, pos: np.ndarray, quat: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        if self.rng.random() < self.noise.drop_rate:
            return None
        pos = np.asarray(pos, float) + self.rng.normal(0.0, self.noise.position_sigma_m, 3)
        rotvec = self.rng.normal(0.0, self.noise.rotation_sigma_rad, 3)
        angle = float(np.linalg.norm(rotvec))
        if angle > 0:
            axis = rotvec / angle
            delta = np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis])
            quat = quat_mul(delta, np.asarray(quat, float))
        quat = np.asarray(quat, float) / np.linalg.norm(quat)
        return pos, quat
