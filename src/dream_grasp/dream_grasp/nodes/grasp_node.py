"""grasp_node: grasps the tracked object with the trained policy and the current mass estimate.

Service /dream/grasp/execute (std_srvs/Trigger): waits for a fresh object pose and
fresh arm and LEAP joint states, predicts every candidate grasp for the object's
pose and mass (the identified mass from /dream/object/inertia once it has arrived,
`default_mass_kg` until then), picks the best-ranked one the planner reaches without
collision (and that holds in the twin, `twin_check`), then runs approach -> insert ->
close -> squeeze -> lift -> hold on the arm's JointTrajectory topic and
/leap_hand/joint_cmd, and judges success from the tracked poses (risen >= min_rise_m
above the pre-grasp height for hold_s). Response: success, and a JSON message with
the numbers (candidate, mass, force head, currents, rise, time held, rejections).

The ROS-free pieces do the work (policy, planner, execution, judge); this node
implements execution.GraspIO on its topics and clock (simulation time with
use_sim_time). As in push_executor, the service waits for motion while the
subscriptions keep updating, so the service lives on a second node spun by its own
single-threaded executor in another thread. A wall-clock timer re-sends the last
LEAP command (the driver's watchdog holds the measured position after 0.5 s without
one); after a successful grasp the node keeps holding the object that way.
"""
from __future__ import annotations

import json
import sys
import threading
import time

import numpy as np
import rclpy
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import InertiaStamped, PoseStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from dream_hw.cell import load_cell
from dream_hw.errors import UserError
from dream_hw.nodes.runner import run_node, spin_with_service_thread
from dream_grasp.force import GRIP_MARGIN

STATE_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
INERTIA_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
POLL_S = 0.01


def _float(desc: str, lo: float, hi: float) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, floating_point_range=[FloatingPointRange(from_value=lo, to_value=hi)])


def _int(desc: str, lo: int, hi: int) -> ParameterDescriptor:
    return ParameterDescriptor(description=desc, integer_range=[IntegerRange(from_value=lo, to_value=hi, step=1)])


def _duration(seconds: float) -> Duration:
    sec = int(seconds)
    return Duration(sec=sec, nanosec=int(round((seconds - sec) * 1e9)))


def _stamp(msg) -> float:
    return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9


class _Latest:
    """The newest message of a topic and how many have arrived."""

    def __init__(self):
        self.msg = None
        self.count = 0

    def put(self, msg) -> None:
        self.msg = msg
        self.count += 1


