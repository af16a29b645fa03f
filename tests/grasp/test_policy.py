"""The runtime policy: an exported model directory (with its grasp candidates) -> per-candidate
world palm poses, joint targets, contact scores and force head; MuJoCo-free and fast."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import trimesh

from dream_grasp.grasps import GRASPS_FILE, GraspSet
from dream_grasp.policy import GraspPolicy, GraspPrediction, pose_matrix
from dream_hw.errors import UserError


def _demos(k: int = 6):
    """A few fake demonstrations: palms above a 5 cm cube (higher and turned with the index),
    joint targets growing with the index."""
    from dream_grasp.demos.dataset import DemoSet

    rng = np.random.default_rng(0)
    palms = np.repeat(np.eye(4)[None], k, axis=0)
    for i in range(k):
        yaw = 2 * math.pi * i / k
        palms[i, :3, :2] = [[math.cos(yaw), -math.sin(yaw)], [math.sin(yaw), math.cos(yaw)], [0, 0]]
        palms[i, :3, 3] = [0.01 * math.cos(yaw), 0.01 * math.sin(yaw), 0.08 + 0.015 * i]
    fingers = rng.random((k, 4)) < 0.7
    fingers[:, 3] = True
    return DemoSet(palm_in_object=palms, joint_targets=np.linspace(0.2, 1.0, k)[:, None].repeat(16, 1).astype(np.float32),
                   contact_flags=np.ones((k, 2), np.float32), fingers=fingers, force_n=np.ones(k, np.float32),
                   force_label=np.full(k, 0.2, np.float32), mass_kg=np.full(k, 0.05, np.float32),
                   header={"joint_names": [f"leap/j{i}" for i in range(16)]})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    import torch

    from dream_grasp.train import TrainConfig, export, train

    torch.manual_seed(0)
    demos = _demos()
    cfg = TrainConfig(masses=(0.05, 0.2), f_max=10.0, n_points=32, hidden=32, epochs1=400, steps2=0, batch=6,
                      progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(demos, trimesh.creation.box((0.05, 0.05, 0.05)), None, cfg)
    finally:
        torch.set_num_threads(threads)
    out = tmp_path_factory.mktemp("policy")
    export(result, out, "cube", list(demos.header["joint_names"]), grasps=demos)
    return out, demos


def test_export_writes_the_candidates(model_dir):
    out, demos = model_dir
    grasps = GraspSet.load(out)
    np.testing.assert_allclose(grasps.palm_in_object, demos.palm_in_object)
    np.testing.assert_array_equal(grasps.fingers, demos.fingers)


def test_predictions_follow_the_object_and_not_its_pose(model_dir):
    out, demos = model_dir
    policy = GraspPolicy(out)
    assert len(policy) == len(demos) and policy.object_id == "cube" and policy.f_max == 10.0
    here = pose_matrix([0.55, 0.0, 0.025], [1.0, 0.0, 0.0, 0.0])
    there = pose_matrix([0.40, 0.2, 0.025], [math.cos(0.4), 0.0, 0.0, math.sin(0.4)])    # moved, turned 46 deg
    a, b = policy.predict(here, 0.05), policy.predict(there, 0.05)
    assert a.joint_targets.shape == (6, 16) and a.contact.shape == (6, 2) and a.force.shape == (6,)
    np.testing.assert_allclose(b.palm_world, there[None] @ demos.palm_in_object, atol=1e-12)   # rigidly with it
    np.testing.assert_allclose(a.joint_targets, b.joint_targets, atol=1e-6)                    # the hand: the same
    np.testing.assert_allclose(a.contact, b.contact, atol=1e-6)
    np.testing.assert_allclose(a.force, b.force, atol=1e-6)
    assert np.all((a.contact >= 0) & (a.contact <= 1)) and np.all((a.force >= 0) & (a.force <= 1))
    # learned: targets track the demonstrations', the force head grows with mass
    assert np.abs(a.joint_targets - demos.joint_targets).max() < 0.15
    assert np.all(policy.predict(here, 0.2).force > a.force)


def test_ranking_is_contact_score_then_fingers():
    k = 4
    pred = GraspPrediction(np.zeros((k, 4, 4)), np.zeros((k, 4, 4)), np.zeros((k, 16)),
                           contact=np.array([[0.5, 0.5], [1.0, 0.999], [1.0, 0.996], [0.9, 1.0]]),
                           force=np.zeros(k), fingers=np.array([[1, 1, 1, 1], [1, 0, 0, 1], [1, 1, 0, 1], [1, 1, 1, 1]], bool),
                           mass_kg=0.1)
    assert list(pred.ranking()) == [2, 1, 3, 0]


def test_bad_model_directories_fail_in_one_line(model_dir, tmp_path):
    out, _ = model_dir
    with pytest.raises(UserError, match="grasp_mlp.json is missing"):
        GraspPolicy(tmp_path)
    for name in ("grasp_mlp.pt", "grasp_mlp.json", "points.npy"):
        (tmp_path / name).write_bytes((out / name).read_bytes())
    with pytest.raises(UserError, match=GRASPS_FILE):
        GraspPolicy(tmp_path)                                   # exported without its candidates
    meta = json.loads((out / "grasp_mlp.json").read_text())
    meta["version"] = "other/9"
    (tmp_path / "grasp_mlp.json").write_text(json.dumps(meta))
    with pytest.raises(UserError, match="version"):
        GraspPolicy(tmp_path)
    policy = GraspPolicy(out)
    with pytest.raises(UserError):
        policy.predict(np.eye(3), 0.05)
    with pytest.raises(UserError):
        policy.predict(np.eye(4), 0.0)


def test_pose_matrix_matches_mujoco():
    import mujoco

    q = np.array([0.3, -0.5, 0.2, 0.7])
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, q / np.linalg.norm(q))
    pose = pose_matrix([1.0, 2.0, 3.0], q)
    np.testing.assert_allclose(pose[:3, :3], rot.reshape(3, 3), atol=1e-12)
    np.testing.assert_allclose(pose[:3, 3], [1, 2, 3])
    with pytest.raises(UserError):
        pose_matrix([0, 0, 0], [0, 0, 0, 0])
