"""A protocol-2.0 bus of emulated XC330 servos on a pseudo-terminal.

The driver under test opens the pty's slave path with the real dynamixel-sdk
(pyserial), exactly as it opens /dev/ttyUSB0 on the hand; a thread here reads
the master side, answers like the servos would, after the time the bytes and
each servo's Return Delay Time would take on the wire, and drives a `Plant`.
Every register write is logged so tests can assert on what reached the bus.

    python -m dream_hw.dynamixel.emulator --plant mujoco   # prints the port path
"""
from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
import tty
from dataclasses import dataclass
from typing import Iterable

from dream_hw.dynamixel.faults import FaultInjector
from dream_hw.dynamixel.plant import FirstOrderPlant, Plant
from dream_hw.dynamixel.protocol import (
    BROADCAST_ID,
    CrcError,
    Instruction,
    Packet,
    StatusError,
    StreamDecoder,
    encode_status,
    from_le,
    le,
)
from dream_hw.dynamixel.servo import EmulatedServo
from dream_hw.errors import OneLineArgumentParser, UserError, cli_main

BAUD_CODES = {9600: 0, 57600: 1, 115200: 2, 1_000_000: 3, 2_000_000: 4, 3_000_000: 5, 4_000_000: 6}


@dataclass(frozen=True)
class RegisterWrite:
    """One field written to one servo (accepted or refused by it)."""

    t: float
    id: int
    address: int
    name: str
    value: int
    instruction: int
    accepted: bool


@dataclass(frozen=True)
class InstructionSeen:
    t: float
    instruction: int
    ids: tuple[int, ...]


