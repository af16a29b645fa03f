"""ROS 2 node for the LEAP hand: a thin shell around dream_hw.leap.driver.

Subscribes  /leap_hand/joint_cmd   sensor_msgs/JointState
            position = joint targets, rad, Allegro-style convention (flat hand = 0;
            the servos' LEAP angle minus pi), so commands share the zero of the
            MuJoCo twin and /leap_hand/joint_states; effort = per-joint torque
            limit (N m) -> Goal Current, capped; empty effort keeps the limits.
            Names (MJCF joints of config grasp_hand.motor_joints) select joints;
            without names, 16 values in Dynamixel id order.
Publishes   /leap_hand/joint_states  position, velocity, effort = present current x Kt
            /diagnostics             driver state, per-servo temperature and error bits

A plain rclpy node (not a lifecycle node): the driver opens and torques on
at start and torques off at exit, which is all a launch file needs here; a
lifecycle wrapper would add transitions nobody drives yet.

    python -m dream_hw.nodes.leap_driver --ros-args -p port:=/dev/ttyUSB0
"""
from __future__ import annotations

import math
import sys

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from dream_hw.cell import load_cell
from dream_hw.errors import EXIT_BAD_INPUT, UserError
from dream_hw.leap.config import LeapConfig
from dream_hw.leap.driver import DriverState, Health, LeapBusError, LeapDriver
from dream_hw.nodes.runner import StopRequest, spin_executor

# Commands: only the newest target matters; best effort accepts both reliable
# and best-effort publishers.
CMD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                     durability=DurabilityPolicy.VOLATILE)
# State and diagnostics: reliable like joint_state_broadcaster and diagnostic_updater.
STATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.VOLATILE)

OK, WARN, ERROR = DiagnosticStatus.OK, DiagnosticStatus.WARN, DiagnosticStatus.ERROR


def _float_range(lo: float, hi: float) -> list[FloatingPointRange]:
    return [FloatingPointRange(from_value=float(lo), to_value=float(hi), step=0.0)]


def _int_range(lo: int, hi: int) -> list[IntegerRange]:
    return [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]


