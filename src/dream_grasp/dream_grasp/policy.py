"""The trained grasp policy at run time: an exported model directory -> predictions
for every candidate wrist pose of the tracked object, at the current mass estimate.

The model directory is what `dream_grasp.train.export` writes: grasp_mlp.pt
(TorchScript), grasp_mlp.json (metadata), points.npy (object surface samples,
object frame) and grasps.npz (candidate palm poses, object frame). The network's
input for a candidate (the surface in that palm frame) does not depend on where
the object is, so those inputs are computed once at load; a prediction is one
batched forward pass (no MuJoCo), and the object's pose only maps the candidates
to world palm poses.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dream_grasp.grasps import GraspSet
from dream_grasp.train import META_FILE, MODEL_FILE, VERSION, points_in_palm
from dream_hw.errors import UserError

POINTS_FILE = "points.npy"


@dataclass(frozen=True)
class GraspPrediction:
    """The policy's outputs for K candidates (rows in the order of the model's grasps.npz)."""

    palm_in_object: np.ndarray      # (K, 4, 4)
    palm_world: np.ndarray          # (K, 4, 4)
    joint_targets: np.ndarray       # (K, 16) Allegro-style rad, Dynamixel id order
    contact: np.ndarray             # (K, 2) sustained-contact and retained scores in [0, 1]
    force: np.ndarray               # (K,) force head in [0, 1] (x f_max = m g n_contacts)
    fingers: np.ndarray             # (K, 4) bool: the fingers the demonstration closed on
    mass_kg: float

    def __len__(self) -> int:
        return int(self.joint_targets.shape[0])

    @property
    def score(self) -> np.ndarray:
        """(K,) contact score: both contact heads must agree (their product)."""
        return self.contact[:, 0] * self.contact[:, 1]

    def ranking(self) -> np.ndarray:
        """Candidate indices, best first: contact score (to 0.01: the heads saturate near 1 on
        every demonstrated grasp), then more fingers sharing the load, then demonstration order."""
        return np.lexsort((np.arange(len(self)), -self.fingers.sum(axis=1), -np.round(self.score, 2)))


class GraspPolicy:
    """Loads an exported model directory and predicts for (object pose, mass)."""

    def __init__(self, model_dir: str | Path):
        self.model_dir = Path(model_dir).expanduser()
        meta_path, model_path = self.model_dir / META_FILE, self.model_dir / MODEL_FILE
        for path in (meta_path, model_path, self.model_dir / POINTS_FILE):
            if not path.is_file():
                raise UserError(f"grasp model directory {self.model_dir}: {path.name} is missing "
                                "(export one with dream-grasp-train)")
        try:
            self.meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise UserError(f"{meta_path} is not JSON: {exc}") from None
        if self.meta.get("version") != VERSION:
            raise UserError(f"{meta_path}: version {self.meta.get('version')!r}, expected {VERSION!r}")
        self.object_id = str(self.meta.get("object_id", ""))
        self.joint_names = tuple(self.meta.get("joint_names") or ())
        self.f_max = float(self.meta["f_max_n"])
        self.model = torch.jit.load(str(model_path), map_location="cpu").eval()
        self.points_object = np.load(self.model_dir / POINTS_FILE).astype(np.float32)
        self.grasps = GraspSet.load(self.model_dir)
        # The network input of each candidate, computed once (it does not move with the object).
        self._inputs = torch.from_numpy(points_in_palm(self.points_object, self.grasps.palm_in_object))

    def __len__(self) -> int:
        return len(self.grasps)

    def predict(self, object_in_world: np.ndarray, mass_kg: float) -> GraspPrediction:
        """Joint targets, contact scores and force head for every candidate, and its world palm pose."""
        pose = np.asarray(object_in_world, float)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise UserError(f"object pose must be a finite 4x4 matrix, got shape {pose.shape}")
        if not mass_kg > 0:
            raise UserError(f"object mass must be positive, got {mass_kg}")
        k = len(self.grasps)
        with torch.inference_mode():
            actions, contact, force = self.model(self._inputs, torch.full((k, 1), float(mass_kg)))
        return GraspPrediction(
            palm_in_object=self.grasps.palm_in_object,
            palm_world=pose[None] @ self.grasps.palm_in_object,
            joint_targets=actions.numpy().astype(float),
            contact=contact.numpy().astype(float),
            force=force.numpy().astype(float).reshape(k),
            fingers=self.grasps.fingers,
            mass_kg=float(mass_kg),
        )


def pose_matrix(position, quat_wxyz) -> np.ndarray:
    """4x4 pose from a position and a [w, x, y, z] quaternion (normalised)."""
    q = np.asarray(quat_wxyz, float)
    n = float(np.linalg.norm(q))
    if not np.isfinite(n) or n < 1e-9:
        raise UserError("pose quaternion is zero or not finite")
    w, x, y, z = q / n
    out = np.eye(4)
    out[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                   [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                   [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]]
    out[:3, 3] = np.asarray(position, float)
    return out