class DynamixelEmulator:
    """N servos (default ids 0..15) behind one pty, optionally driving a plant.

    `timing=True` reproduces bus timing: bytes take 10 bits each at `baudrate`
    and every answering servo waits its Return Delay Time (register 9, factory
    250 = 500 us) plus `processing_s`.
    """

    def __init__(self, ids: Iterable[int] = range(16), plant: Plant | None = None, *,
                 baudrate: int = 4_000_000, timing: bool = True, return_delay_us: int | None = None,
                 processing_s: float = 20e-6, boot_time_s: float = 0.15, seed: int = 0):
        self.ids = sorted(int(i) for i in ids)
        rdt = None if return_delay_us is None else int(round(return_delay_us / 2))
        code = BAUD_CODES.get(baudrate, 6)
        self.servos = {i: EmulatedServo(i, code, rdt) for i in self.ids}
        self.plant = plant
        self.baudrate = baudrate
        self.timing = timing
        self.processing_s = processing_s
        self.boot_time_s = boot_time_s
        self.faults = FaultInjector(seed)
        self.writes: list[RegisterWrite] = []
        self.instructions: list[InstructionSeen] = []
        self.crc_errors = 0
        self._lock = threading.RLock()   # guards servo registers against test-side fault injection
        self._master = -1
        self._slave = -1
        self._port = ""
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._t0 = time.monotonic()
        self._bus_free = 0.0
        self._tick0 = time.monotonic()
        if plant is not None and plant.size < len(self.ids):
            raise ValueError(f"plant has {plant.size} joints for {len(self.ids)} servos")

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> str:
        """Opens the pty, starts the bus thread, returns the port path to open."""
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)        # no echo, no line editing: a binary serial line
        tty.setraw(self._master)
        self._port = os.ttyname(self._slave)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dxl-emulator", daemon=True)
        self._thread.start()
        return self._port

    @property
    def port(self) -> str:
        return self._port

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
        self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1

    def unplug(self) -> None:
        """The USB cable is pulled: the pty disappears under the driver."""
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> "DynamixelEmulator":
        if not self._port:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- test helpers -------------------------------------------------------------
    def servo(self, dev_id: int) -> EmulatedServo:
        return self.servos[dev_id]

    def register(self, dev_id: int, name: str) -> int:
        with self._lock:
            return self.servos[dev_id].get(name)

    def inject_hardware_error(self, dev_id: int, bits: int, sticky: bool = False) -> None:
        with self._lock:
            self.servos[dev_id].raise_error(bits, sticky)

    def clear_sticky_errors(self, dev_id: int) -> None:
        with self._lock:
            self.servos[dev_id].sticky_errors = 0

    def set_temperature(self, dev_id: int, celsius: int) -> None:
        with self._lock:
            self.servos[dev_id].set_temperature(celsius)

    def writes_to(self, name: str, dev_id: int | None = None) -> list[RegisterWrite]:
        return [w for w in list(self.writes) if w.name == name and (dev_id is None or w.id == dev_id)]

    def count(self, instruction: int, dev_id: int | None = None) -> int:
        return sum(1 for s in list(self.instructions)
                   if s.instruction == instruction and (dev_id is None or dev_id in s.ids))

    def now(self) -> float:
        return time.monotonic() - self._t0

    # -- bus thread ---------------------------------------------------------------
    def _run(self) -> None:
        decoder = StreamDecoder()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except (OSError, ValueError):
                break
            if not data:
                continue
            decoder.feed(data)
            while True:
                t_rx = time.monotonic()
                try:
                    pkt = decoder.next()
                except CrcError as exc:
                    self.crc_errors += 1
                    replies = self._crc_reply(exc.id)
                    size = 10
                else:
                    if pkt is None:
                        break
                    size = 10 + len(pkt.params)
                    replies = self._handle(pkt)
                self._respond(t_rx, size, replies)

    def _crc_reply(self, dev_id: int) -> list[tuple[EmulatedServo, bytes]]:
        servo = self.servos.get(dev_id)
        if servo is None or not self._online(servo):
            return []
        return [(servo, encode_status(dev_id, servo.error_byte(StatusError.CRC)))]

    def _wire(self, nbytes: int) -> float:
        return nbytes * 10.0 / self.baudrate

    def _respond(self, t_rx: float, size: int, replies: list[tuple[EmulatedServo, bytes]]) -> None:
        t = max(t_rx, self._bus_free) + (self._wire(size) if self.timing else 0.0)
        out = bytearray()
        for k, (servo, packet) in enumerate(replies):
            if self.faults.take_corrupt(first_of_reply=k == 0):
                packet = self.faults.spoil(packet)
            if self.timing:
                t += servo.return_delay_s + self.processing_s + self._wire(len(packet))
            out += packet
        self._bus_free = t
        if out:
            delay = t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                os.write(self._master, bytes(out))
            except OSError:
                self._stop.set()

    def _online(self, servo: EmulatedServo) -> bool:
        return time.monotonic() >= servo.offline_until

    def _sync_plant(self) -> None:
        if self.plant is None:
            return
        drives = [self.servos[i].drive() for i in self.ids]
        readings = self.plant.update(time.monotonic() - self._t0, drives)
        tick = int((time.monotonic() - self._tick0) * 1000)
        for i, r in zip(self.ids, readings):
            self.servos[i].sense(r, tick)

    def _targets(self, dev_id: int) -> list[EmulatedServo]:
        if dev_id == BROADCAST_ID:
            return [s for s in self.servos.values() if self._online(s)]
        s = self.servos.get(dev_id)
        return [s] if s is not None and self._online(s) else []

    def _log_write(self, servo: EmulatedServo, address: int, data: bytes, inst: int, ok: bool) -> None:
        t = self.now()
        for f, value in servo.fields_written(address, data):
            self.writes.append(RegisterWrite(t, servo.id, f.address, f.name, value, inst, ok))

    def _write(self, servo: EmulatedServo, address: int, data: bytes, inst: int) -> StatusError:
        why = servo.write(address, data)
        self._log_write(servo, address, data, inst, why == StatusError.NONE)
        return why

    def _handle(self, pkt: Packet) -> list[tuple[EmulatedServo, bytes]]:
        inst, p = pkt.instruction, pkt.params
        expects_reply = inst in (Instruction.PING, Instruction.READ, Instruction.SYNC_READ,
                                 Instruction.BULK_READ) or (pkt.id != BROADCAST_ID and inst in (
                                     Instruction.WRITE, Instruction.REBOOT, Instruction.REG_WRITE))
        if self.faults.take_drop(expects_reply):
            return []
        with self._lock:
            self._sync_plant()
            return self._dispatch(pkt, inst, p)

    def _dispatch(self, pkt: Packet, inst: int, p: bytes) -> list[tuple[EmulatedServo, bytes]]:
        seen_ids: tuple[int, ...] = (pkt.id,)
        replies: list[tuple[EmulatedServo, bytes]] = []

        def status(servo: EmulatedServo, err: StatusError = StatusError.NONE, data: bytes = b"", level: int = 2):
            if servo.get("status_return_level") >= level and pkt.id != BROADCAST_ID or inst == Instruction.PING:
                replies.append((servo, encode_status(servo.id, servo.error_byte(err), data)))

        if inst == Instruction.PING:
            for s in self._targets(pkt.id):
                replies.append((s, encode_status(s.id, s.error_byte(), le(s.get("model_number"), 2)
                                                 + bytes([s.get("firmware_version")]))))
        elif inst == Instruction.READ and len(p) == 4:
            for s in self._targets(pkt.id):
                err, data = s.read(from_le(p[0:2]), from_le(p[2:4]))
                status(s, StatusError(err & 0x7F), data, level=1)
        elif inst == Instruction.WRITE and len(p) >= 3:
            for s in self._targets(pkt.id):
                status(s, self._write(s, from_le(p[0:2]), p[2:], inst))
        elif inst == Instruction.REG_WRITE and len(p) >= 3:
            for s in self._targets(pkt.id):
                s.registered = (from_le(p[0:2]), p[2:])  # type: ignore[attr-defined]
                s.set("registered_instruction", 1)
                status(s)
        elif inst == Instruction.ACTION:
            for s in self._targets(pkt.id):
                reg = getattr(s, "registered", None)
                if reg:
                    self._write(s, reg[0], reg[1], inst)
                    s.registered = None  # type: ignore[attr-defined]
                    s.set("registered_instruction", 0)
                status(s)
        elif inst == Instruction.REBOOT:
            for s in self._targets(pkt.id):
                status(s)
                s.reboot(time.monotonic(), self.boot_time_s)
        elif inst == Instruction.SYNC_READ and len(p) >= 5:
            address, length = from_le(p[0:2]), from_le(p[2:4])
            seen_ids = tuple(p[4:])
            for dev_id in seen_ids:
                for s in self._targets(dev_id):
                    err, data = s.read(address, length)
                    replies.append((s, encode_status(s.id, err, data)))
        elif inst == Instruction.SYNC_WRITE and len(p) >= 5:
            address, length = from_le(p[0:2]), from_le(p[2:4])
            chunks = [p[k: k + 1 + length] for k in range(4, len(p), 1 + length)]
            seen_ids = tuple(c[0] for c in chunks)
            for c in chunks:
                if len(c) == 1 + length:
                    for s in self._targets(c[0]):
                        self._write(s, address, c[1:], inst)
        elif inst == Instruction.BULK_READ and len(p) >= 5:
            entries = [p[k: k + 5] for k in range(0, len(p) - 4, 5)]
            seen_ids = tuple(e[0] for e in entries)
            for e in entries:
                for s in self._targets(e[0]):
                    err, data = s.read(from_le(e[1:3]), from_le(e[3:5]))
                    replies.append((s, encode_status(s.id, err, data)))
        elif inst == Instruction.BULK_WRITE and len(p) >= 6:
            k, ids = 0, []
            while k + 5 <= len(p):
                dev_id, address, length = p[k], from_le(p[k + 1: k + 3]), from_le(p[k + 3: k + 5])
                data = p[k + 5: k + 5 + length]
                ids.append(dev_id)
                for s in self._targets(dev_id):
                    self._write(s, address, data, inst)
                k += 5 + length
            seen_ids = tuple(ids)
        elif inst == Instruction.CLEAR:
            for s in self._targets(pkt.id):
                status(s)
        else:
            for s in self._targets(pkt.id):
                status(s, StatusError.INSTRUCTION)
        self.instructions.append(InstructionSeen(self.now(), inst, seen_ids))
        return replies


