"""ROS-free LEAP hand driver on the real dynamixel-sdk.

One control cycle = ONE GroupSyncRead (Present Current/Velocity/Position,
addresses 126..135 in one contiguous block) + ONE GroupSyncWrite of Goal
Position (116) + ONE GroupSyncWrite of Goal Current (102). Every few cycles
the Hardware Error Status (70) and temperature (146) are polled.

Safety lives here, not in the ROS node, so every front end gets it:
current caps, joint-range clamps, a command watchdog that holds the last
measured position, reboot of overloaded servos with bounded retries,
retried bus transactions, a clear error and a quiet bus when the port
disappears, torque off on close.
"""
from __future__ import annotations

import logging
import termios
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable

import numpy as np
import serial
from dynamixel_sdk import COMM_RX_CORRUPT, COMM_SUCCESS, GroupSyncRead, GroupSyncWrite, PacketHandler

from dream_hw.dynamixel.control_table import HardwareError, XC330, describe_errors
from dream_hw.errors import UserError
from dream_hw.leap import conventions as conv
from dream_hw.leap.config import LeapConfig, as_array
from dream_hw.leap.port import WaitingPortHandler
from dream_hw.leap.safety import CommandWatchdog, CurrentLimiter, PositionClamp

log = logging.getLogger("dream_hw.leap")

_READ_START = XC330.PRESENT_CURRENT.address                     # 126
_READ_LEN = XC330.PRESENT_POSITION.address + 4 - _READ_START    # 10 bytes: 126..135


# What pyserial raises when the adapter vanishes: SerialException on read/write,
# OSError on in_waiting, and termios.error (not an OSError!) from the
# tcflush in the SDK's clearPort().
DISCONNECTED = (serial.SerialException, OSError, termios.error)


class LeapBusError(RuntimeError):
    """The bus is gone or silent; the driver has stopped talking to it."""


class DriverState(str, Enum):
    CLOSED = "closed"
    RUNNING = "running"
    FAULT = "fault"


@dataclass
class HandState:
    """One reading of the hand; angles Allegro-style (flat hand = 0)."""

    stamp: float                 # monotonic s of the reading
    position: np.ndarray         # rad
    velocity: np.ndarray         # rad/s
    current_ma: np.ndarray       # Present Current (~mA)
    effort: np.ndarray           # N m = current * torque constant (approximate)
    fresh: bool = True           # False: this cycle's read failed, values are the last good ones


@dataclass
class ServoHealth:
    id: int
    joint: str
    temperature_c: int = 0
    error_bits: int = 0
    reboots: int = 0
    gave_up: bool = False        # reboots exhausted: left torque-off
    latched_bits: int = 0        # errors seen since the last health report (a reboot may clear them first)

    @property
    def errors(self) -> str:
        return describe_errors(self.error_bits)


@dataclass
class CommStats:
    cycles: int = 0
    retries: int = 0
    rx_timeouts: int = 0
    rx_corrupt: int = 0
    failed_cycles: int = 0       # consecutive cycles without a reading
    last_result: str = ""


@dataclass
class Health:
    state: DriverState
    message: str
    holding: bool
    servos: list[ServoHealth]
    comm: CommStats
    max_temperature_c: float
    loop_hz: float = 0.0
    extra: dict = field(default_factory=dict)


