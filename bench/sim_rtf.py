"""Real-time factor of the simulated cell with the RealSense rendering at 15 Hz.

1. In-process, as sim_cell does it: physics stepped in 2 ms-timer-sized chunks,
   a colour + noisy depth frame every 1/15 s of simulation time; reports the
   CPU-bound RTF (simulated s per wall s when run flat out) and the cost per part.
2. The node itself (SimCellNode spun in this process, a subscriber on both
   images): frames rendered per second and simulated vs wall time.
3. Over DDS: sim_cell as its own process at real_time_factor 1 with a subscriber
   on both images; reports received frame rates and the simulated-vs-wall clock
   (an RTF below 1 shows as /clock falling behind).

Writes bench/results/sim_rtf.json. Usage: python bench/sim_rtf.py [--seconds 20]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("MENAGERIE_ROOT", str(ROOT.parent / "shared" / "menagerie"))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(170 + os.getpid() % 60))
os.environ.setdefault("ROS_LOG_DIR", tempfile.mkdtemp(prefix="dream-bench-roslog-"))
sys.path.insert(0, str(ROOT / "tests"))


def build_scene(out: Path) -> Path:
    from dream_hw.cell import load_cell
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    twin = build_twin(load_cell(), ObjectGeometry.box((0.06, 0.04, 0.03)), kind="push", mass_kg=0.2,
                      friction=0.5, placement=ObjectPlacement(0.55, 0.0))
    return twin.save(out)


def in_process(scene: Path, seconds: float, rate_hz: float) -> dict:
    from dream_hw.cell import load_cell
    from dream_hw.sim.camera import SimCamera
    from dream_hw.sim.cell_sim import SimCell

    cell = load_cell()
    sim = SimCell(scene, cell)
    cam = SimCamera(sim.model, cell.camera)
    chunk = 5  # the node's 2 ms timer x 2 ms timestep: a few steps per tick
    t_phys = t_rgb = t_depth = 0.0
    frames = 0
    next_frame = 0.0
    wall0 = time.perf_counter()
    while sim.time < seconds:
        t = time.perf_counter()
        sim.step(chunk)
        t_phys += time.perf_counter() - t
        if sim.time >= next_frame:
            next_frame += 1.0 / rate_hz
            t = time.perf_counter()
            cam.render_rgb(sim.data).tobytes()
            t_rgb += time.perf_counter() - t
            t = time.perf_counter()
            cam.render_depth_mm(sim.data).tobytes()
            t_depth += time.perf_counter() - t
            frames += 1
    wall = time.perf_counter() - wall0
    cam.close()
    return {"sim_seconds": round(sim.time, 3), "wall_seconds": round(wall, 3),
            "rtf_flat_out": round(sim.time / wall, 2), "frames": frames,
            "physics_ms_per_sim_s": round(1e3 * t_phys / sim.time, 1),
            "rgb_ms_per_frame": round(1e3 * t_rgb / frames, 1),
            "depth_mm_ms_per_frame": round(1e3 * t_depth / frames, 1),
            "cpu_fraction_at_1x": round(wall / sim.time, 3)}


def over_dds(scene: Path, seconds: float, rate_hz: float) -> dict:
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from ros_helpers import NodeProcess, TestNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = TestNode("sim_rtf_bench", ctx)
    # (wall receive time, sim stamp) per image; no /clock subscription: its 500 Hz
    # would swamp this single-threaded Python subscriber and drop images here.
    color: list[tuple[float, float]] = []
    depth: list[tuple[float, float]] = []

    def keep(box):
        return lambda m: box.append((time.monotonic(), m.header.stamp.sec + m.header.stamp.nanosec * 1e-9))

    node.node.create_subscription(Image, "/camera/camera/color/image_raw", keep(color), qos_profile_sensor_data)
    node.node.create_subscription(Image, "/camera/camera/aligned_depth_to_color/image_raw", keep(depth),
                                  qos_profile_sensor_data)
    sim = NodeProcess("dream_hw.nodes.sim_cell", params={"scene": str(scene), "camera_rate_hz": rate_hz})
    try:
        node.spin_until(lambda: len(depth) >= 2 and len(color) >= 2, 60.0, "the first camera frames")
        start = time.monotonic()
        n_c, n_d, cpu0 = len(color), len(depth), _cpu_seconds(sim.proc.pid)
        node.spin_until(lambda: time.monotonic() - start > seconds, seconds + 5.0, "the measuring window")
        cpu1 = _cpu_seconds(sim.proc.pid)
    finally:
        code = sim.stop()
        node.close()
        ctx.try_shutdown()
    window = time.monotonic() - start
    (w0, s0), (w1, s1) = depth[n_d], depth[-1]
    return {"wall_seconds": round(window, 2), "exit_code": code,
            # simulated seconds per wall second between the first and last depth frame of the window
            "sim_over_wall_clock": round((s1 - s0) / (w1 - w0), 3),
            "color_hz_received": round((len(color) - n_c) / window, 2),
            "depth_hz_received": round((len(depth) - n_d) / window, 2),
            "sim_cell_cpu_cores": round((cpu1 - cpu0) / window, 2) if cpu0 is not None and cpu1 is not None else None}


def node_in_process(scene: Path, seconds: float, rate_hz: float) -> dict:
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from dream_hw.nodes.sim_cell import SimCellNode

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    node = SimCellNode(context=ctx, parameter_overrides=[Parameter("scene", value=str(scene)),
                                                         Parameter("camera_rate_hz", value=rate_hz)])
    sub = rclpy.create_node("sim_rtf_sub", context=ctx)
    got = {"color": 0, "depth": 0}
    for key, topic in (("color", "/camera/camera/color/image_raw"),
                       ("depth", "/camera/camera/aligned_depth_to_color/image_raw")):
        sub.create_subscription(Image, topic, lambda m, k=key: got.__setitem__(k, got[k] + 1),
                                qos_profile_sensor_data)
    frames: list[float] = []
    render = node.on_camera

    def timed() -> None:
        t = time.perf_counter()
        render()
        frames.append(time.perf_counter() - t)

    node.on_camera = timed
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(node)
    executor.add_node(sub)
    try:
        while not (got["color"] and got["depth"]):
            executor.spin_once(timeout_sec=0.05)
        wall0, sim0, n0 = time.monotonic(), node.sim.time, len(frames)
        c0, d0 = got["color"], got["depth"]
        while time.monotonic() - wall0 < seconds:
            executor.spin_once(timeout_sec=0.05)
        wall = time.monotonic() - wall0
        result = {"wall_seconds": round(wall, 2), "sim_over_wall": round((node.sim.time - sim0) / wall, 3),
                  "frames_rendered_hz": round((len(frames) - n0) / wall, 2),
                  "frame_ms_mean": round(1e3 * float(np.mean(frames[n0:])), 1),
                  "color_hz_received": round((got["color"] - c0) / wall, 2),
                  "depth_hz_received": round((got["depth"] - d0) / wall, 2)}
    finally:
        executor.shutdown()
        if node.camera is not None:
            node.camera.close()
        node.destroy_node()
        sub.destroy_node()
        ctx.try_shutdown()
    return result


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)
    except (OSError, IndexError, ValueError):
        return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="simulated (in-process) / wall (DDS) seconds")
    ap.add_argument("--rate", type=float, default=15.0, help="camera rate (Hz)")
    ap.add_argument("--no-dds", action="store_true", help="skip the over-DDS measurement")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sim_rtf.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scene = build_scene(Path(tmp))
        result = {"cores": os.cpu_count(), "load_average_before": [round(v, 2) for v in os.getloadavg()],
                  "camera_rate_hz": args.rate,
                  "resolution": "640x480", "mujoco_gl": os.environ["MUJOCO_GL"],
                  "in_process": in_process(scene, args.seconds, args.rate)}
        print(json.dumps({"in_process": result["in_process"]}), flush=True)
        result["node_in_process"] = node_in_process(scene, min(args.seconds, 10.0), args.rate)
        print(json.dumps({"node_in_process": result["node_in_process"]}), flush=True)
        if not args.no_dds:
            result["over_dds"] = over_dds(scene, args.seconds, args.rate)
            print(json.dumps({"over_dds": result["over_dds"]}), flush=True)
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    result["goal_met"] = (result["in_process"]["rtf_flat_out"] >= 1.0
                          and result["node_in_process"]["sim_over_wall"] >= 0.98
                          and result.get("over_dds", {}).get("sim_over_wall_clock", 1.0) >= 0.98)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"RTF flat out {result['in_process']['rtf_flat_out']}x, goal >= 1x: "
          f"{'met' if result['goal_met'] else 'NOT met'} -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
