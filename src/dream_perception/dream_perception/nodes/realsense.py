"""realsense: a D435i's colour and depth aligned to colour on realsense-ros 4.x
topics, so the tracker and bags see the same names with this node or the
vendor's (/camera/camera/color/image_raw, .../aligned_depth_to_color/image_raw,
.../color/camera_info; frame camera_color_optical_frame; sensor-data QoS).

Images are stamped with the device's frame time mapped onto ROS time
(dream_perception.realsense.clock). No camera (or a missing recording) is one
line on stderr and exit status 2."""
from __future__ import annotations

import sys
import threading

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from rclpy.time import Time
from sensor_msgs.msg import CameraInfo, Image

from dream_hw.errors import UserError
from dream_hw.nodes.runner import run_node
from dream_perception.realsense.capture import Capture, CapturedFrame, FrameSource, PipelineSource, StreamConfig
from dream_perception.realsense.clock import DeviceClock

OPTICAL_FRAME = "camera_color_optical_frame"


def _param(desc: str) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc)


def parse_profile(text: str) -> tuple[int, int, int]:
    """realsense-ros' 'width,height,fps' (also 'widthxheightxfps')."""
    parts = text.replace("x", ",").split(",")
    try:
        w, h, fps = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"parameter rgb_camera.color_profile should be 'width,height,fps', got {text!r}") from None
    if w <= 0 or h <= 0 or not 1 <= fps <= 90:
        raise UserError(f"parameter rgb_camera.color_profile out of range: {text!r}")
    return w, h, fps


class RealSenseNode(Node):
    def __init__(self, source: FrameSource | None = None, **kwargs):
        super().__init__("camera", namespace="camera", **kwargs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.capture: Capture | None = None
        # Dynamically typed: `serial_no:=123456789` arrives as an integer, as realsense-ros users write it.
        self.declare_parameter("serial_no", "", ParameterDescriptor(
            description="device serial number; empty: the first camera found", dynamic_typing=True))
        self.declare_parameter("rosbag_filename", "", _param("play this .bag recording instead of a device"))
        self.declare_parameter("rgb_camera.color_profile", "640,480,30", _param("colour width,height,fps"))
        self.declare_parameter("align_depth.enable", True, _param("publish depth aligned to colour (dream needs it)"))
        self.declare_parameter("frame_id", OPTICAL_FRAME, _param("frame of the images and camera_info"))
        self.declare_parameter("wait_timeout_ms", 2000, _param("warn when no frame arrives within this time"))
        p = lambda n: self.get_parameter(n).value  # noqa: E731
        if not p("align_depth.enable"):
            raise UserError("align_depth.enable:=false is not supported: dream's tracker needs depth aligned to colour")
        w, h, fps = parse_profile(p("rgb_camera.color_profile"))
        cfg = StreamConfig(w, h, fps, serial=str(p("serial_no")), playback_file=str(p("rosbag_filename")))
        self.frame_id = str(p("frame_id"))
        self.timeout_ms = int(p("wait_timeout_ms"))
        self.capture = Capture(source if source is not None else PipelineSource(cfg))
        self.clock_map = DeviceClock(ros_is_system_time=not self.get_parameter("use_sim_time").value)
        self.color_pub = self.create_publisher(Image, "~/color/image_raw", qos_profile_sensor_data)
        self.depth_pub = self.create_publisher(Image, "~/aligned_depth_to_color/image_raw", qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, "~/color/camera_info", qos_profile_sensor_data)
        self.published = 0
        self._thread = threading.Thread(target=self._loop, name="realsense-capture", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            assert self.capture is not None
            try:
                frame = self.capture.read(self.timeout_ms)
            except (RuntimeError, UserError) as exc:
                self.get_logger().error(f"capture failed: {exc}".splitlines()[0])
                return
            if frame is None:
                if not self._stop.is_set():
                    self.get_logger().warning(f"no frames for {self.timeout_ms} ms", throttle_duration_sec=5.0)
                continue
            self.publish(frame)

    def publish(self, frame: CapturedFrame) -> None:
        stamp_ns = self.clock_map.to_ros_ns(frame.device_ms, frame.domain, self.get_clock().now().nanoseconds)
        stamp = Time(nanoseconds=stamp_ns).to_msg()
        h, w = frame.depth_mm.shape
        color = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=w * 3)
        color.header.stamp, color.header.frame_id = stamp, self.frame_id
        color.data = frame.rgb.tobytes()
        depth = Image(height=h, width=w, encoding="16UC1", is_bigendian=0, step=w * 2)
        depth.header.stamp, depth.header.frame_id = stamp, self.frame_id
        depth.data = frame.depth_mm.astype("<u2").tobytes()
        i = frame.intrinsics
        info = CameraInfo(height=i.height, width=i.width, distortion_model=i.model)
        info.header.stamp, info.header.frame_id = stamp, self.frame_id
        info.d = list(i.coeffs)
        info.k = [i.fx, 0.0, i.cx, 0.0, i.fy, i.cy, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [i.fx, 0.0, i.cx, 0.0, 0.0, i.fy, i.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
        self.color_pub.publish(color)
        self.depth_pub.publish(depth)
        self.info_pub.publish(info)
        self.published += 1

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=max(1.0, self.timeout_ms / 1000.0 + 0.5))
        if self.capture is not None:
            self.capture.close()
            self.capture = None
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(RealSenseNode, "realsense", args)


if __name__ == "__main__":
    sys.exit(main())
