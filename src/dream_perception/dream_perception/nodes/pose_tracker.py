"""pose_tracker: publishes the tracked object pose on /dream/object/pose.

Backends (parameter `backend`):
- `sim`: the simulated cell's true pose (/sim/object/pose_gt) with tracker-like
  noise, dropped frames and latency, standing in for a tracker in simulation;
- `external`: relays another tracker's PoseStamped (e.g. isaac_ros_foundationpose
  on a GPU machine of the cell) into the contract's topic, keeping its stamp;
- `model` (CPU, the default for the real cell): the object mesh fitted to the
  aligned depth by robust ICP from the previous pose, initialised from a
  configured pose or an ArUco marker, with lost-track detection and search;
- `foundationpose`: NVlabs FoundationPose in-process (GPU + weights; imported
  only when selected), registered from a mask rendered at the initial pose.
The header stamp is always the stamp of the measurement it came from. The image
backends publish their state (tracking / lost / reinitialising, fit residual) on
/diagnostics at every change and once a second.
"""
from __future__ import annotations

import collections
import sys

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from dream_hw.errors import UserError
from dream_hw.nodes.runner import run_node
from dream_perception.pose_noise import NoisyTracker, TrackingNoise

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
BACKENDS = ("sim", "external", "model", "foundationpose")


IMAGE_BACKENDS = ("model", "foundationpose")
DEPTH_TOPIC = "/camera/camera/aligned_depth_to_color/image_raw"
INFO_TOPIC = "/camera/camera/color/camera_info"
COLOR_TOPIC = "/camera/camera/color/image_raw"


def _float(desc: str, lo: float, hi: float) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, floating_point_range=[FloatingPointRange(from_value=lo, to_value=hi)])


def _int(desc: str, lo: int, hi: int) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, integer_range=[IntegerRange(from_value=lo, to_value=hi, step=1)])


