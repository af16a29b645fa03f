"""The simulated-cell demo: build a push twin, let the object rest, push it with
the Allegro index finger, and write a report folder a researcher can look at.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np

from dream_hw.cell import load_cell
from dream_hw.errors import UserError
from dream_sysid.twin.builder import OBJECT_BODY, OBJECT_JOINT, Twin, build_twin

FINGERTIP = "allegro/ff_tip"
FINGER_JOINTS = ("allegro/ffj1", "allegro/ffj2", "allegro/ffj3")
REST_SECONDS = 5.0
TIP_CLEARANCE = 0.006
LOG_PERIOD = 0.01


@dataclass
class Phase:
    """One segment of the arm's joint-space plan."""

    name: str
    waypoints: np.ndarray   # (N, 7)
    duration: float


@dataclass
class Log:
    t: list
    obj: list
    quat: list
    tip: list
    finger: list
    phase: list

    @classmethod
    def empty(cls) -> "Log":
        return cls([], [], [], [], [], [])


def plan_push(twin: Twin, data: mujoco.MjData, distance: float, speed: float) -> list[Phase]:
    """Joint-space phases: above the start, down, push along +x through the object, retreat."""
    from dream_sysid.twin.ik import ArmIK

    m = twin.model
    ik = ArmIK(twin, FINGERTIP)
    obj_adr = m.jnt_qposadr[m.joint(OBJECT_JOINT).id]
    if obj_adr != m.nq - 7:
        raise UserError("twin layout: the object must be the last joint")
    q = data.qpos[:obj_adr].copy()
    home_tip = ik.frame_pose(q)
    rotation = home_tip.rotation()

    verts = twin.geometry.mesh.vertices
    opos, oquat = data.qpos[obj_adr:obj_adr + 3], data.qpos[obj_adr + 3:obj_adr + 7]
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, oquat)
    world = verts @ rot.reshape(3, 3).T + opos
    top_z = float(world[:, 2].min())
    height = float(world[:, 2].max()) - top_z
    back_x = float(world[:, 0].min())
    y = float(opos[1])
    # The fingertip's lowest point 6 mm above the table (a tip dragging on the
    # table adds friction that swamps the object's signal), and the tip below the
    # object's top so the finger, not the palm, does the pushing.
    z = top_z + TIP_CLEARANCE + _tip_depth(twin, data)
    if z - _tip_depth(twin, data) > top_z + height:
        raise UserError(f"object is {height * 1e3:.0f} mm tall: too low for the fingertip to push it")
    start = np.array([back_x - 0.03, y, z])
    end = start + np.array([0.03 + distance, 0.0, 0.0])
    above = start + np.array([0.0, 0.0, 0.12])
    lift = end + np.array([0.0, 0.0, 0.10])

    def line(a: np.ndarray, b: np.ndarray, step: float = 0.005) -> np.ndarray:
        n = max(2, int(np.ceil(np.linalg.norm(b - a) / step)) + 1)
        return np.linspace(a, b, n)

    to_above = ik.cartesian_path(q, line(home_tip.translation(), above, 0.02), rotation)
    q_above = q.copy()
    q_above[ik.arm_qadr] = to_above[-1]
    down = ik.cartesian_path(q_above, line(above, start), rotation)
    q_start = q.copy()
    q_start[ik.arm_qadr] = down[-1]
    push = ik.cartesian_path(q_start, line(start, end, 0.002), rotation)
    q_end = q.copy()
    q_end[ik.arm_qadr] = push[-1]
    up = ik.cartesian_path(q_end, line(end, lift), rotation)
    return [
        Phase("approach", to_above, 2.0),
        Phase("descend", down, 1.5),
        Phase("push", push, float(np.linalg.norm(end - start) / speed)),
        Phase("retreat", up, 1.0),
        Phase("settle", up[-1:], 1.0),
    ]


