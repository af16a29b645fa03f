"""Writes a PushRecording as a push bag (the inverse of bag/reader.py).

For recordings that did not come from the cell: simulated pushes
(identification/synthetic.py), hand-made test bags, conversions of other logs.
Message stamps and bag receive times are the recording's times.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dream_hw.cell import Cell, load_cell
from dream_sysid.bag.reader import GROUND_TRUTH_TOPIC, INFO_TOPIC, POSE_TOPIC
from dream_sysid.bag.recorder import BagRecorder, serialize, typestore
from dream_sysid.bag.recording import ArmTrajectory, PoseSeries, PushRecording, Series


def _ns(t: float) -> int:
    return int(round(float(t) * 1e9))


def _header(t: float, frame_id: str = ""):
    types = typestore().types
    ns = _ns(t)
    stamp = types["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9)
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


def pose_messages(series: PoseSeries):
    """(t_ns, CDR bytes) of PoseStamped messages."""
    types = typestore().types
    for t, p, q in zip(series.t, series.pos, series.quat):
        pose = types["geometry_msgs/msg/Pose"](
            position=types["geometry_msgs/msg/Point"](x=float(p[0]), y=float(p[1]), z=float(p[2])),
            orientation=types["geometry_msgs/msg/Quaternion"](w=float(q[0]), x=float(q[1]), y=float(q[2]),
                                                              z=float(q[3])))
        msg = types["geometry_msgs/msg/PoseStamped"](header=_header(t, series.frame_id), pose=pose)
        yield _ns(t), serialize(msg, "geometry_msgs/msg/PoseStamped")


def joint_state_messages(series: Series):
    types = typestore().types
    empty = np.zeros(0)
    for k, t in enumerate(series.t):
        msg = types["sensor_msgs/msg/JointState"](
            header=_header(t), name=list(series.names),
            position=np.ascontiguousarray(series.position[k], dtype=float),
            velocity=np.ascontiguousarray(series.velocity[k], dtype=float) if series.velocity is not None else empty,
            effort=np.ascontiguousarray(series.effort[k], dtype=float) if series.effort is not None else empty)
        yield _ns(t), serialize(msg, "sensor_msgs/msg/JointState")


def trajectory_message(traj: ArmTrajectory) -> tuple[int, bytes]:
    types = typestore().types
    points = []
    for t, q in zip(traj.times, traj.positions):
        ns = _ns(t)
        points.append(types["trajectory_msgs/msg/JointTrajectoryPoint"](
            positions=np.ascontiguousarray(q, dtype=float), velocities=np.zeros(0), accelerations=np.zeros(0),
            effort=np.zeros(0),
            time_from_start=types["builtin_interfaces/msg/Duration"](sec=ns // 10**9, nanosec=ns % 10**9)))
    msg = types["trajectory_msgs/msg/JointTrajectory"](header=_header(0.0), joint_names=list(traj.names),
                                                       points=points)
    return _ns(traj.t_received), serialize(msg, "trajectory_msgs/msg/JointTrajectory")


def write_push_bag(recording: PushRecording, path: str | Path, *, storage: str = "mcap",
                   cell: Cell | None = None, info: dict | None = None) -> Path:
    """Writes `recording` as a push bag at `path` (a new directory); returns the path."""
    cell = cell or load_cell()
    path = Path(path)
    info = dict(recording.info if info is None else info)
    t0 = float(recording.poses.t[0]) if len(recording.poses.t) else 0.0
    with BagRecorder(path, storage) as bag:
        bag.write_string(INFO_TOPIC, json.dumps(info), _ns(t0))
        streams = [
            (POSE_TOPIC, "geometry_msgs/msg/PoseStamped", recording.poses, pose_messages),
            (GROUND_TRUTH_TOPIC, "geometry_msgs/msg/PoseStamped", recording.ground_truth, pose_messages),
            (cell.push_hand.state_topic, "sensor_msgs/msg/JointState", recording.hand_states, joint_state_messages),
            (cell.push_hand.cmd_topic, "sensor_msgs/msg/JointState", recording.hand_cmds, joint_state_messages),
            (cell.arm.joint_states_topic, "sensor_msgs/msg/JointState", recording.arm_states, joint_state_messages),
        ]
        for topic, msgtype, data, messages in streams:
            if data is None:
                continue
            bag.add_topic(topic, msgtype)
            for t_ns, raw in messages(data):
                bag.write(topic, raw, t_ns)
        if recording.arm_trajectories:
            bag.add_topic(cell.arm.trajectory_topic, "trajectory_msgs/msg/JointTrajectory")
            for traj in recording.arm_trajectories:
                t_ns, raw = trajectory_message(traj)
                bag.write(cell.arm.trajectory_topic, raw, t_ns)
    return path
