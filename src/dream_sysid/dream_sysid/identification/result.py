"""The identification result, serialised exactly as the contract's JSON line."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class IdentificationResult:
    mass_kg: float
    mass_ci95_kg: tuple[float, float]
    friction: float
    identifiable: bool
    warning: str | None
    pose_rmse_m: float
    rot_rmse_rad: float
    iterations: int
    seconds: float

    def to_dict(self) -> dict:
        """Unknown values (e.g. friction when the object never slid) are null, never NaN."""
        return {
            "mass_kg": _num(self.mass_kg, 5),
            "mass_ci95_kg": [_num(self.mass_ci95_kg[0], 5), _num(self.mass_ci95_kg[1], 5)],
            "friction": _num(self.friction, 4),
            "identifiable": bool(self.identifiable),
            "warning": self.warning,
            "pose_rmse_m": _num(self.pose_rmse_m, 5),
            "rot_rmse_rad": _num(self.rot_rmse_rad, 5),
            "iterations": int(self.iterations),
            "seconds": round(float(self.seconds), 3),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False)


def _num(value: float, digits: int) -> float | None:
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None
