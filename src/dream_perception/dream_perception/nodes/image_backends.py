"""The image-based backends of pose_tracker (`model`, `foundationpose`): ROS
message conversion and per-frame bookkeeping around the ROS-free trackers, so
pose_tracker.py stays a thin node. Each frame's pose carries that frame's stamp."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sensor_msgs.msg import CameraInfo, Image

from dream_hw.errors import UserError
from dream_perception.tracking.intrinsics import Intrinsics
from dream_perception.tracking.object_model import ObjectModel
from dream_perception.tracking.se3 import inverse
from dream_perception.tracking.segment import Scene
from dream_perception.tracking.tracker import ModelTracker, TrackerConfig, TrackResult, TrackState


def depth_to_m(msg: Image) -> np.ndarray:
    """16UC1 (mm) or 32FC1 (m) -> float32 metres, 0 = no depth."""
    if msg.encoding in ("16UC1", "mono16"):
        dt = np.dtype(">u2" if msg.is_bigendian else "<u2")
        arr = np.frombuffer(msg.data, dt).reshape(msg.height, msg.step // 2)[:, :msg.width]
        return arr.astype(np.float32) * 0.001
    if msg.encoding == "32FC1":
        dt = np.dtype(">f4" if msg.is_bigendian else "<f4")
        arr = np.frombuffer(msg.data, dt).reshape(msg.height, msg.step // 4)[:, :msg.width]
        return np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    raise UserError(f"depth image encoding {msg.encoding!r} is not supported (16UC1 mm or 32FC1 m)")


def color_to_rgb(msg: Image) -> np.ndarray:
    if msg.encoding not in ("rgb8", "bgr8"):
        raise UserError(f"colour image encoding {msg.encoding!r} is not supported (rgb8 or bgr8)")
    arr = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)[:, :msg.width * 3]
    arr = arr.reshape(msg.height, msg.width, 3)
    return arr[:, :, ::-1].copy() if msg.encoding == "bgr8" else arr


def intrinsics_from_info(info: CameraInfo) -> Intrinsics:
    return Intrinsics.from_k(list(info.k), info.width, info.height, where="camera_info")


@dataclass
class FrameOutcome:
    state: str
    pose: np.ndarray | None          # world_from_object to publish (None: publish nothing)
    rms_m: float = float("inf")
    inlier_ratio: float = 0.0
    support: float = 0.0


class ModelBackend:
    """The CPU tracker: mesh + aligned depth, robust ICP (dream_perception.tracking)."""

    def __init__(self, model: ObjectModel, world_from_cam: np.ndarray, table_z: float, config: TrackerConfig,
                 initial_pose: np.ndarray | None):
        self.model = model
        self.world_from_cam = world_from_cam
        self.table_z = table_z
        self.config = config
        self.initial_pose = initial_pose
        self.tracker: ModelTracker | None = None
        self.intr: Intrinsics | None = None

    def set_intrinsics(self, intr: Intrinsics) -> None:
        if intr != self.intr:
            self.intr = intr
            scene = Scene(intr, self.world_from_cam, self.table_z)
            old = self.tracker
            self.tracker = ModelTracker(self.model, scene, self.config)
            start = old.pose if old is not None and old.pose is not None else self.initial_pose
            if start is not None:
                self.tracker.initialise(start)

    def initialise(self, pose: np.ndarray) -> None:
        self.initial_pose = pose
        if self.tracker is not None:
            self.tracker.initialise(pose)

    @property
    def needs_init(self) -> bool:
        return self.tracker is None or self.tracker.pose is None

    def process(self, depth_m: np.ndarray) -> FrameOutcome:
        assert self.tracker is not None
        res: TrackResult = self.tracker.step(depth_m)
        return FrameOutcome(res.state.value, res.pose if res.state == TrackState.TRACKING else None,
                            res.rms_m, res.inlier_ratio, res.support)


class FoundationPoseBackend:
    """FoundationPose registered once from a mask rendered at the initial pose, then tracking."""

    def __init__(self, tracker, model: ObjectModel, world_from_cam: np.ndarray, initial_pose: np.ndarray | None):
        self.fp = tracker
        self.model = model
        self.world_from_cam = world_from_cam
        self.initial_pose = initial_pose
        self.intr: Intrinsics | None = None

    def set_intrinsics(self, intr: Intrinsics) -> None:
        self.intr = intr

    def initialise(self, pose: np.ndarray) -> None:
        self.initial_pose = pose
        self.fp.registered = False

    @property
    def needs_init(self) -> bool:
        return self.initial_pose is None and not self.fp.registered

    def process(self, depth_m: np.ndarray, rgb: np.ndarray) -> FrameOutcome:
        from dream_perception.tracking.mask import object_mask

        assert self.intr is not None
        k = self.intr.K()
        if not self.fp.registered:
            if self.initial_pose is None:
                return FrameOutcome(TrackState.LOST.value, None)
            mask = object_mask(self.model, inverse(self.world_from_cam) @ self.initial_pose, self.intr)
            cam_obj = self.fp.register(rgb, depth_m, mask, k)
        else:
            cam_obj = self.fp.track(rgb, depth_m, k)
        return FrameOutcome(TrackState.TRACKING.value, self.world_from_cam @ cam_obj)
