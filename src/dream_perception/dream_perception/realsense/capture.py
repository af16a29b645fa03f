"""Colour and depth aligned to colour from a RealSense, as numpy arrays with the
colour stream's intrinsics: what the realsense node publishes, without ROS.

Frames come from a `FrameSource`: a live device or a .bag recording through
rs.pipeline, or any object with wait(timeout_ms) -> frameset (a software device
in tests). Alignment is librealsense's rs.align to colour."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from dream_hw.errors import UserError
from dream_perception.tracking.intrinsics import Intrinsics


def import_rs():
    """pyrealsense2, or one clear line saying how to get it."""
    try:
        import pyrealsense2 as rs
    except ImportError as exc:
        raise UserError(f"pyrealsense2 is not importable ({exc}); install it (pip install pyrealsense2) "
                        "and Debian's libusb-1.0-0") from None
    return rs


@dataclass(frozen=True)
class StreamConfig:
    width: int = 640
    height: int = 480
    fps: int = 30
    serial: str = ""                # empty: the first device found
    playback_file: str = ""         # a .bag recording instead of a device
    playback_realtime: bool = True  # False: as fast as it is read (tests, offline re-tracking)


@dataclass(frozen=True)
class ColorIntrinsics(Intrinsics):
    """The tracker's pinhole camera plus the device's distortion, for camera_info."""

    model: str = "plumb_bob"        # sensor_msgs distortion model: plumb_bob / rational_polynomial / equidistant
    coeffs: tuple[float, ...] = ()


@dataclass(frozen=True)
class CapturedFrame:
    rgb: np.ndarray                 # (H, W, 3) uint8
    depth_mm: np.ndarray            # (H, W) uint16, aligned to colour, 0 = no depth
    device_ms: float                # colour frame timestamp (device clock, ms)
    domain: str                     # timestamp domain name
    frame_number: int
    intrinsics: ColorIntrinsics


class FrameSource(Protocol):
    def wait(self, timeout_ms: int): ...
    def stop(self) -> None: ...


_MODELS = {"brown_conrady": "plumb_bob", "inverse_brown_conrady": "plumb_bob", "modified_brown_conrady": "plumb_bob",
           "kannala_brandt4": "equidistant", "ftheta": "equidistant", "none": "plumb_bob"}


def color_intrinsics(profile) -> ColorIntrinsics:
    """The colour stream's intrinsics in sensor_msgs/CameraInfo terms."""
    i = profile.as_video_stream_profile().get_intrinsics()
    name = str(i.model).split(".")[-1]
    coeffs = tuple(float(c) for c in i.coeffs)
    return ColorIntrinsics(int(i.width), int(i.height), float(i.fx), float(i.fy), float(i.ppx), float(i.ppy),
                           _MODELS.get(name, "plumb_bob"), coeffs if name != "kannala_brandt4" else coeffs[:4])


class PipelineSource:
    """A live camera (by serial) or a .bag file, through rs.pipeline."""

    def __init__(self, cfg: StreamConfig):
        rs = import_rs()
        self.pipeline = rs.pipeline()
        config = rs.config()
        if cfg.playback_file:
            path = Path(cfg.playback_file)
            if not path.is_file():
                raise UserError(f"playback file {path} does not exist")
            config.enable_device_from_file(str(path), repeat_playback=False)
        else:
            devices = rs.context().query_devices()
            serials = [d.get_info(rs.camera_info.serial_number) for d in devices]
            if not serials:
                raise UserError("no RealSense camera connected (check the USB 3 cable, udev rules and that no "
                                "other process holds the camera), or play a .bag recording instead")
            if cfg.serial and cfg.serial not in serials:
                raise UserError(f"no RealSense with serial {cfg.serial}; connected: {', '.join(serials)}")
            if cfg.serial:
                config.enable_device(cfg.serial)
            config.enable_stream(rs.stream.color, cfg.width, cfg.height, rs.format.rgb8, cfg.fps)
            config.enable_stream(rs.stream.depth, 0, 0, rs.format.z16, cfg.fps)
        try:
            profile = self.pipeline.start(config)
        except RuntimeError as exc:
            raise UserError(f"could not start the RealSense streams: {exc}".splitlines()[0]) from None
        if cfg.playback_file:
            playback = profile.get_device().as_playback()
            playback.set_real_time(cfg.playback_realtime)

    def wait(self, timeout_ms: int):
        ok, frames = self.pipeline.try_wait_for_frames(timeout_ms)
        return frames if ok else None

    def stop(self) -> None:
        try:
            self.pipeline.stop()
        except RuntimeError:
            pass


class Capture:
    """Turns framesets into CapturedFrames: aligned, copied out of librealsense's buffers."""

    def __init__(self, source: FrameSource):
        rs = import_rs()
        self.rs = rs
        self.source = source
        self.align = rs.align(rs.stream.color)

    def read(self, timeout_ms: int = 1000) -> CapturedFrame | None:
        """The next complete colour + depth pair, or None on timeout. Sets holding
        only one stream (the syncer emits those when a partner is late) are skipped."""
        rs = self.rs
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            frames = self.source.wait(max(1, left))
            if frames is None:
                return None
            fs = frames.as_frameset() if hasattr(frames, "as_frameset") else frames
            if fs.first_or_default(rs.stream.color) and fs.first_or_default(rs.stream.depth):
                break
            if left <= 0:
                return None
        aligned = self.align.process(fs)
        color, depth = aligned.get_color_frame(), aligned.get_depth_frame()
        if not color or not depth:
            return None
        rgb = np.asanyarray(color.get_data())
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise UserError(f"colour stream is not rgb8 (got an array of shape {rgb.shape})")
        scale_mm = depth.get_units() * 1000.0 if hasattr(depth, "get_units") else 1.0
        raw = np.asanyarray(depth.get_data())
        depth_mm = raw.copy() if abs(scale_mm - 1.0) < 1e-6 else \
            np.clip(np.rint(raw * scale_mm), 0, 65535).astype(np.uint16)
        return CapturedFrame(rgb.copy(), depth_mm, float(color.get_timestamp()),
                             str(color.get_frame_timestamp_domain()).split(".")[-1],
                             int(color.get_frame_number()), color_intrinsics(color.get_profile()))

    def close(self) -> None:
        self.source.stop()
