"""A RealSense without a camera: pyrealsense2's software device with a depth and
a colour sensor, fed numpy images. Frames take librealsense's path (frames
with profiles and timestamp domains, framesets, rs.align with the registered
depth->colour extrinsics), so the capture code and the node are exercised for real.

Pairing is done here, not by rs.syncer: with a software device, pyrealsense2
2.56's syncer matched only the second depth/colour pair and then emitted every
frame alone (any matcher, any timestamp domain). Frames are paired by frame
number and composed into a frameset by a processing block instead."""
from __future__ import annotations

import queue
import threading

import numpy as np

from dream_perception.realsense.capture import import_rs


class SoftwareCamera:
    """A software device streaming z16 depth and rgb8 colour of the same size."""

    def __init__(self, width: int, height: int, fx: float, fy: float, cx: float, cy: float, fps: int = 30,
                 depth_units: float = 0.001, depth_to_color_m=(0.0, 0.0, 0.0)):
        rs = import_rs()
        self.rs = rs
        self.width, self.height = width, height
        self.device = rs.software_device()
        self.depth_sensor = self.device.add_sensor("Depth")
        self.color_sensor = self.device.add_sensor("Color")
        intr = rs.intrinsics()
        intr.width, intr.height, intr.fx, intr.fy, intr.ppx, intr.ppy = width, height, fx, fy, cx, cy
        intr.model = rs.distortion.brown_conrady
        intr.coeffs = [0.0] * 5
        self.depth_profile = self.depth_sensor.add_video_stream(
            self._stream(rs.stream.depth, 0, 2, rs.format.z16, intr, fps))
        self.color_profile = self.color_sensor.add_video_stream(
            self._stream(rs.stream.color, 1, 3, rs.format.rgb8, intr, fps))
        self.depth_sensor.add_read_only_option(rs.option.depth_units, depth_units)
        self.depth_units = depth_units
        ext = rs.extrinsics()
        ext.rotation = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        ext.translation = list(depth_to_color_m)
        self.depth_profile.register_extrinsics_to(self.color_profile, ext)
        self._pending: dict[int, object] = {}
        self._pairs: queue.Queue = queue.Queue(maxsize=8)
        self._lock = threading.Lock()
        self.depth_sensor.open(self.depth_profile)
        self.color_sensor.open(self.color_profile)
        self.depth_sensor.start(self._on_frame)
        self.color_sensor.start(self._on_frame)
        self._keep: list[np.ndarray] = []   # librealsense reads the pixels after on_video_frame returns
        self.frame_number = 0
        self._closed = False

    def _on_frame(self, frame) -> None:
        frame.keep()
        with self._lock:
            n = frame.get_frame_number()
            other = self._pending.pop(n, None)
            if other is None:
                self._pending = {k: v for k, v in self._pending.items() if k > n - 4}
                self._pending[n] = frame
                return
        try:
            self._pairs.put_nowait((other, frame))
        except queue.Full:   # a slow reader drops the oldest pair, like a real camera's queue
            try:
                self._pairs.get_nowait()
            except queue.Empty:
                pass
            self._pairs.put_nowait((other, frame))

    def _stream(self, kind, uid: int, bpp: int, fmt, intr, fps: int):
        vs = self.rs.video_stream()
        vs.type, vs.index, vs.uid = kind, 0, uid
        vs.width, vs.height, vs.fps, vs.bpp, vs.fmt = self.width, self.height, fps, bpp, fmt
        vs.intrinsics = intr
        return vs

    def push(self, rgb: np.ndarray, depth_mm: np.ndarray, timestamp_ms: float,
             domain: str = "hardware_clock") -> None:
        """Injects one colour + depth pair with a device timestamp."""
        rs = self.rs
        dom = getattr(rs.timestamp_domain, domain)
        depth = np.ascontiguousarray(depth_mm, dtype=np.uint16)
        color = np.ascontiguousarray(rgb, dtype=np.uint8)
        self._keep = [depth, color]
        for sensor, profile, pixels, bpp in ((self.color_sensor, self.color_profile, color, 3),
                                             (self.depth_sensor, self.depth_profile, depth, 2)):
            f = rs.software_video_frame()
            f.pixels, f.stride, f.bpp = pixels, self.width * bpp, bpp
            f.timestamp, f.domain, f.frame_number = float(timestamp_ms), dom, self.frame_number
            f.profile = profile.as_video_stream_profile()
            if bpp == 2:
                f.depth_units = self.depth_units
            sensor.on_video_frame(f)
        self.frame_number += 1

    def source(self) -> "PairSource":
        return PairSource(self)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for s in (self.depth_sensor, self.color_sensor):
            try:
                s.stop()
                s.close()
            except RuntimeError:
                pass


class PairSource:
    """FrameSource over a SoftwareCamera: composes each depth/colour pair into a frameset."""

    def __init__(self, camera: SoftwareCamera):
        rs = camera.rs
        self.camera = camera
        self._out = rs.frame_queue(2, keep_frames=True)
        self._pair: tuple = ()
        self._block = rs.processing_block(self._compose)
        self._block.start(self._out)

    def _compose(self, frame, source) -> None:
        source.frame_ready(source.allocate_composite_frame(list(self._pair)))

    def wait(self, timeout_ms: int):
        try:
            self._pair = self.camera._pairs.get(timeout=timeout_ms / 1000.0)
        except queue.Empty:
            return None
        self._block.invoke(self._pair[0])
        ok, frames = self._out.try_wait_for_frame(max(1, timeout_ms))
        return frames.as_frameset() if ok else None

    def stop(self) -> None:
        self.camera.close()
