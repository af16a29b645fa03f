"""pose_tracker: publishes the tracked object pose on /dream/object/pose.

Backends (parameter `backend`):
- `sim`: the simulated cell's true pose (/sim/object/pose_gt) with tracker-like
  noise, dropped frames and latency, standing in for a tracker in simulation;
- `external`: relays another tracker's PoseStamped (e.g. isaac_ros_foundationpose
  on a GPU machine of the cell) into the contract's topic, keeping its stamp;
- `model`, `foundationpose`: the image-based trackers (dream_perception issue).
The header stamp is always the stamp of the measurement it came from.
"""
from __future__ import annotations

import collections
import sys

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from dream_hw.errors import UserError
from dream_hw.nodes.runner import run_node
from dream_perception.pose_noise import NoisyTracker, TrackingNoise

QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
BACKENDS = ("sim", "external", "model", "foundationpose")


def _float(desc: str, lo: float, hi: float) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, floating_point_range=[FloatingPointRange(from_value=lo, to_value=hi)])


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
        if backend in ("model", "foundationpose"):
            raise UserError(f"backend {backend!r} is not available in this build yet; use 'sim' or 'external'")
        self.frame_id = p("frame_id")
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
        self.received = self.published = 0
        self.backend = backend

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
        tracking = self.received > 0
        status.level = DiagnosticStatus.OK if tracking else DiagnosticStatus.WARN
        status.message = "tracking" if tracking else "lost"
        status.values = [KeyValue(key="backend", value=self.backend),
                         KeyValue(key="received", value=str(self.received)),
                         KeyValue(key="published", value=str(self.published))]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(PoseTrackerNode, "pose_tracker", args)


if __name__ == "__main__":
    sys.exit(main())