class LeapDriverNode(Node):
    """Declares parameters, opens the driver, runs the loop on a timer."""

    def __init__(self, cell=None, **kwargs):
        super().__init__("leap_driver", **kwargs)
        base = LeapConfig.from_cell(cell or load_cell())
        p = self._declare
        port = p("port", base.port, "serial port of the hand's U2D2 / FTDI adapter")
        baud = p("baudrate", base.baudrate, "bus speed (the LEAP servos are reflashed to 4 Mbaud)",
                 integer_range=_int_range(9600, 4_000_000))
        self.rate_hz = p("rate_hz", 200.0, "control loop rate (1 sync read + 2 sync writes per cycle)",
                         floating_point_range=_float_range(1.0, 1000.0))
        kp = p("kp", base.kp, "Position P gain (84); ids 0, 4, 8 get side_gain_scale of it",
               integer_range=_int_range(0, 16383))
        kd = p("kd", base.kd, "Position D gain (80); ids 0, 4, 8 get side_gain_scale of it",
               integer_range=_int_range(0, 16383))
        side = p("side_gain_scale", base.side_gain_scale, "gain factor of the side joints (ids 0, 4, 8)",
                 floating_point_range=_float_range(0.0, 2.0))
        cur = p("default_current_ma", base.default_current_ma, "Goal Current until a command sets a limit (mA)",
                floating_point_range=_float_range(0.0, 2352.0))
        caps = p("current_cap_ma", list(base.current_cap_ma),
                 "hard per-joint Goal Current cap (mA): 1 value for all joints or 16; no command exceeds it")
        kt = p("torque_constant", base.torque_constant, "N m per A (XC330: ~0.52), effort <-> current",
               floating_point_range=_float_range(0.01, 5.0))
        timeout = p("command_timeout_s", base.command_timeout_s,
                    "watchdog: after this long without a command, hold the last measured position",
                    floating_point_range=_float_range(0.01, 60.0))
        toff = p("torque_off_on_shutdown", base.torque_off_on_shutdown, "torque off all servos when the node exits")
        rdt = p("return_delay_us", 0, "Return Delay Time to set (us, even); -1 leaves the servos' setting",
                integer_range=_int_range(-1, 508))
        lat = p("latency_timer_ms", base.latency_timer_ms,
                "USB adapter latency allowed in packet timeouts (1 if latency_timer is 1)",
                floating_point_range=_float_range(0.0, 50.0))
        health = p("health_period_s", base.health_period_s, "period of the error-status / temperature poll",
                   floating_point_range=_float_range(0.02, 10.0))
        reboots = p("max_reboots", base.max_reboots, "reboots of an overloaded servo before giving up",
                    integer_range=_int_range(0, 100))
        self.diag_period = 1.0 / p("diagnostics_rate_hz", 2.0, "rate of /diagnostics messages",
                                   floating_point_range=_float_range(0.1, 50.0))
        cmd_topic = p("cmd_topic", "/leap_hand/joint_cmd", "joint command topic (sensor_msgs/JointState)")
        state_topic = p("state_topic", "/leap_hand/joint_states", "joint state topic (sensor_msgs/JointState)")
        diag_topic = p("diagnostics_topic", "/diagnostics", "diagnostics topic")

        n = base.n
        caps = [float(c) for c in caps]
        if len(caps) == 1:
            caps = caps * n
        if len(caps) != n:
            raise UserError(f"parameter current_cap_ma: give 1 or {n} values, got {len(caps)}")
        self.cfg = base.with_(port=port, baudrate=baud, kp=kp, kd=kd, side_gain_scale=side,
                              default_current_ma=cur, current_cap_ma=tuple(caps), torque_constant=kt,
                              command_timeout_s=timeout, torque_off_on_shutdown=toff,
                              return_delay_us=None if rdt < 0 else rdt, latency_timer_ms=lat,
                              health_period_s=health, max_reboots=reboots).validate()
        self.names = list(self.cfg.joint_names)
        self.index = {name: k for k, name in enumerate(self.names)}
        self.error: Exception | None = None

        self.driver = LeapDriver(self.cfg)
        self.driver.open()
        self.get_logger().info(f"LEAP hand on {port}: {n} servos configured, holding position")

        self.state_pub = self.create_publisher(JointState, state_topic, STATE_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, diag_topic, STATE_QOS)
        self.create_subscription(JointState, cmd_topic, self._on_cmd, CMD_QOS)
        self.create_timer(1.0 / self.rate_hz, self._on_cycle)
        self.create_timer(self.diag_period, self._publish_diagnostics)

    def _declare(self, name: str, default, description: str, **ranges):
        desc = ParameterDescriptor(description=description, **ranges)
        return self.declare_parameter(name, default, desc).value

    # -- commands -------------------------------------------------------------------
    def _on_cmd(self, msg: JointState) -> None:
        if self.error is not None:
            return
        try:
            position = self._by_name(msg, list(msg.position), "position") if msg.position else None
            effort = self._by_name(msg, list(msg.effort), "effort") if msg.effort else None
            self.driver.command(position, effort)
        except ValueError as exc:
            self.get_logger().warning(f"ignoring joint_cmd: {exc}", throttle_duration_sec=2.0)
        except LeapBusError as exc:
            self._fail(exc)

    def _by_name(self, msg: JointState, values: list[float], field: str) -> np.ndarray:
        """Values in servo order; joints the message does not name stay NaN (= keep)."""
        n = self.cfg.n
        if not msg.name:
            if len(values) != n:
                raise ValueError(f"{field} has {len(values)} values without names; need {n} in id order")
            return np.asarray(values, dtype=float)
        if len(values) != len(msg.name):
            raise ValueError(f"{field} has {len(values)} values for {len(msg.name)} names")
        out = np.full(n, math.nan)
        for name, v in zip(msg.name, values):
            k = self.index.get(name)
            if k is None:
                raise ValueError(f"unknown joint {name!r} (expected {self.names})")
            out[k] = v
        return out

    # -- loop -------------------------------------------------------------------------
    def _on_cycle(self) -> None:
        if self.error is not None:
            return
        try:
            s = self.driver.step()
        except LeapBusError as exc:
            self._fail(exc)
            return
        msg = JointState()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.name = self.names
        msg.position = s.position.tolist()
        msg.velocity = s.velocity.tolist()
        msg.effort = s.effort.tolist()
        self.state_pub.publish(msg)

    def _fail(self, exc: Exception) -> None:
        self.error = exc
        self.get_logger().error(str(exc))
        self._publish_diagnostics()

    # -- diagnostics --------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        arr = DiagnosticArray()
        arr.header.stamp = self.get_clock().now().to_msg()
        arr.status = diagnostics(self.driver.health(), self.cfg.port)
        self.diag_pub.publish(arr)

    def destroy_node(self) -> None:
        """Releases the hand: torque off (parameter) and close the port."""
        self.driver.close()
        super().destroy_node()