class LeapDriver:
    """The LEAP hand's servos as arrays of Allegro-style joint values.

    open() -> [command(); step()]* -> close(). Not thread-safe: call it from
    one thread (the ROS node calls it from one executor thread).
    """

    def __init__(self, config: LeapConfig, clock: Callable[[], float] = time.monotonic):
        self.cfg = config.validate()
        self.clock = clock
        n = config.n
        self.ph = PacketHandler(2.0)
        self.port: WaitingPortHandler | None = None
        self.state = DriverState.CLOSED
        self.message = "not opened"
        self.limiter = CurrentLimiter(config.current_cap_ma, config.torque_constant, config.default_current_ma)
        self.clamp = PositionClamp(config.lower, config.upper)
        self.watchdog = CommandWatchdog(config.command_timeout_s)
        self.comm = CommStats()
        self.servos = [ServoHealth(i, name) for i, name in zip(config.ids, config.joint_names)]
        self._reboot_times: dict[int, list[float]] = {i: [] for i in config.ids}
        self.target = np.zeros(n)              # Allegro rad, what the servos are told
        self.commanded = np.zeros(n)           # last command (Allegro rad, clamped)
        self.holding = True
        self.last: HandState | None = None
        self._next_health = 0.0
        self._cycle_times: list[float] = []

    # -- opening --------------------------------------------------------------------
    def open(self) -> HandState:
        """Opens the port, finds all servos, configures them, torques on holding still."""
        cfg = self.cfg
        port = WaitingPortHandler(cfg.port, cfg.latency_timer_ms)
        try:
            ok = port.openPort() and port.setBaudRate(cfg.baudrate)
        except DISCONNECTED as exc:
            raise UserError(f"cannot open LEAP hand port {cfg.port}: {exc}") from None
        if not ok:
            raise UserError(f"cannot open LEAP hand port {cfg.port} at {cfg.baudrate} baud")
        self.port = port
        self._build_groups()
        try:
            missing = [i for i in cfg.ids if not self._ping(i)]
            if missing:
                raise UserError(f"LEAP hand on {cfg.port}: no answer from servo id(s) {missing} at "
                                f"{cfg.baudrate} baud (power, cable, baud rate?)")
            hw_limits = [self._read(i, XC330.CURRENT_LIMIT) for i in cfg.ids]
            self.limiter.tighten(hw_limits)
            for s in self.servos:   # a servo still locked out from the last session: reboot it first
                s.error_bits = self._read(s.id, XC330.HARDWARE_ERROR_STATUS)
                if s.error_bits:
                    self._reboot_only(s)
            for i in cfg.ids:
                self._configure(i)
            self.state = DriverState.RUNNING
            self.message = "running"
            reading = self._read_state()
            if reading is None:
                raise LeapBusError(f"LEAP hand on {cfg.port}: no state after configuration")
            self.target = reading.position.copy()
            self.commanded = reading.position.copy()
            self.holding = True
            self._write_goals()
            for i in cfg.ids:
                self._write(i, XC330.TORQUE_ENABLE, 1)
            self._next_health = self.clock()
            return reading
        except DISCONNECTED as exc:
            self._lost(exc)
            raise AssertionError("unreachable")  # _lost raises
        except Exception:
            self._close_port()
            self.state = DriverState.CLOSED
            raise

    def _build_groups(self) -> None:
        assert self.port is not None
        self._gsr = GroupSyncRead(self.port, self.ph, _READ_START, _READ_LEN)
        self._gsr_err = GroupSyncRead(self.port, self.ph, XC330.HARDWARE_ERROR_STATUS.address, 1)
        self._gsr_temp = GroupSyncRead(self.port, self.ph, XC330.PRESENT_TEMPERATURE.address, 1)
        self._gsw_pos = GroupSyncWrite(self.port, self.ph, XC330.GOAL_POSITION.address, 4)
        self._gsw_cur = GroupSyncWrite(self.port, self.ph, XC330.GOAL_CURRENT.address, 2)
        for i in self.cfg.ids:
            for g in (self._gsr, self._gsr_err, self._gsr_temp):
                g.addParam(i)
            self._gsw_pos.addParam(i, [0, 0, 0, 0])
            self._gsw_cur.addParam(i, [0, 0])

    def _configure(self, dev_id: int, hold_ticks: int | None = None) -> None:
        """Torque off, mode, gains, goal current, goal = where it is (torque stays off)."""
        cfg = self.cfg
        self._write(dev_id, XC330.TORQUE_ENABLE, 0)
        if cfg.return_delay_us is not None:
            rdt = int(round(cfg.return_delay_us / 2))
            if self._read(dev_id, XC330.RETURN_DELAY_TIME) != rdt:     # EEPROM: write only on change
                self._write(dev_id, XC330.RETURN_DELAY_TIME, rdt)
        if self._read(dev_id, XC330.OPERATING_MODE) != cfg.operating_mode:
            self._write(dev_id, XC330.OPERATING_MODE, cfg.operating_mode)
        kp, kd = cfg.gains(dev_id)
        self._write(dev_id, XC330.POSITION_P_GAIN, kp)
        self._write(dev_id, XC330.POSITION_I_GAIN, 0)
        self._write(dev_id, XC330.POSITION_D_GAIN, kd)
        k = self.cfg.ids.index(dev_id)
        self._write(dev_id, XC330.GOAL_CURRENT, int(self.limiter.goal_current_units()[k]))
        if hold_ticks is None:
            hold_ticks = conv.to_signed(self._read(dev_id, XC330.PRESENT_POSITION), 4)
        self._write(dev_id, XC330.GOAL_POSITION, hold_ticks)

    # -- single-servo transactions with retries --------------------------------------
    def _attempts(self):
        return range(1 + self.cfg.retries)

    def _count(self, result: int) -> None:
        self.comm.last_result = self.ph.getTxRxResult(result)
        if result == -3001:     # COMM_RX_TIMEOUT
            self.comm.rx_timeouts += 1
        elif result == -3002:   # COMM_RX_CORRUPT
            self.comm.rx_corrupt += 1

    def _ping(self, dev_id: int) -> bool:
        for attempt in self._attempts():
            _, result, _ = self.ph.ping(self._port(), dev_id)
            if result == COMM_SUCCESS:
                return True
            self._count(result)
            self.comm.retries += attempt < self.cfg.retries
        return False

    def _read(self, dev_id: int, f) -> int:
        """One register, little-endian. Through readTxRx and a length check rather than the SDK's
        readNByteTxRx: those index the reply's bytes without checking its length, so a late
        reply to an earlier, shorter read (it carries the same id) raised IndexError while the
        node opened the hand on a loaded machine (CI, fresh clone)."""
        for attempt in self._attempts():
            data, result, _ = self.ph.readTxRx(self._port(), dev_id, f.address, f.size)
            if result == COMM_SUCCESS and len(data) >= f.size:
                return int.from_bytes(bytes(data[:f.size]), "little")
            if result == COMM_SUCCESS:      # a stray reply was taken for this one
                result = COMM_RX_CORRUPT
                self._port().clearPort()
            self._count(result)
            self.comm.retries += 1
        raise LeapBusError(f"LEAP servo {dev_id}: reading {f.name} failed ({self.comm.last_result})")

    def _write(self, dev_id: int, f, value: int) -> None:
        fn = {1: self.ph.write1ByteTxRx, 2: self.ph.write2ByteTxRx, 4: self.ph.write4ByteTxRx}[f.size]
        raw = int(value) & ((1 << (8 * f.size)) - 1)
        for attempt in self._attempts():
            result, error = fn(self._port(), dev_id, f.address, raw)
            if result == COMM_SUCCESS:
                if error & 0x7F:
                    raise LeapBusError(f"LEAP servo {dev_id} refused {f.name}={value}: "
                                       f"{self.ph.getRxPacketError(error)}")
                return
            self._count(result)
            self.comm.retries += 1
        raise LeapBusError(f"LEAP servo {dev_id}: writing {f.name} failed ({self.comm.last_result})")

    def _port(self) -> WaitingPortHandler:
        if self.port is None:
            raise LeapBusError("LEAP hand port is not open")
        return self.port

    # -- the control cycle ---------------------------------------------------------
    def command(self, position=None, torque_limit=None) -> None:
        """New targets (Allegro-style rad; NaN keeps a joint's target) and/or
        per-joint torque limits (N m; NaN keeps; None or empty keeps all)."""
        if self.state is not DriverState.RUNNING:
            raise LeapBusError(f"LEAP driver is {self.state.value}: {self.message}")
        n = self.cfg.n
        if position is not None and len(position):
            q = as_array(position, n, "position")
            if self.holding:  # start from where the hand is, not from an old target
                self.commanded = self.target.copy()
            self.commanded = self.clamp(np.where(np.isfinite(q), q, self.commanded))
            self.target = self.commanded.copy()
            self.holding = False
            self.watchdog.feed(self.clock())
        if torque_limit is not None and len(torque_limit):
            self.limiter.set_torque_limits(as_array(torque_limit, n, "torque_limit"))

    def step(self) -> HandState:
        """One cycle: read, watchdog, write goals; health poll when due."""
        if self.state is not DriverState.RUNNING:
            raise LeapBusError(f"LEAP driver is {self.state.value}: {self.message}")
        t0 = self.clock()
        try:
            reading = self._read_state()
            now = self.clock()
            if reading is not None and self.watchdog.stale(now) and not self.holding:
                self.holding = True
                self.target = reading.position.copy()
                log.warning("LEAP commands stale for %.2f s: holding the measured position",
                            self.cfg.command_timeout_s)
            self._write_goals()
            if now >= self._next_health:
                self._next_health = now + self.cfg.health_period_s
                self._check_health()
        except DISCONNECTED as exc:
            self._lost(exc)
        self.comm.cycles += 1
        self._cycle_times.append(t0)
        if len(self._cycle_times) > 50:
            del self._cycle_times[0]
        assert self.last is not None
        return self.last

    def _read_state(self) -> HandState | None:
        for attempt in self._attempts():
            result = self._gsr.txRxPacket()
            if result == COMM_SUCCESS and not self._short_replies(self._gsr, _READ_LEN):
                break
            if result == COMM_SUCCESS:      # a stray packet with a servo's id was taken for its reply
                result = COMM_RX_CORRUPT
                self.port.clearPort()
            self._count(result)
            if attempt < self.cfg.retries:
                self.comm.retries += 1
        else:
            self.comm.failed_cycles += 1
            if self.comm.failed_cycles >= self.cfg.max_failed_cycles:
                self._fault(f"LEAP hand on {self.cfg.port}: no answer for {self.comm.failed_cycles} cycles "
                             f"({self.comm.last_result}); torque state unknown, bus left quiet")
            if self.last is not None:
                self.last.fresh = False
            return self.last
        self.comm.failed_cycles = 0
        g = self._gsr
        ids = self.cfg.ids
        cur = np.array([conv.to_signed(g.getData(i, 126, 2), 2) for i in ids], dtype=float)
        vel = np.array([conv.to_signed(g.getData(i, 128, 4), 4) for i in ids], dtype=float)
        pos = np.array([conv.to_signed(g.getData(i, 132, 4), 4) for i in ids], dtype=float)
        self.last = HandState(
            stamp=self.clock(),
            position=conv.leap_to_allegro(conv.ticks_to_rad(pos)),
            velocity=conv.velocity_to_rad_s(vel),
            current_ma=cur,
            effort=conv.current_to_torque(cur, self.cfg.torque_constant),
        )
        return self.last

    def _short_replies(self, group, length: int) -> list[int]:
        """Ids whose sync-read reply holds fewer than `length` bytes. The SDK takes the first status
        packet carrying the id it waits for and does not check its length, so a late reply to an
        earlier instruction (e.g. a 1-byte hardware-error read) can stand in for the state reply;
        reading 4-byte fields from it raised IndexError (seen on the emulated bus under load)."""
        return [i for i in self.cfg.ids if len(group.data_dict.get(i) or ()) < length]

    def _write_goals(self) -> None:
        ticks = conv.rad_to_ticks(conv.allegro_to_leap(self.clamp(self.target)))
        amps = self.limiter.goal_current_units()
        for k, i in enumerate(self.cfg.ids):
            self._gsw_pos.changeParam(i, list(int(ticks[k] & 0xFFFFFFFF).to_bytes(4, "little")))
            self._gsw_cur.changeParam(i, list(int(amps[k]).to_bytes(2, "little", signed=True)))
        self._gsw_pos.txPacket()
        self._gsw_cur.txPacket()

    # -- health and the reboot policy ------------------------------------------------
    def _sync_read_bytes(self, group: GroupSyncRead, address: int) -> list[int] | None:
        for attempt in self._attempts():
            result = group.txRxPacket()
            if result == COMM_SUCCESS:
                return [int(group.getData(i, address, 1)) for i in self.cfg.ids]
            self._count(result)
            self.comm.retries += 1
        return None

    def _check_health(self) -> None:
        errors = self._sync_read_bytes(self._gsr_err, XC330.HARDWARE_ERROR_STATUS.address)
        temps = self._sync_read_bytes(self._gsr_temp, XC330.PRESENT_TEMPERATURE.address)
        if temps is not None:
            for s, t in zip(self.servos, temps):
                s.temperature_c = t
        if errors is None:
            return
        for s, bits in zip(self.servos, errors):
            if bits & HardwareError.OVERLOAD and not s.gave_up:
                # A reboot turns the servo's torque off for a moment: confirm the error
                # with a read of this servo alone before acting on a byte of a 16-servo
                # sync read. A reply that arrives after its own read timed out (a
                # loaded host, a slow servo) lands inside the next transaction, and the
                # SDK takes the first packet with the right id: a present-current byte
                # read as error bits looked like an overload (seen on the emulated bus
                # under CPU load: reboot, torque off mid-grasp).
                try:
                    bits = self._read(s.id, XC330.HARDWARE_ERROR_STATUS)
                except LeapBusError:
                    continue
            s.error_bits = bits
            s.latched_bits |= bits
            if bits & HardwareError.OVERLOAD and not s.gave_up:
                self._reboot(s)

    def _reboot(self, s: ServoHealth) -> None:
        """Overload: reboot, wait for it, re-apply config, torque on — a bounded number of times."""
        now = self.clock()
        recent = [t for t in self._reboot_times[s.id] if now - t < self.cfg.reboot_window_s]
        self._reboot_times[s.id] = recent
        if len(recent) >= self.cfg.max_reboots:
            s.gave_up = True
            log.error("LEAP servo %d (%s): still overloaded after %d reboots; leaving it torque-off",
                      s.id, s.joint, len(recent))
            return
        log.warning("LEAP servo %d (%s): %s -> reboot %d/%d", s.id, s.joint, s.errors,
                    len(recent) + 1, self.cfg.max_reboots)
        recent.append(now)
        if not self._reboot_only(s):
            return
        k = self.cfg.ids.index(s.id)
        hold = int(conv.rad_to_ticks(conv.allegro_to_leap(self.clamp(self.target)))[k])
        try:
            self._configure(s.id, hold_ticks=hold)
            self._write(s.id, XC330.TORQUE_ENABLE, 1)
            s.error_bits = self._read(s.id, XC330.HARDWARE_ERROR_STATUS)
        except LeapBusError as exc:   # e.g. the error came straight back: torque refused, or no answer;
            # the next health poll sees the servo again, and the reboot budget bounds the retries
            log.error("LEAP servo %d after reboot: %s", s.id, exc)

    def _reboot_only(self, s: ServoHealth) -> bool:
        """Reboot instruction, then wait (pinging) until the servo answers again."""
        s.reboots += 1
        for attempt in self._attempts():
            result, _ = self.ph.reboot(self._port(), s.id)
            if result == COMM_SUCCESS:
                break
            self._count(result)
            self.comm.retries += 1
        deadline = time.monotonic() + self.cfg.reboot_timeout_s   # bus time, not the injectable clock
        while True:
            _, result, _ = self.ph.ping(self._port(), s.id)
            if result == COMM_SUCCESS:
                break
            if time.monotonic() > deadline:
                log.error("LEAP servo %d did not come back within %.1f s of its reboot",
                          s.id, self.cfg.reboot_timeout_s)
                return False
        return True

    # -- faults and closing ------------------------------------------------------------
    def _lost(self, exc: BaseException) -> None:
        self._fault(f"LEAP hand port {self.cfg.port} disconnected ({exc}); servos keep their last "
                    f"goal, no more commands are sent")

    def _fault(self, message: str) -> None:
        self.state = DriverState.FAULT
        self.message = message
        self._close_port()
        log.error(message)
        raise LeapBusError(message)

    def _close_port(self) -> None:
        if self.port is not None:
            try:
                self.port.closePort()
            except Exception:  # the device may already be gone
                pass
            self.port = None

    def close(self, torque_off: bool | None = None) -> None:
        """Torque off (default: config) if the bus is alive, then close the port."""
        torque_off = self.cfg.torque_off_on_shutdown if torque_off is None else torque_off
        if self.state is DriverState.RUNNING and torque_off and self.port is not None:
            self._abandon_transaction()
            for i in self.cfg.ids:
                try:
                    self._write(i, XC330.TORQUE_ENABLE, 0)
                except (LeapBusError, *DISCONNECTED) as exc:
                    log.error("LEAP servo %d: torque off failed: %s", i, exc)
        self._close_port()
        if self.state is DriverState.RUNNING:
            self.state = DriverState.CLOSED
            self.message = "closed"

    def _abandon_transaction(self) -> None:
        """Frees the port from a transaction an exception cut short. The SDK marks the port busy
        from sending an instruction until its reply is read; Ctrl-C (KeyboardInterrupt) landing
        in between left it busy, and every torque-off write then failed with "Port is in use!"
        (seen in CI: the node exited with all 16 servos still torqued). The driver is
        single-threaded, so at close() nothing else can own the transaction."""
        assert self.port is not None
        self.port.is_using = False
        try:
            self.port.clearPort()           # drop a half-read reply
        except DISCONNECTED:
            pass

    def __enter__(self) -> "LeapDriver":
        if self.state is DriverState.CLOSED:
            self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reporting ---------------------------------------------------------------------
    def health(self, consume: bool = True) -> Health:
        """A snapshot for reporting. Error bits include those latched since the
        last consuming call, so an overload that a reboot cleared within one
        cycle still reaches /diagnostics once."""
        times = self._cycle_times
        hz = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 and times[-1] > times[0] else 0.0
        servos = []
        for s in self.servos:
            snap = ServoHealth(**vars(s))
            snap.error_bits |= s.latched_bits
            if consume:
                s.latched_bits = 0
            servos.append(snap)
        return Health(self.state, self.message, self.holding, servos,
                      CommStats(**vars(self.comm)), self.cfg.max_temperature_c, hz)
