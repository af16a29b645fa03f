"""The cell description (config/cell.yaml) as small typed, validated classes.

Every node and tool reads the cell from here so that a different cell is a
different YAML file, not a code change.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dream_hw.errors import UserError
from dream_hw.paths import config_dir


@dataclass(frozen=True)
class Pose:
    """A pose in its parent frame: position (m) and quaternion [w, x, y, z]."""

    pos: tuple[float, float, float]
    quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)

    def matrix(self) -> np.ndarray:
        """4x4 homogeneous transform."""
        w, x, y, z = self.quat
        rot = np.array(
            [
                [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
            ]
        )
        out = np.eye(4)
        out[:3, :3] = rot
        out[:3, 3] = self.pos
        return out


@dataclass(frozen=True)
class MenagerieRef:
    robot: str
    file: str


@dataclass(frozen=True)
class Table:
    top_z: float
    center_xy: tuple[float, float]
    size_xy: tuple[float, float]
    thickness: float
    friction: float


@dataclass(frozen=True)
class Arm:
    menagerie: MenagerieRef
    flange_site: str
    mjcf_joints: tuple[str, ...]
    joint_map: dict[str, str]
    driver_joint_names: tuple[str, ...]
    home: tuple[float, ...]
    trajectory_topic: str
    joint_states_topic: str
    max_velocity: tuple[float, ...]


@dataclass(frozen=True)
class Hand:
    """A hand mounted on the arm's flange (the Allegro pushes, the LEAP grasps)."""

    menagerie: MenagerieRef
    root_body: str
    mount: Pose
    prefix: str
    cmd_topic: str
    state_topic: str
    joint_map: dict[str, str]          # driver joint name -> MJCF joint name (unprefixed)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Camera:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float
    fps: float
    depth_range_m: tuple[float, float]
    pose_in_world: Pose                # of camera_color_optical_frame
    depth_noise: dict[str, float]

    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def fovy_deg(self) -> float:
        """Vertical field of view, as MuJoCo cameras take it."""
        return float(np.degrees(2.0 * np.arctan2(self.height / 2.0, self.fy)))


SIM_KINDS = ("push", "grasp")   # the twins' kinds (dream_sysid.twin.builder.TWIN_KINDS)


@dataclass(frozen=True)
class Sim:
    """Simulation options; the friction cone and impratio are per twin kind, because
    the contacts each twin exists for want different ones (see config/cell.yaml)."""

    timestep: float
    cones: dict[str, str]
    impratios: dict[str, float]
    noslip_iterations: int

    def cone(self, kind: str) -> str:
        return self.cones[kind]

    def impratio(self, kind: str) -> float:
        return self.impratios[kind]


@dataclass(frozen=True)
class Cell:
    path: Path
    frames: dict[str, str]
    table: Table
    arm: Arm
    push_hand: Hand
    grasp_hand: Hand
    camera: Camera
    sim: Sim
    raw: dict[str, Any]

    def hand(self, kind: str) -> Hand:
        """'push' -> the Allegro hand, 'grasp' -> the LEAP hand."""
        if kind == "push":
            return self.push_hand
        if kind == "grasp":
            return self.grasp_hand
        raise UserError(f"twin kind must be 'push' or 'grasp', got {kind!r}")


def look_at_quat(pos: np.ndarray, target: np.ndarray) -> tuple[float, float, float, float]:
    """Quaternion [w,x,y,z] of an optical frame (z forward, x right, y down) at pos looking at target."""
    z = np.asarray(target, float) - np.asarray(pos, float)
    z /= np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-9:
        raise UserError("camera pose: look_at is straight below or above the camera; give a quat instead")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return _mat_to_quat(np.column_stack([x, y, z]))


def _mat_to_quat(r: np.ndarray) -> tuple[float, float, float, float]:
    from scipy.spatial.transform import Rotation

    x, y, z, w = Rotation.from_matrix(r).as_quat()
    return (float(w), float(x), float(y), float(z))


class _Reader:
    """Pulls typed values out of the YAML tree, naming the key on error."""

    def __init__(self, path: Path, data: dict[str, Any]):
        self.path = path
        self.data = data

    def get(self, dotted: str, kind: type | tuple[type, ...] = object, default: Any = ...) -> Any:
        node: Any = self.data
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                if default is not ...:
                    return default
                raise UserError(f"{self.path}: missing key '{dotted}'")
            node = node[part]
        if kind is float and isinstance(node, int):
            node = float(node)
        if not isinstance(node, kind):
            raise UserError(f"{self.path}: '{dotted}' should be {getattr(kind, '__name__', kind)}, got {node!r}")
        return node

    def floats(self, dotted: str, n: int | None = None) -> tuple[float, ...]:
        value = self.get(dotted, list)
        try:
            out = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise UserError(f"{self.path}: '{dotted}' should be a list of numbers, got {value!r}") from None
        if n is not None and len(out) != n:
            raise UserError(f"{self.path}: '{dotted}' should have {n} numbers, got {len(out)}")
        return out

    def pose(self, dotted: str) -> Pose:
        pos = self.floats(f"{dotted}.pos", 3)
        if self.get(f"{dotted}.look_at", object, None) is not None:
            quat = look_at_quat(np.array(pos), np.array(self.floats(f"{dotted}.look_at", 3)))
        else:
            quat = self.floats(f"{dotted}.quat", 4)
            norm = float(np.linalg.norm(quat))
            if norm < 1e-9:
                raise UserError(f"{self.path}: '{dotted}.quat' is zero")
            quat = tuple(q / norm for q in quat)
        return Pose(pos, quat)  # type: ignore[arg-type]

    def menagerie(self, dotted: str) -> MenagerieRef:
        return MenagerieRef(self.get(f"{dotted}.robot", str), self.get(f"{dotted}.file", str))


