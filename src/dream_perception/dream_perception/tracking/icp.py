"""Robust ICP of measured points (world) against the object's surface samples.

Association runs both ways. Measured -> model (each measured point finds its
nearest sample in the object frame, where the KD-tree was built once), scored
point-to-plane: fast and accurate on faces. But with only the top and one side
of a box in view, that cost is flat (cubic) for sliding along the unseen faces:
only the few measured points beyond an edge notice. So the model's visible
samples are also matched to their nearest measured points (point-to-point): at
an offset every edge sample is off by it, a quadratic basin. Tukey weights with
a scale from the residuals' MAD drop the hand, the table edge and stray pixels."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from dream_perception.tracking.object_model import ObjectModel
from dream_perception.tracking.se3 import exp_twist, inverse, orthonormalize


@dataclass(frozen=True)
class IcpConfig:
    iterations: int = 12
    gate_m: float = 0.02            # correspondences further than this are ignored
    min_scale_m: float = 0.0015     # Tukey scale never drops below this (depth noise ~0.6 mm at 0.8 m)
    point_weight: float = 0.1       # measured -> model point-to-point, against point-to-plane
    model_weight: float = 0.5       # visible model samples -> measured points (point-to-point)
    damping: float = 1e-6           # Levenberg damping, relative to the Hessian's trace
    converged_step_m: float = 1e-4  # stop once an update moves less than this (and 0.05 deg)


@dataclass(frozen=True)
class IcpResult:
    pose: np.ndarray                # world_from_object
    rms_m: float                    # RMS point-to-plane residual of the inliers
    inlier_ratio: float             # fraction of the measured points within the inlier threshold
    n_points: int
    iterations: int


TUKEY_C = 4.685


def _skew(x: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -x[2], x[1]], [x[2], 0.0, -x[0]], [-x[1], x[0], 0.0]])


def _tukey(r: np.ndarray, min_scale: float) -> np.ndarray:
    scale = max(min_scale, 1.4826 * float(np.median(np.abs(r)))) if len(r) else min_scale
    u = r / (TUKEY_C * scale)
    return np.where(np.abs(u) < 1.0, (1.0 - u * u) ** 2, 0.0)


def _add_point_to_point(h: np.ndarray, g: np.ndarray, a: np.ndarray, e: np.ndarray, w: np.ndarray) -> None:
    """Adds sum w |e + omega x a + v|^2 to the normal equations (a: the moving points)."""
    s0 = w.sum()
    s1 = w @ a
    s2 = (a * w[:, None]).T @ a
    sq = float(w @ np.einsum("ij,ij->i", a, a))
    h[:3, :3] += sq * np.eye(3) - s2
    h[:3, 3:] += _skew(s1)
    h[3:, :3] += _skew(s1).T
    h[3:, 3:] += s0 * np.eye(3)
    g[:3] += (w[:, None] * np.cross(a, e)).sum(axis=0)
    g[3:] += w @ e


def robust_icp(points_world: np.ndarray, model: ObjectModel, pose0: np.ndarray, cfg: IcpConfig,
               inlier_threshold_m: float = 0.004, model_samples: np.ndarray | None = None) -> IcpResult:
    """Refines world_from_object from pose0 so that the measured points lie on the mesh.

    model_samples: indices of model samples expected to be visible (and not
    occluded) at pose0, matched to the measured points as well."""
    n = len(points_world)
    pose = pose0.copy()
    if n < 6:
        return IcpResult(pose, float("inf"), 0.0, n, 0)
    scene_tree = None
    if cfg.model_weight > 0 and model_samples is not None and len(model_samples) >= 6:
        scene_tree = cKDTree(points_world)
        m_pts = model.points[model_samples]
    it = 0
    for it in range(1, cfg.iterations + 1):
        inv = inverse(pose)
        x = points_world @ inv[:3, :3].T + inv[:3, 3]            # measured points, object frame
        dist, idx = model.tree.query(x, distance_upper_bound=cfg.gate_m)
        ok = np.isfinite(dist)
        if ok.sum() < 6:
            return IcpResult(pose, float("inf"), 0.0, n, it)
        xs, p, nrm = x[ok], model.points[idx[ok]], model.normals[idx[ok]]
        e = xs - p
        r = np.einsum("ij,ij->i", e, nrm)
        w = _tukey(r, cfg.min_scale_m)
        if w.sum() < 6:
            return IcpResult(pose, float("inf"), 0.0, n, it)
        a = np.hstack([np.cross(xs, nrm), nrm])                  # d r / d [omega, v]
        aw = a * w[:, None]
        h = aw.T @ a
        g = aw.T @ r
        if cfg.point_weight > 0:
            _add_point_to_point(h, g, xs, e, w * cfg.point_weight)
        if scene_tree is not None:
            m_world = m_pts @ pose[:3, :3].T + pose[:3, 3]
            d_m, j = scene_tree.query(m_world, distance_upper_bound=cfg.gate_m)
            okm = np.isfinite(d_m)
            if okm.sum() >= 6:
                a_m = m_pts[okm]
                e_m = x[j[okm]] - a_m            # measured (object frame) minus model sample
                wm = _tukey(np.linalg.norm(e_m, axis=1), cfg.min_scale_m) * cfg.model_weight
                _add_point_to_point(h, g, a_m, e_m, wm)
        h += cfg.damping * np.trace(h) * np.eye(6)
        try:
            delta = -np.linalg.solve(h, g)
        except np.linalg.LinAlgError:
            break
        # delta moves the measured points (object frame); the pose moves the other way.
        pose = orthonormalize(pose @ inverse(exp_twist(delta)))
        if np.linalg.norm(delta[3:]) < cfg.converged_step_m and np.linalg.norm(delta[:3]) < np.radians(0.05):
            break
    inv = inverse(pose)
    x = points_world @ inv[:3, :3].T + inv[:3, 3]
    dist, idx = model.tree.query(x, distance_upper_bound=cfg.gate_m)
    ok = np.isfinite(dist)
    r = np.full(n, np.inf)
    r[ok] = np.abs(np.einsum("ij,ij->i", x[ok] - model.points[idx[ok]], model.normals[idx[ok]]))
    # Point-to-plane hides a point that lies beyond an edge; the Euclidean distance caps that.
    r[ok] = np.maximum(r[ok], dist[ok] - 0.003)
    inl = r < inlier_threshold_m
    rms = float(np.sqrt(np.mean(r[inl] ** 2))) if inl.any() else float("inf")
    return IcpResult(pose, rms, float(inl.mean()), n, it)
