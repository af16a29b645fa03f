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

from dream_hw.cell import Cell, load_cell
from dream_hw.mjcf import joint_actuator
from dream_sysid.push.planner import FINGERTIP, PushPlan, PushPlanner
from dream_sysid.push.program import Approach, PushProgram, Retreat, SpeedProfile
from dream_sysid.twin.builder import OBJECT_BODY, OBJECT_JOINT, Twin, build_twin

FINGER_JOINTS = ("allegro/ffj1", "allegro/ffj2", "allegro/ffj3")
REST_SECONDS = 5.0
SETTLE_SECONDS = 1.0
TIP_CLEARANCE = 0.006
LOG_PERIOD = 0.01


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


def demo_program(distance: float, speed: float) -> PushProgram:
    """The demo's push as a push program: along +x at constant speed (a steep trapezoid)."""
    return PushProgram(
        name="demo", description="dream demo: constant-speed push along +x",
        direction_deg=0.0,
        approach=Approach(offset_m=0.02, tip_clearance_m=TIP_CLEARANCE, pre_push_height_m=0.12,
                          speed_m_s=0.15, acceleration_m_s2=0.5),
        push=SpeedProfile(max_speed_m_s=speed, acceleration_m_s2=2.0, distance_past_contact_m=distance),
        retreat=Retreat(back_m=0.0, lift_m=0.10, speed_m_s=0.15, acceleration_m_s2=0.5),
        settle_s=SETTLE_SECONDS,
    )


def plan_demo_push(twin: Twin, data: mujoco.MjData, cell: Cell, distance: float, speed: float) -> PushPlan:
    """Plans the demo's push from the twin's current state (arm joints, object pose)."""
    m = twin.model
    obj_adr = m.jnt_qposadr[m.joint(OBJECT_JOINT).id]
    arm_q = np.array([data.qpos[m.jnt_qposadr[m.joint(j).id]] for j in twin.arm_joints])
    return PushPlanner(twin, cell).plan(demo_program(distance, speed), arm_q, data.qpos[obj_adr:obj_adr + 3],
                                        data.qpos[obj_adr + 3:obj_adr + 7])


def simulate_plan(twin: Twin, data: mujoco.MjData, plan: PushPlan, settle: float, log: Log,
                  progress: bool = True) -> None:
    """Steps the twin with the arm following the planned JointTrajectory as the controller does
    (linear interpolation from where the arm is), then holding its last point for `settle` s."""
    m = twin.model
    start = np.array([data.qpos[m.jnt_qposadr[m.joint(j).id]] for j in twin.arm_joints])
    t0 = data.time
    _run(twin, data, [("push plan", plan.duration, lambda t: plan.arm_target(t, start)),
                      ("settle", settle, lambda t: plan.positions[-1])], log, progress,
         phase_name=lambda name, t: plan.segment_at(t - t0) if name == "push plan" else name)


def _run(twin: Twin, data: mujoco.MjData, parts, log: Log, progress: bool, phase_name=None) -> None:
    from tqdm import tqdm

    m = twin.model
    arm_act = [joint_actuator(m, j) for j in twin.arm_joints]
    oid = m.body(OBJECT_BODY).id
    tid = m.body(FINGERTIP).id
    fq = [m.jnt_qposadr[m.joint(j).id] for j in FINGER_JOINTS]
    steps = int(round(sum(duration for _, duration, _ in parts) / m.opt.timestep))
    bar = tqdm(total=steps, desc="simulating", unit="step", file=sys.stderr, disable=not progress, leave=False)
    next_log = data.time
    for name, duration, target in parts:
        t0 = data.time
        while data.time - t0 < duration - 1e-9:
            data.ctrl[arm_act] = target(data.time - t0)
            mujoco.mj_step(m, data)
            bar.update()
            if data.time >= next_log:
                log.t.append(data.time)
                log.obj.append(data.xpos[oid].copy())
                log.quat.append(data.xquat[oid].copy())
                log.tip.append(data.xpos[tid].copy())
                log.finger.append(data.qpos[fq].copy())
                log.phase.append(phase_name(name, data.time) if phase_name else name)
                next_log += LOG_PERIOD
    bar.close()


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
    _run(twin, data, [("rest", REST_SECONDS, lambda t: arm_home)], rest, progress=True)
    rest_obj = np.array(rest.obj)
    drift_mm = float(np.linalg.norm(rest_obj[-1] - rest_obj[0]) * 1e3)

    print("[demo] planning the push (differential IK)", file=sys.stderr)
    plan = plan_demo_push(twin, data, cell, args.push_distance, args.push_speed)
    print("[demo] pushing", file=sys.stderr)
    push = Log.empty()
    simulate_plan(twin, data, plan, SETTLE_SECONDS, push)
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
