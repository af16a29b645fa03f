"""SYNTHETIC grasp demonstrations, made in simulation, not from human videos.

Stand-in for the paper's HaMeR/MCC-HO + dex-retargeting pipeline (§IV-C) until
retargeted human demonstrations exist: sample an approach (top-down or from the
side), a palm roll and stand-off, and a finger closure; run the grasp in the
floating-hand scene at the hand's current cap; keep it if the object rises
>= 10 cm and stays in the hand. Outputs the DemoSet format (demos/dataset.py).

CLI: dream-grasp-demos --object ID --count K --out DIR/ID
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from dream_grasp.demos.dataset import DemoSet
from dream_grasp.hand_scene import FINGERS, FloatingHandScene
from dream_grasp.trial import TrialResult, run_grasp
from dream_hw.errors import OneLineArgumentParser, UserError, cli_main

G = 9.81
DEFAULT_F_MAX_N = 40.0          # force-head scale: m g n_contacts up to ~1 kg x 4 fingers
APPROACHES = ("top", "side")

# Closure ranges by joint kind (Allegro-style rad). Kinds come from the MJCF joint
# names, so the order follows the cell's Dynamixel map, never a hard-coded id list.
_CLOSE = {"rot": (-0.2, 0.2), "mcp": (0.5, 1.6), "pip": (0.3, 1.3), "dip": (0.1, 1.0),
          "cmc": (0.8, 1.9), "axl": (0.0, 1.2), "th_mcp": (0.0, 1.0), "ipl": (0.0, 0.9)}


def joint_kind(name: str) -> str:
    short = name.split("/")[-1]
    return "th_mcp" if short == "th_mcp" else short.split("_")[-1]


@dataclass(frozen=True)
class GraspCandidate:
    approach: str
    palm_pos: np.ndarray           # world
    palm_rot: np.ndarray           # world, 3x3
    q_open: np.ndarray
    q_target: np.ndarray


class GraspSampler:
    """Random grasp candidates around the object's bounding-box centre."""

    def __init__(self, scene: FloatingHandScene, rng: np.random.Generator):
        self.scene, self.rng = scene, rng
        kinds = [joint_kind(j) for j in scene.twin.hand_joints]
        unknown = [k for k in kinds if k not in _CLOSE]
        if unknown:
            raise UserError(f"synthetic demos: unknown LEAP joint kinds {unknown}")
        self.lo = np.array([_CLOSE[k][0] for k in kinds])
        self.hi = np.array([_CLOSE[k][1] for k in kinds])
        self.thumb = np.array([j.split("/")[-1].startswith("th_") for j in scene.twin.hand_joints])
        self.centre = grasp_centre(scene)
        self.extent = scene.twin.geometry.mesh.extents

    def sample(self, approach: str | None = None) -> GraspCandidate:
        r = self.rng
        approach = approach or str(r.choice(APPROACHES))
        obj_pos, obj_rot = self.scene.object_pose()
        bbox_c = obj_rot @ self.scene.twin.geometry.mesh.bounds.mean(axis=0) + obj_pos
        if approach == "top":
            a = np.array([0.0, 0.0, -1.0])
            psi = r.uniform(-math.pi, math.pi)
            x = np.array([math.cos(psi), math.sin(psi), 0.0])
        else:
            phi = r.uniform(-math.pi, math.pi)
            a = np.array([math.cos(phi), math.sin(phi), 0.0])
            side = np.cross(a, [0.0, 0.0, 1.0])
            # fingers roughly horizontal: a vertical hand would hit the table below a low object
            psi = r.choice([-1.0, 1.0]) * 0.5 * math.pi + r.uniform(-0.5, 0.5)
            x = math.cos(psi) * np.array([0.0, 0.0, 1.0]) + math.sin(psi) * side
        z = -a                                                     # palm's grasping side is its -z
        rot = np.column_stack([x, np.cross(z, x), z])
        jitter = r.uniform(-0.3, 0.3, 3) * np.minimum(self.extent, 0.04)
        standoff = r.uniform(-0.04, 0.03)
        target = bbox_c + jitter
        if approach == "side":
            target[2] = max(target[2], self.scene.object_home[2] - 0.5 * self.extent[2] + 0.02)
        pos = target - rot @ self.centre - a * standoff
        q_target = r.uniform(self.lo, self.hi)
        q_open = np.where(self.thumb, r.uniform(0.0, 0.6) * q_target, r.uniform(0.0, 0.2) * q_target)
        return GraspCandidate(approach, pos, rot, q_open, q_target)


def grasp_centre(scene: FloatingHandScene) -> np.ndarray:
    """Palm-frame point between thumb and fingers half-way closed: where the object should sit."""
    q = np.zeros(16)
    kinds = [joint_kind(j) for j in scene.twin.hand_joints]
    for i, k in enumerate(kinds):
        q[i] = 0.0 if k == "rot" else 0.5 * (_CLOSE[k][0] + _CLOSE[k][1])
    scene.reset(np.zeros(3), np.eye(3), q)
    palm_pos, palm_rot = scene.palm_pose()
    tips = scene.data.geom_xpos[scene.tip_geoms]
    between = 0.5 * (tips[:-1].mean(axis=0) + tips[-1])     # fingers' mean and the thumb
    return palm_rot.T @ (between - palm_pos)


