"""The candidate wrist poses a trained policy chooses from: `grasps.npz` beside the model.

GraspMLP predicts a hand configuration *for* a given wrist pose (its input is the
object's surface in that palm frame); it does not propose the pose. The poses it
was trained on are the demonstrations' palm poses in the object frame, so the
export keeps them, with the fingers each demonstration closed on (the fingers the
grip force is shared by):

  palm_in_object  (K, 4, 4) float64  LEAP `palm` body pose in the object frame
  fingers         (K, 4)    bool     index, middle, ring, thumb touching after closing
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dream_hw.errors import UserError

GRASPS_FILE = "grasps.npz"


@dataclass(frozen=True)
class GraspSet:
    """Candidate palm poses of one object (object frame) and their demonstrated contact fingers."""

    palm_in_object: np.ndarray
    fingers: np.ndarray

    def __post_init__(self) -> None:
        k = len(self.palm_in_object)
        if self.palm_in_object.shape != (k, 4, 4) or self.fingers.shape != (k, 4) or k == 0:
            raise UserError(f"grasp candidates: need K >= 1 poses (K, 4, 4) and fingers (K, 4), got "
                            f"{self.palm_in_object.shape} and {self.fingers.shape}")

    def __len__(self) -> int:
        return int(self.palm_in_object.shape[0])

    @classmethod
    def from_demos(cls, demos) -> "GraspSet":
        """The demonstrations' palm poses (a DemoSet or anything with its two arrays)."""
        return cls(np.asarray(demos.palm_in_object, np.float64), np.asarray(demos.fingers, bool))

    def save(self, out_dir: str | Path) -> Path:
        path = Path(out_dir) / GRASPS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, palm_in_object=self.palm_in_object, fingers=self.fingers)
        return path

    @classmethod
    def load(cls, model_dir: str | Path) -> "GraspSet":
        path = Path(model_dir) / GRASPS_FILE
        if not path.is_file():
            raise UserError(f"{path} does not exist: export the model with its grasp candidates "
                            "(dream-grasp-train writes it)")
        with np.load(path) as data:
            missing = [a for a in ("palm_in_object", "fingers") if a not in data]
            if missing:
                raise UserError(f"{path}: missing arrays {missing}")
            return cls(data["palm_in_object"].astype(np.float64), data["fingers"].astype(bool))
