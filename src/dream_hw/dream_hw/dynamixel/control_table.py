"""The XC330-M288-T control table (ROBOTIS e-Manual), as data.

One place that knows addresses, sizes, access and defaults, so the emulator
and the LEAP driver cannot disagree about the register map. Addresses below
64 are EEPROM: a servo refuses writes there while its torque is on.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

EEPROM_END = 64  # first RAM address


@dataclass(frozen=True)
class Field:
    name: str
    address: int
    size: int
    access: str            # "R" or "RW"
    default: int = 0
    signed: bool = False

    @property
    def eeprom(self) -> bool:
        return self.address < EEPROM_END

    @property
    def writable(self) -> bool:
        return self.access == "RW"


class HardwareError(IntFlag):
    """Hardware Error Status (70) bits."""

    INPUT_VOLTAGE = 1 << 0
    OVERHEATING = 1 << 2
    ENCODER = 1 << 3
    ELECTRICAL_SHOCK = 1 << 4
    OVERLOAD = 1 << 5


def describe_errors(bits: int) -> str:
    """'overload, overheating' for a Hardware Error Status value ('' if none)."""
    names = [f.name.lower() for f in HardwareError if bits & f]
    return ", ".join(names)


MODEL_NUMBER_XC330_M288 = 1240

_FIELDS = (
    # EEPROM (locked while torque is on)
    Field("model_number", 0, 2, "R", MODEL_NUMBER_XC330_M288),
    Field("model_information", 2, 4, "R", 0),
    Field("firmware_version", 6, 1, "R", 52),
    Field("id", 7, 1, "RW", 1),
    Field("baud_rate", 8, 1, "RW", 1),            # 1 = 57600; 6 = 4 Mbaud
    Field("return_delay_time", 9, 1, "RW", 250),  # unit 2 us
    Field("drive_mode", 10, 1, "RW", 0),
    Field("operating_mode", 11, 1, "RW", 3),      # 0 current, 1 velocity, 3 position, 4 extended, 5 current-based position, 16 PWM
    Field("secondary_id", 12, 1, "RW", 255),
    Field("protocol_type", 13, 1, "RW", 2),
    Field("homing_offset", 20, 4, "RW", 0, signed=True),
    Field("moving_threshold", 24, 4, "RW", 10),
    Field("temperature_limit", 31, 1, "RW", 70),  # deg C
    Field("max_voltage_limit", 32, 2, "RW", 70),  # 0.1 V
    Field("min_voltage_limit", 34, 2, "RW", 35),
    Field("pwm_limit", 36, 2, "RW", 885),
    Field("current_limit", 38, 2, "RW", 2352),    # ~1 mA
    Field("velocity_limit", 44, 4, "RW", 445),
    Field("max_position_limit", 48, 4, "RW", 4095),
    Field("min_position_limit", 52, 4, "RW", 0),
    Field("startup_configuration", 60, 1, "RW", 0),
    Field("pwm_slope", 62, 1, "RW", 140),
    Field("shutdown", 63, 1, "RW", int(HardwareError.OVERHEATING | HardwareError.ELECTRICAL_SHOCK | HardwareError.OVERLOAD)),
    # RAM
    Field("torque_enable", 64, 1, "RW", 0),
    Field("led", 65, 1, "RW", 0),
    Field("status_return_level", 68, 1, "RW", 2),
    Field("registered_instruction", 69, 1, "R", 0),
    Field("hardware_error_status", 70, 1, "R", 0),
    Field("velocity_i_gain", 76, 2, "RW", 1600),
    Field("velocity_p_gain", 78, 2, "RW", 180),
    Field("position_d_gain", 80, 2, "RW", 0),
    Field("position_i_gain", 82, 2, "RW", 0),
    Field("position_p_gain", 84, 2, "RW", 400),
    Field("feedforward_2nd_gain", 88, 2, "RW", 0),
    Field("feedforward_1st_gain", 90, 2, "RW", 0),
    Field("bus_watchdog", 98, 1, "RW", 0),
    Field("goal_pwm", 100, 2, "RW", 885, signed=True),
    Field("goal_current", 102, 2, "RW", 2352, signed=True),
    Field("goal_velocity", 104, 4, "RW", 0, signed=True),
    Field("profile_acceleration", 108, 4, "RW", 0),
    Field("profile_velocity", 112, 4, "RW", 0),
    Field("goal_position", 116, 4, "RW", 0, signed=True),
    Field("realtime_tick", 120, 2, "R", 0),
    Field("moving", 122, 1, "R", 0),
    Field("moving_status", 123, 1, "R", 0),
    Field("present_pwm", 124, 2, "R", 0, signed=True),
    Field("present_current", 126, 2, "R", 0, signed=True),
    Field("present_velocity", 128, 4, "R", 0, signed=True),
    Field("present_position", 132, 4, "R", 0, signed=True),
    Field("velocity_trajectory", 136, 4, "R", 0, signed=True),
    Field("position_trajectory", 140, 4, "R", 0, signed=True),
    Field("present_input_voltage", 144, 2, "R", 50),
    Field("present_temperature", 146, 1, "R", 30),
    Field("backup_ready", 147, 1, "R", 0),
)

TABLE_SIZE = 148
FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}
BY_ADDRESS: dict[int, Field] = {f.address: f for f in _FIELDS}


class XC330:
    """Named fields, e.g. XC330.GOAL_POSITION.address (readable driver code)."""

    MODEL_NUMBER = FIELDS["model_number"]
    RETURN_DELAY_TIME = FIELDS["return_delay_time"]
    OPERATING_MODE = FIELDS["operating_mode"]
    TEMPERATURE_LIMIT = FIELDS["temperature_limit"]
    CURRENT_LIMIT = FIELDS["current_limit"]
    SHUTDOWN = FIELDS["shutdown"]
    TORQUE_ENABLE = FIELDS["torque_enable"]
    HARDWARE_ERROR_STATUS = FIELDS["hardware_error_status"]
    POSITION_D_GAIN = FIELDS["position_d_gain"]
    POSITION_I_GAIN = FIELDS["position_i_gain"]
    POSITION_P_GAIN = FIELDS["position_p_gain"]
    GOAL_CURRENT = FIELDS["goal_current"]
    GOAL_POSITION = FIELDS["goal_position"]
    PRESENT_CURRENT = FIELDS["present_current"]
    PRESENT_VELOCITY = FIELDS["present_velocity"]
    PRESENT_POSITION = FIELDS["present_position"]
    PRESENT_TEMPERATURE = FIELDS["present_temperature"]

    # Units
    CURRENT_UNIT_A = 0.001          # ~1 mA per unit (no 1.34 factor)
    VELOCITY_UNIT_RPM = 0.229
    TICKS_PER_REV = 4096
    RETURN_DELAY_UNIT_S = 2e-6

    OPERATING_MODES = (0, 1, 3, 4, 5, 16)
    MODE_CURRENT = 0
    MODE_POSITION = 3
    MODE_CURRENT_BASED_POSITION = 5


def fields_in(address: int, length: int) -> list[Field]:
    """Fields overlapping [address, address+length)."""
    end = address + length
    return [f for f in _FIELDS if f.address < end and address < f.address + f.size]
