"""Shared, expensive-once fixtures: the ketchup bottle's floating-hand scene and a few synthetic grasps."""
from __future__ import annotations

import numpy as np
import pytest

DEMO_MASS_KG = 0.2


@pytest.fixture(scope="session")
def ketchup():
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.object_geometry import ObjectGeometry

    obj = get_object("ketchup_bottle")
    return obj, ObjectGeometry.from_file(obj.mesh_path)


@pytest.fixture(scope="session")
def scene(cell, ketchup):
    from dream_grasp.hand_scene import FloatingHandScene

    obj, geometry = ketchup
    return FloatingHandScene.for_object(cell, geometry, mass_kg=DEMO_MASS_KG, friction=obj.friction, object_id=obj.id)


@pytest.fixture(scope="session")
def demos(scene):
    from dream_grasp.demos.synthetic import generate

    demo, stats = generate(scene, 3, seed=1, max_trials=150, progress=False)
    return demo, stats


def object_to_world(scene) -> np.ndarray:
    import mujoco

    pose = np.eye(4)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, scene.object_home[3:])
    pose[:3, :3], pose[:3, 3] = rot.reshape(3, 3), scene.object_home[:3]
    return pose
