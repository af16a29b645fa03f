"""LEAP angle and unit conventions, in one place.

Two angle conventions exist for the LEAP hand:
* LEAP hardware ("LEAP"): the Dynamixel's own angle, ticks * 2 pi / 4096. The
  open, flat hand is at pi (2048 ticks) on every joint.
* Allegro-style ("Allegro"): the same joints, same signs and id order, with
  the flat hand at 0. The Menagerie LEAP model (and LEAP's simulation) uses it.

    LEAP = Allegro + pi          Allegro = LEAP - pi

dream's ROS interface (/leap_hand/joint_cmd, /leap_hand/joint_states) speaks
Allegro-style radians, so that commands, joint states and the MuJoCo twin
share one zero; only the driver sees LEAP angles and ticks.
"""
from __future__ import annotations

import math

import numpy as np

TICKS_PER_REV = 4096
TICKS_PER_RAD = TICKS_PER_REV / (2.0 * math.pi)   # 2048 ticks = pi
LEAP_OFFSET = math.pi                              # LEAP = Allegro + pi
VELOCITY_UNIT_RAD_S = 0.229 * 2.0 * math.pi / 60.0  # one Present Velocity unit (0.229 rpm)
CURRENT_UNIT_A = 0.001                              # one Present/Goal Current unit (~1 mA)


def allegro_to_leap(q):
    """Allegro-style radians -> LEAP hardware radians."""
    return np.asarray(q, dtype=float) + LEAP_OFFSET


def leap_to_allegro(q):
    """LEAP hardware radians -> Allegro-style radians."""
    return np.asarray(q, dtype=float) - LEAP_OFFSET


def rad_to_ticks(q_leap) -> np.ndarray:
    """LEAP hardware radians -> Goal/Present Position ticks (int64)."""
    return np.rint(np.asarray(q_leap, dtype=float) * TICKS_PER_RAD).astype(np.int64)


def ticks_to_rad(ticks) -> np.ndarray:
    """Position ticks -> LEAP hardware radians."""
    return np.asarray(ticks, dtype=float) / TICKS_PER_RAD


def velocity_to_rad_s(units) -> np.ndarray:
    return np.asarray(units, dtype=float) * VELOCITY_UNIT_RAD_S


def current_to_torque(milliamps, torque_constant_nm_per_a: float) -> np.ndarray:
    """Present Current (mA, no 1.34 factor) -> approximate joint torque (N m)."""
    return np.asarray(milliamps, dtype=float) * CURRENT_UNIT_A * torque_constant_nm_per_a


def torque_to_current_ma(tau_nm, torque_constant_nm_per_a: float) -> np.ndarray:
    """Torque limit (N m) -> Goal Current (mA): tau / Kt * 1000 (not yet capped)."""
    return np.asarray(tau_nm, dtype=float) / torque_constant_nm_per_a / CURRENT_UNIT_A


def to_signed(value: int, size: int) -> int:
    """Unsigned register value as the SDK returns it -> signed int."""
    bits = 8 * size
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value