class PoseTrackerNode(Node):
    def __init__(self, **kwargs):
        super().__init__("pose_tracker", **kwargs)
        self.declare_parameter("backend", "sim", ParameterDescriptor(description=f"one of {BACKENDS}"))
        self.declare_parameter("input_topic", "/sim/object/pose_gt",
                               ParameterDescriptor(description="pose topic relayed by the sim/external backends"))
        self.declare_parameter("output_topic", "/dream/object/pose", ParameterDescriptor(description="tracked pose"))
        self.declare_parameter("frame_id", "world", ParameterDescriptor(description="frame of the published pose"))
        self.declare_parameter("position_noise_m", 0.002, _float("sim: position noise sigma (m)", 0.0, 0.1))
        self.declare_parameter("rotation_noise_deg", 1.0, _float("sim: rotation noise sigma (deg)", 0.0, 30.0))
        self.declare_parameter("drop_rate", 0.05, _float("sim: fraction of dropped frames", 0.0, 0.99))
        self.declare_parameter("latency_s", 0.03, _float("sim: delay before a pose is published (s)", 0.0, 1.0))
        self.declare_parameter("seed", 0, ParameterDescriptor(description="sim: noise seed"))
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        backend = p("backend")
        if backend not in BACKENDS:
            raise UserError(f"parameter backend must be one of {BACKENDS}, got {backend!r}")
        self.frame_id = p("frame_id")
        self.backend = backend
        self.received = self.published = 0
        if backend in IMAGE_BACKENDS:
            self._init_image_backend(backend)
            return
        noise = TrackingNoise(p("position_noise_m"), np.radians(p("rotation_noise_deg")), p("drop_rate"))
        if backend == "external":
            noise = TrackingNoise(0.0, 0.0, 0.0)
        self.tracker = NoisyTracker(noise, int(p("seed")))
        self.latency = float(p("latency_s")) if backend == "sim" else 0.0
        self.queue: collections.deque[tuple[float, PoseStamped]] = collections.deque()
        self.pub = self.create_publisher(PoseStamped, p("output_topic"), QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS)
        self.create_subscription(PoseStamped, p("input_topic"), self.on_pose, QOS)
        self.create_timer(0.005, self.flush)
        self.create_timer(1.0, self.publish_diagnostics)

    # ------------------------------------------------------------ image backends
    def _init_image_backend(self, backend: str) -> None:
        from dream_hw.cell import load_cell
        from dream_perception.tracking.icp import IcpConfig
        from dream_perception.tracking.object_model import ObjectModel
        from dream_perception.tracking.tracker import TrackerConfig

        d = ParameterDescriptor
        self.declare_parameter("object_id", "", d(description="catalogue object to track (config/objects)"))
        self.declare_parameter("mesh_path", "", d(description="object mesh (OBJ/STL/PLY, metres); overrides object_id"))
        self.declare_parameter("catalogue", "", d(description="catalogue.yaml; empty: dream's config/objects"))
        self.declare_parameter("cell", "", d(description="cell description; empty: config/cell.yaml (camera pose, table)"))
        self.declare_parameter("initial_pose", Parameter.Type.DOUBLE_ARRAY,
                               d(description="[x, y, z, qw, qx, qy, qz] world pose to start from; unset: the "
                                             "catalogue's resting pose of object_id"))
        self.declare_parameter("init_source", "pose", d(description="'pose' (initial_pose) or 'aruco' (a marker)"))
        self.declare_parameter("aruco_dictionary", "DICT_4X4_50", d(description="OpenCV ArUco dictionary"))
        self.declare_parameter("aruco_marker_id", 0, _int("ArUco marker id on the object", 0, 1023))
        self.declare_parameter("aruco_marker_size_m", 0.03, _float("ArUco marker side (m)", 0.005, 0.5))
        self.declare_parameter("aruco_marker_in_object", [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0],
                               d(description="[x, y, z, qw, qx, qy, qz] of the marker in the object frame"))
        self.declare_parameter("depth_topic", DEPTH_TOPIC, d(description="aligned depth (16UC1 mm)"))
        self.declare_parameter("info_topic", INFO_TOPIC, d(description="colour camera_info"))
        self.declare_parameter("color_topic", COLOR_TOPIC, d(description="colour (for ArUco / FoundationPose)"))
        self.declare_parameter("icp_iterations", 12, _int("ICP iterations per frame", 1, 100))
        self.declare_parameter("max_points", 800, _int("measured points per frame", 50, 20000))
        self.declare_parameter("margin_m", 0.02, _float("motion allowed between frames beyond the prediction (m)",
                                                        0.002, 0.2))
        self.declare_parameter("max_rms_mm", 3.0, _float("largest accepted fit residual (mm)", 0.1, 50.0))
        self.declare_parameter("min_inlier_ratio", 0.65, _float("smallest accepted inlier fraction", 0.0, 1.0))
        self.declare_parameter("min_support", 0.7, _float("smallest fraction of the unoccluded visible surface "
                                                          "the depth must confirm", 0.0, 1.0))
        self.declare_parameter("foundationpose_dir", "", d(description="NVlabs/FoundationPose checkout (with weights/)"))
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        try:
            initial = self.get_parameter("initial_pose").value
        except Exception:  # ParameterUninitializedException: not given
            initial = None
        cell = load_cell(p("cell") or None)
        object_id, mesh_path = str(p("object_id")), str(p("mesh_path"))
        if mesh_path:
            model = ObjectModel.from_file(mesh_path)
        elif object_id:
            model = ObjectModel.from_catalogue(object_id, p("catalogue") or None)
        else:
            raise UserError(f"backend {backend!r} needs the object: set object_id (catalogue) or mesh_path")
        self.world_from_cam = cell.camera.pose_in_world.matrix()
        init_pose = self._initial_pose(initial, model, object_id, cell)
        self.init_source = str(p("init_source"))
        if self.init_source not in ("pose", "aruco"):
            raise UserError(f"parameter init_source must be 'pose' or 'aruco', got {self.init_source!r}")
        self.aruco = None
        if self.init_source == "aruco":
            from dream_perception.tracking.aruco import MarkerInitialiser, MarkerSpec
            from dream_perception.tracking.se3 import pose_from_pos_quat

            m = [float(v) for v in p("aruco_marker_in_object")]
            if len(m) != 7:
                raise UserError("parameter aruco_marker_in_object must be [x, y, z, qw, qx, qy, qz]")
            self.aruco = MarkerInitialiser(MarkerSpec(str(p("aruco_dictionary")), int(p("aruco_marker_id")),
                                                      float(p("aruco_marker_size_m")),
                                                      pose_from_pos_quat(m[:3], m[3:])))
            init_pose = None
        from dream_perception.nodes.image_backends import FoundationPoseBackend, ModelBackend

        if backend == "model":
            cfg = TrackerConfig(icp=IcpConfig(iterations=int(p("icp_iterations"))), max_points=int(p("max_points")),
                                margin_m=float(p("margin_m")), max_rms_m=float(p("max_rms_mm")) / 1000.0,
                                min_inlier_ratio=float(p("min_inlier_ratio")), min_support=float(p("min_support")))
            self.image_backend = ModelBackend(model, self.world_from_cam, cell.table.top_z, cfg, init_pose)
        else:
            from dream_perception.tracking.foundationpose import FoundationPoseTracker

            if init_pose is None and self.aruco is None:
                raise UserError("backend 'foundationpose' needs an initial pose or init_source:=aruco for its mask")
            fp = FoundationPoseTracker(model.source, str(p("foundationpose_dir")))
            self.image_backend = FoundationPoseBackend(fp, model, self.world_from_cam, init_pose)
        self.needs_color = self.aruco is not None or backend == "foundationpose"
        self.latest_info: CameraInfo | None = None
        self.colors: collections.OrderedDict = collections.OrderedDict()
        self.state = "lost"
        self.error = ""
        self.last = None
        self.pub = self.create_publisher(PoseStamped, p("output_topic"), QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", QOS)
        self.create_subscription(CameraInfo, p("info_topic"), self.on_info, qos_profile_sensor_data)
        self.create_subscription(Image, p("depth_topic"), self.on_depth, qos_profile_sensor_data)
        if self.needs_color:
            self.create_subscription(Image, p("color_topic"), self.on_color, qos_profile_sensor_data)
        self.create_timer(1.0, self.publish_diagnostics)

    def _initial_pose(self, initial, model, object_id: str, cell) -> np.ndarray | None:
        from dream_perception.tracking.se3 import make_pose, pose_from_pos_quat, yaw_rotation

        if initial is not None and len(initial) > 0:
            if len(initial) != 7:
                raise UserError(f"parameter initial_pose must be [x, y, z, qw, qx, qy, qz], got {list(initial)}")
            if np.linalg.norm(initial[3:]) < 1e-9:
                raise UserError("parameter initial_pose has a zero quaternion")
            q = np.asarray(initial[3:], float)
            return pose_from_pos_quat(initial[:3], q / np.linalg.norm(q))
        if object_id:
            from dream_sysid.catalogue import get_object

            x, y, yaw = get_object(object_id, self.get_parameter("catalogue").value or None).pose_xy_yaw
            return make_pose(yaw_rotation(yaw), np.array([x, y, cell.table.top_z - model.bottom_z]))
        return None

    def on_info(self, msg: CameraInfo) -> None:
        self.latest_info = msg

    def on_color(self, msg: Image) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        self.colors[key] = msg
        while len(self.colors) > 5:
            self.colors.popitem(last=False)

    def _fail(self, message: str) -> None:
        if message != self.error:
            self.get_logger().error(message)
        self.error = message
        self._set_state("error")

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.publish_diagnostics()

    def on_depth(self, msg: Image) -> None:
        from dream_perception.nodes.image_backends import color_to_rgb, depth_to_m, intrinsics_from_info

        self.received += 1
        if self.latest_info is None:
            return
        try:
            intr = intrinsics_from_info(self.latest_info)
            depth = depth_to_m(msg)
            intr.check_image(depth.shape, "aligned depth image")
            self.image_backend.set_intrinsics(intr)
            rgb = None
            if self.needs_color:
                color = self.colors.get((msg.header.stamp.sec, msg.header.stamp.nanosec))
                if color is None:
                    return   # its colour frame has not arrived (yet): skip, the next depth comes in 33 ms
                rgb = color_to_rgb(color)
            if self.aruco is not None and self.image_backend.needs_init and rgb is not None:
                pose = self.aruco.object_pose(rgb, intr, self.world_from_cam, depth)
                if pose is not None:
                    self.image_backend.initialise(pose)
            if self.image_backend.needs_init:
                self._set_state("lost")
                return
            out = (self.image_backend.process(depth, rgb) if self.backend == "foundationpose"
                   else self.image_backend.process(depth))
        except UserError as exc:
            self._fail(str(exc))
            return
        self.error = ""
        self.last = out
        if out.pose is not None:
            self._publish_pose(msg.header.stamp, out.pose)
        self._set_state(out.state)

    def _publish_pose(self, stamp, pose: np.ndarray) -> None:
        from dream_perception.tracking.se3 import matrix_to_quat

        out = PoseStamped()
        out.header.stamp = stamp
        out.header.frame_id = self.frame_id
        out.pose.position.x, out.pose.position.y, out.pose.position.z = map(float, pose[:3, 3])
        q = out.pose.orientation
        q.w, q.x, q.y, q.z = map(float, matrix_to_quat(pose[:3, :3]))
        self.pub.publish(out)
        self.published += 1

    def on_pose(self, msg: PoseStamped) -> None:
        self.received += 1
        pos = np.array([msg.pose.position.x, msg.pose.position.y, msg.pose.position.z])
        o = msg.pose.orientation
        measured = self.tracker.measure(pos, np.array([o.w, o.x, o.y, o.z]))
        if measured is None:
            return
        out = PoseStamped()
        out.header.stamp = msg.header.stamp
        out.header.frame_id = self.frame_id
        out.pose.position.x, out.pose.position.y, out.pose.position.z = map(float, measured[0])
        q = out.pose.orientation
        q.w, q.x, q.y, q.z = map(float, measured[1])
        self.queue.append((self.get_clock().now().nanoseconds * 1e-9 + self.latency, out))
        self.flush()

    def flush(self) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        while self.queue and self.queue[0][0] <= now:
            self.pub.publish(self.queue.popleft()[1])
            self.published += 1

    def publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name="dream/pose_tracker", hardware_id=self.backend)
        values = [KeyValue(key="backend", value=self.backend),
                  KeyValue(key="received", value=str(self.received)),
                  KeyValue(key="published", value=str(self.published))]
        if self.backend in IMAGE_BACKENDS:
            levels = {"tracking": DiagnosticStatus.OK, "error": DiagnosticStatus.ERROR}
            status.level = levels.get(self.state, DiagnosticStatus.WARN)
            status.message = self.error if self.state == "error" else self.state
            if self.latest_info is None and self.state != "error":
                status.message = "lost (no camera_info yet)"
            last = self.last
            values += [KeyValue(key="state", value=self.state),
                       KeyValue(key="fit_residual_mm",
                                value=f"{last.rms_m * 1000:.3f}" if last and np.isfinite(last.rms_m) else "nan"),
                       KeyValue(key="inlier_ratio", value=f"{last.inlier_ratio:.3f}" if last else "nan"),
                       KeyValue(key="support", value=f"{last.support:.3f}" if last else "nan")]
        else:
            tracking = self.received > 0
            status.level = DiagnosticStatus.OK if tracking else DiagnosticStatus.WARN
            status.message = "tracking" if tracking else "lost"
        status.values = values
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(PoseTrackerNode, "pose_tracker", args)


if __name__ == "__main__":
    sys.exit(main())
