"""Synthetic demonstrations and the two-phase trainer, at test size."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import DEMO_MASS_KG, object_to_world
from dream_grasp.demos.dataset import DemoSet
from dream_grasp.force import GripForceMapper
from dream_grasp.train import TrainConfig, export, points_in_palm, train
from dream_grasp.trial import preshape, run_grasp, set_mass, thumb_mask

MASSES = (0.05, 0.1, 0.2)          # labels m g n / f_max stay below the clip at 1 for n <= 4


def test_synthetic_demos_lift_the_object(demos, tmp_path):
    demo, stats = demos
    assert len(demo) >= 1 and stats["kept"] == len(demo)
    assert np.all(demo.contact_flags[:, 1] == 1.0)            # every kept grasp retained the object
    assert np.all(demo.fingers.sum(axis=1) >= 1)
    assert np.allclose(demo.force_n, DEMO_MASS_KG * 9.81 / demo.fingers.sum(axis=1), rtol=1e-5)
    back = DemoSet.load(demo.save(tmp_path / "ketchup"))
    assert np.allclose(back.joint_targets, demo.joint_targets) and back.header["object_id"] == "ketchup_bottle"
    assert json.loads((tmp_path / "ketchup.json").read_text())["count"] == len(demo)


def test_demonstration_replays_from_its_file(demos, scene):
    """A kept demonstration is fully described by its wrist pose and joint targets (pre-shape rule)."""
    demo, _ = demos
    palm = object_to_world(scene) @ demo.palm_in_object[0]
    q = demo.joint_targets[0].astype(float)
    res = run_grasp(scene, palm[:3, 3], palm[:3, :3], preshape(q, thumb_mask(scene)), q,
                    scene.servo.current_cap_ma)
    assert res.success and not res.unstable


@pytest.fixture(scope="module")
def trained(demos, scene, ketchup):
    demo, _ = demos
    cfg = TrainConfig(masses=MASSES, n_points=32, hidden=32, epochs1=1500, steps2=2, rollouts=1, progress=False)
    return train(demo, ketchup[1].mesh, scene, cfg)


def test_force_head_grows_with_mass_and_so_does_the_current(trained, demos, scene):
    demo, _ = demos
    x = torch.from_numpy(points_in_palm(trained.points_object, demo.palm_in_object[:1]))
    with torch.no_grad():
        forces = [float(trained.model(x, torch.tensor([[m]]))[2]) for m in MASSES]
        q = trained.model(x, torch.tensor([[MASSES[0]]]))[0].numpy()[0].astype(float)
    assert forces[0] < forces[1] < forces[2]
    # roughly proportional to mass, as the labels clip(m g n / f_max) are
    assert forces[2] / forces[0] > 2.0
    mapper = GripForceMapper(scene, trained.config.f_max)
    active = demo.fingers[0]
    currents = [mapper.command(q, f, active).current_ma[np.repeat(active, 4)].sum() for f in forces]
    assert currents[0] < currents[2]
    assert len(trained.history["phase2"]) == 2


def test_phase2_keeps_the_joint_targets(trained, demos, scene, ketchup):
    """By default phase 2 trains the contact and force heads only: the grasps shown to work stay."""
    demo, _ = demos
    cfg = TrainConfig(masses=MASSES, n_points=32, hidden=32, epochs1=1500, steps2=0, progress=False)
    phase1_only = train(demo, ketchup[1].mesh, None, cfg)
    x = torch.from_numpy(points_in_palm(trained.points_object, demo.palm_in_object))
    m = torch.full((len(demo), 1), MASSES[1])
    with torch.no_grad():
        a1, r1, _ = phase1_only.model(x, m)
        a2, r2, _ = trained.model(x, m)
    assert torch.allclose(a1, a2, atol=1e-6)
    # the rollouts did move the contact head (its weights: the saturated sigmoid may hide it in r)
    moved = [not torch.equal(a, b) for a, b in zip(phase1_only.model.contact_head.parameters(),
                                                   trained.model.contact_head.parameters())]
    assert any(moved)


def test_export_round_trip(trained, demos, scene, tmp_path):
    demo, _ = demos
    path = export(trained, tmp_path, "ketchup_bottle", list(scene.twin.hand_joints))
    meta = json.loads((tmp_path / "grasp_mlp.json").read_text())
    assert meta["f_max_n"] == trained.config.f_max and meta["training_masses_kg"] == list(MASSES)
    loaded = torch.jit.load(str(path))
    x = torch.from_numpy(points_in_palm(trained.points_object, demo.palm_in_object[:1]))
    with torch.no_grad():
        assert torch.allclose(loaded(x, torch.tensor([[0.1]]))[2], trained.model(x, torch.tensor([[0.1]]))[2])


def test_rescaled_object_stays_simulable(demos, scene):
    """set_mass re-derives MuJoCo's mass-dependent constants: demonstrated grasps of the object at
    other masses must not blow up (with set_object_mass alone, 5 of these 9 trials did)."""
    demo, _ = demos
    obj = object_to_world(scene)
    try:
        for i in range(len(demo)):
            palm = obj @ demo.palm_in_object[i]
            q = demo.joint_targets[i].astype(float)
            for mass in (0.05, 0.6, 1.0):
                set_mass(scene, mass)
                assert scene.object_mass == pytest.approx(mass)
                res = run_grasp(scene, palm[:3, 3], palm[:3, :3], preshape(q, thumb_mask(scene)), q,
                                scene.servo.current_cap_ma)
                assert not res.unstable and abs(res.object_rise_m) < 0.3
    finally:
        set_mass(scene, DEMO_MASS_KG)
