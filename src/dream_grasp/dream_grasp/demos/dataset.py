"""The demonstration file: one npz of arrays + a JSON header beside it.

`<name>.npz` holds, for K demonstrations of one object:
  palm_in_object  (K, 4, 4) float64  palm (LEAP `palm` body) pose in the object frame
  joint_targets   (K, 16)   float32  LEAP joint targets, Allegro-style rad, Dynamixel id order
  contact_flags   (K, 2)    float32  (sustained >= N_min fingers, object retained at the end)
  fingers         (K, 4)    bool     index, middle, ring, thumb touching after closing
  force_n         (K,)      float32  grip force per contact, m g / n_contacts (paper Eq. 10)
  force_label     (K,)      float32  clip(m g n_contacts / f_max, 0, 1) (paper Alg. 2)
  mass_kg         (K,)      float32  object mass the demonstration was made at
`<name>.json` says what produced them (object, mesh, friction, f_max, joint names, source)
so a file can be checked before it is trusted.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dream_hw.errors import UserError

FORMAT = "dream_grasp.demos/1"
ARRAYS = ("palm_in_object", "joint_targets", "contact_flags", "fingers", "force_n", "force_label", "mass_kg")


@dataclass
class DemoSet:
    """Grasp demonstrations of one object (see the module docstring for the arrays)."""

    palm_in_object: np.ndarray
    joint_targets: np.ndarray
    contact_flags: np.ndarray
    fingers: np.ndarray
    force_n: np.ndarray
    force_label: np.ndarray
    mass_kg: np.ndarray
    header: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.joint_targets.shape[0])

    def validate(self) -> "DemoSet":
        k = len(self)
        shapes = {"palm_in_object": (k, 4, 4), "joint_targets": (k, 16), "contact_flags": (k, 2),
                  "fingers": (k, 4), "force_n": (k,), "force_label": (k,), "mass_kg": (k,)}
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                raise UserError(f"demonstrations: {name} has shape {getattr(self, name).shape}, expected {shape}")
        return self

    def save(self, path: str | Path) -> Path:
        """Writes <path>.npz and <path>.json; returns the npz path."""
        self.validate()
        base = Path(path).with_suffix("")
        base.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(base.with_suffix(".npz"), **{a: getattr(self, a) for a in ARRAYS})
        header = {"format": FORMAT, "count": len(self), **self.header}
        base.with_suffix(".json").write_text(json.dumps(header, indent=2) + "\n")
        return base.with_suffix(".npz")

    @classmethod
    def load(cls, path: str | Path) -> "DemoSet":
        base = Path(path).with_suffix("")
        npz, js = base.with_suffix(".npz"), base.with_suffix(".json")
        if not npz.is_file() or not js.is_file():
            raise UserError(f"demonstrations {base}: need both {npz.name} and {js.name}")
        header = json.loads(js.read_text())
        if header.get("format") != FORMAT:
            raise UserError(f"demonstrations {js}: format {header.get('format')!r}, expected {FORMAT!r}")
        with np.load(npz) as data:
            missing = [a for a in ARRAYS if a not in data]
            if missing:
                raise UserError(f"demonstrations {npz}: missing arrays {missing}")
            arrays = {a: data[a] for a in ARRAYS}
        return cls(**arrays, header=header).validate()

    @classmethod
    def concat(cls, sets: list["DemoSet"]) -> "DemoSet":
        if not sets:
            raise UserError("no demonstrations to combine")
        arrays = {a: np.concatenate([getattr(s, a) for s in sets]) for a in ARRAYS}
        return cls(**arrays, header=dict(sets[0].header)).validate()