def _tip_depth(twin: Twin, data: mujoco.MjData) -> float:
    """How far the fingertip's geometry reaches below the tip body's origin."""
    m = twin.model
    tid = m.body(FINGERTIP).id
    geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == tid and m.geom_contype[g]]
    lowest = min(data.geom_xpos[g][2] - m.geom_rbound[g] for g in geoms)
    return float(data.xpos[tid][2] - lowest)


def simulate(twin: Twin, data: mujoco.MjData, phases: list[Phase], log: Log, progress: bool = True) -> None:
    """Steps the twin with the arm actuators following the phases' waypoints (linear in time)."""
    from tqdm import tqdm

    m = twin.model
    arm_act = [twin.model.actuator(a).id for a in _arm_actuators(twin)]
    oid = m.body(OBJECT_BODY).id
    tid = m.body(FINGERTIP).id
    fq = [m.jnt_qposadr[m.joint(j).id] for j in FINGER_JOINTS]
    total = sum(p.duration for p in phases)
    steps = int(round(total / m.opt.timestep))
    bar = tqdm(total=steps, desc="simulating", unit="step", file=sys.stderr, disable=not progress, leave=False)
    next_log = data.time
    for phase in phases:
        t0 = data.time
        n = len(phase.waypoints)
        while data.time - t0 < phase.duration - 1e-9:
            s = (data.time - t0) / phase.duration * (n - 1)
            k = min(int(s), n - 2) if n > 1 else 0
            frac = s - k if n > 1 else 0.0
            target = phase.waypoints[k] if n == 1 else (1 - frac) * phase.waypoints[k] + frac * phase.waypoints[k + 1]
            data.ctrl[arm_act] = target
            mujoco.mj_step(m, data)
            bar.update()
            if data.time >= next_log:
                log.t.append(data.time)
                log.obj.append(data.xpos[oid].copy())
                log.quat.append(data.xquat[oid].copy())
                log.tip.append(data.xpos[tid].copy())
                log.finger.append(data.qpos[fq].copy())
                log.phase.append(phase.name)
                next_log += LOG_PERIOD
    bar.close()


def _arm_actuators(twin: Twin) -> list[str]:
    from dream_sysid.twin.builder import _actuator_for

    return [_actuator_for(twin.model, j) for j in twin.arm_joints]


