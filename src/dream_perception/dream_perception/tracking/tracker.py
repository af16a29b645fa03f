"""The model-based tracker's state machine: track from the previous pose, notice
when the fit stops being supported by the image (lost), and search for the
object again (reinitialising) until a hypothesis is supported.

States: `tracking` (the published pose is this frame's fit), `lost` (the first
frame without a supported fit: the last good pose is kept, nothing published),
`reinitialising` (searching, every following frame until a fit is accepted)."""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from dream_perception.tracking.icp import IcpConfig, IcpResult, robust_icp
from dream_perception.tracking.object_model import ObjectModel
from dream_perception.tracking.quality import Support, depth_support
from dream_perception.tracking.reinit import hypotheses, table_blobs
from dream_perception.tracking.se3 import inverse, orthonormalize, rotation_angle
from dream_perception.tracking.segment import Scene, segment_object
from dream_perception.tracking.view import render_view


class TrackState(str, Enum):
    TRACKING = "tracking"
    LOST = "lost"
    REINITIALISING = "reinitialising"


@dataclass(frozen=True)
class TrackerConfig:
    icp: IcpConfig = field(default_factory=IcpConfig)
    max_points: int = 800              # measured points per frame (strided down to this)
    margin_m: float = 0.02             # motion allowed between frames beyond the prediction
    inlier_threshold_m: float = 0.004  # |residual| below this counts as an inlier
    support_tol_m: float = 0.006       # depth agrees with the model within this
    max_rms_m: float = 0.003           # accept a fit only below this RMS residual
    min_inlier_ratio: float = 0.65     # ... with at least this fraction of inliers
    min_support: float = 0.7           # ... the depth confirming this fraction of the unoccluded visible surface
    min_seen: float = 0.15             # ... and at least this fraction of the visible surface in view
    min_points: int = 40               # fewer measured object points: not enough to fit
    reinit_min_inlier_ratio: float = 0.75   # stricter when searching: a wrong lock-on is worse than waiting
    reinit_min_support: float = 0.8
    reinit_max_tilt_deg: float = 20.0  # searched poses keep roughly the last tilt (the object rests on the table)
    reinit_yaws: int = 8               # yaw hypotheses per blob when searching
    reinit_radius_m: float = 0.15      # search radius around the last pose, grows while lost
    reinit_growth_m_per_frame: float = 0.01
    max_step_m: float = 0.05           # a tracked frame may not jump further than this
    predict: bool = True               # constant-velocity prediction between tracked frames


@dataclass(frozen=True)
class TrackResult:
    state: TrackState
    pose: np.ndarray | None            # world_from_object when tracking, else the last good pose
    rms_m: float
    inlier_ratio: float
    support: float
    n_points: int
    hypotheses_tried: int = 0

    @property
    def tracking(self) -> bool:
        return self.state == TrackState.TRACKING


