"""Dynamixel protocol 2.0 packets: framing, byte stuffing and CRC.

Written from the ROBOTIS protocol 2.0 description so the emulator does not
share code (and therefore bugs) with the dynamixel-sdk it is checked against.

Packet: FF FF FD 00 | id | len_lo len_hi | instruction | params... | crc_lo crc_hi
`len` counts instruction + (stuffed) params + CRC. The CRC (CRC-16/BUYPASS:
poly 0x8005, init 0, no reflection) covers everything before it, *after*
stuffing. Stuffing inserts FD after any FF FF FD inside instruction+params so
that a header cannot appear inside a packet.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

HEADER = bytes((0xFF, 0xFF, 0xFD, 0x00))
BROADCAST_ID = 0xFE
STATUS = 0x55  # instruction byte of a status packet
ALERT_BIT = 0x80  # status error byte: the device has a hardware error


class Instruction(IntEnum):
    PING = 0x01
    READ = 0x02
    WRITE = 0x03
    REG_WRITE = 0x04
    ACTION = 0x05
    FACTORY_RESET = 0x06
    REBOOT = 0x08
    CLEAR = 0x10
    STATUS = 0x55
    SYNC_READ = 0x82
    SYNC_WRITE = 0x83
    FAST_SYNC_READ = 0x8A
    BULK_READ = 0x92
    BULK_WRITE = 0x93
    FAST_BULK_READ = 0x9A


class StatusError(IntEnum):
    """Low 7 bits of a status packet's error byte."""

    NONE = 0
    RESULT_FAIL = 1
    INSTRUCTION = 2
    CRC = 3
    DATA_RANGE = 4
    DATA_LENGTH = 5
    DATA_LIMIT = 6
    ACCESS = 7


def _make_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _make_table()


def crc16(data: bytes | bytearray, crc: int = 0) -> int:
    """CRC-16 (poly 0x8005, MSB first, init 0) as protocol 2.0 uses it."""
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes) -> bytes:
    """Inserts FD after each FF FF FD in instruction+params.

    The header's FF FF FD precedes `body`, so a body starting with FD after a
    header does not count: only patterns inside the body itself do.
    """
    out = bytearray()
    for b in body:
        out.append(b)
        if b == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    """Removes the FD inserted by `stuff` (FF FF FD FD -> FF FF FD)."""
    out = bytearray()
    i = 0
    while i < len(body):
        b = body[i]
        out.append(b)
        if b == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF \
                and i + 1 < len(body) and body[i + 1] == 0xFD:
            i += 1  # skip the stuffing byte
        i += 1
    return bytes(out)


@dataclass(frozen=True)
class Packet:
    """A decoded packet. For status packets `instruction` is STATUS and
    `error` holds the error byte; `params` never includes it."""

    id: int
    instruction: int
    params: bytes = b""
    error: int = 0

    @property
    def is_status(self) -> bool:
        return self.instruction == STATUS


def encode(dev_id: int, instruction: int, params: bytes = b"", *, error: int | None = None) -> bytes:
    """Builds a wire packet (stuffed, with CRC). `error` makes it a status packet."""
    body = bytes([instruction]) + (bytes([error]) if error is not None else b"") + bytes(params)
    body = stuff(body)
    length = len(body) + 2
    frame = HEADER + bytes([dev_id & 0xFF, length & 0xFF, length >> 8]) + body
    crc = crc16(frame)
    return frame + bytes([crc & 0xFF, crc >> 8])


def encode_status(dev_id: int, error: int, params: bytes = b"") -> bytes:
    return encode(dev_id, STATUS, params, error=error)


class CrcError(ValueError):
    """A complete frame arrived with a wrong CRC (the frame is consumed)."""

    def __init__(self, dev_id: int, instruction: int):
        super().__init__(f"bad CRC in packet for id {dev_id} (instruction 0x{instruction:02X})")
        self.id = dev_id
        self.instruction = instruction


class StreamDecoder:
    """Turns a byte stream into packets; resynchronises on garbage.

    feed() bytes as they arrive, then call next() until it returns None.
    A frame with a bad CRC raises CrcError once and is dropped.
    """

    MAX_LENGTH = 1024

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> None:
        self._buf += data

    def pending(self) -> int:
        return len(self._buf)

    def next(self) -> Packet | None:
        buf = self._buf
        while True:
            start = buf.find(HEADER)
            if start < 0:
                # keep a possible partial header at the end
                keep = 0
                for k in (3, 2, 1):
                    if len(buf) >= k and buf[-k:] == HEADER[:k]:
                        keep = k
                        break
                del buf[: len(buf) - keep]
                return None
            if start:
                del buf[:start]
            if len(buf) < 7:
                return None
            length = buf[5] | (buf[6] << 8)
            if length < 3 or length > self.MAX_LENGTH:
                del buf[:1]  # not a real header: resync after it
                continue
            total = 7 + length
            if len(buf) < total:
                return None
            frame = bytes(buf[:total])
            del buf[:total]
            dev_id, instruction = frame[4], frame[7]
            crc = frame[-2] | (frame[-1] << 8)
            if crc16(frame[:-2]) != crc:
                raise CrcError(dev_id, instruction)
            body = unstuff(frame[7:-2])
            if instruction == STATUS:
                if len(body) < 2:
                    continue
                return Packet(dev_id, STATUS, body[2:], error=body[1])
            return Packet(dev_id, instruction, body[1:])


def decode(frame: bytes) -> Packet:
    """Decodes exactly one complete packet (raises ValueError otherwise)."""
    dec = StreamDecoder()
    dec.feed(frame)
    pkt = dec.next()
    if pkt is None or dec.pending():
        raise ValueError("not exactly one complete packet")
    return pkt


def le(value: int, size: int) -> bytes:
    """Little-endian bytes of a (possibly negative) register value."""
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")


def from_le(data: bytes, signed: bool = False) -> int:
    return int.from_bytes(bytes(data), "little", signed=signed)
