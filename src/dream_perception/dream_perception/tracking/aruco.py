"""An initial object pose from an ArUco marker stuck on the object: the marker's
pose from its four corners (solvePnP, IPPE for squares), composed with where the
marker sits on the object. A 3-4 cm marker spans only ~30 px at the cell's
range: its direction and rotation come out well, but its range (from its
apparent size) is off by ~2-3 %, i.e. ~2 cm. With aligned depth the range is
taken from the depth inside the marker instead. Only for (re)initialisation:
the tracker's ICP and search do the rest."""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from dream_hw.errors import UserError
from dream_perception.tracking.intrinsics import Intrinsics
from dream_perception.tracking.se3 import inverse, make_pose


@dataclass(frozen=True)
class MarkerSpec:
    dictionary: str = "DICT_4X4_50"
    marker_id: int = 0
    size_m: float = 0.03                                  # black square's side
    object_from_marker: np.ndarray = field(default_factory=lambda: np.eye(4))  # marker frame (x right, y up, z out) in the object frame


def aruco_dictionary(name: str):
    if not hasattr(cv2.aruco, name):
        raise UserError(f"unknown ArUco dictionary {name!r} (e.g. DICT_4X4_50, DICT_5X5_100, DICT_ARUCO_ORIGINAL)")
    return cv2.aruco.getPredefinedDictionary(getattr(cv2.aruco, name))


class MarkerInitialiser:
    def __init__(self, spec: MarkerSpec):
        if spec.size_m <= 0:
            raise UserError(f"ArUco marker size must be positive, got {spec.size_m}")
        self.spec = spec
        params = cv2.aruco.DetectorParameters()
        # Integer corners cost ~3 % in range for a 3-4 cm marker (~30 px) at tabletop distance.
        params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
        self.detector = cv2.aruco.ArucoDetector(aruco_dictionary(spec.dictionary), params)
        s = spec.size_m / 2
        # Corner order of the detector: top-left, top-right, bottom-right, bottom-left.
        self.corners_marker = np.array([[-s, s, 0], [s, s, 0], [s, -s, 0], [-s, -s, 0]], np.float64)

    def camera_from_marker(self, rgb: np.ndarray, intr: Intrinsics,
                           depth_m: np.ndarray | None = None) -> np.ndarray | None:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        corners, ids, _ = self.detector.detectMarkers(gray)
        if ids is None:
            return None
        hits = [c for c, i in zip(corners, ids.ravel()) if int(i) == self.spec.marker_id]
        if not hits:
            return None
        ok, rvec, tvec = cv2.solvePnP(self.corners_marker, hits[0].reshape(4, 2).astype(np.float64), intr.K(),
                                      None, flags=cv2.SOLVEPNP_IPPE_SQUARE)
        if not ok:
            return None
        pose = make_pose(cv2.Rodrigues(rvec)[0], tvec.ravel())
        if depth_m is not None:
            mask = np.zeros(depth_m.shape, np.uint8)
            cv2.fillConvexPoly(mask, np.rint(hits[0].reshape(4, 2)).astype(np.int32), 1)
            inside = depth_m[(mask > 0) & (depth_m > 0)]
            if inside.size >= 8:
                # The marker is planar: its centre's depth is the median of its pixels' (to first order).
                pose[:3, 3] *= float(np.median(inside)) / pose[2, 3]
        return pose

    def object_pose(self, rgb: np.ndarray, intr: Intrinsics, world_from_cam: np.ndarray,
                    depth_m: np.ndarray | None = None) -> np.ndarray | None:
        """world_from_object, or None when the marker is not in view."""
        cam_marker = self.camera_from_marker(rgb, intr, depth_m)
        if cam_marker is None:
            return None
        return world_from_cam @ cam_marker @ inverse(self.spec.object_from_marker)
