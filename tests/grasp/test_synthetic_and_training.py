"""Synthetic demonstrations and the two-phase trainer, at test size."""
from __future__ import annotations

import json

import numpy as np
import torch

from conftest import DEMO_MASS_KG
from dream_grasp.demos.dataset import DemoSet
from dream_grasp.train import TrainConfig, export, points_in_palm, train


def test_synthetic_demos_lift_the_object(demos, tmp_path):
    demo, stats = demos
    assert len(demo) >= 1 and stats["kept"] == len(demo)
    assert np.all(demo.contact_flags[:, 1] == 1.0)            # every kept grasp retained the object
    assert np.all(demo.fingers.sum(axis=1) >= 1)
    assert np.allclose(demo.force_n, DEMO_MASS_KG * 9.81 / demo.fingers.sum(axis=1), rtol=1e-5)
    back = DemoSet.load(demo.save(tmp_path / "ketchup"))
    assert np.allclose(back.joint_targets, demo.joint_targets) and back.header["object_id"] == "ketchup_bottle"
    assert json.loads((tmp_path / "ketchup.json").read_text())["count"] == len(demo)


def test_force_head_grows_with_mass_and_export(demos, scene, ketchup, tmp_path):
    demo, _ = demos
    cfg = TrainConfig(masses=(0.1, 0.3, 0.6), n_points=32, hidden=32, epochs1=120, steps2=2, rollouts=1,
                      progress=False)
    result = train(demo, ketchup[1].mesh, scene, cfg)
    assert len(result.history["phase2"]) == 2
    x = torch.from_numpy(points_in_palm(result.points_object, demo.palm_in_object[:1]))
    with torch.no_grad():
        forces = [float(result.model(x, torch.tensor([[m]]))[2]) for m in (0.1, 0.3, 0.6)]
    assert forces[0] < forces[1] < forces[2]
    path = export(result, tmp_path, "ketchup_bottle", list(scene.twin.hand_joints))
    meta = json.loads((tmp_path / "grasp_mlp.json").read_text())
    assert meta["f_max_n"] == 40.0 and meta["training_masses_kg"] == [0.1, 0.3, 0.6]
    loaded = torch.jit.load(str(path))
    with torch.no_grad():
        assert torch.allclose(loaded(x, torch.tensor([[0.3]]))[2], result.model(x, torch.tensor([[0.3]]))[2])
