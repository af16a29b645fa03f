"""The ROS-free LEAP driver on the real dynamixel-sdk against the emulated bus."""
from __future__ import annotations

import math
import time

import numpy as np
import pytest

from dream_hw.dynamixel.control_table import HardwareError
from dream_hw.dynamixel.emulator import DynamixelEmulator
from dream_hw.dynamixel.plant import FirstOrderPlant
from dream_hw.dynamixel.protocol import Instruction
from dream_hw.errors import UserError
from dream_hw.leap import conventions as conv
from dream_hw.leap.config import LeapConfig
from dream_hw.leap.driver import DriverState, LeapBusError, LeapDriver


class FakeClock:
    """The driver's clock (watchdog, health period) under test control."""

    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def base_config(cell):
    return LeapConfig.from_cell(cell)


@pytest.fixture
def rig(base_config):
    plant = FirstOrderPlant(16, tau=0.01)
    emu = DynamixelEmulator(range(16), plant, boot_time_s=0.05)
    port = emu.start()
    clock = FakeClock()
    drv = LeapDriver(base_config.with_(port=port, health_period_s=0.2), clock=clock)
    yield emu, plant, drv, clock
    drv.close()
    emu.stop()


def run_until(drv, pred, timeout=5.0, what="condition", clock=None, dt=0.005):
    """Steps the driver (advancing the fake clock by dt per cycle) until pred() holds."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        if clock is not None:
            clock.t += dt
        drv.step()


def test_open_configures_every_servo(rig):
    emu, plant, drv, clock = rig
    drv.open()
    for i in range(16):
        kp, kd = (450, 150) if i in (0, 4, 8) else (600, 200)
        assert emu.register(i, "operating_mode") == 5
        assert emu.register(i, "position_p_gain") == kp and emu.register(i, "position_d_gain") == kd
        assert emu.register(i, "goal_current") == 350
        assert emu.register(i, "torque_enable") == 1
        assert emu.register(i, "return_delay_time") == 0
        # goal = where the joint was, written before torque on: no jump at start
        assert emu.register(i, "goal_position") == 2048
    assert all(w.accepted for w in emu.writes), [w for w in emu.writes if not w.accepted]
    mode_writes = emu.writes_to("operating_mode")
    first_torque_on = min(w.t for w in emu.writes_to("torque_enable") if w.value == 1)
    assert len(mode_writes) == 16 and all(w.t < first_torque_on for w in mode_writes)
    assert drv.holding


def test_commands_move_joints_and_are_clamped_to_the_model(rig):
    emu, plant, drv, clock = rig
    drv.open()
    q = np.zeros(16)
    q[1], q[2] = 1.2, 0.8
    q[0] = 3.0                      # if_rot spans +-1.047: clamped
    drv.command(q)
    run_until(drv, lambda: abs(drv.last.position[1] - 1.2) < 0.01, what="if_mcp at 1.2 rad", clock=clock)
    s = drv.last
    assert abs(s.position[2] - 0.8) < 0.01
    assert abs(s.position[0] - 1.047) < 0.01
    assert abs(plant.positions()[1] - (1.2 + math.pi)) < 0.02     # LEAP = Allegro + pi on the servo
    top = round((1.047 + math.pi) * 2048 / math.pi)
    assert max(w.value for w in emu.writes_to("goal_position", 0)) == top


def test_torque_limit_is_capped(rig):
    emu, plant, drv, clock = rig
    drv.open()
    tau = np.full(16, 0.1)
    tau[7] = 5.0                     # 9615 mA asked, cap 550
    drv.command(None, tau)
    drv.step()
    assert emu.register(7, "goal_current") == 550
    assert emu.register(3, "goal_current") == 192                  # 0.1 / 0.52 * 1000
    assert max(w.value for w in emu.writes_to("goal_current")) <= 550
    drv.command(None, [float("nan")] * 16)                          # NaN keeps the limits
    drv.step()
    assert emu.writes_to("goal_current", 7)[-1].value == 550


def test_stale_commands_hold_the_measured_position(rig):
    emu, plant, drv, clock = rig
    drv.open()
    plant.block(5, math.pi + 0.3)              # an object stops mf_mcp at 0.3 rad
    q = np.zeros(16)
    q[5] = 1.0
    drv.command(q)
    run_until(drv, lambda: abs(drv.last.position[5] - 0.3) < 0.005, what="mf_mcp against the object",
              clock=clock)
    assert not drv.holding
    assert emu.writes_to("goal_position", 5)[-1].value == round((1.0 + math.pi) * 2048 / math.pi)
    clock.t += 0.6                              # command_timeout_s = 0.5
    drv.step()
    assert drv.holding
    held = emu.writes_to("goal_position", 5)[-1].value
    assert abs(held - round((0.3 + math.pi) * 2048 / math.pi)) <= 2   # measured, not the old target
    drv.command(q)                              # a fresh command resumes
    drv.step()
    assert not drv.holding


def test_overload_reboots_and_reapplies_config(rig):
    emu, plant, drv, clock = rig
    drv.open()
    emu.inject_hardware_error(9, HardwareError.OVERLOAD)
    assert emu.register(9, "torque_enable") == 0
    run_until(drv, lambda: emu.count(Instruction.REBOOT, 9) == 1, what="reboot of servo 9", clock=clock,
              dt=0.05)
    assert emu.register(9, "hardware_error_status") == 0
    assert emu.register(9, "torque_enable") == 1 and emu.register(9, "goal_current") == 350
    assert emu.register(9, "position_p_gain") == 600
    assert drv.health().servos[9].reboots == 1


def test_persistent_overload_gives_up_after_bounded_reboots(rig):
    emu, plant, drv, clock = rig
    drv.cfg = drv.cfg.with_(max_reboots=2)
    drv.open()
    emu.inject_hardware_error(2, HardwareError.OVERLOAD, sticky=True)
    run_until(drv, lambda: drv.health().servos[2].gave_up, what="giving up on servo 2", clock=clock, dt=0.05)
    for _ in range(10):
        clock.t += 0.05
        drv.step()
    assert emu.count(Instruction.REBOOT, 2) == 2
    assert emu.register(2, "torque_enable") == 0
    assert drv.state is DriverState.RUNNING and drv.last.fresh          # the other joints carry on


def test_dropped_and_corrupted_packets_are_retried(rig):
    emu, plant, drv, clock = rig
    drv.open()
    emu.faults.drop(2)
    assert drv.step().fresh                    # 2 losses < 1 + 2 retries
    emu.faults.corrupt(2)
    assert drv.step().fresh
    h = drv.health().comm
    assert h.rx_timeouts == 2 and h.rx_corrupt == 2 and h.retries >= 4
    emu.faults.drop(3)                         # a whole cycle lost: stale reading, no crash
    assert not drv.step().fresh
    assert drv.step().fresh and drv.comm.failed_cycles == 0
    emu.faults.drop_rate = emu.faults.corrupt_rate = 0.05
    for _ in range(40):
        drv.step()
    assert drv.state is DriverState.RUNNING


def test_unplugged_port_is_a_clear_error_and_a_quiet_state(rig):
    emu, plant, drv, clock = rig
    drv.open()
    emu.unplug()
    with pytest.raises(LeapBusError, match=f"{emu.port}.*disconnected"):
        drv.step()
    assert drv.state is DriverState.FAULT and drv.port is None
    with pytest.raises(LeapBusError):
        drv.command(np.zeros(16))
    with pytest.raises(LeapBusError):
        drv.step()
    drv.close()                                 # no exception, nothing to send to
    assert drv.health().state is DriverState.FAULT


def test_close_turns_torque_off(rig):
    emu, plant, drv, clock = rig
    drv.open()
    drv.step()
    drv.close()
    assert all(emu.register(i, "torque_enable") == 0 for i in range(16))
    assert drv.state is DriverState.CLOSED


def test_close_can_keep_torque(base_config):
    with DynamixelEmulator(range(16), FirstOrderPlant(16)) as emu:
        drv = LeapDriver(base_config.with_(port=emu.port, torque_off_on_shutdown=False))
        drv.open()
        drv.close()
        assert all(emu.register(i, "torque_enable") == 1 for i in range(16))


def test_open_errors_name_the_problem(base_config):
    with pytest.raises(UserError, match="/dev/does-not-exist"):
        LeapDriver(base_config.with_(port="/dev/does-not-exist")).open()
    with DynamixelEmulator(range(15), FirstOrderPlant(15)) as emu:
        drv = LeapDriver(base_config.with_(port=emu.port, latency_timer_ms=1.0))
        with pytest.raises(UserError, match=r"id\(s\) \[15\]"):
            drv.open()
        assert drv.port is None


def test_a_late_reply_is_not_taken_for_an_overload(rig):
    # A status packet that arrives after its read timed out lands inside the next
    # transaction. Parsed as the Hardware Error Status reply (the SDK takes the first
    # packet with the right id), its first byte looks like an overload and the driver
    # would reboot the servo (torque off mid-grasp).
    import os

    from dynamixel_sdk import COMM_SUCCESS

    from dream_hw.dynamixel.protocol import encode_status

    emu, plant, drv, clock = rig
    drv.open()
    first = drv.cfg.ids[0]                       # the sync read parses the first servo's reply first
    late = encode_status(first, 0, bytes([HardwareError.OVERLOAD] + [0] * 9))   # a 10-byte state reply
    group = drv._gsr_err
    injected = []

    def late_reply_then_read():
        result = group.txPacket()
        if not injected:
            os.write(emu._master, late)         # arrives after the request, before the real replies
            injected.append(True)
        return group.rxPacket() if result == COMM_SUCCESS else result

    group.txRxPacket = late_reply_then_read
    drv._next_health = 0.0
    drv.step()
    assert injected
    assert emu.count(Instruction.REBOOT, first) == 0
    assert emu.register(first, "torque_enable") == 1
    assert drv.health().servos[0].error_bits == 0
    # A real overload is still acted on.
    emu.inject_hardware_error(first, HardwareError.OVERLOAD)
    run_until(drv, lambda: emu.count(Instruction.REBOOT, first) == 1, what="reboot of the servo", clock=clock,
              dt=0.05)


def test_a_short_stray_reply_in_the_state_read_is_retried_not_parsed(rig):
    # A late 1-byte reply (to a health read that timed out) arriving inside the state sync read
    # is taken by the SDK as the first servo's state reply; its 4-byte fields would then be read
    # past the end of that reply (IndexError, seen in CI on the emulated bus under load).
    import os

    from dynamixel_sdk import COMM_SUCCESS

    from dream_hw.dynamixel.protocol import encode_status

    emu, plant, drv, clock = rig
    drv.open()
    first = drv.cfg.ids[0]
    group = drv._gsr
    injected = []

    def stray_reply_then_read():
        result = group.txPacket()
        if not injected:
            os.write(emu._master, encode_status(first, 0, bytes([0])))
            injected.append(True)
        return group.rxPacket() if result == COMM_SUCCESS else result

    group.txRxPacket = stray_reply_then_read
    clock.t += 0.05
    state = drv.step()
    assert injected and drv.comm.rx_corrupt >= 1 and drv.comm.retries >= 1
    assert state.fresh and len(group.data_dict[first]) == 10
    ticks = np.array([emu.register(i, "present_position") for i in drv.cfg.ids], float)
    expected = conv.leap_to_allegro(conv.ticks_to_rad(ticks))
    np.testing.assert_allclose(state.position, expected, atol=0.01)


def test_a_servo_silent_after_its_reboot_does_not_stop_the_driver(rig):
    # Seen once on the emulated bus under load: the read after a reboot failed and the
    # exception ended the node. The next health poll sees the servo again instead.
    emu, plant, drv, clock = rig
    drv.open()
    real_read = drv._read

    def read_failing_after_reboot(dev_id, f):
        if dev_id == 2 and emu.count(Instruction.REBOOT, 2) >= 1:
            raise LeapBusError(f"LEAP servo {dev_id}: reading {f.name} failed (injected)")
        return real_read(dev_id, f)

    drv._read = read_failing_after_reboot
    emu.inject_hardware_error(2, HardwareError.OVERLOAD)
    run_until(drv, lambda: emu.count(Instruction.REBOOT, 2) == 1, what="reboot of servo 2", clock=clock, dt=0.05)
    for _ in range(5):
        clock.t += 0.05
        drv.step()
    assert drv.state is DriverState.RUNNING and drv.last.fresh


def test_close_turns_torque_off_after_an_interrupted_transaction(rig):
    """Ctrl-C between an instruction and its reply left the SDK's port busy; torque-off must still go out."""
    emu, plant, drv, clock = rig
    drv.open()
    drv.step()
    real_read = drv.port.readPort

    def interrupted(length):
        drv.port.readPort = real_read
        raise KeyboardInterrupt

    drv.port.readPort = interrupted
    with pytest.raises(KeyboardInterrupt):
        drv.step()
    assert drv.port.is_using                    # the SDK still thinks the reply is pending
    drv.close()
    assert all(emu.register(i, "torque_enable") == 0 for i in range(16))


def test_a_short_stray_reply_to_a_register_read_is_retried_not_parsed(rig):
    # The same stray reply on a single-register read (as the node's open() does them): the SDK's
    # read4ByteTxRx indexed past its end (IndexError, a fresh-clone CI run of the LEAP node).
    import os

    from dream_hw.dynamixel.control_table import XC330
    from dream_hw.dynamixel.protocol import encode_status

    emu, plant, drv, clock = rig
    drv.open()
    first = drv.cfg.ids[0]
    real_tx = drv.ph.txPacket
    injected = []

    def tx_then_stray(port, packet):
        result = real_tx(port, packet)
        if not injected:
            os.write(emu._master, encode_status(first, 0, bytes([0])))
            injected.append(True)
        return result

    drv.ph.txPacket = tx_then_stray
    corrupt = drv.comm.rx_corrupt
    ticks = drv._read(first, XC330.PRESENT_POSITION)
    assert injected and drv.comm.rx_corrupt == corrupt + 1
    assert ticks == emu.register(first, "present_position") & 0xFFFFFFFF
