"""The simulated RealSense (ROS-free): colour and aligned depth rendered from a
twin's "realsense" camera with the cell's exact intrinsics, depth in uint16
millimetres with a D435i-like noise model.

Intrinsics are exact, not approximated: MuJoCo's camera only knows fovy (square
pixels, principal point at the image centre, and the optical axis on a pixel
*corner*), so after each scene update the OpenGL frustum is replaced by the one
K defines (OpenCV convention: pixel (u, v) has its centre at (u, v)). That covers
fx != fy and an off-centre principal point as well.

Rendering cost on software Mesa is dominated by shadow maps and multisampling,
neither of which a depth tracker needs: colour is rendered without shadows,
reflections, skybox or MSAA (~16 ms at 640x480 here instead of ~150 ms).
"""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless; must precede the first `import mujoco`

from dataclasses import dataclass  # noqa: E402

import cv2  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from dream_hw.cell import Camera  # noqa: E402
from dream_hw.errors import UserError  # noqa: E402

CAMERA_NAME = "realsense"


@dataclass(frozen=True)
class DepthNoise:
    """D435i-like depth errors: z^2-growing Gaussian noise, grazing-angle holes, random dropout."""

    sigma_per_m2: float = 0.0          # sigma (m) = sigma_per_m2 * z^2
    grazing_angle_deg: float = 90.0    # no depth where the surface normal is further than this from the ray
    dropout: float = 0.0               # fraction of pixels that randomly get no depth

    @classmethod
    def from_config(cls, cfg: dict[str, float]) -> "DepthNoise":
        noise = cls(float(cfg.get("sigma_per_m2", 0.0)), float(cfg.get("grazing_angle_deg", 90.0)),
                    float(cfg.get("dropout", 0.0)))
        if noise.sigma_per_m2 < 0 or not 0.0 < noise.grazing_angle_deg <= 90.0 or not 0.0 <= noise.dropout < 1.0:
            raise UserError(f"camera.depth_noise out of range: {cfg} (sigma_per_m2 >= 0, "
                            "0 < grazing_angle_deg <= 90, 0 <= dropout < 1)")
        return noise

    @classmethod
    def off(cls) -> "DepthNoise":
        return cls()


@dataclass(frozen=True)
class CameraInfoFields:
    """What sensor_msgs/CameraInfo carries, ROS-free (row-major K 3x3, R 3x3, P 3x4)."""

    width: int
    height: int
    distortion_model: str
    d: tuple[float, ...]
    k: tuple[float, ...]
    r: tuple[float, ...]
    p: tuple[float, ...]


def camera_info_fields(cam: Camera) -> CameraInfoFields:
    """The rendered images are undistorted, so D is zero and P = [K | 0] (monocular)."""
    k = cam.K()
    p = np.hstack([k, np.zeros((3, 1))])
    return CameraInfoFields(cam.width, cam.height, "plumb_bob", (0.0,) * 5, tuple(map(float, k.flatten())),
                            tuple(map(float, np.eye(3).flatten())), tuple(map(float, p.flatten())))


