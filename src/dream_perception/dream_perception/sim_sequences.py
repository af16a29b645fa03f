"""Rendered depth sequences with ground truth, for the tracker's tests and bench.

The twin (arm + Allegro hand + table + catalogue object) is rendered by the
simulated RealSense (dream_hw.sim.camera: the cell's K and camera pose, D435i
depth noise). Object motion is kinematic (set, not simulated): the tracker only
sees geometry, and a prescribed path gives exact truth and repeatable speeds.
The hand is placed by a small IK on the arm so it can occlude or touch the object.
ROS-free; needs mujoco and the Menagerie models (MENAGERIE_ROOT)."""
from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

from dataclasses import dataclass  # noqa: E402


import numpy as np  # noqa: E402

from dream_perception.tracking.se3 import matrix_to_quat, yaw_rotation  # noqa: E402

FPS = 30.0


@dataclass(frozen=True)
class Frame:
    t: float
    depth_mm: np.ndarray            # (H, W) uint16, 0 = no depth
    truth: np.ndarray | None        # world_from_object, None while the object is out of sight
    rgb: np.ndarray | None = None


@dataclass(frozen=True)
class Shot:
    """What to render at one instant: object pose (None = removed) and fingertip target (None = home)."""

    object_pose: np.ndarray | None
    fingertip: np.ndarray | None = None


def min_jerk(s: float) -> float:
    s = min(max(s, 0.0), 1.0)
    return 10 * s ** 3 - 15 * s ** 4 + 6 * s ** 5


