"""Reads a push bag (rosbag2: mcap or sqlite3) into a PushRecording.

The bag layout is the contract's (../shared/interfaces.md, "The push bag"). Topic
names that the cell configures come from config/cell.yaml. Every problem with the
input is a one-line UserError naming the bag and what is wrong.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from dream_hw.cell import Cell, load_cell
from dream_hw.errors import UserError
from dream_sysid.bag.recorder import typestore
from dream_sysid.bag.recording import ArmTrajectory, PoseSeries, PushRecording, Series

POSE_TOPIC = "/dream/object/pose"
INFO_TOPIC = "/dream/push/info"
GROUND_TRUTH_TOPIC = "/sim/object/pose_gt"
MIN_POSES = 10
DEFAULT_OBJECT_BODY = "object"

POSE_TYPE = "geometry_msgs/msg/PoseStamped"
STRING_TYPE = "std_msgs/msg/String"
JOINT_STATE_TYPE = "sensor_msgs/msg/JointState"
TRAJECTORY_TYPE = "trajectory_msgs/msg/JointTrajectory"


def bag_topics(cell: Cell) -> dict[str, str]:
    """Contract topic -> message type, with the cell's configured names."""
    return {
        POSE_TOPIC: POSE_TYPE,
        INFO_TOPIC: STRING_TYPE,
        cell.arm.joint_states_topic: JOINT_STATE_TYPE,
        cell.arm.trajectory_topic: TRAJECTORY_TYPE,
        cell.push_hand.state_topic: JOINT_STATE_TYPE,
        cell.push_hand.cmd_topic: JOINT_STATE_TYPE,
        GROUND_TRUTH_TOPIC: POSE_TYPE,
    }


def bag_directory(path: str | Path) -> Path:
    """The rosbag2 directory for `path` (the directory, or a storage file inside it)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"push bag {path} does not exist")
    if path.is_file() and (path.parent / "metadata.yaml").is_file():
        path = path.parent
    if not path.is_dir() or not (path / "metadata.yaml").is_file():
        raise UserError(f"{path} is not a rosbag2 bag (a directory with metadata.yaml and an mcap or db3 file)")
    return path


def _stamp(msg: Any) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


def _time(msg: Any, t_ns: int) -> float:
    """Header stamp if set, else the bag's receive time (s)."""
    t = _stamp(msg)
    return t if t != 0.0 else t_ns * 1e-9


def _order(t: np.ndarray) -> np.ndarray:
    """Indices that sort by time, keeping the last message of equal stamps (strictly increasing)."""
    idx = np.argsort(t, kind="stable")
    ts = t[idx]
    keep = np.append(ts[1:] != ts[:-1], True)
    return idx[keep]


def _poses(msgs: list[tuple[int, Any]]) -> PoseSeries:
    t = np.array([_time(m, t_ns) for t_ns, m in msgs])
    pos = np.array([[m.pose.position.x, m.pose.position.y, m.pose.position.z] for _, m in msgs], float)
    quat = np.array([[m.pose.orientation.w, m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z]
                     for _, m in msgs], float)
    idx = _order(t)
    return PoseSeries(t[idx], pos[idx].reshape(-1, 3), quat[idx].reshape(-1, 4), msgs[0][1].header.frame_id)


