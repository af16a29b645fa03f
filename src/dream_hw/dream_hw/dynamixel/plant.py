"""What the emulated servos drive: the plant interface and a first-order plant.

The emulator turns register writes into a `ServoDrive` per servo and reads
`JointReading`s back into the Present * registers, so a plant never sees
ticks or protocol details. Angles are the servo's own output-shaft angle in
radians (ticks * 2 pi / 4096), not any hand's joint convention.
"""
from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Sequence


@dataclass(frozen=True)
class ServoDrive:
    """What one servo asks of its joint right now."""

    torque_on: bool = False
    mode: int = 3                  # operating mode register
    goal_position: float = 0.0     # rad, servo angle
    current_limit: float = 2.352   # A, max |current| the servo lets flow
    goal_current: float = 0.0      # A, signed (current mode 0 only)


@dataclass(frozen=True)
class JointReading:
    position: float   # rad, servo angle
    velocity: float   # rad/s
    current: float    # A, signed


class Plant(ABC):
    """Physics behind the servos; `update` is called from the emulator thread."""

    @property
    @abstractmethod
    def size(self) -> int:
        """Number of joints (servo index i drives joint i)."""

    @abstractmethod
    def update(self, t: float, drives: Sequence[ServoDrive]) -> list[JointReading]:
        """Advances the plant to time t (s, monotonic) under `drives`; returns readings."""


class FirstOrderPlant(Plant):
    """Each joint approaches its goal with time constant `tau` (fast unit tests).

    Current is a proportional 'effort' clipped at the servo's current limit;
    `block(i, angle)` makes a joint stall at an obstacle so the current
    saturates, as a finger pressing on an object does.
    """

    def __init__(self, n: int, initial: float = math.pi, tau: float = 0.02, amps_per_rad: float = 3.0):
        self._n = n
        self.tau = tau
        self.amps_per_rad = amps_per_rad
        self._pos = [initial] * n
        self._vel = [0.0] * n
        self._cur = [0.0] * n
        self._blocks: dict[int, float] = {}
        self._t: float | None = None
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        return self._n

    def block(self, i: int, angle: float | None) -> None:
        """Joint i cannot pass `angle` (None removes the obstacle)."""
        with self._lock:
            if angle is None:
                self._blocks.pop(i, None)
            else:
                self._blocks[i] = angle

    def positions(self) -> list[float]:
        with self._lock:
            return list(self._pos)

    def update(self, t: float, drives: Sequence[ServoDrive]) -> list[JointReading]:
        with self._lock:
            dt = 0.0 if self._t is None else max(0.0, t - self._t)
            self._t = t
            alpha = 1.0 - math.exp(-dt / self.tau) if dt > 0 else 0.0
            out = []
            for i, d in enumerate(drives[: self._n]):
                old = self._pos[i]
                if not d.torque_on:
                    cur = 0.0
                elif d.mode == 0:
                    cur = max(-d.current_limit, min(d.current_limit, d.goal_current))
                else:
                    err = d.goal_position - old
                    cur = max(-d.current_limit, min(d.current_limit, self.amps_per_rad * err))
                    new = old + alpha * err
                    if i in self._blocks:
                        stop = self._blocks[i]
                        if (old <= stop < new) or (new < stop <= old):
                            new = stop
                            cur = math.copysign(d.current_limit, err)
                    self._pos[i] = new
                self._vel[i] = (self._pos[i] - old) / dt if dt > 0 else 0.0
                self._cur[i] = cur
                out.append(JointReading(self._pos[i], self._vel[i], cur))
            return out
