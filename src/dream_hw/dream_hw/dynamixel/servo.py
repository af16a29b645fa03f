"""One emulated XC330-M288-T: its register memory and how it answers.

Enforces what a real servo enforces (read-only fields, EEPROM locked while
torque is on, Goal Current within Current Limit, torque refused after a
shutdown error until reboot), because the driver's correctness depends on
those rules and an over-permissive emulator would hide driver bugs.
"""
from __future__ import annotations

import math

from dream_hw.dynamixel.control_table import (
    BY_ADDRESS,
    FIELDS,
    TABLE_SIZE,
    Field,
    HardwareError,
    XC330,
    fields_in,
)
from dream_hw.dynamixel.plant import JointReading, ServoDrive
from dream_hw.dynamixel.protocol import ALERT_BIT, StatusError, from_le, le

TICK_RAD = 2.0 * math.pi / XC330.TICKS_PER_REV
VEL_UNIT_RAD_S = XC330.VELOCITY_UNIT_RPM * 2.0 * math.pi / 60.0


class EmulatedServo:
    """Register file + protocol semantics of a single servo."""

    def __init__(self, dev_id: int, baud_rate_code: int = 6, return_delay_time: int | None = None):
        self.mem = bytearray(TABLE_SIZE)
        for f in FIELDS.values():
            self._put(f, f.default)
        self._put(FIELDS["id"], dev_id)
        self._put(FIELDS["baud_rate"], baud_rate_code)
        if return_delay_time is not None:
            self._put(XC330.RETURN_DELAY_TIME, return_delay_time)
        self.sticky_errors = 0        # error bits that come back after a reboot (a real stall)
        self.offline_until = 0.0      # booting after a reboot: no answers
        self.reboots = 0
        self._reset_ram()

    # -- raw register access (no protocol rules) --------------------------------
    def _put(self, f: Field, value: int) -> None:
        self.mem[f.address: f.address + f.size] = le(int(value), f.size)

    def get(self, name: str) -> int:
        f = FIELDS[name]
        return from_le(self.mem[f.address: f.address + f.size], f.signed)

    def set(self, name: str, value: int) -> None:
        """Sets a register behind the protocol's back (sensor values, faults)."""
        self._put(FIELDS[name], value)

    @property
    def id(self) -> int:
        return self.get("id")

    @property
    def return_delay_s(self) -> float:
        return self.get("return_delay_time") * XC330.RETURN_DELAY_UNIT_S

    def _reset_ram(self) -> None:
        for f in FIELDS.values():
            if not f.eeprom:
                keep = f.name in ("present_position", "present_temperature", "present_input_voltage")
                if not keep:
                    self._put(f, f.default)
        self._put(XC330.GOAL_CURRENT, self.get("current_limit"))
        self._put(XC330.GOAL_POSITION, self.get("present_position"))

    # -- protocol semantics -------------------------------------------------------
    def error_byte(self, status: StatusError = StatusError.NONE) -> int:
        return int(status) | (ALERT_BIT if self.get("hardware_error_status") else 0)

    def read(self, address: int, length: int) -> tuple[int, bytes]:
        if length < 1 or address + length > TABLE_SIZE:
            return self.error_byte(StatusError.ACCESS), b""
        return self.error_byte(), bytes(self.mem[address: address + length])

    def check_write(self, address: int, data: bytes) -> StatusError:
        """Why this write would be refused (NONE if accepted)."""
        fields = fields_in(address, len(data))
        if not data or address + len(data) > TABLE_SIZE or not fields:
            return StatusError.ACCESS
        torque_on = self.get("torque_enable") == 1
        for f in fields:
            if f.address < address or f.address + f.size > address + len(data):
                return StatusError.DATA_LENGTH      # partial field write
            if not f.writable or (f.eeprom and torque_on):
                return StatusError.ACCESS
            value = from_le(data[f.address - address: f.address - address + f.size], f.signed)
            if f.name == "torque_enable":
                if value not in (0, 1):
                    return StatusError.DATA_RANGE
                if value == 1 and self.get("hardware_error_status") & self.get("shutdown"):
                    return StatusError.RESULT_FAIL  # locked out until reboot
            elif f.name == "operating_mode" and value not in XC330.OPERATING_MODES:
                return StatusError.DATA_RANGE
            elif f.name == "goal_current" and abs(value) > self.get("current_limit"):
                return StatusError.DATA_LIMIT
            elif f.name == "goal_position" and self.get("operating_mode") == XC330.MODE_POSITION:
                if not self.get("min_position_limit") <= value <= self.get("max_position_limit"):
                    return StatusError.DATA_LIMIT
            elif f.name == "id" and not 0 <= value <= 252:
                return StatusError.DATA_RANGE
        return StatusError.NONE

    def write(self, address: int, data: bytes) -> StatusError:
        """Applies the write if a real servo would; returns the status error."""
        why = self.check_write(address, data)
        if why == StatusError.NONE:
            self.mem[address: address + len(data)] = data
        return why

    def fields_written(self, address: int, data: bytes) -> list[tuple[Field, int]]:
        """(field, value) pairs a write covers, for the write log."""
        out = []
        for f in fields_in(address, len(data)):
            lo = f.address - address
            if lo >= 0 and lo + f.size <= len(data):
                out.append((f, from_le(data[lo: lo + f.size], f.signed)))
        if not out:
            out.append((BY_ADDRESS.get(address, Field(f"raw_{address}", address, len(data), "RW")),
                        from_le(data)))
        return out

    # -- faults and reboot ---------------------------------------------------------
    def raise_error(self, bits: int, sticky: bool = False) -> None:
        """Sets Hardware Error Status bits; shutdown bits switch the torque off."""
        self.set("hardware_error_status", self.get("hardware_error_status") | bits)
        if sticky:
            self.sticky_errors |= bits
        if bits & self.get("shutdown"):
            self.set("torque_enable", 0)

    def set_temperature(self, celsius: int) -> None:
        self.set("present_temperature", celsius)
        if celsius >= self.get("temperature_limit"):
            self.raise_error(int(HardwareError.OVERHEATING))

    def reboot(self, now: float, boot_time_s: float) -> None:
        """RAM back to defaults, errors cleared (unless sticky), offline while booting."""
        self.reboots += 1
        self.set("hardware_error_status", 0)
        self._reset_ram()
        self.offline_until = now + boot_time_s
        if self.sticky_errors:
            self.raise_error(self.sticky_errors)

    # -- plant coupling -----------------------------------------------------------
    def drive(self) -> ServoDrive:
        mode = self.get("operating_mode")
        limit = self.get("current_limit")
        goal_cur = self.get("goal_current")
        cap = limit if mode == XC330.MODE_POSITION else min(limit, abs(goal_cur))
        return ServoDrive(
            torque_on=self.get("torque_enable") == 1,
            mode=mode,
            goal_position=self.get("goal_position") * TICK_RAD,
            current_limit=cap * XC330.CURRENT_UNIT_A,
            goal_current=goal_cur * XC330.CURRENT_UNIT_A,
        )

    def sense(self, r: JointReading, tick: int) -> None:
        self.set("present_position", round(r.position / TICK_RAD))
        self.set("present_velocity", round(r.velocity / VEL_UNIT_RAD_S))
        self.set("present_current", max(-32768, min(32767, round(r.current / XC330.CURRENT_UNIT_A))))
        self.set("realtime_tick", tick % 32768)
        self.set("moving", int(abs(r.velocity) > 0.02))
