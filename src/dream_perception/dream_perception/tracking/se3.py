"""Rigid transforms as 4x4 numpy matrices, quaternions in [w, x, y, z] (MuJoCo and
the cell's YAML order), so every module speaks the same convention."""
from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation


def make_pose(rot: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """4x4 transform from a 3x3 rotation and a translation."""
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = pos
    return out


def orthonormalize(pose: np.ndarray) -> np.ndarray:
    """The nearest proper rigid transform (SVD): products of poses, e.g. a
    constant-velocity prediction, otherwise amplify rounding errors into a scale."""
    u, _, vt = np.linalg.svd(pose[:3, :3])
    rot = u @ vt
    if np.linalg.det(rot) < 0:
        rot = u @ np.diag([1.0, 1.0, -1.0]) @ vt
    return make_pose(rot, pose[:3, 3])


def inverse(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid transform (cheaper and exacter than np.linalg.inv)."""
    rot = pose[:3, :3]
    return make_pose(rot.T, -rot.T @ pose[:3, 3])


def quat_to_matrix(quat_wxyz) -> np.ndarray:
    w, x, y, z = (float(v) for v in quat_wxyz)
    return Rotation.from_quat([x, y, z, w]).as_matrix()


def matrix_to_quat(rot: np.ndarray) -> np.ndarray:
    """[w, x, y, z] with w >= 0 (one of the two equivalent signs, deterministically)."""
    x, y, z, w = Rotation.from_matrix(rot).as_quat()
    q = np.array([w, x, y, z])
    return q if q[0] >= 0 else -q


def pose_from_pos_quat(pos, quat_wxyz) -> np.ndarray:
    return make_pose(quat_to_matrix(quat_wxyz), np.asarray(pos, float))


def pose_to_pos_quat(pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return pose[:3, 3].copy(), matrix_to_quat(pose[:3, :3])


def exp_twist(delta: np.ndarray) -> np.ndarray:
    """4x4 transform of a small twist [omega (rad), v (m)] (rotation by Rodrigues,
    translation applied after it: enough for ICP increments)."""
    return make_pose(Rotation.from_rotvec(delta[:3]).as_matrix(), delta[3:6])


def yaw_rotation(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation_angle(rot: np.ndarray) -> float:
    """Angle (rad) of a rotation matrix, numerically safe near 0 and pi."""
    return float(np.arccos(np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)))


def pose_error(estimate: np.ndarray, truth: np.ndarray,
               symmetries: list[np.ndarray] | None = None) -> tuple[float, float]:
    """(position error m, rotation error rad) of estimate against truth; with
    symmetries (object-frame rotations that map the mesh onto itself) the smallest
    rotation error over them, since those poses look identical to any sensor."""
    pos_err = float(np.linalg.norm(estimate[:3, 3] - truth[:3, 3]))
    syms = symmetries if symmetries else [np.eye(3)]
    rot_err = min(rotation_angle(estimate[:3, :3].T @ truth[:3, :3] @ s) for s in syms)
    return pos_err, rot_err
