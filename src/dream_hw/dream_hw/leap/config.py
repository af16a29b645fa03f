"""Everything the LEAP driver needs to know, from config/cell.yaml + the model.

Joint limits come from the Menagerie LEAP MJCF (Allegro-style radians), so the
driver can never command a pose the twin considers out of range.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from dream_hw.errors import UserError


@dataclass(frozen=True)
class LeapConfig:
    port: str
    joint_names: tuple[str, ...]          # MJCF joint names, index i = servo ids[i]
    lower: tuple[float, ...]              # Allegro-style rad
    upper: tuple[float, ...]
    ids: tuple[int, ...] = tuple(range(16))
    baudrate: int = 4_000_000
    operating_mode: int = 5               # current-based position
    kp: int = 600
    kd: int = 200
    side_ids: tuple[int, ...] = (0, 4, 8)
    side_gain_scale: float = 0.75
    default_current_ma: float = 350.0
    current_cap_ma: tuple[float, ...] = (550.0,) * 16   # hard per-joint cap
    torque_constant: float = 0.52         # N m / A
    command_timeout_s: float = 0.5
    max_temperature_c: float = 70.0
    torque_off_on_shutdown: bool = True
    return_delay_us: int | None = 0       # None: leave the servos' setting alone
    latency_timer_ms: float = 16.0        # USB adapter latency allowance in packet timeouts
    health_period_s: float = 0.2          # error status + temperature poll
    retries: int = 2                      # extra attempts per bus transaction
    max_failed_cycles: int = 25           # consecutive cycles without a reading -> fault
    max_reboots: int = 3                  # per servo, per `reboot_window_s`
    reboot_window_s: float = 60.0
    reboot_timeout_s: float = 1.5
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.ids)

    def gains(self, dev_id: int) -> tuple[int, int]:
        """(P, D) gains of one servo: side joints are softer."""
        s = self.side_gain_scale if dev_id in self.side_ids else 1.0
        return int(round(self.kp * s)), int(round(self.kd * s))

    def with_(self, **changes) -> "LeapConfig":
        return replace(self, **changes)

    def validate(self) -> "LeapConfig":
        n = self.n
        for name in ("joint_names", "lower", "upper", "current_cap_ma"):
            if len(getattr(self, name)) != n:
                raise UserError(f"LEAP config: {name} needs {n} values, got {len(getattr(self, name))}")
        if any(not 0 <= c <= 2352 for c in self.current_cap_ma):
            raise UserError(f"LEAP config: current caps must be within 0-2352 mA, got {self.current_cap_ma}")
        if self.command_timeout_s <= 0:
            raise UserError("LEAP config: command_timeout_s must be positive")
        if self.operating_mode not in (3, 5):
            raise UserError(f"LEAP config: operating_mode must be 3 or 5 (position modes), got {self.operating_mode}")
        return self

    @classmethod
    def from_cell(cls, cell=None, **overrides) -> "LeapConfig":
        """Reads grasp_hand (servo, safety, joint map) and the model's joint ranges."""
        from dream_hw.cell import load_cell

        cell = cell or load_cell()
        hand = cell.grasp_hand
        servo = dict(hand.extra.get("servo") or {})
        safety = dict(hand.extra.get("safety") or {})
        ids = tuple(sorted(int(k) for k in hand.joint_map))
        names = tuple(hand.joint_map[str(i)] for i in ids)
        lower, upper = joint_limits(hand, names)
        cap = safety.get("current_cap_ma", 550)
        caps = tuple(float(c) for c in cap) if isinstance(cap, (list, tuple)) else (float(cap),) * len(ids)
        values: dict[str, Any] = dict(
            port=str(servo.get("port", "/dev/ttyUSB0")),
            joint_names=names,
            lower=lower,
            upper=upper,
            ids=ids,
            baudrate=int(servo.get("baudrate", 4_000_000)),
            operating_mode=int(servo.get("operating_mode", 5)),
            kp=int(servo.get("kp", 600)),
            kd=int(servo.get("kd", 200)),
            side_gain_scale=float(servo.get("side_joint_gain_scale", 0.75)),
            default_current_ma=float(servo.get("default_current_ma", 350)),
            current_cap_ma=caps,
            torque_constant=float(servo.get("torque_constant_nm_per_a", 0.52)),
            command_timeout_s=float(safety.get("command_timeout_s", 0.5)),
            max_temperature_c=float(safety.get("max_temperature_c", 70)),
            torque_off_on_shutdown=bool(safety.get("torque_off_on_shutdown", True)),
        )
        values.update(overrides)
        return cls(**values).validate()


def joint_limits(hand, names: tuple[str, ...]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(lower, upper) of each named joint in the hand's Menagerie MJCF."""
    import mujoco

    from dream_hw.models import menagerie_xml

    model = mujoco.MjModel.from_xml_path(str(menagerie_xml(hand.menagerie.robot, hand.menagerie.file)))
    lo, hi = [], []
    for name in names:
        jid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name)
        if jid < 0:
            raise UserError(f"grasp_hand.motor_joints names joint {name!r}, which the model "
                            f"{hand.menagerie.robot}/{hand.menagerie.file} does not have")
        if model.jnt_limited[jid]:
            lo.append(float(model.jnt_range[jid, 0]))
            hi.append(float(model.jnt_range[jid, 1]))
        else:
            lo.append(-math.pi)
            hi.append(math.pi)
    return tuple(lo), tuple(hi)


def as_array(values, n: int, what: str) -> np.ndarray:
    """A length-n float array or a clear ValueError naming `what`."""
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.size != n:
        raise ValueError(f"{what}: expected {n} values, got {arr.size}")
    return arr
