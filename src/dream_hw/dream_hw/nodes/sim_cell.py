"""sim_cell: the simulated cell behind the real drivers' topics.

Publishes /clock (simulation time), the arm's /joint_states (franka_ros2 names),
the Allegro driver's /allegroHand_0/joint_states and the true object pose on
/sim/object/pose_gt, and the RealSense's colour, aligned depth and camera_info
rendered from the twin (dream_hw.sim.camera); follows JointTrajectory messages like joint_trajectory_controller
and Allegro joint_cmd like the allegro_hand_ros 'pd' controller. Nodes of the real
cell run against it unchanged (with use_sim_time:=true).
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering; read when mujoco is first imported

import array  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np
import rclpy
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from dream_hw.cell import load_cell
from dream_hw.errors import UserError
from dream_hw.nodes.runner import run_node
from dream_hw.sim.camera import SimCamera
from dream_hw.sim.cell_sim import SimCell
from dream_hw.sim.leap_bus import SimLeapBus

CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
COLOR_TOPIC = "/camera/camera/color/image_raw"
DEPTH_TOPIC = "/camera/camera/aligned_depth_to_color/image_raw"
INFO_TOPIC = "/camera/camera/color/camera_info"


def to_time(seconds: float) -> Time:
    sec = int(seconds)
    return Time(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


def _range(lo: float, hi: float, text: str) -> ParameterDescriptor:
    return ParameterDescriptor(description=text,
                               floating_point_range=[FloatingPointRange(from_value=lo, to_value=hi)])


class SimCellNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sim_cell", **kwargs)
        self.declare_parameter("scene", "", ParameterDescriptor(description="twin MJCF (dream twin build)"))
        self.declare_parameter("cell", "", ParameterDescriptor(description="cell YAML (default config/cell.yaml)"))
        self.declare_parameter("real_time_factor", 1.0, _range(0.01, 100.0, "simulation speed vs wall clock"))
        self.declare_parameter("state_rate_hz", 100.0, _range(1.0, 1000.0, "joint state publishing rate"))
        self.declare_parameter("pose_rate_hz", 30.0, _range(1.0, 1000.0, "true object pose publishing rate"))
        self.declare_parameter("publish_clock", True, ParameterDescriptor(description="publish /clock"))
        self.declare_parameter("clock_rate_hz", 100.0, _range(10.0, 1000.0,
                               "/clock rate: every use_sim_time node wakes on each message, so keep it modest"))
        self.declare_parameter("camera_enabled", True, ParameterDescriptor(
            description="render and publish the simulated RealSense (colour, aligned depth, camera_info)"))
        self.declare_parameter("camera_rate_hz", 15.0, _range(1.0, 60.0, "camera frame rate in simulation time"))
        self.declare_parameter("leap_port_link", "/tmp/dream_leap_hand", ParameterDescriptor(
            description="grasp twins: symlink to the emulated LEAP bus's pty (give it to leap_driver's port)"))
        p = self.get_parameter
        cell_path = p("cell").value or None
        self.cell = load_cell(cell_path)
        scene = p("scene").value
        if not scene:
            raise UserError("parameter 'scene' is required: the twin MJCF to simulate")
        self.sim = SimCell(scene, self.cell)
        self.rtf = float(p("real_time_factor").value)
        self.publish_clock = bool(p("publish_clock").value)
        self.clock_period = 1.0 / float(p("clock_rate_hz").value)
        self._next_clock = 0.0
        self.state_period = 1.0 / float(p("state_rate_hz").value)
        self.pose_period = 1.0 / float(p("pose_rate_hz").value)

        self.clock_pub = self.create_publisher(Clock, "/clock", CLOCK_QOS)
        self.arm_pub = self.create_publisher(JointState, self.cell.arm.joint_states_topic, STATE_QOS)
        self.pose_pub = self.create_publisher(PoseStamped, "/sim/object/pose_gt", STATE_QOS)
        self.create_subscription(JointTrajectory, self.cell.arm.trajectory_topic, self.on_trajectory, STATE_QOS)
        self.hand_pub = None
        if self.sim.hand is not None and self.sim.hand is self.cell.push_hand:
            self.hand_pub = self.create_publisher(JointState, self.cell.push_hand.state_topic, STATE_QOS)
            self.create_subscription(JointState, self.cell.push_hand.cmd_topic, self.on_hand_cmd, STATE_QOS)
        self.create_service(Trigger, "/sim/reset", self.on_reset)
        self.create_service(Trigger, "/sim/reload", self.on_reload)
        self.lock = threading.Lock()  # physics vs the LEAP servo bus thread
        self.leap_bus: SimLeapBus | None = None
        if self.sim.hand is not None and self.sim.hand is self.cell.grasp_hand:
            self.leap_bus = SimLeapBus(self.sim, self.lock, p("leap_port_link").value)
            self.get_logger().info(f"LEAP hand on emulated Dynamixel bus {self.leap_bus.port}"
                                   + (f" (link {self.leap_bus.link})" if self.leap_bus.link else ""))
        self.camera: SimCamera | None = None
        if bool(p("camera_enabled").value):
            self._init_camera(float(p("camera_rate_hz").value))

        self._wall0 = time.monotonic()
        self._sim0 = self.sim.time
        self._next_state = 0.0
        self._next_pose = 0.0
        self.create_timer(0.002, self.tick)
        self.get_logger().info(f"simulating {scene} at {self.rtf:g}x real time")

    def tick(self) -> None:
        """Steps physics to catch up with wall time x real_time_factor, then publishes."""
        target = self._sim0 + (time.monotonic() - self._wall0) * self.rtf
        dt = self.sim.model.opt.timestep
        steps = int((target - self.sim.time) / dt)
        if steps > 200:  # fell far behind (debugger, overload): don't spiral, resync
            self._sim0, self._wall0, steps = self.sim.time, time.monotonic(), 200
        if steps <= 0:
            return
        with self.lock:
            self.sim.step(steps)
        now = self.sim.time
        stamp = to_time(now)
        if self.publish_clock and now >= self._next_clock:
            self._next_clock = now + self.clock_period
            self.clock_pub.publish(Clock(clock=stamp))
        if now >= self._next_state:
            self._next_state = now + self.state_period
            self.arm_pub.publish(self._joint_state(self.sim.arm_state(), stamp))
            if self.hand_pub is not None:
                self.hand_pub.publish(self._joint_state(self.sim.hand_state(), stamp))
        if self.sim.has_object and now >= self._next_pose:
            self._next_pose = now + self.pose_period
            pos, quat = self.sim.object_pose()
            msg = PoseStamped()
            msg.header.stamp = stamp
            msg.header.frame_id = self.cell.frames["world"]
            msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = map(float, pos)
            o = msg.pose.orientation
            o.w, o.x, o.y, o.z = map(float, quat)
            self.pose_pub.publish(msg)
        if self.camera is not None and now >= self._next_frame:
            # On the sim-time grid (no drift from tick granularity); a frame past due is skipped.
            due = self._next_frame + self.camera_period
            self._next_frame = due if due > now else now + self.camera_period
            self.on_camera()

    def _init_camera(self, rate_hz: float) -> None:
        self.camera = SimCamera(self.sim.model, self.cell.camera)
        self.color_pub = self.create_publisher(Image, COLOR_TOPIC, qos_profile_sensor_data)
        self.depth_pub = self.create_publisher(Image, DEPTH_TOPIC, qos_profile_sensor_data)
        self.info_pub = self.create_publisher(CameraInfo, INFO_TOPIC, qos_profile_sensor_data)
        f = self.camera.info()
        self.info_msg = CameraInfo(width=f.width, height=f.height, distortion_model=f.distortion_model,
                                   d=list(f.d), k=list(f.k), r=list(f.r), p=list(f.p))
        self.info_msg.header.frame_id = self.cell.frames["camera"]
        # Frames are due in simulation time and rendered from the physics tick
        # (no second timer: every wall timer adds executor overhead to the 500 Hz
        # tick); physics catches up on the next tick, so the sim keeps real time
        # while a frame costs less than its period (bench/sim_rtf.py).
        self.camera_period = 1.0 / rate_hz
        self._next_frame = 0.0

    def on_camera(self) -> None:
        """Renders only the images someone subscribes to (a frame costs ~30 ms on software GL)."""
        stamp = to_time(self.sim.time)  # the state the frame is rendered from
        if self.color_pub.get_subscription_count() > 0:
            self.color_pub.publish(self._image(self.camera.render_rgb(self.sim.data), "rgb8", stamp))
        if self.depth_pub.get_subscription_count() > 0:
            self.depth_pub.publish(self._image(self.camera.render_depth_mm(self.sim.data), "16UC1", stamp))
        self.info_msg.header.stamp = stamp
        self.info_pub.publish(self.info_msg)

    def _image(self, pixels: np.ndarray, encoding: str, stamp: Time) -> Image:
        h, w = pixels.shape[:2]
        msg = Image(height=h, width=w, encoding=encoding, is_bigendian=int(sys.byteorder == "big"),
                    step=w * pixels.itemsize * (pixels.shape[2] if pixels.ndim == 3 else 1))
        msg.header.stamp = stamp
        msg.header.frame_id = self.cell.frames["camera"]
        msg.data = array.array("B", pixels.tobytes())  # array.array skips rclpy's per-element check
        return msg

    def on_reload(self, request, response):
        """Loads the twin named by the (possibly changed) 'scene' parameter, e.g. after a new mass."""
        scene = self.get_parameter("scene").value
        try:
            sim = SimCell(scene, self.cell)
        except UserError as exc:
            response.success, response.message = False, str(exc)
            return response
        if (sim.hand is None) != (self.sim.hand is None) or (sim.hand is not None and sim.hand is not self.sim.hand):
            response.success = False
            response.message = "the new twin has another hand; restart sim_cell to switch between push and grasp twins"
            return response
        with self.lock:
            if self.leap_bus is not None:
                link = str(self.leap_bus.link or "")
                self.leap_bus.close()
                self.leap_bus = SimLeapBus(sim, self.lock, link)
            self.sim = sim
            if self.camera is not None:
                self.camera.close()
                self.camera = SimCamera(sim.model, self.cell.camera)
            self._wall0, self._sim0 = time.monotonic(), sim.time
            self._next_state = self._next_pose = self._next_clock = 0.0
            if self.camera is not None:
                self._next_frame = 0.0
        response.success, response.message = True, f"loaded {scene}"
        return response

    def destroy_node(self) -> None:
        """Releases the renderer and the emulated LEAP bus (and its pty link)."""
        # Also called by rclpy on a node whose __init__ failed half-way.
        for part in (getattr(self, "camera", None), getattr(self, "leap_bus", None)):
            if part is not None:
                part.close()
        super().destroy_node()

    @staticmethod
    def _joint_state(state, stamp: Time) -> JointState:
        msg = JointState()
        msg.header.stamp = stamp
        msg.name = list(state.names)
        msg.position = state.position.tolist()
        msg.velocity = state.velocity.tolist()
        msg.effort = state.effort.tolist()
        return msg

    def on_trajectory(self, msg: JointTrajectory) -> None:
        if not msg.points:
            self.sim.arm.hold(self.sim.arm_state().position)  # an empty trajectory stops the arm
            return
        times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
        positions = np.array([list(p.positions) for p in msg.points])
        try:
            self.sim.command_arm(list(msg.joint_names), times, positions)
        except ValueError as exc:
            self.get_logger().error(f"rejected trajectory: {exc}")

    def on_hand_cmd(self, msg: JointState) -> None:
        try:
            self.sim.command_hand(np.array(msg.position))
        except ValueError as exc:
            self.get_logger().error(f"rejected Allegro joint_cmd: {exc}")

    def on_reset(self, request, response):
        self.sim.reset()
        self._wall0, self._sim0 = time.monotonic(), self.sim.time
        self._next_state = self._next_pose = 0.0
        if self.camera is not None:
            self._next_frame = 0.0
        response.success = True
        response.message = "simulation reset to the 'home' keyframe"
        return response


def main(args: list[str] | None = None) -> int:
    return run_node(SimCellNode, "sim_cell", args)


if __name__ == "__main__":
    sys.exit(main())