class ModelTracker:
    """Tracks one rigid object in aligned depth images (metres, 0 = no depth)."""

    def __init__(self, model: ObjectModel, scene: Scene, config: TrackerConfig | None = None):
        self.model = model
        self.scene = scene
        self.cfg = config or TrackerConfig()
        self.state = TrackState.LOST
        self.pose: np.ndarray | None = None       # last accepted pose
        self._prev: np.ndarray | None = None      # the accepted pose before it (for velocity)
        self.frames_lost = 0

    def initialise(self, pose_world: np.ndarray) -> None:
        """Start from a known pose (configured, ArUco, or a detector): the next frame
        fits from it, and searches around it if the fit is not supported."""
        self.pose = orthonormalize(np.asarray(pose_world, float))
        self._prev = None
        self.state = TrackState.REINITIALISING
        self.frames_lost = 0

    # ------------------------------------------------------------------ fitting
    def _fit(self, depth_m: np.ndarray, pose0: np.ndarray, icp: IcpConfig,
             margin_m: float) -> tuple[IcpResult, Support, int]:
        seg = segment_object(depth_m, self.scene, self.model, pose0, margin_m, self.cfg.max_points)
        res = robust_icp(seg.points, self.model, pose0, icp, self.cfg.inlier_threshold_m, seg.model_samples)
        if not np.isfinite(res.rms_m):
            return res, Support(0, 0.0, 0.0, 0.0, 0.0), len(seg.points)
        view = render_view(self.model, self.scene.cam_from_world @ res.pose, self.scene.intr)
        return res, depth_support(depth_m, self.scene, view, self.cfg.support_tol_m), len(seg.points)

    def _accept(self, res: IcpResult, sup: Support, n_points: int, searching: bool = False) -> bool:
        c = self.cfg
        ok = (n_points >= c.min_points and res.rms_m <= c.max_rms_m and res.inlier_ratio >= c.min_inlier_ratio
              and sup.support >= c.min_support and sup.seen >= c.min_seen)
        if ok and searching and self.pose is not None:
            tilt = np.degrees(np.arccos(np.clip(res.pose[:3, 2] @ self.pose[:3, 2], -1.0, 1.0)))
            ok = (res.inlier_ratio >= c.reinit_min_inlier_ratio and sup.support >= c.reinit_min_support
                  and tilt <= c.reinit_max_tilt_deg)
        return ok

    def _predict(self) -> np.ndarray:
        assert self.pose is not None
        if not self.cfg.predict or self._prev is None:
            return self.pose
        step = inverse(self._prev) @ self.pose   # last frame's motion, in the object frame
        if np.linalg.norm(step[:3, 3]) > self.cfg.max_step_m or rotation_angle(step[:3, :3]) > np.radians(20):
            return self.pose
        return orthonormalize(self.pose @ step)

    # ------------------------------------------------------------------ one frame
    def step(self, depth_m: np.ndarray) -> TrackResult:
        """Processes one aligned depth image; returns this frame's state and pose."""
        self.scene.intr.check_image(depth_m.shape)
        if self.pose is None:
            return TrackResult(TrackState.LOST, None, float("inf"), 0.0, 0.0, 0)
        if self.state == TrackState.TRACKING:
            pred = self._predict()
            res, sup, n = self._fit(depth_m, pred, self.cfg.icp, self.cfg.margin_m)
            moved = np.linalg.norm(res.pose[:3, 3] - self.pose[:3, 3])
            if self._accept(res, sup, n) and moved <= self.cfg.max_step_m + self.cfg.margin_m:
                self._prev, self.pose = self.pose, res.pose
                return TrackResult(TrackState.TRACKING, res.pose, res.rms_m, res.inlier_ratio, sup.support, n)
            self.state = TrackState.LOST
            self.frames_lost = 1
            self._prev = None
            return TrackResult(TrackState.LOST, self.pose, res.rms_m, res.inlier_ratio, sup.support, n)
        return self._search(depth_m)

    def _search(self, depth_m: np.ndarray) -> TrackResult:
        """Reinitialisation: the last pose itself first, then blobs on the table."""
        assert self.pose is not None
        self.state = TrackState.REINITIALISING
        wide = IcpConfig(**{**self.cfg.icp.__dict__, "gate_m": max(self.cfg.icp.gate_m, 0.6 * self.model.radius),
                            "iterations": 2 * self.cfg.icp.iterations})
        candidates = [self.pose]
        radius = self.cfg.reinit_radius_m + self.cfg.reinit_growth_m_per_frame * self.frames_lost
        for blob in table_blobs(depth_m, self.scene, self.model, self.pose[:2, 3], radius):
            candidates += hypotheses(blob, self.pose, self.cfg.reinit_yaws)
        best: tuple[float, IcpResult, Support, int] | None = None
        tried = 0
        for k, cand in enumerate(candidates):
            tried += 1
            res, sup, n = self._fit(depth_m, cand, wide, 2 * self.cfg.margin_m if k else self.cfg.margin_m)
            if not self._accept(res, sup, n, searching=True):
                continue
            score = sup.support * res.inlier_ratio
            if best is None or score > best[0] + 0.02:   # ties keep the earlier (closer to last yaw) one
                best = (score, res, sup, n)
            if k == 0 and score > 0.6:
                break
        self.frames_lost += 1
        if best is None:
            return TrackResult(TrackState.REINITIALISING, self.pose, float("inf"), 0.0, 0.0, 0, tried)
        _, res, sup, n = best
        # Polish from the chosen hypothesis with the tracking settings.
        res2, sup2, n2 = self._fit(depth_m, res.pose, self.cfg.icp, self.cfg.margin_m)
        if self._accept(res2, sup2, n2, searching=True):
            res, sup, n = res2, sup2, n2
        self.pose, self._prev = res.pose, None
        self.state = TrackState.TRACKING
        self.frames_lost = 0
        return TrackResult(TrackState.TRACKING, res.pose, res.rms_m, res.inlier_ratio, sup.support, n, tried)