def palm_in_object(scene: FloatingHandScene, palm_pos: np.ndarray, palm_rot: np.ndarray) -> np.ndarray:
    """4x4 palm pose in the object frame, with the object where it rests before the grasp."""
    obj = np.eye(4)
    obj_pos = scene.object_home[:3]
    q = scene.object_home[3:]
    import mujoco

    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, q)
    obj[:3, :3], obj[:3, 3] = rot.reshape(3, 3), obj_pos
    palm = np.eye(4)
    palm[:3, :3], palm[:3, 3] = palm_rot, palm_pos
    return np.linalg.inv(obj) @ palm


def force_targets(mass_kg: float, n_contacts: int, f_max: float) -> tuple[float, float]:
    """(per-contact grip force m g / n (Eq. 10), force label clip(m g n / f_max, 0, 1) (Alg. 2))."""
    n = max(int(n_contacts), 1)
    return mass_kg * G / n, float(np.clip(mass_kg * G * n_contacts / f_max, 0.0, 1.0))


def generate(scene: FloatingHandScene, count: int, *, seed: int = 0, max_trials: int | None = None,
             f_max: float = DEFAULT_F_MAX_N, approaches: tuple[str, ...] = APPROACHES,
             progress: bool = True) -> tuple[DemoSet, dict[str, int]]:
    """Up to `count` successful grasps of the scene's object (at its current mass, at the current cap)."""
    if count < 1:
        raise UserError(f"demonstration count must be >= 1, got {count}")
    bad = [a for a in approaches if a not in APPROACHES]
    if bad:
        raise UserError(f"unknown approaches {bad}: expected some of {APPROACHES}")
    rng = np.random.default_rng(seed)
    sampler = GraspSampler(scene, rng)
    cap = scene.servo.current_cap_ma
    max_trials = max_trials or 40 * count
    mass = scene.object_mass
    rows: list[tuple[np.ndarray, np.ndarray, TrialResult]] = []
    stats = {"trials": 0, "penetrating": 0, "dropped": 0, "kept": 0}
    bar = tqdm(total=count, desc=f"demos {scene.twin.request.object_id}", file=sys.stderr, disable=not progress)
    while len(rows) < count and stats["trials"] < max_trials:
        cand = sampler.sample(approaches[stats["trials"] % len(approaches)])
        stats["trials"] += 1
        res = run_grasp(scene, cand.palm_pos, cand.palm_rot, cand.q_open, cand.q_target, cap)
        if res.initial_penetration_m > 0.002:
            stats["penetrating"] += 1
        elif not res.success:
            stats["dropped"] += 1
        else:
            rows.append((palm_in_object(scene, cand.palm_pos, cand.palm_rot),
                         np.clip(cand.q_target, scene.lower, scene.upper), res))
            bar.update(1)
    bar.close()
    stats["kept"] = len(rows)
    forces = [force_targets(mass, r.n_contacts, f_max) for _, _, r in rows]
    demo = DemoSet(
        palm_in_object=np.array([p for p, _, _ in rows], dtype=np.float64).reshape(-1, 4, 4),
        joint_targets=np.array([q for _, q, _ in rows], dtype=np.float32).reshape(-1, 16),
        contact_flags=np.array([r.contact_flags for _, _, r in rows], dtype=np.float32).reshape(-1, 2),
        fingers=np.array([r.fingers_at_grasp for _, _, r in rows], dtype=bool).reshape(-1, 4),
        force_n=np.array([f for f, _ in forces], dtype=np.float32),
        force_label=np.array([f for _, f in forces], dtype=np.float32),
        mass_kg=np.full(len(rows), mass, dtype=np.float32),
        header={
            "source": "synthetic (dream_grasp.demos.synthetic: sampled in the floating-hand grasp twin)",
            "object_id": scene.twin.request.object_id,
            "mesh": scene.twin.request.mesh_source,
            "friction": scene.twin.request.friction,
            "f_max_n": f_max,
            "current_ma": [float(c) for c in cap],
            "joint_names": list(scene.twin.hand_joints),
            "fingers": list(FINGERS),
            "angle_convention": "Allegro-style rad (LEAP hardware = this + pi)",
            "seed": seed,
            "stats": stats,
        },
    )
    return demo.validate(), stats


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="dream-grasp-demos", description=__doc__.split("\n\n")[0])
    p.add_argument("--object", required=True, help="catalogue object id")
    p.add_argument("--count", type=int, default=50, help="successful grasps wanted")
    p.add_argument("--mass", type=float, default=None, help="object mass (kg; default: the catalogue's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output path without suffix (writes .npz and .json)")
    return p


@cli_main("dream-grasp-demos")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dream_hw.cell import load_cell
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.object_geometry import ObjectGeometry

    obj = get_object(args.object)
    scene = FloatingHandScene.for_object(load_cell(), ObjectGeometry.from_file(obj.mesh_path),
                                         mass_kg=args.mass or obj.mass_kg, friction=obj.friction,
                                         object_id=obj.id)
    t0 = time.monotonic()
    demo, stats = generate(scene, args.count, seed=args.seed)
    if len(demo) == 0:
        raise UserError(f"no successful grasp of {obj.id} in {stats['trials']} trials")
    path = demo.save(args.out)
    print(f"{path}: {len(demo)} grasps from {stats['trials']} trials in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
