"""push_executor: runs a push program on the cell and records it as a push bag.

Service /dream/push/run (std_srvs/Trigger): waits for a fresh object pose and
fresh arm and hand joint states, plans the push (dream_sysid.push.planner),
commands the Allegro posture on the hand's joint_cmd and the JointTrajectory on
the arm controller's topic, and records one rosbag2 per run under `bag_root`
(raw subscriptions, receive times from the node clock: simulation time with
use_sim_time) holding the contract's topics plus /dream/push/info. Recording
stops `settle_s` (from the program) after the trajectory ends; the response
message is the bag's path.

The service callback waits while the subscriptions keep recording, so the
service lives on a second node spun by its own single-threaded executor in
another thread (rclpy's MultiThreadedExecutor burned a whole core dispatching
~330 messages/s here; two SingleThreadedExecutors use ~7 %). On Ctrl-C /
SIGTERM mid-run the bag is closed in the shutdown path and stays readable.
"""
from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from dream_hw.cell import load_cell
from dream_hw.nodes.runner import run_node, spin_with_service_thread
from dream_hw.errors import UserError
from dream_sysid.bag.reader import DEFAULT_BAG_ROOT, GROUND_TRUTH_TOPIC, INFO_TOPIC, POSE_TOPIC
from dream_sysid.bag.recorder import STORAGES, BagRecorder, msgtype_name

RECORD_QOS = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
COMMAND_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
CAMERA_TOPICS = {
    "/camera/camera/color/image_raw": Image,
    "/camera/camera/aligned_depth_to_color/image_raw": Image,
    "/camera/camera/color/camera_info": CameraInfo,
}
POLL_S = 0.01


def _float(desc: str, lo: float, hi: float) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, floating_point_range=[FloatingPointRange(from_value=lo, to_value=hi)])


