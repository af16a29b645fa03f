"""A ROS-free rosbag2 recorder over rosbags: one bag directory (metadata.yaml +
mcap or sqlite3, rosbag2 format version 9), raw CDR messages with receive
timestamps in nanoseconds.

Raw bytes from an rclpy `raw=True` subscription are exactly the CDR that rosbags
reads, so a node records what it receives without deserialising it. The recorder
is thread-safe (subscription callbacks may write while another thread closes it),
close() is idempotent and writes metadata.yaml, which is what makes the bag
readable: nodes close it in their shutdown path.
"""
from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from types import TracebackType

from dream_hw.errors import UserError

STORAGES = ("mcap", "sqlite3")
BAG_VERSION = 9


@functools.lru_cache(maxsize=1)
def typestore():
    """The rosbags typestore of the newest ROS 2 distribution it knows (Kilted, else Jazzy)."""
    from rosbags.typesys import Stores, get_typestore

    for name in ("ROS2_KILTED", "ROS2_JAZZY"):
        if hasattr(Stores, name):
            return get_typestore(getattr(Stores, name))
    return get_typestore(Stores.LATEST)


def msgtype_name(msg_class: type) -> str:
    """'sensor_msgs/msg/JointState' for an rclpy message class (its module is sensor_msgs.msg._joint_state)."""
    package = msg_class.__module__.split(".")[0]
    return f"{package}/msg/{msg_class.__name__}"


def serialize(msg, msgtype: str) -> bytes:
    """CDR bytes of a rosbags message object (e.g. typestore().types['std_msgs/msg/String'](data=...))."""
    return bytes(typestore().serialize_cdr(msg, msgtype))


class BagRecorder:
    """Records raw CDR messages into a new rosbag2 directory.

        with BagRecorder(path, storage="mcap") as bag:
            bag.add_topic("/joint_states", "sensor_msgs/msg/JointState")
            bag.write("/joint_states", raw_bytes, receive_time_ns)
    """

    def __init__(self, path: str | Path, storage: str = "mcap"):
        from rosbags.rosbag2 import Writer
        from rosbags.rosbag2.enums import StoragePlugin

        if storage not in STORAGES:
            raise UserError(f"bag storage must be one of {STORAGES}, got {storage!r}")
        self.path = Path(path)
        if self.path.exists():
            raise UserError(f"bag directory {self.path} exists already (rosbag2 bags are never overwritten)")
        self.storage = storage
        self._lock = threading.Lock()
        self._connections: dict[str, object] = {}
        self.counts: dict[str, int] = {}
        self._closed = False
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self._writer = Writer(self.path, version=BAG_VERSION, storage_plugin=plugin)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer.open()
        except OSError as exc:
            raise UserError(f"cannot create bag directory {self.path}: {exc}") from None

    @property
    def closed(self) -> bool:
        return self._closed

    def add_topic(self, topic: str, msgtype: str) -> None:
        """Declares a topic and its type (e.g. 'sensor_msgs/msg/JointState'); adding it again is a no-op."""
        with self._lock:
            if self._closed:
                return
            known = self._connections.get(topic)
            if known is not None:
                if known.msgtype != msgtype:  # type: ignore[attr-defined]
                    raise ValueError(f"topic {topic} is recorded as {known.msgtype}, not {msgtype}")  # type: ignore[attr-defined]
                return
            if msgtype not in typestore().fielddefs:
                raise UserError(f"message type {msgtype} is unknown to the rosbags typestore")
            self._connections[topic] = self._writer.add_connection(topic, msgtype, typestore=typestore())
            self.counts[topic] = 0

    def write(self, topic: str, data: bytes | memoryview, t_ns: int) -> bool:
        """Writes one raw CDR message received at t_ns; returns False once the recorder is closed."""
        with self._lock:
            if self._closed:
                return False
            connection = self._connections.get(topic)
            if connection is None:
                raise ValueError(f"topic {topic} was not added to the bag")
            self._writer.write(connection, int(t_ns), bytes(data))
            self.counts[topic] += 1
            return True

    def write_string(self, topic: str, text: str, t_ns: int) -> bool:
        """Writes a std_msgs/msg/String (e.g. the /dream/push/info JSON)."""
        self.add_topic(topic, "std_msgs/msg/String")
        string = typestore().types["std_msgs/msg/String"]
        return self.write(topic, serialize(string(data=text), "std_msgs/msg/String"), t_ns)

    def write_json(self, topic: str, value: dict, t_ns: int) -> bool:
        return self.write_string(topic, json.dumps(value, sort_keys=False), t_ns)

    def close(self) -> None:
        """Finishes the storage file and writes metadata.yaml; safe to call more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._writer.close()

    def __enter__(self) -> "BagRecorder":
        return self

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:  # a recorder dropped without close() still leaves a readable bag
        try:
            if not self._closed and hasattr(self, "_writer"):
                self.close()
        except Exception:
            pass