class GraspNode(Node):
    def __init__(self, **kwargs):
        super().__init__("grasp_node", **kwargs)
        self.declare_parameter("model_dir", "", ParameterDescriptor(
            description="exported grasp policy (dream-grasp-train --out): grasp_mlp.pt/.json, points.npy, grasps.npz"))
        self.declare_parameter("object_id", "", ParameterDescriptor(
            description="catalogue object id (mesh, friction, default mass); default: the model's object"))
        self.declare_parameter("planner", "cpu", ParameterDescriptor(
            description="arm motion planner: cpu (mink IK + MuJoCo collisions) or curobo (GPU)"))
        self.declare_parameter("curobo_robot_config", "", ParameterDescriptor(
            description="curobo only: cuRobo robot YAML of the arm with the LEAP hand (collision spheres)"))
        self.declare_parameter("cell", "", ParameterDescriptor(description="cell YAML (default config/cell.yaml)"))
        self.declare_parameter("trajectory_topic", "", ParameterDescriptor(
            description="the arm controller's JointTrajectory topic (default: the cell's arm.trajectory_topic)"))
        self.declare_parameter("joint_states_topic", "", ParameterDescriptor(
            description="the arm's JointState topic (default: the cell's arm.joint_states_topic)"))
        self.declare_parameter("pose_topic", "/dream/object/pose",
                               ParameterDescriptor(description="tracked object pose (PoseStamped, frame world)"))
        self.declare_parameter("inertia_topic", "/dream/object/inertia", ParameterDescriptor(
            description="identified mass (geometry_msgs/InertiaStamped, transient local)"))
        self.declare_parameter("default_mass_kg", 0.0, _float(
            "mass used until an identified one arrives on inertia_topic (0: the catalogue's mass)", 0.0, 20.0))
        self.declare_parameter("lift_m", 0.15, _float("how far the palm lifts the object (>= 12 cm)", 0.12, 0.4))
        self.declare_parameter("hold_s", 3.0, _float("how long the lifted object must stay up", 0.0, 60.0))
        self.declare_parameter("min_rise_m", 0.10, _float("rise above the pre-grasp height that counts as lifted",
                                                          0.01, 0.4))
        self.declare_parameter("pre_grasp_m", 0.08, _float("pre-grasp back-off along the palm normal", 0.02, 0.3))
        self.declare_parameter("grip_margin", GRIP_MARGIN, _float(
            "safety factor of the grip force over the static friction bound (default: the one "
            "calibrated in the grasp twin, dream_grasp.force)", 1.0, 20.0))
        self.declare_parameter("twin_check", True, ParameterDescriptor(
            description="try each candidate in the floating-hand twin at the current mass before moving the arm"))
        self.declare_parameter("attempts", 2, _int(
            "grasps per execute call: after a failed lift that left the object on the table, the next-ranked "
            "candidate is tried with a firmer grip (regrasp_force_gain)", 1, 10))
        self.declare_parameter("regrasp_force_gain", 1.5, _float(
            "force-head factor per re-grasp (the driver's current cap still bounds the grip)", 1.0, 4.0))
        self.declare_parameter("max_candidates", 0, _int("candidates tried in ranking order (0: all)", 0, 10000))
        self.declare_parameter("hand_rate_hz", 10.0, _float(
            "wall-clock rate of LEAP command re-sends (the driver's watchdog holds after 0.5 s without one)",
            2.0, 100.0))
        self.declare_parameter("wait_timeout_s", 10.0, _float(
            "wall-clock seconds to wait for fresh inputs, or for a clock that stopped, before giving up", 0.1, 300.0))
        p = lambda name: self.get_parameter(name).value  # noqa: E731

        from dream_grasp.execution import GraspTiming, RetryRule
        from dream_grasp.force import GripForceMapper
        from dream_grasp.hand_scene import FloatingHandScene, ServoFacts
        from dream_grasp.planner import PLANNERS, make_planner
        from dream_grasp.policy import GraspPolicy
        from dream_grasp.symmetry import mesh_symmetries
        from dream_grasp.trial import thumb_mask
        from dream_grasp.twin_check import TwinCheck
        from dream_sysid.catalogue import get_object
        from dream_sysid.twin.builder import ObjectPlacement, build_twin
        from dream_sysid.twin.object_geometry import ObjectGeometry

        self.cell = load_cell(p("cell") or None)
        if not p("model_dir"):
            raise UserError("parameter 'model_dir' is required: an exported grasp policy (dream-grasp-train --out)")
        self.policy = GraspPolicy(p("model_dir"))
        obj = get_object(p("object_id") or self.policy.object_id)
        if self.policy.object_id and obj.id != self.policy.object_id:
            self.get_logger().warning(f"the policy was trained on {self.policy.object_id!r}, grasping {obj.id!r}")
        self.object = obj
        self.default_mass = float(p("default_mass_kg")) or obj.mass_kg
        geometry = ObjectGeometry.from_file(obj.mesh_path)
        self.symmetries = mesh_symmetries(geometry.mesh.vertices)
        twin = build_twin(self.cell, geometry, kind="grasp", mass_kg=obj.mass_kg,
                          friction=obj.friction, placement=ObjectPlacement(*obj.pose_xy_yaw), object_id=obj.id)
        if self.policy.joint_names and tuple(self.policy.joint_names) != tuple(twin.hand_joints):
            raise UserError(f"{self.policy.model_dir}: the policy's joints {list(self.policy.joint_names)} are not "
                            f"the cell's LEAP joints {list(twin.hand_joints)}")
        planner = p("planner")
        if planner not in PLANNERS:
            raise UserError(f"parameter planner must be one of {PLANNERS}, got {planner!r}")
        options = {"pre_grasp_m": float(p("pre_grasp_m")), "lift_m": float(p("lift_m"))}
        if planner == "curobo":
            options["robot_config"] = p("curobo_robot_config")
        self.planner = make_planner(planner, twin, self.cell, **options)
        scene = FloatingHandScene(twin, ServoFacts.from_cell(self.cell))
        self.mapper = GripForceMapper(scene, self.policy.f_max, friction=obj.friction, margin=float(p("grip_margin")))
        self.check = TwinCheck(scene, self.mapper) if p("twin_check") else None
        self.thumb = thumb_mask(scene)
        self.timing = GraspTiming(hold_s=float(p("hold_s")))
        self.retry = RetryRule(attempts=int(p("attempts")), force_gain=float(p("regrasp_force_gain")))
        self.min_rise = float(p("min_rise_m"))
        self.max_candidates = int(p("max_candidates")) or None
        self.wait_timeout = float(p("wait_timeout_s"))
        self.twin = twin

        arm, hand = self.cell.arm, self.cell.grasp_hand
        self.arm_names = tuple(arm.driver_joint_names)
        if tuple(arm.joint_map.get(n, n) for n in self.arm_names) != tuple(twin.arm_joints):
            raise UserError(f"{self.cell.path}: arm.driver_joint_names {list(self.arm_names)} do not map to the "
                            f"twin's arm joints {list(twin.arm_joints)} in order (arm.joint_map)")
        self.hand_names = [hand.joint_map[k] for k in sorted(hand.joint_map, key=int)]
        self.traj_topic = p("trajectory_topic") or arm.trajectory_topic
        self.arm_topic = p("joint_states_topic") or arm.joint_states_topic
        self.pose_topic = p("pose_topic")
        self.lock = threading.Lock()
        self.pose, self.arm_state, self.hand_state, self.inertia = _Latest(), _Latest(), _Latest(), _Latest()
        self._heights: list[tuple[float, float]] = []
        self._hand_msg: JointState | None = None
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self.create_subscription(PoseStamped, self.pose_topic, self._on_pose, STATE_QOS)
        self.create_subscription(JointState, self.arm_topic, self._on_arm, STATE_QOS)
        self.create_subscription(JointState, hand.state_topic, lambda m: self._put(self.hand_state, m), STATE_QOS)
        self.create_subscription(InertiaStamped, p("inertia_topic"), lambda m: self._put(self.inertia, m), INERTIA_QOS)
        self.traj_pub = self.create_publisher(JointTrajectory, self.traj_topic, STATE_QOS)
        self.hand_pub = self.create_publisher(JointState, hand.cmd_topic, STATE_QOS)
        self.hand_cmd_topic = hand.cmd_topic
        self.create_timer(1.0 / float(p("hand_rate_hz")), self._resend_hand,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.service_node = rclpy.create_node("grasp_node_service", context=self.context)
        self.service_node.create_service(Trigger, "/dream/grasp/execute", self.on_execute)
        self.get_logger().info(f"grasp policy {self.policy.model_dir} ({len(self.policy)} candidates) for {obj.id}, "
                               f"planner {planner}, default mass {self.default_mass:.3f} kg")

    # -- subscriptions ---------------------------------------------------------------------------
    def _put(self, latest: _Latest, msg) -> None:
        with self.lock:
            latest.put(msg)

    def _on_pose(self, msg: PoseStamped) -> None:
        with self.lock:
            self.pose.put(msg)
            self._heights.append((_stamp(msg), float(msg.pose.position.z)))
            del self._heights[:-1000]

    def _on_arm(self, msg: JointState) -> None:
        self._put(self.arm_state, msg)

    def _resend_hand(self) -> None:
        with self.lock:
            msg = self._hand_msg
        if msg is not None:
            msg.header.stamp = self.get_clock().now().to_msg()
            self.hand_pub.publish(msg)

    # -- execution.GraspIO -----------------------------------------------------------------------
    def now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def sleep_until(self, t: float) -> None:
        from dream_grasp.execution import GraspAborted

        last, last_wall = self.now(), time.monotonic()
        while True:
            now = self.now()
            if now >= t:
                return
            if self._stop.is_set():
                raise GraspAborted("interrupted (node shutting down)")
            if now > last:
                last, last_wall = now, time.monotonic()
            elif time.monotonic() - last_wall > self.wait_timeout:
                raise GraspAborted(f"the clock stopped for {self.wait_timeout:.1f} s (is the simulation running?)")
            self._stop.wait(POLL_S)

    def send_arm(self, path) -> None:
        traj = JointTrajectory(joint_names=list(self.arm_names))
        traj.points = [JointTrajectoryPoint(positions=q, velocities=v, time_from_start=_duration(t))
                       for q, v, t in path.points()]
        self.traj_pub.publish(traj)       # header stamp 0: start at once

    def send_hand(self, cmd) -> None:
        msg = JointState(name=list(self.hand_names), position=[float(v) for v in cmd.positions],
                         effort=[float(v) for v in cmd.effort_nm])
        msg.header.stamp = self.get_clock().now().to_msg()
        with self.lock:
            self._hand_msg = msg
        self.hand_pub.publish(msg)

    def arm_joints(self) -> np.ndarray:
        from dream_grasp.execution import GraspAborted

        with self.lock:
            msg = self.arm_state.msg
        by_mjcf = {self.cell.arm.joint_map.get(n, n): q for n, q in zip(msg.name, msg.position)}
        missing = [j for j in self.twin.arm_joints if j not in by_mjcf]
        if missing:
            raise GraspAborted(f"{self.arm_topic} lacks arm joints {missing} (names {list(msg.name)})")
        return np.array([by_mjcf[j] for j in self.twin.arm_joints], float)

    def object_heights(self) -> list[tuple[float, float]]:
        with self.lock:
            out, self._heights = self._heights, []
        return out

    # -- the service -----------------------------------------------------------------------------
    def on_execute(self, request, response):
        from dream_grasp.execution import GraspAborted
        from dream_grasp.planner import PlanningFailed

        if not self._run_lock.acquire(blocking=False):
            response.success, response.message = False, "a grasp is already running"
            return response
        try:
            result = self._execute()
            response.success, response.message = bool(result["success"]), json.dumps(result)
        except (PlanningFailed, GraspAborted, UserError) as exc:
            response.success, response.message = False, json.dumps({"success": False, "error": str(exc)})
            self.get_logger().error(f"grasp failed: {exc}")
        finally:
            self._run_lock.release()
        (self.get_logger().info if response.success else self.get_logger().warning)(response.message)
        return response

    def _wait_fresh(self, latest: _Latest, what: str) -> None:
        from dream_grasp.execution import GraspAborted

        with self.lock:
            seen = latest.count
        deadline = time.monotonic() + self.wait_timeout
        while True:
            with self.lock:
                if latest.count > seen:
                    return
            if self._stop.is_set():
                raise GraspAborted(f"interrupted while waiting for {what}")
            if time.monotonic() > deadline:
                raise GraspAborted(f"timed out after {self.wait_timeout:.1f} s waiting for {what}")
            self._stop.wait(POLL_S)

    def _execute(self) -> dict:
        from dream_grasp.execution import run_attempts

        outcome, attempts = run_attempts(self, self._prepare, self.retry)
        last = attempts[-1]
        return {"success": outcome.success, "object_id": self.object.id, **self._plan_info, **last,
                "attempts": len(attempts),
                "earlier_attempts": [{k: a[k] for k in ("candidate", "force_gain", "current_ma_max", "judge")}
                                     for a in attempts[:-1]]}

    def _prepare(self, tried: frozenset[int], gain: float):
        """One attempt from fresh inputs: predict, choose (skipping `tried`), time the sequence."""
        from dream_grasp.execution import GraspAborted, GraspRunner, GraspSequence, choose_grasp, firmer
        from dream_grasp.planner import PlanningFailed
        from dream_grasp.policy import pose_matrix
        from dream_grasp.symmetry import upright

        self._wait_fresh(self.pose, f"a fresh object pose on {self.pose_topic}")
        self._wait_fresh(self.arm_state, f"fresh arm joint states on {self.arm_topic}")
        self._wait_fresh(self.hand_state, f"fresh LEAP joint states on {self.cell.grasp_hand.state_topic}")
        for pub, topic in ((self.traj_pub, self.traj_topic), (self.hand_pub, self.hand_cmd_topic)):
            if pub.get_subscription_count() == 0:
                raise GraspAborted(f"nothing subscribes to {topic}: is the controller / driver running?")
        with self.lock:
            pose, inertia = self.pose.msg, self.inertia.msg
        mass, source = (float(inertia.inertia.m), "identified") if inertia is not None and inertia.inertia.m > 0 \
            else (self.default_mass, "default")
        p, o = pose.pose.position, pose.pose.orientation
        # A symmetric object that rolled onto another face is planned for in its upright frame.
        object_pose = upright(pose_matrix([p.x, p.y, p.z], [o.w, o.x, o.y, o.z]), self.symmetries)
        arm_q = self.arm_joints()
        t0 = time.monotonic()
        prediction = self.policy.predict(object_pose, mass)
        try:
            chosen = firmer(choose_grasp(prediction, self.planner, arm_q, object_pose, self.thumb,
                                         self.max_candidates, check=self.check, exclude=tried), gain)
        except PlanningFailed as exc:     # say where the object was: a dropped one may have moved or rolled
            tilt = float(np.degrees(np.arccos(np.clip(object_pose[2, 2], -1.0, 1.0))))
            raise PlanningFailed(f"object at ({p.x:.3f}, {p.y:.3f}, {p.z:.3f}) m, its z axis {tilt:.0f} deg "
                                 f"from vertical: {exc}") from exc
        plan_s = time.monotonic() - t0
        sequence = GraspSequence(chosen, self.mapper, arm_q, np.array(self.cell.arm.max_velocity), self.timing)
        self._plan_info = {"object_xyz": [round(p.x, 4), round(p.y, 4), round(p.z, 4)],
                           "mass_kg": round(mass, 4), "mass_source": source, "planner": self.planner.name,
                           "plan_s": round(plan_s, 3), "rejections": [f"#{i}: {why}" for i, why in chosen.rejected[:5]]}
        self.get_logger().info(f"grasping {self.object.id} at {mass:.3f} kg ({source}) with candidate "
                               f"#{chosen.index} (score {chosen.score:.2f}, {len(chosen.rejected)} rejected, "
                               f"force x{gain:.2f}, planned in {plan_s:.2f} s): {sequence.duration:.1f} s of motion")
        return GraspRunner(sequence, p.z, min_rise_m=self.min_rise)

    def shutdown(self) -> None:
        """Stops a grasp in progress (its service call answers with the reason)."""
        self._stop.set()

    def destroy_node(self) -> None:
        if hasattr(self, "_stop"):  # rclpy also destroys a node whose __init__ failed half-way
            self.shutdown()
        if getattr(self, "service_node", None) is not None:
            self.service_node.destroy_node()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(GraspNode, "grasp_node", args, spin=spin_with_service_thread)


if __name__ == "__main__":
    sys.exit(main())
