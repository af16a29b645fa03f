"""An object's rotational symmetries, so a grasp is planned for the object as it lies.

A policy predicts palm poses in the object's frame. When a dropped cube lands on
another face, its frame's z axis lies on the table and every "top" grasp turns into
one from the side (seen in the simulated cell: no candidate usable after the drop).
The cube is the same cube in 24 frames: among the rotations that map the mesh onto
itself, `upright` picks the frame whose z axis is closest to vertical. Only the 24
axis-aligned rotations are tried; an object without such symmetries keeps its pose.
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy.spatial import cKDTree


def _axis_rotations() -> list[np.ndarray]:
    """The 24 proper rotations that permute and flip the coordinate axes (identity first)."""
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1.0, -1.0), repeat=3):
            r = np.zeros((3, 3))
            r[np.arange(3), perm] = signs
            if np.linalg.det(r) > 0:
                out.append(r)
    out.sort(key=lambda r: -np.trace(r))   # identity first
    return out


def mesh_symmetries(vertices: np.ndarray, tol: float = 1e-3) -> list[np.ndarray]:
    """Axis-aligned rotations S with S @ v on the mesh for every vertex v (within `tol` m of a
    vertex), about the frame's origin. Always holds the identity."""
    v = np.asarray(vertices, float)
    tree = cKDTree(v)
    return [r for r in _axis_rotations() if float(tree.query(v @ r.T)[0].max()) <= tol]


def upright(pose: np.ndarray, symmetries: list[np.ndarray]) -> np.ndarray:
    """The same object pose (4x4) re-expressed in the symmetric frame whose z axis points most
    nearly up; ties keep the earlier symmetry (the identity first)."""
    pose = np.asarray(pose, float)
    best = max(symmetries, key=lambda s: round(float((pose[:3, :3] @ s.T)[2, 2]), 9))
    out = pose.copy()
    out[:3, :3] = pose[:3, :3] @ best.T
    return out