def _hand(r: _Reader, key: str, joint_map: dict[str, str], extra_keys: tuple[str, ...]) -> Hand:
    return Hand(
        menagerie=r.menagerie(f"{key}.menagerie"),
        root_body=r.get(f"{key}.root_body", str),
        mount=r.pose(f"{key}.mount"),
        prefix=r.get(f"{key}.prefix", str),
        cmd_topic=r.get(f"{key}.cmd_topic", str),
        state_topic=r.get(f"{key}.state_topic", str),
        joint_map=joint_map,
        extra={k: r.get(f"{key}.{k}", object, None) for k in extra_keys},
    )


def _per_kind(r: _Reader, dotted: str, value_type: type) -> dict[str, Any]:
    """One value for every twin kind, or a mapping {push: ..., grasp: ...}."""
    node = r.get(dotted, (value_type, dict) if value_type is not float else (float, int, dict))
    if not isinstance(node, dict):
        return {k: value_type(node) for k in SIM_KINDS}
    if set(node) != set(SIM_KINDS):
        raise UserError(f"{r.path}: '{dotted}' should map each of {SIM_KINDS} to a value, got {node!r}")
    return {k: r.get(f"{dotted}.{k}", value_type) for k in SIM_KINDS}


def load_cell(path: str | Path | None = None) -> Cell:
    """Reads and validates the cell description (default: config/cell.yaml)."""
    path = Path(path) if path is not None else config_dir() / "cell.yaml"
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"cell description {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise UserError(f"cell description {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise UserError(f"cell description {path} should be a YAML mapping")
    r = _Reader(path, data)

    arm_joints = tuple(r.get("arm.mjcf_joints", list))
    home = r.floats("arm.home", len(arm_joints))
    arm = Arm(
        menagerie=r.menagerie("arm.menagerie"),
        flange_site=r.get("arm.flange_site", str),
        mjcf_joints=arm_joints,
        joint_map=dict(r.get("arm.joint_map", dict)),
        driver_joint_names=tuple(r.get("arm.driver_joint_names", list)),
        home=home,
        trajectory_topic=r.get("arm.trajectory_topic", str),
        joint_states_topic=r.get("arm.joint_states_topic", str),
        max_velocity=r.floats("arm.safety.max_velocity", len(arm_joints)),
    )

    driver = r.get("push_hand.driver", str)
    map_key = {"allegro_hand_ros": "push_hand.joint_map", "allegro_hand_ros2": "push_hand.joint_map_ros2_control"}
    if driver not in map_key:
        raise UserError(f"{path}: push_hand.driver should be one of {sorted(map_key)}, got {driver!r}")
    push_map = {str(k): str(v) for k, v in r.get(map_key[driver], dict).items()}
    push = _hand(r, "push_hand", push_map, ("kp", "push_posture", "driver"))
    if len(r.floats("push_hand.push_posture", 16)) != 16:
        raise UserError(f"{path}: push_hand.push_posture needs 16 joint values")

    motors = r.get("grasp_hand.motor_joints", dict)
    if sorted(int(k) for k in motors) != list(range(16)):
        raise UserError(f"{path}: grasp_hand.motor_joints should map Dynamixel ids 0-15, got {sorted(motors)}")
    leap_map = {str(int(k)): str(v) for k, v in motors.items()}
    grasp = _hand(r, "grasp_hand", leap_map, ("servo", "safety"))

    cam = Camera(
        width=r.get("camera.width", int),
        height=r.get("camera.height", int),
        fx=r.get("camera.fx", float),
        fy=r.get("camera.fy", float),
        cx=r.get("camera.cx", float),
        cy=r.get("camera.cy", float),
        fps=r.get("camera.fps", (int, float)),
        depth_range_m=r.floats("camera.depth_range_m", 2),  # type: ignore[arg-type]
        pose_in_world=r.pose("camera.pose_in_world"),
        depth_noise={k: float(v) for k, v in r.get("camera.depth_noise", dict).items()},
    )
    table = Table(
        top_z=r.get("table.top_z", float),
        center_xy=r.floats("table.center_xy", 2),  # type: ignore[arg-type]
        size_xy=r.floats("table.size_xy", 2),  # type: ignore[arg-type]
        thickness=r.get("table.thickness", float),
        friction=r.get("table.friction", float),
    )
    cones = _per_kind(r, "sim.cone", str)
    for kind, cone in cones.items():
        if cone not in ("elliptic", "pyramidal"):
            raise UserError(f"{path}: sim.cone ({kind}) should be 'elliptic' or 'pyramidal', got {cone!r}")
    impratios = _per_kind(r, "sim.impratio", float)
    if min(impratios.values()) < 1.0:
        raise UserError(f"{path}: sim.impratio must be >= 1, got {impratios}")
    sim = Sim(
        timestep=r.get("sim.timestep", float),
        cones=cones,
        impratios=impratios,
        noslip_iterations=r.get("sim.noslip_iterations", int),
    )
    if sim.timestep <= 0:
        raise UserError(f"{path}: sim.timestep must be positive")
    frames = {str(k): str(v) for k, v in r.get("frames", dict).items()}
    return Cell(path, frames, table, arm, push, grasp, cam, sim, data)
