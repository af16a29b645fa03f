"""Which measured depth pixels belong to the object: inside the silhouette the
mesh casts at the predicted pose (grown by the motion allowed between frames),
above the table plane, and within reach of the predicted object centre.

Only a region of interest around the prediction is ever back-projected, and the
object's points are thinned to a budget: that bounds the per-frame cost whatever
the object's size in the image."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dream_perception.tracking.intrinsics import Intrinsics
from dream_perception.tracking.object_model import ObjectModel
from dream_perception.tracking.se3 import inverse
from dream_perception.tracking.view import ModelView, render_view


@dataclass(frozen=True)
class Scene:
    """The fixed part of every frame: camera pose in world and the table plane."""

    intr: Intrinsics
    world_from_cam: np.ndarray           # 4x4, camera optical frame in world
    table_z: float                       # table top height in world (z up)
    table_margin_m: float = 0.004        # points below table_z + this are table, not object

    @property
    def cam_from_world(self) -> np.ndarray:
        return inverse(self.world_from_cam)

    def to_world(self, pts_cam: np.ndarray) -> np.ndarray:
        return pts_cam @ self.world_from_cam[:3, :3].T + self.world_from_cam[:3, 3]


@dataclass(frozen=True)
class Segment:
    points: np.ndarray                   # (N, 3) world points attributed to the object
    view: ModelView                      # the model at the predicted pose
    model_samples: np.ndarray            # model samples visible at the prediction and not occluded


MAX_MODEL_SAMPLES = 500
OCCLUDER_TOL_M = 0.01


def segment_object(depth_m: np.ndarray, scene: Scene, model: ObjectModel, pose_pred: np.ndarray,
                   margin_m: float, max_points: int) -> Segment:
    """Object points of a depth image (m, 0 = none) around the predicted world pose."""
    view = render_view(model, scene.cam_from_world @ pose_pred, scene.intr)
    empty = Segment(np.empty((0, 3)), view, np.empty(0, int))
    if view.bbox is None:
        return empty
    z_near = max(float(view.z[view.z > 0].min()) if (view.z > 0).any() else 0.3, 0.1)
    margin_px = int(np.ceil(scene.intr.fx * margin_m / z_near))
    u0, v0, u1, v1 = view.bbox
    roi = (max(0, u0 - margin_px), max(0, v0 - margin_px),
           min(scene.intr.width, u1 + margin_px), min(scene.intr.height, v1 + margin_px))
    if roi[2] <= roi[0] or roi[3] <= roi[1]:
        return empty
    mask = view.silhouette(roi, margin_px) & (depth_m[roi[1]:roi[3], roi[0]:roi[2]] > 0)
    vs, us = np.nonzero(mask)
    z = depth_m[vs + roi[1], us + roi[0]].astype(np.float64)
    pts = scene.to_world(scene.intr.backproject(us + roi[0], vs + roi[1], z))
    keep = pts[:, 2] > scene.table_z + scene.table_margin_m
    keep &= np.linalg.norm(pts - pose_pred[:3, 3], axis=1) < model.radius + margin_m
    pts = pts[keep]
    if len(pts) > max_points:   # evenly thinned (pixel order), so the cost per frame is bounded
        pts = pts[np.linspace(0, len(pts) - 1, max_points).astype(int)]
    return Segment(pts, view, _unoccluded_samples(depth_m, view))


def _unoccluded_samples(depth_m: np.ndarray, view: ModelView) -> np.ndarray:
    """Visible model samples whose pixel does not show something clearly in front
    (the hand): those should find measured points of the object near them."""
    idx = np.flatnonzero(view.visible)
    if len(idx) > MAX_MODEL_SAMPLES:
        idx = idx[:: int(np.ceil(len(idx) / MAX_MODEL_SAMPLES))]
    h, w = depth_m.shape
    meas = depth_m[np.clip(np.rint(view.v[idx]).astype(int), 0, h - 1),
                   np.clip(np.rint(view.u[idx]).astype(int), 0, w - 1)]
    return idx[~((meas > 0) & (meas < view.z[idx] - OCCLUDER_TOL_M))]
