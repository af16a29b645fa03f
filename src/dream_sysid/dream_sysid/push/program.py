"""Push programs: what the robot does to an object so that its mass can be identified.

A program is a small YAML file (config/push_programs/*.yaml) read into the typed,
validated `PushProgram`. Every mistake in the file is a one-line UserError naming
the file and the key. ROS-free.

Geometry, in world (z up), for a push direction d in the table plane:
- the fingertip comes down onto the push line `approach.pre_push_height_m` above
  the pre-push pose, where its surface is `approach.offset_m` behind the object's
  back face (the object's extreme point against d) and its lowest point
  `approach.tip_clearance_m` above the table;
- it moves along d with a trapezoidal speed profile (`push`: accelerate, cruise at
  `max_speed_m_s`, decelerate) until it has travelled `distance_past_contact_m`
  past the point where it first touches the object, optionally holds there;
- it retreats `retreat.back_m` against d while lifting `retreat.lift_m`.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from dream_hw.errors import UserError

PROGRAM_DIR = "push_programs"
N_HAND_JOINTS = 16


@dataclass(frozen=True)
class Approach:
    offset_m: float              # gap fingertip surface -> object's back face at the pre-push pose
    tip_clearance_m: float       # fingertip's lowest point above the table on the push line
    pre_push_height_m: float     # the finger descends onto the pre-push pose from this high above it
    speed_m_s: float = 0.15      # Cartesian speed of the approach and the descent
    acceleration_m_s2: float = 0.5


@dataclass(frozen=True)
class SpeedProfile:
    """Trapezoid along the push line; it starts and ends at rest."""

    max_speed_m_s: float
    acceleration_m_s2: float
    distance_past_contact_m: float
    deceleration_m_s2: float | None = None   # None: same as acceleration
    hold_s: float = 0.0                      # stay at the end of the push before retreating

    @property
    def decel(self) -> float:
        return self.acceleration_m_s2 if self.deceleration_m_s2 is None else self.deceleration_m_s2


@dataclass(frozen=True)
class Retreat:
    back_m: float                # pull back against the push direction
    lift_m: float                # and up
    speed_m_s: float = 0.15
    acceleration_m_s2: float = 0.5


@dataclass(frozen=True)
class PushProgram:
    name: str
    description: str
    direction_deg: float         # push direction in the world xy plane, from +x toward +y
    approach: Approach
    push: SpeedProfile
    retreat: Retreat
    hand_posture: tuple[float, ...] | None = None   # 16 Allegro targets (driver order); None: the cell's
    settle_s: float = 1.0        # recording continues this long after the trajectory ends
    source: str = ""             # file it was read from

    @property
    def direction(self) -> tuple[float, float]:
        a = math.radians(self.direction_deg)
        return (math.cos(a), math.sin(a))

    def to_dict(self) -> dict[str, Any]:
        """The program as plain data (written into each push bag's /dream/push/info)."""
        out = asdict(self)
        out["hand_posture"] = list(self.hand_posture) if self.hand_posture is not None else None
        return out


# -- reading ---------------------------------------------------------------------------------

# key -> (lower, upper, lower inclusive, unit)
_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "direction_deg": (-180.0, 180.0, True, "deg"),
    "settle_s": (0.0, 30.0, True, "s"),
    "approach.offset_m": (0.0, 0.2, True, "m"),
    "approach.tip_clearance_m": (0.0, 0.05, True, "m"),
    "approach.pre_push_height_m": (0.02, 0.4, True, "m"),
    "approach.speed_m_s": (0.0, 0.5, False, "m/s"),
    "approach.acceleration_m_s2": (0.0, 10.0, False, "m/s^2"),
    "push.max_speed_m_s": (0.0, 1.0, False, "m/s"),
    "push.acceleration_m_s2": (0.0, 20.0, False, "m/s^2"),
    "push.deceleration_m_s2": (0.0, 20.0, False, "m/s^2"),
    "push.distance_past_contact_m": (0.0, 0.5, False, "m"),
    "push.hold_s": (0.0, 10.0, True, "s"),
    "retreat.back_m": (0.0, 0.3, True, "m"),
    "retreat.lift_m": (0.0, 0.4, True, "m"),
    "retreat.speed_m_s": (0.0, 0.5, False, "m/s"),
    "retreat.acceleration_m_s2": (0.0, 10.0, False, "m/s^2"),
}
_SECTIONS = {
    "approach": ("offset_m", "tip_clearance_m", "pre_push_height_m", "speed_m_s", "acceleration_m_s2"),
    "push": ("max_speed_m_s", "acceleration_m_s2", "deceleration_m_s2", "distance_past_contact_m", "hold_s"),
    "retreat": ("back_m", "lift_m", "speed_m_s", "acceleration_m_s2"),
    "hand": ("posture",),
}
_TOP = ("name", "description", "direction_deg", "settle_s", *_SECTIONS)
_REQUIRED = ("direction_deg", "approach.offset_m", "approach.tip_clearance_m", "approach.pre_push_height_m",
             "push.max_speed_m_s", "push.acceleration_m_s2", "push.distance_past_contact_m",
             "retreat.back_m", "retreat.lift_m")