class SequenceRenderer:
    """A twin with one catalogue object, and a SimCamera on it."""

    def __init__(self, object_id: str = "domino", seed: int = 0, noise: bool = True, rgb: bool = False):
        import mujoco

        from dream_hw.cell import load_cell
        from dream_hw.sim.camera import DepthNoise, SimCamera
        from dream_sysid.catalogue import get_object
        from dream_sysid.twin.builder import OBJECT_JOINT, ObjectPlacement, build_twin
        from dream_sysid.twin.object_geometry import ObjectGeometry

        self.mujoco = mujoco
        self.cell = load_cell()
        self.entry = get_object(object_id)
        x, y, yaw = self.entry.pose_xy_yaw
        geometry = ObjectGeometry.from_file(self.entry.mesh_path, decompose=False)
        self.twin = build_twin(self.cell, geometry, kind="push", mass_kg=self.entry.mass_kg,
                               friction=self.entry.friction, placement=ObjectPlacement(x, y, yaw), object_id=object_id)
        self.model = self.twin.model
        self.data = self.twin.home_data()
        self.home_qpos = self.data.qpos.copy()
        self.qadr = self.model.jnt_qposadr[self.model.joint(OBJECT_JOINT).id]
        self.arm_adr = [self.model.jnt_qposadr[self.model.joint(j).id] for j in self.twin.arm_joints]
        self.tip_id = self.model.body("allegro/ff_tip").id
        self.palm_id = self.model.body("allegro/palm").id
        self.palm_home = self.data.xmat[self.palm_id].reshape(3, 3).copy()
        noise_model = DepthNoise.from_config(self.cell.camera.depth_noise) if noise else DepthNoise.off()
        self.camera = SimCamera(self.model, self.cell.camera, noise=noise_model, seed=seed)
        self.want_rgb = rgb
        q = self.twin.object_qpos
        from dream_perception.tracking.se3 import pose_from_pos_quat

        self.rest_pose = pose_from_pos_quat(q[:3], q[3:])

    def close(self) -> None:
        self.camera.close()

    def __enter__(self) -> "SequenceRenderer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ posing
    def _arm_ik(self, target: np.ndarray) -> None:
        """Arm joints that put the index fingertip at target with the palm's home orientation."""
        from scipy.optimize import least_squares

        mj, m, d = self.mujoco, self.model, self.data

        def resid(q: np.ndarray) -> np.ndarray:
            d.qpos[self.arm_adr] = q
            mj.mj_kinematics(m, d)
            rot_err = (d.xmat[self.palm_id].reshape(3, 3) - self.palm_home).ravel() * 0.05
            return np.concatenate([d.xpos[self.tip_id] - target, rot_err,
                                   0.002 * (q - self.home_qpos[self.arm_adr])])

        sol = least_squares(resid, d.qpos[self.arm_adr].copy(), xtol=1e-8, max_nfev=200)
        d.qpos[self.arm_adr] = sol.x

    def pose(self, shot: Shot) -> None:
        d = self.data
        d.qpos[:] = self.home_qpos
        if shot.fingertip is not None:
            self._arm_ik(np.asarray(shot.fingertip, float))
        if shot.object_pose is None:
            d.qpos[self.qadr:self.qadr + 3] = [0.0, 0.0, -2.0]   # under the table: out of sight
            d.qpos[self.qadr + 3:self.qadr + 7] = [1.0, 0.0, 0.0, 0.0]
        else:
            d.qpos[self.qadr:self.qadr + 3] = shot.object_pose[:3, 3]
            d.qpos[self.qadr + 3:self.qadr + 7] = matrix_to_quat(shot.object_pose[:3, :3])
        self.mujoco.mj_forward(self.model, d)

    def render(self, shots: list[Shot]) -> list[Frame]:
        out = []
        for k, shot in enumerate(shots):
            self.pose(shot)
            depth = self.camera.render_depth_mm(self.data)
            rgb = self.camera.render_rgb(self.data) if self.want_rgb else None
            truth = None if shot.object_pose is None else shot.object_pose.copy()
            out.append(Frame(k / FPS, depth, truth, rgb))
        return out

    # ------------------------------------------------------------------ sequences
    def moved(self, dx: float, dy: float, dyaw: float) -> np.ndarray:
        """The resting pose shifted on the table and turned about world z."""
        p = self.rest_pose.copy()
        p[:3, :3] = yaw_rotation(dyaw) @ p[:3, :3]
        p[:3, 3] += [dx, dy, 0.0]
        return p

    def resting(self, n: int) -> list[Shot]:
        return [Shot(self.rest_pose) for _ in range(n)]

    def pushed(self, n: int, distance: float = 0.12, lateral: float = 0.02, yaw_deg: float = 25.0,
               duration: float = 1.0, start: float = 0.1, finger: bool = True) -> list[Shot]:
        """Min-jerk push along +x (the hand's push direction here): peak speed
        1.875 * distance / duration (0.22 m/s with the defaults), the fingertip
        touching the object's back face."""
        half = float(self.twin.geometry.mesh.extents[0]) / 2
        shots = []
        for k in range(n):
            s = min_jerk((k / FPS - start) / duration)
            pose = self.moved(distance * s, lateral * s, np.radians(yaw_deg) * s)
            back = pose[:3, 3] - pose[:3, 0] * (half + 0.012)
            back[2] = self.cell.table.top_z + 0.012
            shots.append(Shot(pose, back if finger else None))
        return shots

    def occluded(self, n: int, sweep: float = 0.14) -> list[Shot]:
        """The object at rest, the hand sweeping sideways between it and the camera
        (fingertip ~8 cm up, on the camera's line of sight to the object)."""
        cam = np.array(self.cell.camera.pose_in_world.pos)
        obj = self.rest_pose[:3, 3]
        shots = []
        for k in range(n):
            along = obj + 0.18 * (cam - obj)
            along[1] += sweep * (2 * k / max(1, n - 1) - 1)
            shots.append(Shot(self.rest_pose, along))
        return shots

    def hidden_and_back(self, n_before: int, n_hidden: int, n_after: int, dx: float = 0.04,
                        dy: float = 0.03, dyaw_deg: float = 25.0) -> list[Shot]:
        """At rest, then removed from view, then back at another place and heading."""
        back = self.moved(dx, dy, np.radians(dyaw_deg))
        return ([Shot(self.rest_pose)] * n_before + [Shot(None)] * n_hidden + [Shot(back)] * n_after)


def iter_world_from_cam(cell) -> np.ndarray:
    """The camera optical frame in world, from the cell description."""
    return cell.camera.pose_in_world.matrix()


