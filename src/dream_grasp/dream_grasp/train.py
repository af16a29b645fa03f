"""One trainer for every object (paper Alg. 1-2): supervised, then env-refined.

Phase 1 fits the heads to the demonstrations (MSE joint targets, BCE contact
flags, MSE force label); masses are drawn from the training masses so the force
head learns clip(m g n / f_max, 0, 1) as a function of mass. Phase 2 executes the
predicted joint targets in the floating-hand grasp twin at a training mass (a
few rollouts per step, no gradient through MuJoCo), the way the policy will run:
pre-shape (trial.preshape), the force head turned into capped currents by
GripForceMapper for the demonstration's fingers, and the object a few millimetres
off the pose the grasp was planned for. The rollout's contact flags and
f_env = clip(m g n_contacts / f_max, 0, 1) become targets of the contact and force
heads, loss 0.8 L_r + 0.3 L_f (Alg. 2), L_f over the rollouts that held the object
only: a dropped object leaves few or no contacts, and taking its f_env as the force
to ask for taught the force head to ask for less after every drop (cube: force head
0.147 -> 0.06, current down to ~100 mA, success 97 % -> 78 %). By default phase 2 updates only those two
heads (on the backbone's features): with the backbone shared, the first rollouts'
failures (the contact head says 1 after phase 1: every demonstration succeeded)
gave BCE losses ~7 whose gradients wrecked the joint targets (domino: mean error
0.03 -> 0.25 rad, success 89 % -> 0 %). `phase2_backbone=True` trains everything,
at lr, with the demonstrated joint targets as an anchor loss. Phase 2 is what
teaches the contact head that a grasp fails at a mass it cannot hold; the policy
ranks its candidate wrist poses with that head.

Exports TorchScript + JSON metadata.

CLI: dream-grasp-train --object ID --demos DEMOS.npz --out DIR
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import trimesh
from torch import nn
from tqdm import tqdm

from dream_grasp.demos.dataset import DemoSet
from dream_grasp.demos.synthetic import DEFAULT_F_MAX_N, G, force_targets
from dream_grasp.hand_scene import FloatingHandScene
from dream_grasp.model import GraspMLP
from dream_grasp.trial import object_pose_offset, preshape, run_grasp, set_mass, thumb_mask
from dream_hw.errors import OneLineArgumentParser, UserError, cli_main

VERSION = "dream_grasp.graspmlp/1"
MODEL_FILE = "grasp_mlp.pt"
META_FILE = "grasp_mlp.json"


@dataclass
class TrainConfig:
    masses: tuple[float, ...]               # training masses (kg)
    f_max: float = DEFAULT_F_MAX_N
    n_points: int = 128                    # surface samples per input (the cost is linear in it)
    hidden: int = 256
    n_freqs: int = 6
    epochs1: int = 150
    steps2: int = 40
    rollouts: int = 4                      # phase-2 rollouts per step
    lr2: float = 1e-2                      # phase-2 learning rate of the contact head (starts saturated)
    phase2_backbone: bool = False          # phase 2 also trains the backbone (with an action anchor)
    jitter_m: float = 0.003                # phase-2 rollouts misplace the object by up to this ...
    jitter_rad: float = 0.0524             # ... and this (3 deg), as the cell's pose estimate would
    batch: int = 32
    lr: float = 1e-3
    seed: int = 0
    progress: bool = True


@dataclass
class TrainResult:
    model: GraspMLP
    points_object: np.ndarray              # (N, 3) surface samples in the object frame
    config: TrainConfig
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


def surface_points(mesh: trimesh.Trimesh, n: int, seed: int = 0) -> np.ndarray:
    """n points evenly spread over the mesh surface, object frame, reproducible."""
    pts, _ = trimesh.sample.sample_surface_even(mesh, n, seed=seed)
    if len(pts) < n:                        # even sampling may return fewer: top up
        extra, _ = trimesh.sample.sample_surface(mesh, n - len(pts), seed=seed)
        pts = np.concatenate([pts, extra])
    return np.asarray(pts[:n], dtype=np.float32)


def points_in_palm(points_object: np.ndarray, palm_in_object: np.ndarray) -> np.ndarray:
    """Object points expressed in the palm frame: (..., 4, 4) poses -> (..., N, 3)."""
    rot, pos = palm_in_object[..., :3, :3], palm_in_object[..., :3, 3]
    return np.einsum("...ji,...nj->...ni", rot, points_object[None] - pos[..., None, :]).astype(np.float32)


def _labels_at(demos: DemoSet, idx: np.ndarray, masses: np.ndarray, f_max: float) -> np.ndarray:
    n = demos.fingers[idx].sum(axis=1)
    return np.array([force_targets(float(m), int(k), f_max)[1] for m, k in zip(masses, n)], dtype=np.float32)


def train(demos: DemoSet, mesh: trimesh.Trimesh, scene: FloatingHandScene | None, cfg: TrainConfig) -> TrainResult:
    """Phase 1 on the demos; phase 2 in `scene` (skipped when scene is None or steps2 == 0)."""
    if len(demos) == 0:
        raise UserError("no demonstrations to train on")
    if not cfg.masses or min(cfg.masses) <= 0:
        raise UserError(f"training masses must be positive, got {cfg.masses}")
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    pts_obj = surface_points(mesh, cfg.n_points, cfg.seed)
    inputs = torch.from_numpy(points_in_palm(pts_obj, demos.palm_in_object))        # (K, N, 3)
    actions = torch.from_numpy(demos.joint_targets.astype(np.float32))
    contacts = torch.from_numpy(demos.contact_flags.astype(np.float32))
    masses = np.asarray(cfg.masses, dtype=np.float32)
    model = GraspMLP(hidden=cfg.hidden, n_freqs=cfg.n_freqs, mass_scale=float(masses.max()))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    mse, bce = nn.MSELoss(), nn.BCELoss()
    hist: dict[str, list[float]] = {"phase1": [], "phase2": [], "phase2_success": []}
    k = len(demos)
    t0 = time.monotonic()
    bar = tqdm(range(cfg.epochs1), desc="phase 1", file=sys.stderr, disable=not cfg.progress)
    for _ in bar:
        order = rng.permutation(k)
        for s in range(0, k, cfg.batch):
            idx = order[s:s + cfg.batch]
            m = rng.choice(masses, len(idx))
            f = torch.from_numpy(_labels_at(demos, idx, m, cfg.f_max)).unsqueeze(1)
            a_hat, r_hat, f_hat = model(inputs[idx], torch.from_numpy(m).unsqueeze(1))
            loss = mse(a_hat, actions[idx]) + bce(r_hat, contacts[idx]) + mse(f_hat, f)
            opt.zero_grad()
            loss.backward()
            opt.step()
        hist["phase1"].append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.4f}")
    t1 = time.monotonic()
    if scene is not None and cfg.steps2 > 0:
        _phase2(model, scene, demos, inputs, masses, cfg, rng, hist)
    t2 = time.monotonic()
    model.eval()
    return TrainResult(model, pts_obj, cfg, hist, {"phase1": t1 - t0, "phase2": t2 - t1})


def _phase2(model: GraspMLP, scene: FloatingHandScene, demos: DemoSet,
            inputs: torch.Tensor, masses: np.ndarray, cfg: TrainConfig, rng: np.random.Generator,
            hist: dict[str, list[float]]) -> None:
    from dream_grasp.force import GripForceMapper
    from dream_grasp.study import object_to_world

    bce, mse = nn.BCELoss(), nn.MSELoss()
    obj = object_to_world(scene)
    base_mass = scene.object_mass
    thumb = thumb_mask(scene)
    mapper = GripForceMapper(scene, cfg.f_max)
    actions = torch.from_numpy(demos.joint_targets.astype(np.float32))
    if cfg.phase2_backbone:
        opt2 = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    else:   # the contact head starts saturated (all demonstrations succeeded): a larger step for it
        opt2 = torch.optim.Adam([{"params": model.contact_head.parameters(), "lr": cfg.lr2},
                                 {"params": model.force_head.parameters(), "lr": cfg.lr}])
    bar = tqdm(range(cfg.steps2), desc="phase 2", file=sys.stderr, disable=not cfg.progress)
    try:
        for _ in bar:
            idx = rng.integers(0, len(demos), cfg.rollouts)
            m = torch.from_numpy(rng.choice(masses, cfg.rollouts)).unsqueeze(1)
            with torch.no_grad():
                q_pred, _, f_pred = model(inputs[idx], m)
            r_env = np.zeros((cfg.rollouts, 2), dtype=np.float32)
            f_env = np.zeros((cfg.rollouts, 1), dtype=np.float32)
            for j, (i, mass) in enumerate(zip(idx, m.numpy()[:, 0])):
                set_mass(scene, float(mass))
                palm = obj @ demos.palm_in_object[i]
                q = np.clip(q_pred[j].numpy().astype(float), scene.lower, scene.upper)
                current = mapper.command(q, float(f_pred[j]), demos.fingers[i], palm_rot=palm[:3, :3]).current_ma
                dx, dy = rng.uniform(-cfg.jitter_m, cfg.jitter_m, 2)
                pose = object_pose_offset(scene, dx, dy, rng.uniform(-cfg.jitter_rad, cfg.jitter_rad))
                res = run_grasp(scene, palm[:3, 3], palm[:3, :3], preshape(q, thumb), q, current, object_qpos=pose)
                r_env[j] = res.contact_flags
                f_env[j, 0] = np.clip(mass * G * res.n_contacts / cfg.f_max, 0.0, 1.0)
            feat = model.features(inputs[idx], m)
            if not cfg.phase2_backbone:
                feat = feat.detach()
            r_hat, f_hat = torch.sigmoid(model.contact_head(feat)), torch.sigmoid(model.force_head(feat))
            loss = 0.8 * bce(r_hat, torch.from_numpy(r_env))
            held = torch.from_numpy(r_env[:, 1] > 0.5)
            if held.any():               # f_env only from grasps that held (see the module docstring)
                loss = loss + 0.3 * mse(f_hat[held], torch.from_numpy(f_env)[held])
            if cfg.phase2_backbone:
                anchor = rng.integers(0, len(demos), cfg.batch)
                a_hat, _, _ = model(inputs[anchor], torch.from_numpy(rng.choice(masses, cfg.batch)).unsqueeze(1))
                loss = loss + mse(a_hat, actions[anchor])
            opt2.zero_grad()
            loss.backward()
            opt2.step()
            hist["phase2"].append(loss.item())
            hist["phase2_success"].append(float(r_env[:, 1].mean()))
            bar.set_postfix(loss=f"{loss.item():.4f}", held=f"{r_env[:, 1].mean():.2f}")
    finally:
        set_mass(scene, base_mass)


def export(result: TrainResult, out_dir: str | Path, object_id: str, joint_names: list[str],
           grasps: DemoSet | None = None) -> Path:
    """Writes grasp_mlp.pt (TorchScript), grasp_mlp.json (metadata) and points.npy, and the
    demonstrations' wrist poses as grasps.npz (the policy's candidates); returns the model path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if grasps is not None:
        from dream_grasp.grasps import GraspSet

        GraspSet.from_demos(grasps).save(out)
    scripted = torch.jit.script(result.model)
    path = out / MODEL_FILE
    scripted.save(str(path))
    np.save(out / "points.npy", result.points_object)
    cfg = result.config
    meta = {
        "version": VERSION,
        "object_id": object_id,
        "inputs": {"points": [None, cfg.n_points, 3], "points_frame": "palm (LEAP palm body) of the wrist pose",
                   "points_file": "points.npy (object frame)", "mass": [None, 1], "mass_unit": "kg"},
        "outputs": {"actions": 16, "contact": 2, "force": 1},
        "joint_names": joint_names,
        "angle_convention": "Allegro-style rad (LEAP hardware = this + pi)",
        "encoding": {"type": "sin-cos positional", "n_freqs": cfg.n_freqs, "scale_m": result.model.encoding.scale,
                     "mass_features": ["m / mass_scale", "log(m / mass_scale)"],
                     "mass_scale_kg": result.model.mass_scale},
        "f_max_n": cfg.f_max,
        "force_meaning": "force head * f_max = m g n_contacts (Alg. 2); per-contact force m g / n (Eq. 10)",
        "training_masses_kg": list(cfg.masses),
        "config": asdict(cfg),
        "seconds": result.seconds,
        "final_loss": {k: (v[-1] if v else None) for k, v in result.history.items()},
        "torch": torch.__version__,
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return path


def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="dream-grasp-train", description=__doc__.split("\n\n")[0])
    p.add_argument("--object", required=True, help="catalogue object id")
    p.add_argument("--demos", required=True, help="demonstrations (.npz with its .json)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--masses", type=float, nargs="+", default=None, help="training masses (kg)")
    p.add_argument("--epochs1", type=int, default=TrainConfig.epochs1)
    p.add_argument("--steps2", type=int, default=TrainConfig.steps2)
    p.add_argument("--rollouts", type=int, default=TrainConfig.rollouts)
    p.add_argument("--points", type=int, default=TrainConfig.n_points)
    p.add_argument("--seed", type=int, default=0)
    return p


@cli_main("dream-grasp-train")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dream_hw.cell import load_cell
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.object_geometry import ObjectGeometry

    obj = get_object(args.object)
    demos = DemoSet.load(args.demos)
    geometry = ObjectGeometry.from_file(obj.mesh_path)
    masses = tuple(args.masses) if args.masses else tuple(obj.mass_kg * s for s in (0.5, 1.0, 2.0))
    scene = FloatingHandScene.for_object(load_cell(), geometry, mass_kg=obj.mass_kg, friction=obj.friction,
                                         object_id=obj.id) if args.steps2 > 0 else None
    cfg = TrainConfig(masses=masses, f_max=float(demos.header.get("f_max_n", DEFAULT_F_MAX_N)), n_points=args.points,
                      epochs1=args.epochs1, steps2=args.steps2, rollouts=args.rollouts, seed=args.seed)
    result = train(demos, geometry.mesh, scene, cfg)
    path = export(result, args.out, obj.id, list(demos.header.get("joint_names", [])), grasps=demos)
    print(json.dumps({"model": str(path), "seconds": result.seconds}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