def _parse_ids(text: str) -> list[int]:
    ids: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-", 1)
            ids += range(int(lo), int(hi) + 1)
        elif part.strip():
            ids.append(int(part))
    return ids


def make_plant(kind: str, n: int) -> Plant | None:
    """'first-order', 'mujoco' (Menagerie LEAP right hand) or 'none'."""
    if kind == "none":
        return None
    if kind == "first-order":
        return FirstOrderPlant(n)
    if kind == "mujoco":
        from dream_hw.dynamixel.mujoco_plant import MujocoLeapPlant

        if n != 16:
            raise UserError("the mujoco plant is the 16-joint LEAP hand: use --ids 0-15")
        return MujocoLeapPlant.from_cell()
    raise UserError(f"--plant must be first-order, mujoco or none, got {kind!r}")


PROG = "python -m dream_hw.dynamixel.emulator"


@cli_main(PROG)
def main(argv: list[str] | None = None) -> int:
    ap = OneLineArgumentParser(
        prog=PROG,
        description="Emulates a bus of Dynamixel XC330 servos (a LEAP hand without the hand) on a "
                    "pseudo-terminal; prints the port path for the driver's `port` parameter.")
    ap.add_argument("--ids", default="0-15", help="servo ids, e.g. 0-15 or 0,1,4 (default 0-15)")
    ap.add_argument("--plant", default="mujoco", help="mujoco (LEAP hand physics), first-order or none")
    ap.add_argument("--baudrate", type=int, default=4_000_000, help="bus speed used for timing (default 4000000)")
    ap.add_argument("--return-delay-us", type=int, default=None,
                    help="initial Return Delay Time of every servo (default: factory 500 us)")
    ap.add_argument("--no-timing", action="store_true", help="answer at once instead of at wire speed")
    ap.add_argument("--link", default=None, help="also create this symlink to the pty (a stable port name)")
    args = ap.parse_args(argv)
    try:
        ids = _parse_ids(args.ids)
    except ValueError:
        raise UserError(f"--ids: expected e.g. 0-15 or 0,1,4, got {args.ids!r}") from None
    if not ids or any(not 0 <= i <= 252 for i in ids):
        raise UserError(f"--ids: ids must be within 0-252, got {args.ids!r}")
    if args.baudrate not in BAUD_CODES:
        raise UserError(f"--baudrate must be one of {sorted(BAUD_CODES)}, got {args.baudrate}")
    emu = DynamixelEmulator(ids, make_plant(args.plant, len(ids)), baudrate=args.baudrate,
                            timing=not args.no_timing, return_delay_us=args.return_delay_us)
    port = emu.start()
    if args.link:
        if os.path.lexists(args.link):
            os.unlink(args.link)
        os.symlink(port, args.link)
    print(f"port: {port}", flush=True)
    print(f"emulating {len(ids)} XC330-M288-T servos (ids {args.ids}), plant {args.plant}; Ctrl-C to stop",
          file=sys.stderr, flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5) and emu.running:
            pass
    finally:
        emu.stop()
        if args.link and os.path.islink(args.link):
            os.unlink(args.link)
    return 0


if __name__ == "__main__":
    sys.exit(main())
