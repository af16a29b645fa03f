"""LEAP control-loop rate on the emulated bus (16 XC330, 4 Mbaud timing).

One cycle = 1 GroupSyncRead (126..135: current, velocity, position) +
GroupSyncWrite Goal Position (116) + GroupSyncWrite Goal Current (102), through
the real dynamixel-sdk. The emulator runs as its own process (like the hand:
the driver's process shares no GIL with it) and charges wire time at 4 Mbaud
plus each servo's Return Delay Time.

    python bench/leap_loop.py [--seconds 3]     -> bench/results/leap_loop.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from dynamixel_sdk import COMM_SUCCESS, GroupSyncRead, GroupSyncWrite, PacketHandler, PortHandler

from dream_hw.leap.config import LeapConfig
from dream_hw.leap.driver import LeapDriver
from dream_hw.leap.port import WaitingPortHandler

ROOT = Path(__file__).resolve().parents[1]
N = 16
BAUD = 4_000_000


def wire_bytes_per_cycle(n: int = N) -> int:
    sync_read = (14 + n) + n * (11 + 10)      # instruction + n status packets of 10 data bytes
    goal_pos = 14 + n * 5
    goal_cur = 14 + n * 3
    return sync_read + goal_pos + goal_cur


class Emulator:
    """The emulator CLI as a subprocess; .port is the pty to open."""

    def __init__(self, return_delay_us: int | None):
        cmd = [sys.executable, "-m", "dream_hw.dynamixel.emulator", "--plant", "first-order"]
        if return_delay_us is not None:
            cmd += ["--return-delay-us", str(return_delay_us)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("port: "):
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.port = line.split(": ", 1)[1].strip()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def stats(periods: list[float]) -> dict:
    p = np.asarray(periods) * 1e3
    return {"cycles": int(p.size), "hz": round(float(1e3 / p.mean()), 1), "period_ms_p50": round(float(np.median(p)), 3),
            "period_ms_p99": round(float(np.percentile(p, 99)), 3), "period_ms_max": round(float(p.max()), 3)}


def raw_loop(port_name: str, seconds: float, waiting: bool) -> dict:
    """The three transactions straight on the SDK (no driver logic)."""
    port = WaitingPortHandler(port_name) if waiting else PortHandler(port_name)
    assert port.openPort() and port.setBaudRate(BAUD)
    ph = PacketHandler(2.0)
    gsr = GroupSyncRead(port, ph, 126, 10)
    gpos = GroupSyncWrite(port, ph, 116, 4)
    gcur = GroupSyncWrite(port, ph, 102, 2)
    for i in range(N):
        gsr.addParam(i)
        gpos.addParam(i, list((2048).to_bytes(4, "little")))
        gcur.addParam(i, list((300).to_bytes(2, "little")))
    periods, failures = [], 0
    cpu0, t_end = time.process_time(), time.perf_counter() + seconds
    last = time.perf_counter()
    while last < t_end:
        if gsr.txRxPacket() != COMM_SUCCESS:
            failures += 1
        gpos.txPacket()
        gcur.txPacket()
        now = time.perf_counter()
        periods.append(now - last)
        last = now
    cpu = time.process_time() - cpu0
    port.closePort()
    out = stats(periods)
    out.update(read_failures=failures, driver_cpu_fraction=round(cpu / seconds, 2))
    return out


def driver_loop(port_name: str, seconds: float) -> dict:
    """LeapDriver.step(): the same bus traffic plus watchdog, caps, health polls."""
    cfg = LeapConfig.from_cell(port=port_name, return_delay_us=0)
    drv = LeapDriver(cfg)
    drv.open()
    q = np.zeros(N)
    periods = []
    cpu0, t_end = time.process_time(), time.perf_counter() + seconds
    last = time.perf_counter()
    k = 0
    while last < t_end:
        q[1] = 0.5 + 0.5 * np.sin(k * 0.01)
        drv.command(q)
        drv.step()
        k += 1
        now = time.perf_counter()
        periods.append(now - last)
        last = now
    cpu = time.process_time() - cpu0
    comm = drv.health().comm
    drv.close()
    out = stats(periods)
    out.update(read_failures=comm.rx_timeouts + comm.rx_corrupt, driver_cpu_fraction=round(cpu / seconds, 2))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    args = ap.parse_args()
    os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))
    wire = wire_bytes_per_cycle()
    results: dict = {
        "servos": N, "baudrate": BAUD, "wire_bytes_per_cycle": wire,
        "wire_time_ms_per_cycle": round(wire * 10 / BAUD * 1e3, 3),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "goal_hz": 200,
    }
    emu = Emulator(return_delay_us=0)
    try:
        results["sdk_loop_rdt0_waiting_port"] = raw_loop(emu.port, args.seconds, waiting=True)
        results["sdk_loop_rdt0_stock_port"] = raw_loop(emu.port, args.seconds, waiting=False)
        results["driver_step_rdt0"] = driver_loop(emu.port, args.seconds)
    finally:
        emu.close()
    emu = Emulator(return_delay_us=None)          # factory Return Delay Time: 500 us per servo
    try:
        results["sdk_loop_factory_rdt500us"] = raw_loop(emu.port, args.seconds, waiting=True)
    finally:
        emu.close()
    results["meets_goal"] = results["driver_step_rdt0"]["hz"] >= 200
    for key, val in results.items():
        print(f"{key}: {val}")
    out = ROOT / "bench" / "results" / "leap_loop.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
