"""The mesh seen from the camera at a pose, from its surface samples: where it
projects (the silhouette that segments the measured depth) and which samples
face the camera unoccluded by the object itself (what the depth should show).

A point z-buffer on a coarse pixel grid stands in for rasterising triangles: the
samples are ~2 mm apart, so 3-pixel cells at tabletop range have no holes, and
the whole view costs a few hundred microseconds."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dream_perception.tracking.intrinsics import Intrinsics
from dream_perception.tracking.object_model import ObjectModel

ZBUF_CELL_PX = 3
SELF_OCCLUSION_TOL_M = 0.004


@dataclass(frozen=True)
class ModelView:
    u: np.ndarray            # (N,) pixel column of every sample (float)
    v: np.ndarray            # (N,) pixel row
    z: np.ndarray            # (N,) depth (m)
    visible: np.ndarray      # (N,) bool: faces the camera, in the image, not self-occluded
    bbox: tuple[int, int, int, int] | None   # u0, v0, u1, v1 (exclusive) of the projection, clipped

    def silhouette(self, roi: tuple[int, int, int, int], dilate_px: int) -> np.ndarray:
        """Boolean mask over roi (u0, v0, u1, v1): the projected object grown by dilate_px."""
        u0, v0, u1, v1 = roi
        mask = np.zeros((v1 - v0, u1 - u0), np.uint8)
        ui = np.rint(self.u).astype(int) - u0
        vi = np.rint(self.v).astype(int) - v0
        ok = (ui >= 0) & (ui < mask.shape[1]) & (vi >= 0) & (vi < mask.shape[0]) & (self.z > 0)
        mask[vi[ok], ui[ok]] = 1
        k = 2 * max(1, int(dilate_px)) + 1
        return cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)


def render_view(model: ObjectModel, cam_from_object: np.ndarray, intr: Intrinsics) -> ModelView:
    """Projects the model's samples with cam_from_object (4x4, object -> camera optical frame)."""
    rot, t = cam_from_object[:3, :3], cam_from_object[:3, 3]
    pts = model.points @ rot.T + t
    nrm = model.normals @ rot.T
    u, v, z = intr.project(pts)
    inside = (z > 0.05) & (u >= 0) & (u <= intr.width - 1) & (v >= 0) & (v <= intr.height - 1)
    facing = np.einsum("ij,ij->i", nrm, pts) < 0.0
    visible = inside & facing
    bbox = None
    if inside.any():
        bbox = (int(np.floor(u[inside].min())), int(np.floor(v[inside].min())),
                int(np.ceil(u[inside].max())) + 1, int(np.ceil(v[inside].max())) + 1)
    if visible.any():
        cu = (u[visible] / ZBUF_CELL_PX).astype(int)
        cv = (v[visible] / ZBUF_CELL_PX).astype(int)
        ncols = intr.width // ZBUF_CELL_PX + 1
        cell = cv * ncols + cu
        zbuf = np.full((intr.height // ZBUF_CELL_PX + 1) * ncols, np.inf)
        np.minimum.at(zbuf, cell, z[visible])
        front = z[visible] <= zbuf[cell] + SELF_OCCLUSION_TOL_M
        idx = np.flatnonzero(visible)
        visible[idx[~front]] = False
    return ModelView(u, v, z, visible, bbox)
