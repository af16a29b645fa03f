"""Is the fitted pose supported by the image? ICP's own residual says only that
the points it kept fit; it cannot tell a good fit from a fit to a handful of
stray pixels. The depth image can: where the mesh at the fitted pose should be
visible, the measured depth should agree (support), may be nearer (an occluder
such as the hand) but should not be farther (we would be seeing through the
object, i.e. it is not there)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dream_perception.tracking.segment import Scene
from dream_perception.tracking.view import ModelView

MAX_SAMPLES = 800


@dataclass(frozen=True)
class Support:
    visible: int          # visible model samples with a depth measurement
    support: float        # of those not hidden by something in front: fraction the depth agrees with
    seen: float           # fraction of all of them the depth agrees with (how much of the object is in view)
    occluded: float       # fraction with something in front (hand)
    see_through: float    # fraction where the depth is behind the model surface


def depth_support(depth_m: np.ndarray, scene: Scene, view: ModelView, tol_m: float) -> Support:
    idx = np.flatnonzero(view.visible)
    if len(idx) > MAX_SAMPLES:
        idx = idx[:: int(np.ceil(len(idx) / MAX_SAMPLES))]
    u = np.clip(np.rint(view.u[idx]).astype(int), 0, scene.intr.width - 1)
    v = np.clip(np.rint(view.v[idx]).astype(int), 0, scene.intr.height - 1)
    meas = depth_m[v, u].astype(np.float64)
    valid = meas > 0
    n = int(valid.sum())
    if n == 0:
        return Support(0, 0.0, 0.0, 0.0, 0.0)
    diff = meas[valid] - view.z[idx][valid]
    agree = int(np.sum(np.abs(diff) <= tol_m))
    behind = int(np.sum(diff > tol_m))
    return Support(n, agree / max(1, agree + behind), agree / n, float(np.mean(diff < -tol_m)), behind / n)
