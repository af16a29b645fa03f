"""The emulated XC330 bus, driven through the real dynamixel-sdk on a pty."""
from __future__ import annotations

import math
import os
import subprocess
import sys
import termios
import time

import pytest
import serial
from dynamixel_sdk import (
    COMM_RX_CORRUPT,
    COMM_RX_TIMEOUT,
    COMM_SUCCESS,
    GroupBulkRead,
    GroupSyncRead,
    GroupSyncWrite,
    PacketHandler,
)

from dream_hw.dynamixel.control_table import HardwareError, XC330
from dream_hw.dynamixel.emulator import DynamixelEmulator
from dream_hw.dynamixel.plant import FirstOrderPlant
from dream_hw.dynamixel.protocol import Instruction
from dream_hw.leap.port import WaitingPortHandler

ph = PacketHandler(2.0)


@pytest.fixture
def bus():
    emu = DynamixelEmulator(range(16), FirstOrderPlant(16), boot_time_s=0.05)
    port = WaitingPortHandler(emu.start())
    assert port.openPort() and port.setBaudRate(4_000_000)
    yield emu, port
    try:
        port.closePort()
    except Exception:
        pass
    emu.stop()


def wait_for(pred, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def test_ping_and_defaults(bus):
    emu, port = bus
    model, result, error = ph.ping(port, 9)
    assert (model, result, error) == (1240, COMM_SUCCESS, 0)
    assert ph.read2ByteTxRx(port, 9, XC330.CURRENT_LIMIT.address)[0] == 2352
    assert ph.read1ByteTxRx(port, 9, XC330.OPERATING_MODE.address)[0] == 3
    assert ph.ping(port, 40)[1] == COMM_RX_TIMEOUT          # nobody has id 40


def test_servo_rules(bus):
    emu, port = bus
    assert ph.write1ByteTxRx(port, 2, 64, 1) == (COMM_SUCCESS, 0)
    # EEPROM locked while torque is on (access error 7)
    assert ph.write1ByteTxRx(port, 2, XC330.OPERATING_MODE.address, 5) == (COMM_SUCCESS, 7)
    assert emu.register(2, "operating_mode") == 3
    # read-only field
    assert ph.write2ByteTxRx(port, 2, XC330.PRESENT_CURRENT.address, 5)[1] == 7
    # Goal Current above Current Limit: data limit error (6), value unchanged
    assert ph.write2ByteTxRx(port, 2, XC330.GOAL_CURRENT.address, 3000)[1] == 6
    refused = emu.writes_to("goal_current", 2)
    assert refused[-1].value == 3000 and not refused[-1].accepted
    assert emu.register(2, "goal_current") == 2352
    assert ph.write1ByteTxRx(port, 2, 64, 0) == (COMM_SUCCESS, 0)
    assert ph.write1ByteTxRx(port, 2, XC330.OPERATING_MODE.address, 5) == (COMM_SUCCESS, 0)
    assert emu.register(2, "operating_mode") == 5


def test_sync_write_moves_plant_and_sync_read_reports_it(bus):
    emu, port = bus
    gsw = GroupSyncWrite(port, ph, XC330.GOAL_POSITION.address, 4)
    for i in range(16):
        assert ph.write1ByteTxRx(port, i, 64, 1)[0] == COMM_SUCCESS
        gsw.addParam(i, list((2048 + 100 * i).to_bytes(4, "little")))
    assert gsw.txPacket() == COMM_SUCCESS
    gsr = GroupSyncRead(port, ph, 126, 10)
    for i in range(16):
        gsr.addParam(i)

    def arrived():
        assert gsr.txRxPacket() == COMM_SUCCESS
        return all(abs(gsr.getData(i, 132, 4) - (2048 + 100 * i)) <= 2 for i in range(16))

    wait_for(arrived, what="joints at their goals")
    assert [w.id for w in emu.writes_to("goal_position")] == list(range(16))
    assert emu.count(Instruction.SYNC_WRITE) == 1


def test_bulk_read(bus):
    emu, port = bus
    g = GroupBulkRead(port, ph)
    g.addParam(1, XC330.MODEL_NUMBER.address, 2)
    g.addParam(4, XC330.CURRENT_LIMIT.address, 2)
    assert g.txRxPacket() == COMM_SUCCESS
    assert g.getData(1, 0, 2) == 1240 and g.getData(4, 38, 2) == 2352


def test_return_delay_is_emulated(bus):
    emu, port = bus
    gsr = GroupSyncRead(port, ph, 126, 10)
    for i in range(16):
        gsr.addParam(i)

    def sync_read_time() -> float:
        t = time.perf_counter()
        assert gsr.txRxPacket() == COMM_SUCCESS
        return time.perf_counter() - t

    slow = min(sync_read_time() for _ in range(3))      # factory 250 x 2 us per servo
    assert slow >= 16 * 500e-6
    for i in range(16):
        ph.write1ByteTxRx(port, i, XC330.RETURN_DELAY_TIME.address, 0)
    fast = min(sync_read_time() for _ in range(3))
    assert fast < slow - 5e-3


def test_dropped_and_corrupted_status(bus):
    emu, port = bus
    emu.faults.drop(1)
    assert ph.ping(port, 1)[1] == COMM_RX_TIMEOUT
    emu.faults.corrupt(1)
    assert ph.ping(port, 1)[1] == COMM_RX_CORRUPT
    assert ph.ping(port, 1)[1] == COMM_SUCCESS
    assert (emu.faults.dropped, emu.faults.corrupted) == (1, 1)


def test_hardware_error_sets_alert_and_reboot_clears_it(bus):
    emu, port = bus
    assert ph.write1ByteTxRx(port, 5, 64, 1)[1] == 0
    emu.inject_hardware_error(5, HardwareError.OVERLOAD)
    value, result, error = ph.read1ByteTxRx(port, 5, XC330.HARDWARE_ERROR_STATUS.address)
    assert value == HardwareError.OVERLOAD and error & 0x80
    assert emu.register(5, "torque_enable") == 0                 # overload is a shutdown error
    assert ph.write1ByteTxRx(port, 5, 64, 1)[1] == 0x80 | 1      # alert + result fail: refused until reboot
    assert ph.reboot(port, 5)[0] == COMM_SUCCESS
    assert ph.ping(port, 5)[1] == COMM_RX_TIMEOUT                # still booting
    wait_for(lambda: ph.ping(port, 5)[1] == COMM_SUCCESS, what="servo 5 back from reboot")
    assert ph.read1ByteTxRx(port, 5, 70)[0:3:2] == (0, 0)
    assert ph.write1ByteTxRx(port, 5, 64, 1) == (COMM_SUCCESS, 0)
    assert emu.count(Instruction.REBOOT, 5) == 1


def test_overheating(bus):
    emu, port = bus
    ph.write1ByteTxRx(port, 3, 64, 1)
    emu.set_temperature(3, 75)
    assert ph.read1ByteTxRx(port, 3, XC330.PRESENT_TEMPERATURE.address)[0] == 75
    assert ph.read1ByteTxRx(port, 3, 70)[0] & HardwareError.OVERHEATING
    assert emu.register(3, "torque_enable") == 0


def test_unplug_raises_in_the_sdk(bus):
    emu, port = bus
    emu.unplug()
    with pytest.raises((serial.SerialException, OSError, termios.error)):  # termios.error from tcflush
        ph.ping(port, 1)


def test_mujoco_plant_follows_goal_within_current_limit():
    from dream_hw.dynamixel.mujoco_plant import MujocoLeapPlant

    plant = MujocoLeapPlant.from_cell()
    emu = DynamixelEmulator(range(16), plant, timing=False)
    port = WaitingPortHandler(emu.start())
    try:
        assert port.openPort()
        k = 1                                            # id 1 = if_mcp
        assert plant.joint_names[k] == "if_mcp"
        ph.write1ByteTxRx(port, k, XC330.OPERATING_MODE.address, 5)
        ph.write2ByteTxRx(port, k, XC330.GOAL_CURRENT.address, 300)
        goal = round((1.0 + math.pi) * 2048 / math.pi)   # 1 rad Allegro-style
        ph.write4ByteTxRx(port, k, XC330.GOAL_POSITION.address, goal)
        ph.write1ByteTxRx(port, k, 64, 1)

        def there():
            pos = ph.read4ByteTxRx(port, k, XC330.PRESENT_POSITION.address)[0]
            return abs(pos - goal) < 40

        wait_for(there, timeout=10, what="if_mcp at 1 rad")
        assert abs(plant.joint_positions()[k] - 1.0) < 0.06
        for _ in range(20):                              # current never above the goal current
            cur = ph.read2ByteTxRx(port, k, XC330.PRESENT_CURRENT.address)[0]
            cur = cur - 65536 if cur >= 32768 else cur
            assert abs(cur) <= 300
    finally:
        port.closePort()
        emu.stop()


def test_cli_help_and_port():
    env = dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "dream_hw.dynamixel.emulator", "--help"],
                         capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 0 and "pseudo-terminal" in out.stdout
    proc = subprocess.Popen([sys.executable, "-m", "dream_hw.dynamixel.emulator", "--plant", "first-order"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline()
        assert line.startswith("port: /dev/")
        port = WaitingPortHandler(line.split(":", 1)[1].strip())
        assert port.openPort()
        assert ph.ping(port, 15)[0] == 1240
        port.closePort()
    finally:
        proc.terminate()
        proc.wait(10)
    bad = subprocess.run([sys.executable, "-m", "dream_hw.dynamixel.emulator", "--plant", "nope"],
                         capture_output=True, text=True, timeout=30, env=env)
    assert bad.returncode == 2 and "--plant" in bad.stderr