def _duration(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


class RunFailed(Exception):
    """A run that could not start or finish; the message goes into the Trigger response."""


class _Latest:
    """The newest message of a topic and a counter to tell whether one arrived after a moment."""

    def __init__(self, msg_type):
        self.msg_type = msg_type
        self.msg = None
        self.count = 0


class PushExecutorNode(Node):
    def __init__(self, **kwargs):
        super().__init__("push_executor", **kwargs)
        self.declare_parameter("program", "sweep_release", ParameterDescriptor(
            description="push program: a YAML file, or a name in config/push_programs/ (sweep_release, slow_sweep, flick)"))
        self.declare_parameter("scene", "", ParameterDescriptor(
            description="twin MJCF of the cell with the object (dream twin build); used to plan and named in the bag"))
        self.declare_parameter("cell", "", ParameterDescriptor(description="cell YAML (default config/cell.yaml)"))
        self.declare_parameter("bag_root", DEFAULT_BAG_ROOT, ParameterDescriptor(
            description="folder that receives one push bag (rosbag2 directory) per run"))
        self.declare_parameter("storage", "mcap", ParameterDescriptor(description=f"bag storage: one of {STORAGES}"))
        self.declare_parameter("record_camera", False, ParameterDescriptor(
            description="also record the RealSense colour, aligned depth and camera_info (to re-track offline)"))
        self.declare_parameter("record_ground_truth", False, ParameterDescriptor(
            description=f"also record the simulator's true object pose {GROUND_TRUTH_TOPIC} (simulation only)"))
        self.declare_parameter("object_id", "", ParameterDescriptor(
            description="object id written into /dream/push/info (default: the twin's, from twin.yaml)"))
        self.declare_parameter("object_body", "object", ParameterDescriptor(description="object body in the twin"))
        self.declare_parameter("wait_timeout_s", 10.0, _float(
            "wall-clock seconds to wait for a fresh object pose and joint states before giving up", 0.1, 120.0))
        p = lambda name: self.get_parameter(name).value  # noqa: E731

        from dream_sysid.push.planner import PushPlanner
        from dream_sysid.push.program import load_program
        from dream_sysid.push.scene import load_twin

        self.cell = load_cell(p("cell") or None)
        self.program = load_program(p("program"))
        scene = p("scene")
        if not scene:
            raise UserError("parameter 'scene' is required: the twin MJCF of the cell with the object")
        self.scene = Path(scene).expanduser().resolve()
        self.twin = load_twin(self.scene, self.cell)
        self.planner = PushPlanner(self.twin, self.cell)
        self.storage = p("storage")
        if self.storage not in STORAGES:
            raise UserError(f"parameter storage must be one of {STORAGES}, got {self.storage!r}")
        self.bag_root = Path(p("bag_root")).expanduser()
        self.object_id = p("object_id") or self.twin.request.object_id
        self.object_body = p("object_body")
        self.wait_timeout = float(p("wait_timeout_s"))

        self._rec_lock = threading.Lock()
        self._recorder: BagRecorder | None = None
        self._run_lock = threading.Lock()
        self._stop = threading.Event()

        # Subscriptions record raw CDR (and keep the latest pose and joint states for planning).
        arm, hand = self.cell.arm, self.cell.push_hand
        self.pose = _Latest(PoseStamped)
        self.arm_state = _Latest(JointState)
        self.hand_state = _Latest(JointState)
        self.topics: dict[str, type] = {
            POSE_TOPIC: PoseStamped,
            arm.joint_states_topic: JointState,
            hand.state_topic: JointState,
            hand.cmd_topic: JointState,
            arm.trajectory_topic: JointTrajectory,
        }
        latest = {POSE_TOPIC: self.pose, arm.joint_states_topic: self.arm_state, hand.state_topic: self.hand_state}
        if p("record_ground_truth"):
            self.topics[GROUND_TRUTH_TOPIC] = PoseStamped
        sensor_topics = set()
        if p("record_camera"):
            self.topics.update(CAMERA_TOPICS)
            sensor_topics = set(CAMERA_TOPICS)
        self._record_group = ReentrantCallbackGroup()
        for topic, msg_type in self.topics.items():
            qos = qos_profile_sensor_data if topic in sensor_topics else RECORD_QOS
            self.create_subscription(msg_type, topic, self._recorder_callback(topic, latest.get(topic)), qos,
                                     raw=True, callback_group=self._record_group)

        self.hand_pub = self.create_publisher(JointState, hand.cmd_topic, COMMAND_QOS)
        self.traj_pub = self.create_publisher(JointTrajectory, arm.trajectory_topic, COMMAND_QOS)
        # The service on its own node, spun in its own thread (see module docstring).
        self.service_node = rclpy.create_node("push_executor_service", context=self.context)
        self.service_node.create_service(Trigger, "/dream/push/run", self.on_run)
        self.get_logger().info(f"push program {self.program.name!r} ({self.program.source}) on {self.scene}; "
                               f"bags under {self.bag_root} ({self.storage})")

    # -- recording ---------------------------------------------------------------------------
    def _recorder_callback(self, topic: str, latest: _Latest | None):
        def callback(raw: bytes) -> None:
            t_ns = self.get_clock().now().nanoseconds
            if latest is not None:
                latest.msg = deserialize_message(raw, latest.msg_type)
                latest.count += 1
            with self._rec_lock:
                if self._recorder is not None:
                    self._recorder.write(topic, raw, t_ns)
        return callback

    def _new_bag_path(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.bag_root / f"push-{self.program.name}-{stamp}"
        path, k = base, 1
        while path.exists():
            k += 1
            path = base.with_name(f"{base.name}-{k}")
        return path

    def _info(self, plan) -> dict:
        hand = self.cell.push_hand
        joint_map = dict(self.cell.arm.joint_map)
        joint_map.update({name: hand.prefix + mjcf for name, mjcf in hand.joint_map.items()})
        return {
            "object_id": self.object_id,
            "scene": str(self.scene),
            "object_body": self.object_body,
            "joint_map": joint_map,
            "program": self.program.to_dict(),
            "plan": plan.summary(),
            "cell": str(self.cell.path),
            "clock": "sim" if self.get_parameter("use_sim_time").value else "system",
            "topics": sorted(self.topics),
        }

    def _stop_recording(self) -> Path | None:
        with self._rec_lock:
            recorder, self._recorder = self._recorder, None
        if recorder is None:
            return None
        recorder.close()
        return recorder.path

    # -- the run -----------------------------------------------------------------------------
    def on_run(self, request, response):
        if not self._run_lock.acquire(blocking=False):
            response.success, response.message = False, "a push is already running"
            return response
        try:
            response.message = str(self._run())
            response.success = True
        except (RunFailed, UserError) as exc:
            response.success, response.message = False, str(exc)
            self.get_logger().error(f"push failed: {exc}")
        finally:
            self._stop_recording()
            self._run_lock.release()
        return response

    def _wait(self, predicate, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self._stop.is_set():
                raise RunFailed(f"interrupted while waiting for {what}")
            if time.monotonic() > deadline:
                raise RunFailed(f"timed out after {timeout:.1f} s waiting for {what}")
            self._stop.wait(POLL_S)

    def _run(self) -> Path:
        arm, hand = self.cell.arm, self.cell.push_hand
        counts = {k: v.count for k, v in (("pose", self.pose), ("arm", self.arm_state), ("hand", self.hand_state))}
        self._wait(lambda: self.pose.count > counts["pose"], self.wait_timeout, f"a fresh object pose on {POSE_TOPIC}")
        self._wait(lambda: self.arm_state.count > counts["arm"], self.wait_timeout,
                   f"fresh arm joint states on {arm.joint_states_topic}")
        self._wait(lambda: self.hand_state.count > counts["hand"], self.wait_timeout,
                   f"fresh hand joint states on {hand.state_topic}")
        for pub, topic in ((self.traj_pub, arm.trajectory_topic), (self.hand_pub, hand.cmd_topic)):
            if pub.get_subscription_count() == 0:
                raise RunFailed(f"nothing subscribes to {topic}: is the controller / driver running?")

        arm_q = self._arm_positions(self.arm_state.msg)
        pose = self.pose.msg
        pos = np.array([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z])
        o = pose.pose.orientation
        plan = self.planner.plan(self.program, arm_q, pos, np.array([o.w, o.x, o.y, o.z]))
        for warning in plan.warnings:
            self.get_logger().warning(warning)

        path = self._new_bag_path()
        recorder = BagRecorder(path, self.storage)
        for topic, msg_type in self.topics.items():
            recorder.add_topic(topic, msgtype_name(msg_type))
        recorder.write_json(INFO_TOPIC, self._info(plan), self.get_clock().now().nanoseconds)
        with self._rec_lock:
            self._recorder = recorder
        self.get_logger().info(f"recording {path}; push {self.program.name!r}: {plan.duration:.2f} s, "
                               f"contact at {plan.contact_time:.2f} s")

        t_start = self.get_clock().now()
        cmd = JointState(name=list(plan.hand_names), position=[float(v) for v in plan.hand_posture])
        cmd.header.stamp = t_start.to_msg()
        self.hand_pub.publish(cmd)
        traj = JointTrajectory(joint_names=list(plan.joint_names))
        traj.points = [JointTrajectoryPoint(positions=[float(v) for v in q], velocities=[float(v) for v in v_],
                                            time_from_start=_duration(float(t)))
                       for t, q, v_ in zip(plan.times, plan.positions, plan.velocities)]
        self.traj_pub.publish(traj)   # header stamp 0: start at once

        end_ns = t_start.nanoseconds + int((plan.duration + self.program.settle_s) * 1e9)
        wall_budget = 10.0 * (plan.duration + self.program.settle_s) + 30.0
        self._wait(lambda: self.get_clock().now().nanoseconds >= end_ns, wall_budget,
                   "the push to finish (is the clock running?)")
        closed = self._stop_recording()
        self.get_logger().info(f"push bag written: {closed}")
        return closed if closed is not None else path

    def _arm_positions(self, msg: JointState) -> np.ndarray:
        by_mjcf = {self.cell.arm.joint_map.get(n, n): q for n, q in zip(msg.name, msg.position)}
        missing = [j for j in self.twin.arm_joints if j not in by_mjcf]
        if missing:
            raise RunFailed(f"{self.cell.arm.joint_states_topic} lacks arm joints {missing} (names {list(msg.name)})")
        return np.array([by_mjcf[j] for j in self.twin.arm_joints], float)

    def shutdown(self) -> None:
        """Stops a run in progress and closes its bag (readable afterwards)."""
        self._stop.set()
        path = self._stop_recording()
        if path is not None:
            print(f"push_executor: closed {path} at shutdown", file=sys.stderr)

    def destroy_node(self) -> None:
        if hasattr(self, "_stop"):  # rclpy also destroys a node whose __init__ failed half-way
            self.shutdown()
        if getattr(self, "service_node", None) is not None:
            self.service_node.destroy_node()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(PushExecutorNode, "push_executor", args, spin=spin_with_service_thread)


if __name__ == "__main__":
    sys.exit(main())
