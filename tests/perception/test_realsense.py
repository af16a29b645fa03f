"""RealSense capture through pyrealsense2's software device (librealsense's frame,
frameset and rs.align path without a camera), the node on realsense-ros topics,
and the no-camera error."""
from __future__ import annotations

import numpy as np
import pytest

from ros_helpers import NodeProcess

W, H = 640, 480


def _images(k: int):
    depth = np.full((H, W), 700 + k, np.uint16)
    depth[100:200, 300:400] = 0                     # a hole stays a hole
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[..., 0], rgb[..., 1] = k, 255 - k
    return rgb, depth


def test_device_clock_keeps_device_spacing_and_host_time():
    from dream_perception.realsense.clock import DeviceClock

    clock = DeviceClock()
    first = clock.to_ros_ns(5000.0, "hardware_clock", 1_700_000_000_000_000_000)
    second = clock.to_ros_ns(5033.3, "hardware_clock", 1_700_000_000_050_000_000)   # arrived late
    assert first == 1_700_000_000_000_000_000 and second - first == 33_300_000
    assert clock.to_ros_ns(1.7e12, "global_time", 0) == 1_700_000_000_000_000_000
    sim = DeviceClock(ros_is_system_time=False)
    assert sim.to_ros_ns(1.7e12, "global_time", 42) == 42


def test_software_device_frames_are_aligned_and_complete():
    from dream_perception.realsense.capture import Capture
    from dream_perception.realsense.software import SoftwareCamera

    cam = SoftwareCamera(W, H, 615.0, 612.0, 321.5, 238.0)
    cap = Capture(cam.source())
    try:
        for k in range(4):
            rgb, depth = _images(k)
            cam.push(rgb, depth, 1000.0 + 33.3 * k)
            frame = cap.read(2000)
            assert frame is not None
            assert frame.frame_number == k and frame.domain == "hardware_clock"
            assert frame.device_ms == pytest.approx(1000.0 + 33.3 * k)
            assert np.array_equal(frame.rgb, rgb)
            # Identity extrinsics and equal intrinsics: aligned depth = the depth pushed.
            assert np.array_equal(frame.depth_mm, depth)
        i = frame.intrinsics
        assert (i.width, i.height, i.fx, i.fy, i.cx, i.cy) == (W, H, 615.0, 612.0, 321.5, 238.0)
        assert i.model == "plumb_bob" and len(i.coeffs) == 5
    finally:
        cap.close()


def test_node_publishes_realsense_ros_topics(ros_node, rclpy_context):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from dream_perception.nodes.realsense import RealSenseNode
    from dream_perception.realsense.software import SoftwareCamera

    cam = SoftwareCamera(W, H, 615.0, 615.0, 320.0, 240.0)
    node = ros_node.add(RealSenseNode(source=cam.source(), context=rclpy_context))
    color = ros_node.collect(Image, "/camera/camera/color/image_raw", qos_profile_sensor_data)
    depth = ros_node.collect(Image, "/camera/camera/aligned_depth_to_color/image_raw", qos_profile_sensor_data)
    info = ros_node.collect(CameraInfo, "/camera/camera/color/camera_info", qos_profile_sensor_data)
    ros_node.spin_until(lambda: ros_node.node.count_publishers("/camera/camera/color/camera_info") > 0, 10,
                        "the camera's publishers")
    k = 0
    while not (color and depth and info) or len(depth) < 3:
        rgb, d = _images(k % 50)
        cam.push(rgb, d, 2000.0 + 33.3 * k)
        k += 1
        ros_node.spin_until(lambda: node.published >= k, 5, f"frame {k} published")
        ros_node.executor.spin_once(timeout_sec=0.05)
        assert k < 60, "frames published but not received"
    ros_node.spin_until(lambda: len(info) >= 1 and len(color) >= 1, 5, "colour and camera_info")
    m = depth[-1]
    assert m.encoding == "16UC1" and (m.width, m.height) == (W, H)
    assert m.header.frame_id == "camera_color_optical_frame"
    arr = np.frombuffer(bytes(m.data), "<u2").reshape(H, W)
    assert arr[0, 0] >= 700 and arr[150, 350] == 0
    assert color[-1].encoding == "rgb8"
    assert list(info[-1].k) == [615.0, 0.0, 320.0, 0.0, 615.0, 240.0, 0.0, 0.0, 1.0]
    # Stamps follow the device clock's 33.3 ms spacing, the same on every topic of a frame.
    stamps = [s.header.stamp.sec * 10**9 + s.header.stamp.nanosec for s in depth]
    assert all(abs((b - a) % 33_300_000) < 1000 or abs((b - a) % 33_300_000 - 33_300_000) < 1000
               for a, b in zip(stamps, stamps[1:]))
    color_stamps = {(c.header.stamp.sec, c.header.stamp.nanosec) for c in color}
    assert any((d.header.stamp.sec, d.header.stamp.nanosec) in color_stamps for d in depth)


def test_no_camera_is_one_line_not_a_traceback():
    proc = NodeProcess("dream_perception.nodes.realsense", params={"serial_no": "123456789"})
    assert proc.proc.wait(30) == 2
    out = proc.output()
    proc.stop()
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("realsense: error: ")
    assert "RealSense" in lines[0]