def backproject(depth_m: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(H, W, 3) points in the optical frame (x right, y down, z forward) from z-depth."""
    h, w = depth_m.shape
    u = (np.arange(w) - k[0, 2]) / k[0, 0]
    v = (np.arange(h) - k[1, 2]) / k[1, 1]
    z = depth_m.astype(np.float64)
    return np.stack([z * u[None, :], z * v[:, None], z], axis=-1)


def incidence_angle_deg(depth_m: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Angle between each pixel's surface normal and its viewing ray, from central
    differences of back-projected points (90 deg at depth edges and borders)."""
    return np.degrees(np.arccos(_incidence_cos(depth_m, k)))


def _incidence_cos(depth_m: np.ndarray, k: np.ndarray) -> np.ndarray:
    """|cos| of the incidence angle; float32 and hand-written products: this runs on every frame."""
    z = depth_m.astype(np.float32)
    x = z * ((np.arange(z.shape[1], dtype=np.float32) - np.float32(k[0, 2])) / np.float32(k[0, 0]))[None, :]
    y = z * ((np.arange(z.shape[0], dtype=np.float32) - np.float32(k[1, 2])) / np.float32(k[1, 1]))[:, None]
    cos = np.zeros(z.shape, np.float32)
    # Differences across u (a) and v (b) on the interior; the one-pixel border stays at cos 0.
    ax, ay, az = (c[1:-1, 2:] - c[1:-1, :-2] for c in (x, y, z))
    bx, by, bz = (c[2:, 1:-1] - c[:-2, 1:-1] for c in (x, y, z))
    nx, ny, nz = ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx
    px, py, pz = x[1:-1, 1:-1], y[1:-1, 1:-1], z[1:-1, 1:-1]
    dot = np.abs(nx * px + ny * py + nz * pz)
    norm = np.sqrt((nx * nx + ny * ny + nz * nz) * (px * px + py * py + pz * pz))
    np.divide(dot, norm, out=cos[1:-1, 1:-1], where=norm > 0)
    return np.minimum(cos, 1.0)


def depth_to_mm(depth_m: np.ndarray, k: np.ndarray, depth_range_m: tuple[float, float], noise: DepthNoise,
                rng: np.random.Generator) -> np.ndarray:
    """Clean z-depth (m) -> what the D435i's aligned depth topic carries: uint16 mm, 0 = no depth."""
    z = depth_m.astype(np.float32)
    holes = (z < depth_range_m[0]) | (z > depth_range_m[1]) | ~np.isfinite(z)
    if noise.grazing_angle_deg < 90.0:
        holes |= _incidence_cos(np.where(holes, 0.0, z), k) < np.cos(np.radians(noise.grazing_angle_deg))
    if noise.sigma_per_m2 > 0:
        z = z + rng.standard_normal(z.shape, dtype=np.float32) * np.float32(noise.sigma_per_m2) * z * z
    if noise.dropout > 0:
        holes |= rng.random(z.shape, dtype=np.float32) < noise.dropout
    # A noisy sample past the range limits is still a measurement of an in-range surface: clip, don't drop.
    mm = np.clip(np.rint(z * np.float32(1000.0)), 1, 65535)
    mm[holes] = 0
    return mm.astype(np.uint16)


def apply_intrinsics(scene: mujoco.MjvScene, k: np.ndarray, width: int, height: int) -> None:
    """Replaces the frustum of an updated scene by the one K defines, whatever the
    render size: the outer pixels' edges sit at -0.5 and width - 0.5 (OpenCV)."""
    for glcam in scene.camera:
        near = glcam.frustum_near
        left, right = near * (-0.5 - k[0, 2]) / k[0, 0], near * (width - 0.5 - k[0, 2]) / k[0, 0]
        glcam.frustum_center = (left + right) / 2
        glcam.frustum_width = (right - left) / 2
        glcam.frustum_top = near * (k[1, 2] + 0.5) / k[1, 1]  # image y is down, OpenGL y up
        glcam.frustum_bottom = -near * (height - 0.5 - k[1, 2]) / k[1, 1]


class SimCamera:
    """Renders the twin's RealSense. Colour and depth are separate renders (depth
    alone is cheap), optionally at `render_scale` of the published size and
    resized back, so the published images always have the cell's size and K."""

    def __init__(self, model: mujoco.MjModel, cam: Camera, *, noise: DepthNoise | None = None, seed: int = 0,
                 render_scale: float = 1.0, camera_name: str = CAMERA_NAME):
        self.cam_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera_name)
        if self.cam_id < 0:
            raise UserError(f"twin scene has no camera {camera_name!r} (rebuild it with `dream twin build`)")
        if not 0.0 < render_scale <= 1.0:
            raise UserError(f"render_scale must be in (0, 1], got {render_scale}")
        self.cam = cam
        self.K = cam.K()
        self.depth_range_m = (float(cam.depth_range_m[0]), float(cam.depth_range_m[1]))
        self.noise = noise if noise is not None else DepthNoise.from_config(cam.depth_noise)
        self.rng = np.random.default_rng(seed)
        self.render_w = max(1, int(round(cam.width * render_scale)))
        self.render_h = max(1, int(round(cam.height * render_scale)))
        # The offscreen buffer must hold the render; growing it only affects rendering.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.render_w)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.render_h)
        model.vis.quality.offsamples = 0  # MSAA is most of the colour cost on software GL
        self._model = model
        try:
            self._renderer = mujoco.Renderer(model, self.render_h, self.render_w)
        except Exception as exc:  # no GL backend: EGL/OSMesa missing or MUJOCO_GL wrong
            raise UserError(f"cannot render the simulated camera (MUJOCO_GL={os.environ.get('MUJOCO_GL')}): "
                            f"{exc}; disable it with camera_enabled:=false".splitlines()[0]) from None
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):
            self._renderer.scene.flags[flag] = False

    # -- rendering -------------------------------------------------------------
    def _update(self, data: mujoco.MjData) -> None:
        self._renderer.update_scene(data, self.cam_id)
        apply_intrinsics(self._renderer.scene, self.K, self.cam.width, self.cam.height)

    def _to_size(self, img: np.ndarray, interpolation: int) -> np.ndarray:
        if img.shape[:2] == (self.cam.height, self.cam.width):
            return img
        return cv2.resize(img, (self.cam.width, self.cam.height), interpolation=interpolation)

    def render_rgb(self, data: mujoco.MjData) -> np.ndarray:
        """(H, W, 3) uint8 colour."""
        self._renderer.disable_depth_rendering()
        self._update(data)
        return self._to_size(self._renderer.render(), cv2.INTER_LINEAR)

    def render_depth_m(self, data: mujoco.MjData) -> np.ndarray:
        """(H, W) float32 clean z-depth in metres (no noise, no range limits). At
        render_scale < 1 depth is upsampled nearest-neighbour (no mixed edges),
        which misplaces it by up to half a render pixel."""
        self._renderer.enable_depth_rendering()
        self._update(data)
        depth = self._renderer.render()
        self._renderer.disable_depth_rendering()
        return self._to_size(depth, cv2.INTER_NEAREST_EXACT)

    def render_depth_mm(self, data: mujoco.MjData) -> np.ndarray:
        """(H, W) uint16 millimetres with the noise model, 0 = no depth."""
        return depth_to_mm(self.render_depth_m(data), self.K, self.depth_range_m, self.noise, self.rng)

    def info(self) -> CameraInfoFields:
        return camera_info_fields(self.cam)

    def close(self) -> None:
        self._renderer.close()

    def __enter__(self) -> "SimCamera":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