def _joint_series(msgs: list[tuple[int, Any]], default_names: tuple[str, ...] = ()) -> Series | None:
    """JointState messages -> Series; joints matched by name to the first message's names."""
    names: tuple[str, ...] | None = None
    rows_t, rows_p, rows_v, rows_e = [], [], [], []
    for t_ns, m in msgs:
        msg_names = tuple(m.name)
        n = len(m.position)
        if not msg_names:   # the Allegro driver ignores names: positions in the driver's order
            msg_names = default_names if len(default_names) == n else tuple(f"joint_{i}" for i in range(n))
        if len(msg_names) != n or n == 0:
            continue
        if names is None:
            names = msg_names
        if msg_names == names:
            order = np.arange(n)
        elif set(names) <= set(msg_names):
            order = np.array([msg_names.index(j) for j in names])
        else:
            continue
        rows_t.append(_time(m, t_ns))
        rows_p.append(np.asarray(m.position, float)[order])
        rows_v.append(np.asarray(m.velocity, float)[order] if len(m.velocity) == n else None)
        rows_e.append(np.asarray(m.effort, float)[order] if len(m.effort) == n else None)
    if names is None:
        return None
    t = np.array(rows_t)
    idx = _order(t)

    def stack(rows: list) -> np.ndarray | None:
        if any(r is None for r in rows):
            return None
        return np.array(rows)[idx]

    return Series(t[idx], names, np.array(rows_p)[idx], stack(rows_v), stack(rows_e))


def _trajectories(msgs: list[tuple[int, Any]]) -> tuple[ArmTrajectory, ...]:
    out = []
    for t_ns, m in msgs:
        names = tuple(m.joint_names)
        times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in m.points], float)
        positions = np.array([np.asarray(p.positions, float) for p in m.points]).reshape(len(m.points), len(names))
        out.append(ArmTrajectory(t_ns * 1e-9, names, times, positions))
    return tuple(sorted(out, key=lambda a: a.t_received))


def load_scene_model(scene: Path, body: str, context: str = ""):
    """The twin MJCF as a MuJoCo model, checked to hold the object body; UserError otherwise."""
    import mujoco

    where = f"{context}: " if context else ""
    if not Path(scene).is_file():
        raise UserError(f"{where}scene {scene} does not exist")
    try:
        model = mujoco.MjModel.from_xml_path(str(scene))
    except ValueError as exc:
        raise UserError(f"{where}scene {scene} does not load in MuJoCo: {exc}".splitlines()[0]) from None
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, body) < 0:
        raise UserError(f"{where}scene {scene} has no body {body!r} (the object to identify)")
    return model


def _check_scene(scene: Path, body: str, bag: Path) -> None:
    load_scene_model(scene, body, f"push bag {bag}")


