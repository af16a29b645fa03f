"""The LEAP driver's safety rules, as small pure pieces that tests can pin down.

* CurrentLimiter: torque limit (N m) -> Goal Current (mA), never above the
  per-joint hard cap, whatever the command says.
* PositionClamp: targets stay inside the model's joint range.
* CommandWatchdog: commands older than the timeout are stale; the driver then
  holds the last measured position instead of chasing an old target.
"""
from __future__ import annotations

import numpy as np

from dream_hw.leap.conventions import torque_to_current_ma


class CurrentLimiter:
    """Per-joint Goal Current with a hard cap no command can exceed."""

    def __init__(self, caps_ma, torque_constant: float, default_ma: float):
        self.caps = np.asarray(caps_ma, dtype=float)
        self.kt = torque_constant
        self.current_ma = np.minimum(np.full(self.caps.shape, float(default_ma)), self.caps)

    def tighten(self, hw_limits_ma) -> None:
        """Lowers the caps to what the servos themselves accept (Current Limit, 38)."""
        self.caps = np.minimum(self.caps, np.asarray(hw_limits_ma, dtype=float))
        self.current_ma = np.minimum(self.current_ma, self.caps)

    def set_torque_limits(self, tau_nm) -> np.ndarray:
        """Applies new limits (NaN = keep that joint's); returns the capped mA."""
        tau = np.abs(np.asarray(tau_nm, dtype=float))   # a limit has no sign
        want = torque_to_current_ma(tau, self.kt)
        keep = ~np.isfinite(want)
        want = np.where(keep, self.current_ma, want)
        self.current_ma = np.clip(want, 0.0, self.caps)
        return self.current_ma

    def goal_current_units(self) -> np.ndarray:
        """Integer Goal Current register values (1 unit ~ 1 mA), rounded down."""
        return np.floor(self.current_ma).astype(np.int64)


class PositionClamp:
    """Joint-range clamp in Allegro-style radians."""

    def __init__(self, lower, upper):
        self.lower = np.asarray(lower, dtype=float)
        self.upper = np.asarray(upper, dtype=float)

    def __call__(self, q) -> np.ndarray:
        return np.clip(np.asarray(q, dtype=float), self.lower, self.upper)


class CommandWatchdog:
    """Tracks command freshness against `timeout_s` (monotonic seconds)."""

    def __init__(self, timeout_s: float):
        self.timeout_s = timeout_s
        self.last: float | None = None

    def feed(self, now: float) -> None:
        self.last = now

    def stale(self, now: float) -> bool:
        """True before the first command and once commands stop for timeout_s."""
        return self.last is None or now - self.last > self.timeout_s
