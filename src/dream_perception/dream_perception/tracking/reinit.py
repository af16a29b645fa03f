"""Finding a lost object again: blobs standing on the table plane near where it
was last seen, each tried at several yaws (the object rests on the table, so its
tilt is kept from the last pose and only yaw and position are searched).

The search is coarse on purpose: a strided scan of the image for points above
the table, connected blobs, and one hypothesis per blob and yaw; the tracker's
ICP and depth-support test decide which (if any) is the object."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dream_perception.tracking.object_model import ObjectModel
from dream_perception.tracking.se3 import make_pose, yaw_rotation
from dream_perception.tracking.segment import Scene

SCAN_STRIDE = 4


@dataclass(frozen=True)
class Blob:
    centroid: np.ndarray        # world (m), of the blob's points
    n_pixels: int               # at scan stride


def table_blobs(depth_m: np.ndarray, scene: Scene, model: ObjectModel, centre_xy: np.ndarray,
                radius_m: float, max_blobs: int = 3) -> list[Blob]:
    """Blobs of points above the table within radius_m of centre_xy, nearest first."""
    s = SCAN_STRIDE
    sub = depth_m[::s, ::s].astype(np.float64)
    vs, us = np.nonzero(sub > 0)
    pts = scene.to_world(scene.intr.backproject(us * s, vs * s, sub[vs, us]))
    height = 2.0 * model.radius + 0.02
    near = np.linalg.norm(pts[:, :2] - centre_xy, axis=1) < radius_m
    above = (pts[:, 2] > scene.table_z + 2 * scene.table_margin_m) & (pts[:, 2] < scene.table_z + height)
    keep = near & above
    mask = np.zeros(sub.shape, np.uint8)
    mask[vs[keep], us[keep]] = 1
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    blobs = []
    lab = labels[vs[keep], us[keep]]
    kept = pts[keep]
    # A blob must be at least a few pixels and not much wider than the object.
    min_px = 4
    for k in range(1, count):
        sel = kept[lab == k]
        if len(sel) < min_px:
            continue
        centroid = sel.mean(axis=0)
        if np.linalg.norm(sel[:, :2] - centroid[:2], axis=1).max() > 2.5 * model.radius:
            # Too big for the object (e.g. the hand touching it): split by distance to the last pose.
            close = sel[np.linalg.norm(sel[:, :2] - centre_xy, axis=1) < 1.5 * model.radius]
            if len(close) < min_px:
                continue
            centroid = close.mean(axis=0)
        blobs.append(Blob(centroid, len(sel)))
    blobs.sort(key=lambda b: float(np.linalg.norm(b.centroid[:2] - centre_xy)))
    return blobs[:max_blobs]


def hypotheses(blob: Blob, last_pose: np.ndarray, n_yaws: int) -> list[np.ndarray]:
    """Poses at the blob with the last pose's tilt and height and n_yaws yaws,
    starting from the last yaw (so ties keep the object's previous heading)."""
    out = []
    for k in range(n_yaws):
        step = (k + 1) // 2 * (1 if k % 2 else -1) * 2 * np.pi / n_yaws
        rot = yaw_rotation(step) @ last_pose[:3, :3]
        out.append(make_pose(rot, np.array([blob.centroid[0], blob.centroid[1], last_pose[2, 3]])))
    return out
