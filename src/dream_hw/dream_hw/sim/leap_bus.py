"""The simulated cell's LEAP hand behind a real serial protocol: a Dynamixel
protocol-2.0 emulator on a pseudo-terminal whose servos drive the twin's LEAP
joints, so the LEAP driver node runs unchanged against the simulation."""
from __future__ import annotations

import os
import threading
from pathlib import Path

from dream_hw.dynamixel.emulator import DynamixelEmulator
from dream_hw.dynamixel.mujoco_plant import MujocoLeapPlant
from dream_hw.errors import UserError
from dream_hw.sim.cell_sim import SimCell


class SimLeapBus:
    """Starts the emulator on the cell's LEAP joints; `link` (optional) points at the pty."""

    def __init__(self, sim: SimCell, lock: threading.Lock, link: str = ""):
        hand = sim.cell.grasp_hand
        if sim.hand is not hand:
            raise UserError("the twin has no LEAP hand: build a grasp twin (dream twin build --kind grasp)")
        names = [hand.prefix + hand.joint_map[k] for k in sorted(hand.joint_map, key=int)]
        kt = float((hand.extra.get("servo") or {}).get("torque_constant_nm_per_a", 0.52))
        baud = int((hand.extra.get("servo") or {}).get("baudrate", 4_000_000))
        sim.hand_external = True  # the servos, not SimCell, set the LEAP actuators
        self.plant = MujocoLeapPlant.on_model(sim.model, sim.data, names, kt, lock)
        self.emulator = DynamixelEmulator(ids=[int(k) for k in sorted(hand.joint_map, key=int)],
                                          plant=self.plant, baudrate=baud)
        self.port = self.emulator.start()
        self.link = Path(link) if link else None
        if self.link is not None:
            if self.link.is_symlink() or self.link.exists():
                self.link.unlink()
            os.symlink(self.port, self.link)

    def close(self) -> None:
        self.emulator.stop()
        if self.link is not None and self.link.is_symlink():
            self.link.unlink()
