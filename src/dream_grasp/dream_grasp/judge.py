"""Did the grasp work? Judged from the tracked object poses alone (what the cell can see):
the object rose >= 10 cm above its height at the pre-grasp and stayed there for 3 s."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_RISE_M = 0.10
HOLD_S = 3.0
MAX_GAP_S = 0.5


@dataclass(frozen=True)
class Verdict:
    success: bool
    rise_m: float           # latest height above the pre-grasp height
    max_rise_m: float
    held_s: float           # longest continuous time at >= min_rise
    samples: int

    def summary(self) -> dict:
        return {"success": self.success, "rise_m": round(self.rise_m, 4), "max_rise_m": round(self.max_rise_m, 4),
                "held_s": round(self.held_s, 3), "poses": self.samples}


class LiftJudge:
    """Success = the object >= min_rise above `baseline_z`, continuously for hold_s.

    Continuity is over the tracked samples (stamp, z): a sample below the threshold
    restarts the count, and so does a gap longer than max_gap_s (the object is not
    vouched for while the tracker is silent); a sample not newer than the last is ignored."""

    def __init__(self, baseline_z: float, min_rise_m: float = MIN_RISE_M, hold_s: float = HOLD_S,
                 max_gap_s: float = MAX_GAP_S):
        if min_rise_m <= 0 or hold_s < 0 or max_gap_s <= 0:
            raise ValueError("the judge needs min_rise_m > 0, hold_s >= 0 and max_gap_s > 0")
        self.baseline_z, self.min_rise, self.hold_s, self.max_gap = float(baseline_z), min_rise_m, hold_s, max_gap_s
        self._since: float | None = None
        self._last_t: float | None = None
        self.rise = 0.0
        self.max_rise = -np.inf
        self.held = 0.0
        self.reached = False     # ever at >= min_rise
        self.samples = 0

    def feed(self, t: float, z: float) -> None:
        if self._last_t is not None and t <= self._last_t:
            return
        gap = self._last_t is not None and t - self._last_t > self.max_gap
        self._last_t = t
        self.samples += 1
        self.rise = float(z) - self.baseline_z
        self.max_rise = max(self.max_rise, self.rise)
        if self.rise < self.min_rise:
            self._since = None
            return
        if self._since is None or gap:
            self._since = t
        self.reached = True
        self.held = max(self.held, t - self._since)

    @property
    def success(self) -> bool:
        return self.reached and self.held >= self.hold_s

    def verdict(self) -> Verdict:
        return Verdict(self.success, self.rise, float(self.max_rise) if self.samples else 0.0, self.held,
                       self.samples)
