"""Protocol 2.0 codec: checked against the ROBOTIS manual's example packet and
against the real dynamixel-sdk, which must accept what we encode and vice versa."""
from __future__ import annotations

import random

import pytest
from dynamixel_sdk import Protocol2PacketHandler

from dream_hw.dynamixel.protocol import (
    CrcError,
    Instruction,
    StreamDecoder,
    crc16,
    decode,
    encode,
    encode_status,
    stuff,
    unstuff,
)


def test_ping_packet_matches_the_manual():
    # e-Manual, protocol 2.0 "Ping" example: id 1 -> FF FF FD 00 01 03 00 01 19 4E
    assert encode(1, Instruction.PING) == bytes.fromhex("FFFFFD0001030001194E")


def test_crc_agrees_with_the_sdk_table():
    sdk = Protocol2PacketHandler()
    rng = random.Random(3)
    for _ in range(50):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        assert crc16(data) == sdk.updateCRC(0, list(data), len(data))


def test_stuffing_round_trip_and_sdk_equivalence():
    body = bytes([0x03, 0x74, 0x00, 0xFF, 0xFF, 0xFD, 0x10, 0xFF, 0xFF, 0xFD, 0xFD])
    stuffed = stuff(body)
    assert stuffed.count(b"\xff\xff\xfd\xfd") == 2
    assert unstuff(stuffed) == body
    # The SDK stuffs a whole packet in place; compare the bodies.
    sdk = Protocol2PacketHandler()
    length = len(body) + 2
    pkt = [0xFF, 0xFF, 0xFD, 0x00, 1, length & 0xFF, length >> 8] + list(body) + [0, 0]
    out = sdk.addStuffing(pkt)
    assert bytes(out[7:-2]) == stuffed


def test_status_packet_decodes_in_the_sdk():
    sdk = Protocol2PacketHandler()
    wire = encode_status(7, 0x80, bytes([0xFF, 0xFF, 0xFD, 0x01]))

    class FakePort:
        is_using = True
        def __init__(self):
            self.buf = list(wire)
        def readPort(self, n):
            out, self.buf = self.buf[:n], self.buf[n:]
            return bytes(out)
        def isPacketTimeout(self):
            return True

    rx, result = sdk.rxPacket(FakePort(), False)
    assert result == 0
    assert rx[4] == 7 and rx[8] == 0x80
    assert bytes(rx[9:13]) == bytes([0xFF, 0xFF, 0xFD, 0x01])   # stuffing removed by the SDK


def test_decoder_resyncs_on_garbage_and_split_reads():
    a = encode(3, Instruction.READ, bytes([132, 0, 4, 0]))
    b = encode_status(3, 0, bytes([1, 2, 3, 4]))
    stream = b"\x00\xff\x12" + a + b"\xff\xff" + b
    dec = StreamDecoder()
    got = []
    for k in range(0, len(stream), 5):          # arrives in pieces
        dec.feed(stream[k: k + 5])
        while (p := dec.next()) is not None:
            got.append(p)
    assert [(p.id, p.instruction) for p in got] == [(3, Instruction.READ), (3, 0x55)]
    assert got[0].params == bytes([132, 0, 4, 0])
    assert got[1].params == bytes([1, 2, 3, 4]) and got[1].error == 0


def test_bad_crc_is_reported_and_skipped():
    good = encode(1, Instruction.PING)
    bad = good[:-1] + bytes([good[-1] ^ 1])
    dec = StreamDecoder()
    dec.feed(bad + good)
    with pytest.raises(CrcError):
        dec.next()
    assert dec.next() == decode(good)
