"""Bus faults the emulator can inject: lost and corrupted packets.

Counted faults (`drop_next`, `corrupt_next`) make tests deterministic;
rates (with a seed) make soak runs reproducible.
"""
from __future__ import annotations

import random
import threading


class FaultInjector:
    """Decides, packet by packet, whether the emulator misbehaves."""

    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self.drop_next = 0        # next N instructions that expect a reply get none
        self.corrupt_next = 0     # next N replies (one transaction each) start with a bad-CRC status
        self.drop_rate = 0.0      # probability an instruction is lost
        self.corrupt_rate = 0.0   # probability a status packet is corrupted
        self.dropped = 0
        self.corrupted = 0

    def drop(self, n: int = 1) -> None:
        with self._lock:
            self.drop_next += n

    def corrupt(self, n: int = 1) -> None:
        with self._lock:
            self.corrupt_next += n

    def take_drop(self, expects_reply: bool) -> bool:
        with self._lock:
            if expects_reply and self.drop_next > 0:
                self.drop_next -= 1
                hit = True
            else:
                hit = self.drop_rate > 0 and self._rng.random() < self.drop_rate
            self.dropped += hit
            return hit

    def take_corrupt(self, first_of_reply: bool) -> bool:
        """Whether this status packet goes out corrupted. Counted corruptions hit
        the first packet of a reply, so each one costs the driver one transaction."""
        with self._lock:
            if first_of_reply and self.corrupt_next > 0:
                self.corrupt_next -= 1
                hit = True
            else:
                hit = self.corrupt_rate > 0 and self._rng.random() < self.corrupt_rate
            self.corrupted += hit
            return hit

    @staticmethod
    def spoil(packet: bytes) -> bytes:
        """The same packet with its CRC broken."""
        return packet[:-1] + bytes([packet[-1] ^ 0xA5])