def read_push_bag(path: str | Path, *, scene: str | Path | None = None, object_body: str | None = None,
                  cell: Cell | None = None) -> PushRecording:
    """Reads a push bag; `scene` / `object_body` override what /dream/push/info names."""
    from rosbags.rosbag2 import Reader

    bag = bag_directory(path)
    cell = cell or load_cell()
    wanted = bag_topics(cell)
    store = typestore()
    by_topic: dict[str, list[tuple[int, Any]]] = {topic: [] for topic in wanted}
    try:
        with Reader(bag) as reader:
            types = {c.topic: c.msgtype for c in reader.connections}
            for topic, msgtype in wanted.items():
                if topic in types and types[topic] != msgtype:
                    raise UserError(f"push bag {bag}: {topic} has type {types[topic]}, expected {msgtype}")
            connections = [c for c in reader.connections if c.topic in wanted]
            for conn, t_ns, raw in reader.messages(connections=connections):
                by_topic[conn.topic].append((t_ns, store.deserialize_cdr(raw, conn.msgtype)))
    except UserError:
        raise
    except Exception as exc:  # rosbags raises several kinds on broken storage/metadata
        text = f"{type(exc).__name__}: {exc}".splitlines()[0]
        raise UserError(f"cannot read push bag {bag}: {text}") from None

    for topic in (INFO_TOPIC, POSE_TOPIC):
        if not by_topic[topic]:
            present = sorted(t for t in types) or ["none"]
            raise UserError(f"push bag {bag} has no messages on {topic} (topics: {', '.join(present)})")
    try:
        info = json.loads(by_topic[INFO_TOPIC][0][1].data)
    except json.JSONDecodeError as exc:
        raise UserError(f"push bag {bag}: {INFO_TOPIC} is not JSON: {exc}") from None
    if not isinstance(info, dict):
        raise UserError(f"push bag {bag}: {INFO_TOPIC} should be a JSON object")

    body = object_body or info.get("object_body") or DEFAULT_OBJECT_BODY
    if not isinstance(body, str):
        raise UserError(f"push bag {bag}: object_body in {INFO_TOPIC} should be a string, got {body!r}")
    scene_ref = scene if scene is not None else info.get("scene")
    if not scene_ref or not isinstance(scene_ref, (str, Path)):
        raise UserError(f"push bag {bag}: {INFO_TOPIC} names no scene (give one with --scene)")
    scene_path = Path(scene_ref).expanduser()
    if not scene_path.is_absolute():
        # --scene is relative to where the user is; the bag's own reference to the bag directory.
        scene_path = (Path.cwd() / scene_path) if scene is not None else (bag / scene_path)
    joint_map = info.get("joint_map") or {}
    if not isinstance(joint_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                   for k, v in joint_map.items()):
        raise UserError(f"push bag {bag}: joint_map in {INFO_TOPIC} should map joint names to MJCF joint names")

    poses = _poses(by_topic[POSE_TOPIC])
    if len(poses.t) < MIN_POSES:
        raise UserError(f"push bag {bag} holds only {len(poses.t)} poses on {POSE_TOPIC} "
                        f"(at least {MIN_POSES} are needed)")
    _check_scene(scene_path.resolve(), body, bag)

    hand_names = tuple(cell.push_hand.joint_map)
    gt = by_topic[GROUND_TRUTH_TOPIC]
    return PushRecording(
        path=bag,
        info=info,
        scene=scene_path.resolve(),
        object_body=body,
        joint_map=dict(joint_map),
        poses=poses,
        hand_states=_joint_series(by_topic[cell.push_hand.state_topic], hand_names),
        hand_cmds=_joint_series(by_topic[cell.push_hand.cmd_topic], hand_names),
        arm_states=_joint_series(by_topic[cell.arm.joint_states_topic], tuple(cell.arm.driver_joint_names)),
        arm_trajectories=_trajectories(by_topic[cell.arm.trajectory_topic]),
        ground_truth=_poses(gt) if gt else None,
    )


DEFAULT_BAG_ROOT = "~/.dream/push_bags"


def read_push_bags(paths, *, scene: str | Path | None = None, object_body: str | None = None,
                   cell: Cell | None = None) -> list[PushRecording]:
    """Several pushes of one object, identified together: they must name the same scene and
    object body (or `scene` / `object_body` override them all)."""
    recordings = [read_push_bag(p, scene=scene, object_body=object_body, cell=cell) for p in paths]
    first = recordings[0]
    for rec in recordings[1:]:
        if Path(rec.scene).resolve() != Path(first.scene).resolve():
            raise UserError(f"push bags {first.path} and {rec.path} name different scenes ({first.scene} and "
                            f"{rec.scene}): pushes identified together must be of one object in one scene "
                            "(--scene sets it for all)")
        if rec.object_body != first.object_body:
            raise UserError(f"push bags {first.path} and {rec.path} name different object bodies "
                            f"({first.object_body!r} and {rec.object_body!r}); --object-body sets it for all")
    return recordings


def newest_bags(root: str | Path, count: int) -> list[Path]:
    """The `count` most recently finished push bags under `root`, oldest first."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"bag root {root} does not exist (no push has been recorded there yet)")
    bags = sorted((meta.parent for meta in root.glob("*/metadata.yaml")),
                  key=lambda b: ((b / "metadata.yaml").stat().st_mtime_ns, b.name))
    if not bags:
        raise UserError(f"bag root {root} holds no push bags")
    if len(bags) < count:
        raise UserError(f"bag root {root} holds {len(bags)} push bag(s); {count} asked for (parameter pushes)")
    return bags[-count:]
