"""A validated pinhole camera (K and image size): wrong intrinsics put every
measured point in the wrong place, so they are refused with a clear message
instead of producing a confidently wrong pose."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dream_hw.errors import UserError


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @classmethod
    def from_k(cls, k, width: int, height: int, where: str = "camera_info") -> "Intrinsics":
        """From a row-major 3x3 (or 9-element) K; UserError naming what is wrong."""
        arr = np.asarray(k, float).reshape(-1)
        if arr.size != 9:
            raise UserError(f"{where}: K must have 9 elements, got {arr.size}")
        intr = cls(int(width), int(height), float(arr[0]), float(arr[4]), float(arr[2]), float(arr[5]))
        intr.validate(where, skew=float(arr[1]), last_row=arr[6:9])
        return intr

    def validate(self, where: str = "camera_info", skew: float = 0.0, last_row=(0.0, 0.0, 1.0)) -> None:
        if self.width <= 0 or self.height <= 0:
            raise UserError(f"{where}: image size {self.width}x{self.height} is empty")
        if not (np.isfinite([self.fx, self.fy, self.cx, self.cy]).all() and self.fx > 0 and self.fy > 0):
            raise UserError(f"{where}: focal lengths must be positive, got fx={self.fx}, fy={self.fy} "
                            "(is the camera calibrated?)")
        if not (0.0 <= self.cx < self.width and 0.0 <= self.cy < self.height):
            raise UserError(f"{where}: principal point ({self.cx}, {self.cy}) lies outside the "
                            f"{self.width}x{self.height} image")
        if abs(skew) > 1e-6 or not np.allclose(last_row, [0.0, 0.0, 1.0]):
            raise UserError(f"{where}: K is not a pinhole matrix [fx 0 cx; 0 fy cy; 0 0 1]")
        ratio = self.fx / self.fy
        if not 0.8 < ratio < 1.25:
            raise UserError(f"{where}: fx/fy = {ratio:.2f}; RealSense pixels are square (fx ~ fy)")
        # A 640x480 RealSense colour stream has a 55-90 deg horizontal field of view.
        hfov = np.degrees(2 * np.arctan2(self.width / 2, self.fx))
        if not 20.0 < hfov < 120.0:
            raise UserError(f"{where}: fx={self.fx} gives a {hfov:.0f} deg field of view at width "
                            f"{self.width}; the intrinsics do not belong to this image size")

    def check_image(self, shape: tuple[int, ...], what: str = "depth image") -> None:
        if tuple(shape[:2]) != (self.height, self.width):
            raise UserError(f"{what} is {shape[1]}x{shape[0]} but camera_info says {self.width}x{self.height} "
                            "(is depth aligned to colour?)")

    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, v, z) of camera-frame points (u, v as floats; z may be <= 0)."""
        z = points_cam[:, 2]
        zs = np.where(z > 1e-6, z, 1e-6)
        return self.fx * points_cam[:, 0] / zs + self.cx, self.fy * points_cam[:, 1] / zs + self.cy, z

    def backproject(self, us: np.ndarray, vs: np.ndarray, z: np.ndarray) -> np.ndarray:
        """(N, 3) camera-frame points of pixels (us, vs) at z-depth z (m)."""
        return np.column_stack([(us - self.cx) * (z / self.fx), (vs - self.cy) * (z / self.fy), z])
