"""SYNTHETIC grasp demonstrations, made in simulation, not from human videos.

Stand-in for the paper's HaMeR/MCC-HO + dex-retargeting pipeline (§IV-C) until
retargeted human demonstrations exist. A candidate is planned, not drawn blind:

  1. joint targets from finger synergies (each finger flexes its mcp/pip/dip
     together in a random style; some fingers may stay out; the thumb swings
     under the palm), the pre-shape is `trial.preshape` of those targets;
  2. an approach (from above, tilted up to 25 deg, or from the side) and an
     opposition axis across the object; along the closing path, the point where
     thumb tip and fingertips are one object-width apart is put at the object's
     centre, with the thumb -> fingers axis along the opposition axis;
  3. the grasp runs in the floating-hand scene (trial.run_grasp) and counts if
     the object rises >= 10 cm and stays in the hand; the closing joints of the
     fingers that touched are then re-targeted SQUEEZE_RAD beyond where they
     stopped (so the current limit, not the exact target, sets the grip: see
     _deepen); if the deepened grasp fails (thin objects pop out), the grasp is
     kept as it first held.

Once grasps succeed, most further candidates are small perturbations of them
(wrist +-5 mm / 5 deg, joints +-0.08 rad): successful grasps cluster, so this
finds many more than blind sampling. With `robust_trials`, a grasp is kept only
if it also survives that many misplacements of the object (+-3 mm, +-3 deg: about
the pose tracker's goal, bench/results/tracker.json) with the object 25 % heavier
at the same current (grasps that only just hold are chaotic: measured on domino
demonstrations, 5 % failed with the object moved by +-0.3 mm).

The current a demonstration runs at is the hand's cap (generate()'s default), a
fixed value, or, with current="mass" (the CLI's default), the mass-aware current of
dream_grasp.force (force head = clip(m g n / f_max) for the demo's fingers): what the
trained policy will command, so the kept grasps are ones that work at that grip force.

CLI: dream-grasp-demos --object ID --count K --out DIR/ID
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass

import mujoco
import numpy as np
from tqdm import tqdm

from dream_grasp.demos.dataset import DemoSet
from dream_grasp.hand_scene import FINGERS, FloatingHandScene
from dream_grasp.trial import TrialResult, object_pose_offset, preshape, run_grasp, set_mass, thumb_mask
from dream_hw.errors import OneLineArgumentParser, UserError, cli_main

G = 9.81
DEFAULT_F_MAX_N = 10.0          # force-head scale (N): m g n_contacts of 10 N (~0.3 kg on 3 fingers)
                                # already asks for more than the 550 mA cap (force.py), so the head's
                                # [0, 1] range is spent where the current still changes
APPROACHES = ("top", "side")

# Synergy ranges by joint kind (Allegro-style rad). Kinds come from the MJCF joint
# names, so the order follows the cell's Dynamixel map, never a hard-coded id list.
_FLEX = {"mcp": 1.6, "pip": 1.4, "dip": 1.2}                       # full flexion of a finger
_STYLE = {"mcp": (0.5, 1.0), "pip": (0.3, 1.0), "dip": (0.2, 1.0)}  # per-grasp share of it
_ROT = (-0.2, 0.2)
_THUMB = {"cmc": (1.0, 1.9), "axl": (-0.2, 0.8), "th_mcp": (0.2, 1.3), "ipl": (0.0, 1.0)}
_TIP_RADIUS_M = 0.012
_PERTURB = (0.005, math.radians(5.0), 0.08)      # wrist m, wrist rad, joints rad (1 sigma)
SQUEEZE_RAD = 0.15               # a kept grasp's closing joints target at least this beyond where they stop
_CLOSING = ("mcp", "pip", "dip", "th_mcp", "ipl")    # joint kinds that close the hand with positive angles
_MISPLACE = (0.003, math.radians(3.0))           # robustness check: object +- m, +- rad ...
ROBUST_SLACK = 0.25                              # ... and this much heavier


def joint_kind(name: str) -> str:
    short = name.split("/")[-1]
    return "th_mcp" if short == "th_mcp" else short.split("_")[-1]


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    axis = axis / np.linalg.norm(axis)
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * k @ k


@dataclass(frozen=True)
class GraspCandidate:
    approach: str
    palm_pos: np.ndarray           # world
    palm_rot: np.ndarray           # world, 3x3
    q_open: np.ndarray
    q_target: np.ndarray
    fingers: np.ndarray            # (4,) bool: the fingers the synergy closes (thumb always)


class GraspSampler:
    """Planned grasp candidates around the object at its home pose (see the module docstring)."""

    def __init__(self, scene: FloatingHandScene, rng: np.random.Generator):
        self.scene, self.rng = scene, rng
        self.kinds = [joint_kind(j) for j in scene.twin.hand_joints]
        known = set(_FLEX) | set(_THUMB) | {"rot"}
        unknown = [k for k in self.kinds if k not in known]
        if unknown:
            raise UserError(f"synthetic demos: unknown LEAP joint kinds {unknown}")
        self.finger_of_joint = np.array([FINGERS.index(j.split("/")[-1][:2]) for j in scene.twin.hand_joints])
        self.thumb = thumb_mask(scene)
        self.closing = np.array([k in _CLOSING for k in self.kinds])
        self._data = mujoco.MjData(scene.model)
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, scene.object_home[3:])
        self.vertices = scene.twin.geometry.mesh.vertices @ rot.reshape(3, 3).T + scene.object_home[:3]
        self.low, self.high = self.vertices.min(axis=0), self.vertices.max(axis=0)

    # ------------------------------------------------------------------ pieces
    def tips(self, q: np.ndarray) -> np.ndarray:
        """Fingertip centres (4, 3) in the palm frame at hand configuration q."""
        m, d, s = self.scene.model, self._data, self.scene
        d.qpos[:] = 0.0
        d.qpos[s.hand_qadr] = q
        mujoco.mj_kinematics(m, d)
        rot, pos = d.xmat[s.palm_body].reshape(3, 3), d.xpos[s.palm_body]
        return (d.geom_xpos[s.tip_geoms] - pos) @ rot

    def joint_targets(self) -> tuple[np.ndarray, np.ndarray]:
        """Synergy joint targets (16,) and the fingers they close (4 bools, thumb always)."""
        r = self.rng
        closes = r.random(3) < 0.85
        if not closes.any():
            closes[r.integers(3)] = True
        style = {k: r.uniform(*v) for k, v in _STYLE.items()}
        amount = np.where(closes, r.uniform(0.75, 1.15, 3), r.uniform(0.0, 0.3, 3))
        q = np.zeros(16)
        for i, (kind, f) in enumerate(zip(self.kinds, self.finger_of_joint)):
            if kind == "rot":
                q[i] = r.uniform(*_ROT)
            elif kind in _FLEX:
                q[i] = amount[f] * style[kind] * _FLEX[kind]
            else:
                q[i] = r.uniform(*_THUMB[kind])
        return np.clip(q, self.scene.lower, self.scene.upper), np.append(closes, True)

    def _axes(self, approach: str) -> tuple[np.ndarray, np.ndarray]:
        """Approach direction a (towards the object) and an opposition axis u perpendicular to it."""
        r = self.rng
        up = np.array([0.0, 0.0, 1.0])
        if approach == "top":
            az = r.uniform(-math.pi, math.pi)
            a = _rotation(np.array([math.cos(az), math.sin(az), 0.0]), r.uniform(0.0, math.radians(25))) @ -up
        else:
            phi = r.uniform(-math.pi, math.pi)
            a = np.array([math.cos(phi), math.sin(phi), 0.0])
            a = _rotation(np.cross(a, up), r.uniform(-0.35, 0.35)) @ a
        e1 = np.cross(a, up) if abs(a[2]) < 0.9 else np.cross(a, [1.0, 0.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(a, e1)
        ang = r.uniform(-math.pi, math.pi)
        return a, math.cos(ang) * e1 + math.sin(ang) * e2

    # ------------------------------------------------------------------ candidates
    def sample(self, approach: str | None = None) -> GraspCandidate | None:
        """A planned candidate, or None if the hand cannot span the object along the drawn axis."""
        r = self.rng
        approach = approach or str(r.choice(APPROACHES))
        q, closes = self.joint_targets()
        q_open = preshape(q, self.thumb)
        a, u = self._axes(approach)
        proj = self.vertices @ u
        width, mid = proj.max() - proj.min(), 0.5 * (proj.max() + proj.min())
        contact = None
        for s in np.linspace(0.0, 1.0, 41):                    # along the closing ramp
            t = self.tips(q_open + s * (q - q_open))
            fingers, thumb = t[:3][closes[:3]].mean(axis=0), t[3]
            if np.linalg.norm(fingers - thumb) - 2 * _TIP_RADIUS_M <= width:
                contact = fingers, thumb
                break
        if contact is None:
            return None
        fingers, thumb = contact
        v = (fingers - thumb) / np.linalg.norm(fingers - thumb)
        zp = np.array([0.0, 0.0, 1.0]) - v[2] * v               # palm normal, made orthogonal to v
        zp /= np.linalg.norm(zp)
        palm_axes = np.column_stack([v, zp, np.cross(v, zp)])
        world_axes = np.column_stack([u, -a, np.cross(u, -a)])
        rot = world_axes @ palm_axes.T                          # v -> u, palm normal -> -a
        centre = 0.5 * (fingers + thumb)
        target = 0.5 * (self.low + self.high)
        target += (mid - target @ u) * u
        w = np.cross(a, u)
        pw = self.vertices @ w
        target += r.uniform(-0.25, 0.25) * (pw.max() - pw.min()) * w
        height = self.high[2] - self.low[2]
        target[2] = max(self.low[2] + 0.008, self.low[2] + r.uniform(0.25, 0.75) * height)
        pos = target - rot @ centre - a * r.uniform(-0.015, 0.02)
        return GraspCandidate(approach, pos, rot, q_open, q, closes)

    def perturb(self, cand: GraspCandidate, scale: float = 1.0) -> GraspCandidate:
        """A nearby candidate: wrist and joints jittered (see _PERTURB)."""
        r = self.rng
        dp, dr, dq = (scale * x for x in _PERTURB)
        rot = _rotation(r.normal(size=3), r.normal(0.0, dr)) @ cand.palm_rot
        q = np.clip(cand.q_target + r.normal(0.0, dq, 16), self.scene.lower, self.scene.upper)
        return GraspCandidate(cand.approach, cand.palm_pos + r.normal(0.0, dp, 3), rot,
                              preshape(q, self.thumb), q, cand.fingers)


def palm_in_object(scene: FloatingHandScene, palm_pos: np.ndarray, palm_rot: np.ndarray) -> np.ndarray:
    """4x4 palm pose in the object frame, with the object where it rests before the grasp."""
    obj = np.eye(4)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, scene.object_home[3:])
    obj[:3, :3], obj[:3, 3] = rot.reshape(3, 3), scene.object_home[:3]
    palm = np.eye(4)
    palm[:3, :3], palm[:3, 3] = palm_rot, palm_pos
    return np.linalg.inv(obj) @ palm


def force_targets(mass_kg: float, n_contacts: int, f_max: float) -> tuple[float, float]:
    """(per-contact grip force m g / n (Eq. 10), force label clip(m g n / f_max, 0, 1) (Alg. 2))."""
    n = max(int(n_contacts), 1)
    return mass_kg * G / n, float(np.clip(mass_kg * G * n_contacts / f_max, 0.0, 1.0))


class _Currents:
    """The current a demonstration runs at: the cap, a fixed value, or mass-aware (force.py)."""

    def __init__(self, scene: FloatingHandScene, current: str | float | None, f_max: float):
        self.scene, self.f_max = scene, f_max
        self.mapper = None
        if current == "mass":
            from dream_grasp.force import GripForceMapper

            self.mapper = GripForceMapper(scene, f_max)
            self.fixed = None
        elif current is None or current == "cap":
            self.fixed = scene.servo.current_cap_ma.astype(float)
        else:
            value = float(current)
            if not value > 0:
                raise UserError(f"demonstration current must be positive mA, 'cap' or 'mass', got {current!r}")
            self.fixed = np.minimum(value, scene.servo.current_cap_ma)
        self.label = "mass" if self.mapper is not None else [float(c) for c in np.broadcast_to(self.fixed, (16,))]

    def __call__(self, cand: GraspCandidate, fingers: np.ndarray) -> np.ndarray:
        if self.mapper is None:
            return np.broadcast_to(self.fixed, (16,)).copy()
        from dream_grasp.force import force_head_for

        f_hat = force_head_for(self.scene.object_mass, int(fingers.sum()), self.f_max)
        return self.mapper.command(cand.q_target, f_hat, fingers, palm_rot=cand.palm_rot).current_ma


def _attempt(scene: FloatingHandScene, cand: GraspCandidate, currents: _Currents) -> tuple[TrialResult, np.ndarray]:
    """Runs a candidate; with mass-aware currents, re-runs once if other fingers touched than planned."""
    cur = currents(cand, cand.fingers)
    res = run_grasp(scene, cand.palm_pos, cand.palm_rot, cand.q_open, cand.q_target, cur)
    if currents.mapper is not None and res.success and not np.array_equal(res.fingers_at_grasp, cand.fingers):
        cur = currents(cand, res.fingers_at_grasp)
        again = run_grasp(scene, cand.palm_pos, cand.palm_rot, cand.q_open, cand.q_target, cur)
        ok = again.success and np.array_equal(again.fingers_at_grasp, res.fingers_at_grasp)
        res = again if ok else TrialResult(False, False, again.in_hand, again.object_rise_m,
                                           again.fingers_at_grasp, again.n_contacts, again.initial_penetration_m)
    return res, cur


def _deepen(sampler: GraspSampler, cand: GraspCandidate, res: TrialResult) -> GraspCandidate | None:
    """The candidate with the closing joints of its touching fingers targeted SQUEEZE_RAD beyond
    where they stopped on the object (None if they already are). Then kp x error exceeds the
    cap (3 N m/rad x 0.15 rad > 0.29 N m) and the current limit, not the position error, sets
    the grip: measured on domino demonstrations without it, only 45 % of the touching fingers'
    joints were at their current limit (median target error 0.05 rad), so the grip depended on
    the exact targets and 0.02 rad of target noise cost a quarter of the grasps."""
    if res.hand_q is None:
        return None
    joints = sampler.closing & res.fingers_at_grasp[sampler.finger_of_joint]
    want = np.maximum(cand.q_target, res.hand_q + SQUEEZE_RAD)
    q = np.where(joints, np.clip(want, sampler.scene.lower, sampler.scene.upper), cand.q_target)
    if np.allclose(q, cand.q_target):
        return None
    return GraspCandidate(cand.approach, cand.palm_pos, cand.palm_rot, preshape(q, sampler.thumb), q, cand.fingers)


def _robust(scene: FloatingHandScene, cand: GraspCandidate, cur: np.ndarray, trials: int,
            rng: np.random.Generator) -> bool:
    """Does the grasp also hold, at the same current, an object misplaced (+-_MISPLACE) and
    ROBUST_SLACK heavier, in every one of `trials`? The mass slack keeps grasps that only
    just hold at their current out: their outcome flips with sub-millimetre changes."""
    mass = scene.object_mass
    set_mass(scene, mass * (1.0 + ROBUST_SLACK))
    try:
        for _ in range(trials):
            dx, dy = rng.uniform(-_MISPLACE[0], _MISPLACE[0], 2)
            pose = object_pose_offset(scene, dx, dy, rng.uniform(-_MISPLACE[1], _MISPLACE[1]))
            res = run_grasp(scene, cand.palm_pos, cand.palm_rot, cand.q_open, cand.q_target, cur, object_qpos=pose)
            if not res.success:
                return False
        return True
    finally:
        set_mass(scene, mass)


def _candidates(scene: FloatingHandScene, sampler: GraspSampler, demos: DemoSet) -> list[GraspCandidate]:
    """Demonstrations as candidates again (object at its home pose)."""
    obj = np.eye(4)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, scene.object_home[3:])
    obj[:3, :3], obj[:3, 3] = rot.reshape(3, 3), scene.object_home[:3]
    out = []
    for pose, q, fingers in zip(demos.palm_in_object, demos.joint_targets, demos.fingers):
        palm = obj @ pose
        q = np.clip(q.astype(float), scene.lower, scene.upper)
        out.append(GraspCandidate("seed", palm[:3, 3], palm[:3, :3], preshape(q, sampler.thumb), q,
                                  np.asarray(fingers, bool)))
    return out


def generate(scene: FloatingHandScene, count: int, *, seed: int = 0, max_trials: int | None = None,
             f_max: float = DEFAULT_F_MAX_N, approaches: tuple[str, ...] = APPROACHES,
             progress: bool = True, current: str | float | None = None, refine: float = 0.75,
             robust_trials: int = 0, seeds: DemoSet | None = None,
             squeeze: bool = True) -> tuple[DemoSet, dict[str, int]]:
    """Up to `count` successful grasps of the scene's object at its current mass.

    current: None/'cap' (the hand's cap), a fixed mA, or 'mass' (mass-aware, see module doc).
    refine: share of candidates drawn as perturbations of grasps already kept.
    robust_trials: also require the grasp to survive this many object misplacements.
    squeeze: deepen a successful grasp's closing targets (see _deepen) where the deepened
    grasp works too.
    seeds: grasps to refine from the start (e.g. demonstrations of the object at a lower mass);
    they are not demonstrations themselves until they succeed here.
    """
    if count < 1:
        raise UserError(f"demonstration count must be >= 1, got {count}")
    bad = [a for a in approaches if a not in APPROACHES]
    if bad or not approaches:
        raise UserError(f"unknown approaches {bad}: expected some of {APPROACHES}")
    rng = np.random.default_rng(seed)
    sampler = GraspSampler(scene, rng)
    currents = _Currents(scene, current, f_max)
    max_trials = max_trials or 40 * count
    mass = scene.object_mass
    rows: list[tuple[np.ndarray, np.ndarray, TrialResult]] = []
    kept: list[GraspCandidate] = []
    pool = _candidates(scene, sampler, seeds) if seeds is not None and len(seeds) else []
    stats = {"trials": 0, "unplannable": 0, "penetrating": 0, "dropped": 0, "unstable": 0, "not_robust": 0,
             "refined": 0, "deepened": 0, "kept_undeepened": 0, "kept": 0}
    bar = tqdm(total=count, desc=f"demos {scene.twin.request.object_id}", file=sys.stderr, disable=not progress)
    while len(rows) < count and stats["trials"] < max_trials:
        stats["trials"] += 1
        if (kept or pool) and rng.random() < refine:
            base = kept or pool
            cand = sampler.perturb(base[rng.integers(len(base))])
            stats["refined"] += 1
        else:
            cand = sampler.sample(approaches[stats["trials"] % len(approaches)])
            if cand is None:
                stats["unplannable"] += 1
                continue
        res, cur = _attempt(scene, cand, currents)
        if res.success and squeeze:
            deeper = _deepen(sampler, cand, res)
            if deeper is not None:
                stats["deepened"] += 1
                res2, cur2 = _attempt(scene, deeper, currents)
                if res2.success:
                    cand, res, cur = deeper, res2, cur2
                else:   # thin objects (the letters) squeezed harder pop out: keep the grasp as it held
                    stats["kept_undeepened"] += 1
        if res.initial_penetration_m > 0.002:
            stats["penetrating"] += 1
        elif res.unstable:
            stats["unstable"] += 1
        elif not res.success:
            stats["dropped"] += 1
        elif robust_trials and not _robust(scene, cand, cur, robust_trials, rng):
            stats["not_robust"] += 1
        else:
            kept.append(cand)
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
            "source": "synthetic (dream_grasp.demos.synthetic: planned and refined in the floating-hand grasp twin)",
            "object_id": scene.twin.request.object_id,
            "mesh": scene.twin.request.mesh_source,
            "friction": scene.twin.request.friction,
            "f_max_n": f_max,
            "current_ma": currents.label,
            "preshape": "dream_grasp.trial.preshape",
            "robust_trials": robust_trials,
            "squeeze_rad": SQUEEZE_RAD if squeeze else 0.0,
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
    p.add_argument("--current", default="mass", help="'mass' (mass-aware, default), 'cap' or a fixed mA")
    p.add_argument("--robust", type=int, default=2,
                   help="misplaced, 25 %% heavier repeats a grasp must also hold (default 2)")
    p.add_argument("--max-trials", type=int, default=None)
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
    current = args.current if args.current in ("cap", "mass") else float(args.current)
    t0 = time.monotonic()
    demo, stats = generate(scene, args.count, seed=args.seed, max_trials=args.max_trials, current=current,
                           robust_trials=args.robust)
    if len(demo) == 0:
        raise UserError(f"no successful grasp of {obj.id} in {stats['trials']} trials")
    path = demo.save(args.out)
    print(f"{path}: {len(demo)} grasps from {stats['trials']} trials in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
