"""NVlabs FoundationPose in-process (GPU): register on the first frame with an
object mask, then track frame to frame. Everything it needs (torch with CUDA,
nvdiffrast, the FoundationPose checkout and its two weight folders) is imported
or checked lazily, and a missing piece is one line naming it.

API used (FoundationPose's estimater.py): FoundationPose(model_pts, model_normals,
mesh=, scorer=ScorePredictor(), refiner=PoseRefinePredictor(), glctx=
nvdiffrast.torch.RasterizeCudaContext()); register(K, rgb, depth, ob_mask,
iteration) and track_one(rgb, depth, K, iteration) return camera_from_object
(4x4). Depth is float metres; the weights are looked up under <repo>/weights."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import numpy as np

from dream_hw.errors import UserError

REFINER_WEIGHTS = "2023-10-28-18-33-37"
SCORER_WEIGHTS = "2024-01-11-20-02-45"


def _need(module: str, what: str):
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or CUDA extension load failures
        raise UserError(f"foundationpose backend: {what} is missing ({module}: {exc})".splitlines()[0]) from None


class FoundationPoseTracker:
    """camera_from_object from RGB-D with FoundationPose."""

    def __init__(self, mesh_path: str | Path, repo_dir: str | Path, register_iterations: int = 5,
                 track_iterations: int = 2):
        repo = Path(repo_dir) if repo_dir else Path()
        if not repo_dir or not (repo / "estimater.py").is_file():
            raise UserError(f"foundationpose backend: the FoundationPose checkout is missing (no estimater.py in "
                            f"{str(repo_dir) or '<foundationpose_dir unset>'}); clone NVlabs/FoundationPose and set "
                            "foundationpose_dir")
        for name in (REFINER_WEIGHTS, SCORER_WEIGHTS):
            if not (repo / "weights" / name).is_dir():
                raise UserError(f"foundationpose backend: weights folder {repo / 'weights' / name} is missing "
                                "(download the refiner and scorer weights into <repo>/weights)")
        torch = _need("torch", "PyTorch")
        if not torch.cuda.is_available():
            raise UserError("foundationpose backend: no CUDA GPU is available to PyTorch "
                            "(FoundationPose needs one; use backend:=model on CPU)")
        dr = _need("nvdiffrast.torch", "nvdiffrast")
        trimesh = _need("trimesh", "trimesh")
        if str(repo) not in sys.path:
            sys.path.insert(0, str(repo))
        estimater = _need("estimater", "FoundationPose (estimater.py and its compiled extensions)")
        score = _need("learning.training.predict_score", "FoundationPose's scorer")
        refine = _need("learning.training.predict_pose_refine", "FoundationPose's refiner")
        mesh = trimesh.load(str(mesh_path), force="mesh")
        self.estimator = estimater.FoundationPose(
            model_pts=mesh.vertices, model_normals=mesh.vertex_normals, mesh=mesh,
            scorer=score.ScorePredictor(), refiner=refine.PoseRefinePredictor(),
            glctx=dr.RasterizeCudaContext(), debug=0, debug_dir=None)
        self.register_iterations = register_iterations
        self.track_iterations = track_iterations
        self.registered = False

    @staticmethod
    def _np(pose) -> np.ndarray:
        if hasattr(pose, "detach"):
            pose = pose.detach().cpu().numpy()
        return np.asarray(pose, float).reshape(4, 4)

    def register(self, rgb: np.ndarray, depth_m: np.ndarray, mask: np.ndarray, k: np.ndarray) -> np.ndarray:
        pose = self.estimator.register(K=k, rgb=rgb, depth=depth_m, ob_mask=mask.astype(bool),
                                       iteration=self.register_iterations)
        self.registered = True
        return self._np(pose)

    def track(self, rgb: np.ndarray, depth_m: np.ndarray, k: np.ndarray) -> np.ndarray:
        if not self.registered:
            raise RuntimeError("FoundationPoseTracker.track before register")
        return self._np(self.estimator.track_one(rgb=rgb, depth=depth_m, K=k, iteration=self.track_iterations))
