"""Object symmetries: a cube that rolled onto another face is planned for upright."""
from __future__ import annotations

import numpy as np
import trimesh

from dream_grasp.symmetry import mesh_symmetries, upright


def _rot_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def test_a_cube_has_24_symmetries_a_brick_4_and_an_l_shape_only_the_identity():
    cube = trimesh.creation.box((0.05, 0.05, 0.05)).vertices
    brick = trimesh.creation.box((0.08, 0.04, 0.02)).vertices
    ell = np.vstack([trimesh.creation.box((0.06, 0.02, 0.02)).vertices,
                     trimesh.creation.box((0.02, 0.06, 0.02)).vertices + [0.02, 0.02, 0.0]])
    assert len(mesh_symmetries(cube)) == 24
    assert len(mesh_symmetries(brick)) == 4
    sym = mesh_symmetries(ell)
    assert len(sym) == 1 and np.allclose(sym[0], np.eye(3))


def test_a_rolled_cube_is_re_expressed_upright_and_occupies_the_same_space():
    cube = trimesh.creation.box((0.05, 0.05, 0.05)).vertices
    pose = np.eye(4)
    pose[:3, :3] = _rot_x(90.0)                    # rolled onto a side face
    pose[:3, 3] = [0.55, 0.0, 0.025]
    up = upright(pose, mesh_symmetries(cube))
    assert up[2, 2] > 0.999                                   # its z axis now points up
    assert np.allclose(up[:3, 3], pose[:3, 3])
    world = lambda p: cube @ p[:3, :3].T + p[:3, 3]           # noqa: E731
    a, b = world(pose), world(up)
    assert max(np.min(np.linalg.norm(a[:, None] - b[None], axis=2), axis=1)) < 1e-9
    # An upright cube keeps its pose; an L-shape keeps a rolled pose (it is not the same object upright).
    assert np.allclose(upright(np.eye(4), mesh_symmetries(cube)), np.eye(4))
    ell = np.vstack([trimesh.creation.box((0.06, 0.02, 0.02)).vertices,
                     trimesh.creation.box((0.02, 0.06, 0.02)).vertices + [0.02, 0.02, 0.0]])
    assert np.allclose(upright(pose, mesh_symmetries(ell)), pose)