def _kv(key: str, value) -> KeyValue:
    return KeyValue(key=key, value=str(value))


def diagnostics(h: Health, port: str) -> list[DiagnosticStatus]:
    """The driver's health as DiagnosticStatus entries (driver + one per servo)."""
    out = []
    level = OK
    message = "running" + (" (holding: no fresh command)" if h.holding else "")
    if h.state is DriverState.FAULT:
        level, message = ERROR, h.message
    elif h.state is DriverState.CLOSED:
        level, message = WARN, h.message
    elif h.comm.failed_cycles:
        level, message = WARN, f"no reading for {h.comm.failed_cycles} cycle(s): {h.comm.last_result}"
    out.append(DiagnosticStatus(level=level, name="leap_hand: driver", message=message, hardware_id=port, values=[
        _kv("state", h.state.value), _kv("holding", h.holding), _kv("loop_hz", f"{h.loop_hz:.1f}"),
        _kv("cycles", h.comm.cycles), _kv("retries", h.comm.retries), _kv("rx_timeouts", h.comm.rx_timeouts),
        _kv("rx_corrupt", h.comm.rx_corrupt)]))
    for s in h.servos:
        lvl, msg = OK, "ok"
        if s.error_bits or s.gave_up:
            lvl, msg = ERROR, f"hardware error: {s.errors}" + (" (reboots exhausted, torque off)" if s.gave_up else "")
        elif s.temperature_c >= h.max_temperature_c:
            lvl, msg = ERROR, f"temperature {s.temperature_c} C >= {h.max_temperature_c:g} C"
        elif s.temperature_c >= h.max_temperature_c - 5:
            lvl, msg = WARN, f"temperature {s.temperature_c} C"
        out.append(DiagnosticStatus(level=lvl, name=f"leap_hand: servo {s.id} ({s.joint})", message=msg,
                                    hardware_id=f"{port}#{s.id}", values=[
            _kv("temperature_c", s.temperature_c), _kv("hardware_error_status", s.error_bits),
            _kv("errors", s.errors or "none"), _kv("reboots", s.reboots)]))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv if argv is None else argv
    rclpy.init(args=args)
    stop = StopRequest().install()   # Ctrl-C / SIGTERM end the loop between cycles, not inside a transaction
    node = None
    code = 0
    try:
        node = LeapDriverNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        spin_executor(executor, stop, done=lambda: node.error is not None)
        if node.error is not None:
            print(f"leap_driver: error: {node.error}", file=sys.stderr)
            code = 1
    except UserError as exc:
        print(f"leap_driver: error: {exc}", file=sys.stderr)
        code = EXIT_BAD_INPUT
    except LeapBusError as exc:
        print(f"leap_driver: error: {exc}", file=sys.stderr)
        code = 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