def _plots(out: Path, rest: Log, push: Log, posture: np.ndarray, object_id: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    obj, tip, t = np.array(push.obj), np.array(push.tip), np.array(push.t)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(tip[:, 0], tip[:, 1], color="0.6", label="index fingertip")
    ax.plot(obj[:, 0], obj[:, 1], color="C3", lw=2, label=f"{object_id} origin")
    ax.scatter(*obj[0, :2], color="C3", marker="o", zorder=3, label="start")
    ax.scatter(*obj[-1, :2], color="C3", marker="x", zorder=3, label="end")
    ax.set_xlabel("x in world (m)")
    ax.set_ylabel("y in world (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Push, top view")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "push_top_view.png", dpi=120)
    plt.close(fig)
    files.append("push_top_view.png")

    fig, axes = plt.subplots(2, 1, figsize=(7, 5), sharex=True)
    disp = np.linalg.norm(obj[:, :2] - obj[0, :2], axis=1) * 1e3
    axes[0].plot(t - t[0], disp, color="C3")
    axes[0].set_ylabel("object displacement (mm)")
    phases = np.array(push.phase)
    for name in dict.fromkeys(push.phase):
        sel = np.flatnonzero(phases == name)
        axes[0].axvspan(t[sel[0]] - t[0], t[sel[-1]] - t[0], alpha=0.08, color="C0")
        axes[0].text(t[sel[0]] - t[0], disp.max() * 0.9 + 0.1, name, fontsize=7)
    finger = np.array(push.finger) - posture
    for k, name in enumerate(FINGER_JOINTS):
        axes[1].plot(t - t[0], finger[:, k], label=name.split("/")[-1])
    axes[1].set_ylabel("finger deflection (rad)")
    axes[1].set_xlabel("time (s)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "push_timeline.png", dpi=120)
    plt.close(fig)
    files.append("push_timeline.png")

    rest_obj = np.array(rest.obj)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(np.array(rest.t), np.linalg.norm(rest_obj - rest_obj[0], axis=1) * 1e3)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("drift (mm)")
    ax.set_title("Object resting on the table")
    fig.tight_layout()
    fig.savefig(out / "rest_drift.png", dpi=120)
    plt.close(fig)
    files.append("rest_drift.png")
    return files


def run_demo(args: argparse.Namespace) -> int:
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.object_geometry import ObjectGeometry
    from dream_sysid.twin.builder import ObjectPlacement

    started = time.monotonic()
    cell = load_cell(args.cell)
    entry = get_object(args.object)
    out = args.out or Path("runs") / time.strftime(f"demo-{entry.id}-%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    print(f"[demo] building the push twin of {entry.name} ({entry.mass_kg * 1e3:.0f} g)", file=sys.stderr)
    twin = build_twin(cell, ObjectGeometry.from_file(entry.mesh_path), kind="push", mass_kg=entry.mass_kg,
                      friction=entry.friction, placement=ObjectPlacement(*entry.pose_xy_yaw), object_id=entry.id)
    scene = twin.save(out / "twin")
    data = twin.home_data()
    arm_home = np.array(cell.arm.home)

    print(f"[demo] resting for {REST_SECONDS:.0f} s", file=sys.stderr)
    rest = Log.empty()
    simulate(twin, data, [Phase("rest", arm_home[None, :], REST_SECONDS)], rest)
    rest_obj = np.array(rest.obj)
    drift_mm = float(np.linalg.norm(rest_obj[-1] - rest_obj[0]) * 1e3)

    print("[demo] planning the push (differential IK)", file=sys.stderr)
    phases = plan_push(twin, data, args.push_distance, args.push_speed)
    print("[demo] pushing", file=sys.stderr)
    push = Log.empty()
    simulate(twin, data, phases, push)
    obj = np.array(push.obj)
    moved = obj[-1] - obj[0]
    fq = [twin.model.jnt_qposadr[twin.model.joint(j).id] for j in FINGER_JOINTS]
    posture = twin.home_data().qpos[fq]
    deflection = float(np.abs(np.array(push.finger) - posture).max())
    yaw = [2 * np.arctan2(q[3], q[0]) for q in (push.quat[0], push.quat[-1])]

    np.savetxt(out / "push_trajectory.csv",
               np.column_stack([push.t, obj, np.array(push.quat), np.array(push.tip)]), delimiter=",",
               header="t,obj_x,obj_y,obj_z,obj_qw,obj_qx,obj_qy,obj_qz,tip_x,tip_y,tip_z", comments="")
    plots = _plots(out, rest, push, posture, entry.id)
    summary = {
        "object_id": entry.id,
        "mass_kg": entry.mass_kg,
        "friction": entry.friction,
        "scene": str(scene),
        "collision_parts": len(twin.geometry.parts),
        "rest_drift_mm": round(drift_mm, 4),
        "push_distance_m": args.push_distance,
        "push_speed_m_s": args.push_speed,
        "object_moved_mm": [round(float(v) * 1e3, 2) for v in moved],
        "object_yaw_change_deg": round(float(np.degrees(yaw[1] - yaw[0])), 2),
        "max_finger_deflection_rad": round(deflection, 4),
        "plots": plots,
        "seconds": round(time.monotonic() - started, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"[demo] {entry.name}: rested {REST_SECONDS:.0f} s with {drift_mm:.3f} mm drift; "
          f"pushed {np.linalg.norm(moved[:2]) * 1e3:.1f} mm along x={moved[0] * 1e3:.1f} mm, "
          f"y={moved[1] * 1e3:.1f} mm, yaw {summary['object_yaw_change_deg']:+.1f} deg; "
          f"index finger deflected up to {deflection:.3f} rad", file=sys.stderr)
    print(f"[demo] report: {out.resolve()} ({', '.join(plots)}, summary.json, push_trajectory.csv, twin/)",
          file=sys.stderr)
    print(json.dumps(summary))
    return 0
