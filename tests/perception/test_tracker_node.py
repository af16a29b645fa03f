"""pose_tracker with the `model` backend in-process: rendered depth + camera_info
in (sensor-data QoS), /dream/object/pose out with the image's stamp, the state
on /diagnostics, and wrong intrinsics reported there instead of a bad pose."""
from __future__ import annotations

import numpy as np
import pytest


def _msgs(frame, cell, k: int, fx: float | None = None):
    from sensor_msgs.msg import CameraInfo, Image

    cam = cell.camera
    h, w = frame.depth_mm.shape
    depth = Image(height=h, width=w, encoding="16UC1", is_bigendian=0, step=2 * w)
    depth.header.stamp.sec, depth.header.stamp.nanosec = 100 + k, 1234
    depth.header.frame_id = "camera_color_optical_frame"
    depth.data = frame.depth_mm.astype("<u2").tobytes()
    info = CameraInfo(width=w, height=h, distortion_model="plumb_bob")
    info.header = depth.header
    f = cam.fx if fx is None else fx
    info.k = [f, 0.0, cam.cx, 0.0, cam.fy if fx is None else fx, cam.cy, 0.0, 0.0, 1.0]
    return depth, info


@pytest.fixture
def tracker_node(ros_node, rclpy_context):
    from rclpy.parameter import Parameter

    from dream_perception.nodes.pose_tracker import PoseTrackerNode

    params = [Parameter("backend", value="model"), Parameter("object_id", value="domino")]
    node = ros_node.add(PoseTrackerNode(context=rclpy_context, parameter_overrides=params))
    return node


def _feed(ros_node, pubs, frames, cell, poses, fx=None, until=None):
    depth_pub, info_pub = pubs
    for k, frame in enumerate(frames):
        depth, info = _msgs(frame, cell, k, fx)
        target = (until or (lambda k=k: len(poses) > 0 and poses[-1].header.stamp.sec == 100 + k))
        for _ in range(5):   # best effort: a lost image is sent again
            info_pub.publish(info)
            depth_pub.publish(depth)
            try:
                ros_node.spin_until(target, 2.0, f"the pose of frame {k}")
                break
            except AssertionError:
                continue
        else:
            raise AssertionError(f"no output for frame {k}")



def _camera_publishers(ros_node):
    """Depth and camera_info publishers (sensor-data QoS), once the tracker has subscribed."""
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    pubs = (ros_node.node.create_publisher(Image, "/camera/camera/aligned_depth_to_color/image_raw",
                                           qos_profile_sensor_data),
            ros_node.node.create_publisher(CameraInfo, "/camera/camera/color/camera_info", qos_profile_sensor_data))
    ros_node.spin_until(lambda: ros_node.node.count_subscribers("/camera/camera/color/camera_info") > 0, 10,
                        "the tracker's subscription")
    return pubs

def test_model_backend_tracks_and_stamps_with_the_image(ros_node, tracker_node, domino_frames):
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseStamped

    from dream_perception.tracking.se3 import pose_error, pose_from_pos_quat

    cell = domino_frames["cell"]
    frames = domino_frames["pushed"][:8]
    poses = ros_node.collect(PoseStamped, "/dream/object/pose")
    diags = ros_node.collect(DiagnosticArray, "/diagnostics")
    pubs = _camera_publishers(ros_node)
    _feed(ros_node, pubs, frames, cell, poses)
    by_stamp = {p.header.stamp.sec: p for p in poses}
    for k, frame in enumerate(frames):
        p = by_stamp[100 + k]
        assert p.header.frame_id == "world" and p.header.stamp.nanosec == 1234
        est = pose_from_pos_quat([p.pose.position.x, p.pose.position.y, p.pose.position.z],
                                 [p.pose.orientation.w, p.pose.orientation.x, p.pose.orientation.y,
                                  p.pose.orientation.z])
        pos, rot = pose_error(est, frame.truth, tracker_node.image_backend.model.symmetries())
        assert pos < 3e-3 and np.degrees(rot) < 2.0
    ros_node.spin_until(lambda: any(s.message == "tracking" for d in diags for s in d.status), 5,
                        "a 'tracking' diagnostic")
    status = next(s for d in diags for s in d.status if s.message == "tracking")
    values = {kv.key: kv.value for kv in status.values}
    assert status.name == "dream/pose_tracker" and values["state"] == "tracking"
    assert 0.0 < float(values["fit_residual_mm"]) < 3.0


def test_wrong_intrinsics_are_reported_on_diagnostics(ros_node, tracker_node, domino_frames):
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
    from geometry_msgs.msg import PoseStamped

    poses = ros_node.collect(PoseStamped, "/dream/object/pose")
    diags = ros_node.collect(DiagnosticArray, "/diagnostics")
    pubs = _camera_publishers(ros_node)

    def error_seen():
        return any(s.level == DiagnosticStatus.ERROR for d in diags for s in d.status)

    _feed(ros_node, pubs, domino_frames["pushed"][:1], domino_frames["cell"], poses, fx=0.0, until=error_seen)
    status = next(s for d in diags for s in d.status if s.level == DiagnosticStatus.ERROR)
    assert "camera_info" in status.message and "focal lengths must be positive" in status.message
    assert poses == []
