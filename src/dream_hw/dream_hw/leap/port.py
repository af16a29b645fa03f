"""The dynamixel-sdk port handler, made to wait instead of spin.

The stock PortHandler opens pyserial with timeout=0 and the SDK polls it in a
tight loop until the status packet or the packet timeout arrives: one core at
100 % for the whole time the bus is busy, and on a shared 2-core machine the
emulator (or ROS) starves. This subclass blocks in select() for the first
byte, up to the SDK's own deadline, so the SDK's logic and timeouts are
unchanged. `latency_timer_ms` replaces the SDK's fixed 16 ms FTDI allowance
(set it to 1 when the adapter's latency_timer is 1, as LEAP recommends).
"""
from __future__ import annotations

import select

from dynamixel_sdk import PortHandler


class WaitingPortHandler(PortHandler):
    """PortHandler whose reads sleep until data or the packet deadline."""

    def __init__(self, port_name: str, latency_timer_ms: float = 16.0):
        super().__init__(port_name)
        self.latency_timer_ms = latency_timer_ms

    def setPacketTimeout(self, packet_length):  # noqa: N802 (SDK API)
        self.packet_start_time = self.getCurrentTime()
        self.packet_timeout = self.tx_time_per_byte * packet_length + self.latency_timer_ms * 2.0 + 2.0

    def readPort(self, length):  # noqa: N802 (SDK API)
        if self.ser.in_waiting == 0:
            remaining_ms = self.packet_timeout - self.getTimeSinceStart()
            if remaining_ms > 0:
                select.select([self.ser.fileno()], [], [], remaining_ms / 1000.0)
        return self.ser.read(length)