class _Fields:
    def __init__(self, where: str, data: dict[str, Any]):
        self.where = where
        self.data = data

    def raw(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node or node[part] is None:
                return None
            node = node[part]
        return node

    def number(self, key: str, default: float | None = None) -> float | None:
        value = self.raw(key)
        if value is None:
            if key in _REQUIRED:
                raise UserError(f"{self.where}: missing key '{key}'")
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError(f"{self.where}: '{key}' should be a number, got {value!r}")
        lo, hi, lo_inclusive, unit = _RANGES[key]
        if value > hi or value < lo or (value == lo and not lo_inclusive):
            bracket = "[" if lo_inclusive else "("
            raise UserError(f"{self.where}: '{key}' should be in {bracket}{lo:g}, {hi:g}] {unit}, got {value!r}")
        return float(value)


def program_from_dict(data: Any, where: str, source: str = "") -> PushProgram:
    """Validates a program given as plain data; `where` names it in error messages."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: a push program should be a YAML mapping")
    for key, value in data.items():
        if key not in _TOP:
            raise UserError(f"{where}: unknown key '{key}' (expected one of {', '.join(_TOP)})")
        if key in _SECTIONS:
            if value is None:
                continue
            if not isinstance(value, dict):
                raise UserError(f"{where}: '{key}' should be a mapping")
            for sub in value:
                if sub not in _SECTIONS[key]:
                    raise UserError(f"{where}: unknown key '{key}.{sub}' "
                                    f"(expected one of {', '.join(_SECTIONS[key])})")
    f = _Fields(where, data)
    name = f.raw("name")
    if name is None:
        name = Path(source).stem if source else "push"
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{where}: 'name' should be a non-empty string")
    description = f.raw("description") or ""
    if not isinstance(description, str):
        raise UserError(f"{where}: 'description' should be a string")

    posture = f.raw("hand.posture")
    if isinstance(posture, str) and posture == "default":
        posture = None
    if posture is not None:
        if not isinstance(posture, list) or len(posture) != N_HAND_JOINTS or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in posture):
            raise UserError(f"{where}: 'hand.posture' should be 'default' or {N_HAND_JOINTS} numbers "
                            "(rad, Allegro driver order: index, middle, ring, thumb)")
        posture = tuple(float(v) for v in posture)

    approach = Approach(
        offset_m=f.number("approach.offset_m"),
        tip_clearance_m=f.number("approach.tip_clearance_m"),
        pre_push_height_m=f.number("approach.pre_push_height_m"),
        speed_m_s=f.number("approach.speed_m_s", 0.15),
        acceleration_m_s2=f.number("approach.acceleration_m_s2", 0.5),
    )
    push = SpeedProfile(
        max_speed_m_s=f.number("push.max_speed_m_s"),
        acceleration_m_s2=f.number("push.acceleration_m_s2"),
        distance_past_contact_m=f.number("push.distance_past_contact_m"),
        deceleration_m_s2=f.number("push.deceleration_m_s2", None),
        hold_s=f.number("push.hold_s", 0.0),
    )
    retreat = Retreat(
        back_m=f.number("retreat.back_m"),
        lift_m=f.number("retreat.lift_m"),
        speed_m_s=f.number("retreat.speed_m_s", 0.15),
        acceleration_m_s2=f.number("retreat.acceleration_m_s2", 0.5),
    )
    if retreat.back_m == 0.0 and retreat.lift_m == 0.0:
        raise UserError(f"{where}: 'retreat' moves nowhere: give retreat.back_m or retreat.lift_m > 0")
    return PushProgram(
        name=name.strip(), description=" ".join(description.split()),
        direction_deg=f.number("direction_deg"), approach=approach, push=push, retreat=retreat,
        hand_posture=posture, settle_s=f.number("settle_s", 1.0), source=source,
    )


def resolve_program_path(name_or_path: str | Path) -> Path:
    """A program file path, or a bare name looked up in config/push_programs/<name>.yaml."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file() or len(path.parts) > 1:
        return path
    from dream_hw.paths import config_dir

    return config_dir() / PROGRAM_DIR / f"{path.name}.yaml"


def load_program(name_or_path: str | Path) -> PushProgram:
    """Reads and validates a push program (file path or name in config/push_programs/)."""
    path = resolve_program_path(name_or_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"push program {path} does not exist") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"push program {path} cannot be read: {exc}".splitlines()[0]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"push program {path} is not valid YAML: {exc}".replace("\n", " ")) from None
    return program_from_dict(data, str(path), str(path.resolve()))


def available_programs() -> list[Path]:
    """The programs shipped in config/push_programs/."""
    from dream_hw.paths import config_dir

    return sorted((config_dir() / PROGRAM_DIR).glob("*.yaml"))
