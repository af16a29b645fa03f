"""The object's image mask at a known pose (FoundationPose registers from one):
the mesh's projected samples, closed into a solid region."""
from __future__ import annotations

import numpy as np

from dream_perception.tracking.intrinsics import Intrinsics
from dream_perception.tracking.object_model import ObjectModel
from dream_perception.tracking.view import render_view


def object_mask(model: ObjectModel, cam_from_object: np.ndarray, intr: Intrinsics, grow_px: int = 2) -> np.ndarray:
    view = render_view(model, cam_from_object, intr)
    mask = np.zeros((intr.height, intr.width), bool)
    if view.bbox is None:
        return mask
    roi = (0, 0, intr.width, intr.height)
    return view.silhouette(roi, grow_px)
