"""The LEAP ROS node as its own process, over DDS, on the emulated hand (MuJoCo plant)."""
from __future__ import annotations

import math

import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from sensor_msgs.msg import JointState

from dream_hw.dynamixel.control_table import HardwareError
from dream_hw.dynamixel.emulator import DynamixelEmulator
from dream_hw.dynamixel.mujoco_plant import MujocoLeapPlant
from dream_hw.dynamixel.protocol import Instruction
from ros_helpers import NodeProcess, wait_for_publisher, wait_for_subscriber

MODULE = "dream_hw.nodes.leap_driver"


@pytest.fixture
def hand(cell):
    plant = MujocoLeapPlant.from_cell(cell)
    emu = DynamixelEmulator(range(16), plant, boot_time_s=0.05)
    emu.start()
    yield emu, plant
    emu.stop()


def start(emu) -> NodeProcess:
    return NodeProcess(MODULE, params={"port": emu.port, "rate_hz": 100.0, "diagnostics_rate_hz": 10.0,
                                       "health_period_s": 0.1})


def servo_status(box, dev_id: int) -> DiagnosticStatus | None:
    for arr in reversed(box):
        for st in arr.status:
            if st.name.startswith(f"leap_hand: servo {dev_id} "):
                return st
    return None


def test_node_moves_caps_reports_overload_and_torques_off(ros_node, hand, cell):
    emu, plant = hand
    names = [cell.grasp_hand.joint_map[str(i)] for i in range(16)]
    states = ros_node.collect(JointState, "/leap_hand/joint_states")
    diags = ros_node.collect(DiagnosticArray, "/diagnostics")
    pub = ros_node.node.create_publisher(JointState, "/leap_hand/joint_cmd", 10)
    node = start(emu)
    try:
        wait_for_publisher(ros_node, "/leap_hand/joint_states", 30, owner=node)
        wait_for_subscriber(ros_node, "/leap_hand/joint_cmd", 30)
        ros_node.spin_until(lambda: states, 10, "joint states")
        assert list(states[-1].name) == names

        cmd = JointState(name=["if_mcp", "mf_mcp"], position=[1.0, 0.9], effort=[5.0, 0.2])

        def moved() -> bool:
            pub.publish(cmd)                                    # a command stream, as the grasp node sends
            s = states[-1]
            return abs(s.position[1] - 1.0) < 0.05 and abs(s.position[5] - 0.9) < 0.05

        ros_node.spin_until(moved, 20, "if_mcp and mf_mcp at their targets")
        q = plant.joint_positions()
        assert abs(q[1] - 1.0) < 0.06 and abs(q[5] - 0.9) < 0.06     # the MuJoCo hand moved
        assert emu.register(1, "goal_current") == 550                 # 5 N m asked, capped
        assert emu.register(5, "goal_current") == math.floor(0.2 / 0.52 * 1000)
        assert max(w.value for w in emu.writes_to("goal_current")) <= 550
        assert abs(states[-1].effort[1]) <= 550 * 0.52 / 1000 + 1e-6

        # Overload on servo 5 -> ERROR in /diagnostics, reboot, back to OK
        emu.inject_hardware_error(5, HardwareError.OVERLOAD)
        ros_node.spin_until(lambda: (s := servo_status(diags, 5)) is not None and s.level == DiagnosticStatus.ERROR,
                            10, "servo 5 ERROR in /diagnostics")
        assert "overload" in servo_status(diags, 5).message
        ros_node.spin_until(lambda: emu.count(Instruction.REBOOT, 5) >= 1, 10, "reboot of servo 5")
        ros_node.spin_until(lambda: servo_status(diags, 5).level == DiagnosticStatus.OK, 10, "servo 5 OK again")
        assert emu.register(5, "torque_enable") == 1

        # No more commands -> the watchdog holds
        def holding() -> bool:
            for arr in reversed(diags):
                for st in arr.status:
                    if st.name == "leap_hand: driver":
                        return any(kv.key == "holding" and kv.value == "True" for kv in st.values)
            return False

        ros_node.spin_until(holding, 10, "the driver holding after commands stopped")
        assert node.alive()
    finally:
        code = node.stop()
    assert code == 0, node.log_path.read_text()
    assert all(emu.register(i, "torque_enable") == 0 for i in range(16)), node.log_path.read_text()


def test_node_exits_with_a_clear_error_when_unplugged(ros_node, hand):
    emu, plant = hand
    states = ros_node.collect(JointState, "/leap_hand/joint_states")
    node = start(emu)
    try:
        wait_for_publisher(ros_node, "/leap_hand/joint_states", 30, owner=node)
        ros_node.spin_until(lambda: states, 15, "joint states")
        port = emu.port
        emu.unplug()
        ros_node.spin_until(lambda: not node.alive(), 15, "the node to exit")
    finally:
        code = node.stop()
    out = node.log_path.read_text()
    assert code == 1, out
    assert f"leap_driver: error: LEAP hand port {port} disconnected" in out
    assert "Traceback" not in out


def test_node_bad_port_is_one_line_exit_2(ros_node):
    node = NodeProcess(MODULE, params={"port": "/dev/no-such-leap"})
    node.proc.wait(60)
    code = node.stop()
    out = node.log_path.read_text()
    assert code == 2, out
    assert "leap_driver: error: cannot open LEAP hand port /dev/no-such-leap" in out
