"""Human-demonstration retargeting (dream_grasp.demos.retarget) on keypoint sequences that are hands.

Two synthetic demonstrations, both MANO-order keypoints in a tilted, offset world frame,
closing around the catalogue's 5 cm block:
* a LEAP-shaped hand: the LEAP's own keypoints (URDF forward kinematics) shrunk to
  1/1.3, so the true scale and joints are known exactly;
* a human-proportioned skeleton (longer palm, shorter fingers, a human thumb) with
  2 mm keypoint noise, like HaMeR output.
Fingertips are checked with MuJoCo forward kinematics of the cell's Menagerie LEAP,
independent of the URDF the retargeting used.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from scipy.stats import spearmanr

from dream_grasp.demos.dataset import DemoSet
from dream_grasp.demos.retarget import (
    FINGER_TIPS, HandObjectSequence, LeapHand, Retargeter, main, signed_distance, to_demoset, transform)
from dream_hw.errors import UserError

OBJECT = "light_block"               # 5 cm cube
LEAP_SCALE = 1.3                     # the LEAP-shaped hand is the LEAP shrunk by this
T = 30
WORLD = np.eye(4)
WORLD[:3, :3] = Rotation.from_euler("xyz", [0.4, -1.1, 2.0]).as_matrix()
WORLD[:3, 3] = [0.3, -0.2, 0.7]
FLEX = {"if": [1, 2, 3], "mf": [5, 6, 7], "rf": [9, 10, 11]}     # mcp, pip, dip ids (cell motor map)


@pytest.fixture(scope="module")
def leap(cell):
    hand = LeapHand.from_cell(cell)
    assert [hand.motor_joints[i] for i in sorted(k for f in FLEX.values() for k in f)] == \
        [f"{f}_{j}" for f in FLEX for j in ("mcp", "pip", "dip")]
    return hand


@pytest.fixture(scope="module")
def block():
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.object_geometry import read_mesh_file

    obj = get_object(OBJECT)
    return obj, read_mesh_file(obj.mesh_path)


def world_sequence(local: np.ndarray) -> np.ndarray:
    return transform(np.broadcast_to(WORLD, (len(local), 4, 4)), local)


def object_between_thumb_and_fingers(keypoints: np.ndarray, frame: int = -1) -> np.ndarray:
    """(T, 4, 4): the block, still, centred between the thumb and finger tips at `frame`."""
    tips = keypoints[frame, list(FINGER_TIPS)]
    pose = np.eye(4)
    pose[:3, :3] = WORLD[:3, :3]
    pose[:3, 3] = 0.5 * (tips[:3].mean(axis=0) + tips[3])
    return np.repeat(pose[None], len(keypoints), axis=0)


def leap_shaped(leap: LeapHand) -> tuple[np.ndarray, np.ndarray]:
    """A LEAP-shaped hand opening wide, then closing: (keypoints (T,21,3) in world, joints (T,16))."""
    closed = np.zeros(16)
    for k, name in enumerate(leap.motor_joints):
        closed[k] = {"rot": 0.0, "mcp": 0.9, "pip": 0.7, "dip": 0.5, "cmc": 1.2, "axl": 0.9, "ipl": 0.4}.get(
            name.split("_")[1], 0.6)
    closed[[0, 8]] = [0.12, -0.12]                                 # index and ring spread a little
    q = np.linspace(0.05, 1.0, T)[:, None] * closed
    return world_sequence(np.array([leap.keypoints(x) / LEAP_SCALE for x in q])), q


# A right human hand in its own frame (x out of the palm, y towards the thumb, z along the fingers), metres.
HUMAN_MCP = {"index": (0.0, 0.024, 0.094), "middle": (0.0, 0.002, 0.096), "ring": (0.0, -0.017, 0.090),
             "little": (0.0, -0.034, 0.081)}
HUMAN_BONES = {"index": (0.040, 0.023, 0.021), "middle": (0.045, 0.027, 0.023), "ring": (0.042, 0.026, 0.022),
               "little": (0.032, 0.019, 0.020)}
HUMAN_SPLAY = {"index": 0.08, "middle": 0.0, "ring": -0.08, "little": -0.16}


def human_keypoints(c: float) -> np.ndarray:
    """MANO-order keypoints of the human skeleton at closure c (0 open .. 1 closed)."""
    kp = [np.zeros(3)]
    cmc = np.array([0.012, 0.022, 0.030])                          # thumb: opposes and flexes as c grows
    d = np.array([0.15, 0.75, 0.65]) + c * (np.array([0.65, 0.45, 0.62]) - np.array([0.15, 0.75, 0.65]))
    d /= np.linalg.norm(d)
    axis = np.cross(d, [0.0, -1.0, 0.4])
    axis /= np.linalg.norm(axis)
    p, ang = cmc.copy(), 0.0
    kp.append(p.copy())
    for length, a in zip((0.046, 0.032, 0.027), (0.0, 0.35 + 0.5 * c, 0.2 + 0.6 * c)):
        ang += a
        p = p + length * Rotation.from_rotvec(axis * ang).apply(d)
        kp.append(p.copy())
    for name in ("index", "middle", "ring", "little"):
        p, ang = np.array(HUMAN_MCP[name]), 0.0
        kp.append(p.copy())
        for length, a in zip(HUMAN_BONES[name], (1.0 * c + 0.05, 1.1 * c + 0.05, 0.7 * c + 0.03)):
            ang += a                                               # flexion curls towards +x (the palm side)
            cs, sn = np.cos(HUMAN_SPLAY[name]), np.sin(HUMAN_SPLAY[name])
            p = p + length * np.array([np.sin(ang), sn * np.cos(ang), cs * np.cos(ang)])
            kp.append(p.copy())
    return np.array(kp)


def human_length() -> float:
    return float(np.mean([np.linalg.norm(HUMAN_MCP[f]) + sum(HUMAN_BONES[f]) for f in ("index", "middle", "ring")]))


def flexion(q: np.ndarray) -> dict[str, np.ndarray]:
    return {f: q[:, ids].sum(axis=1) for f, ids in FLEX.items()}


def test_leap_shaped_hand_recovers_scale_joints_and_tips(leap, block, tmp_path):
    obj, mesh = block
    kp, q_true = leap_shaped(leap)
    seq = HandObjectSequence(kp, object_between_thumb_and_fingers(kp), OBJECT, fps=30.0)
    res = Retargeter(leap, mesh.vertices, mesh.faces).retarget(seq)

    assert res.scale == pytest.approx(LEAP_SCALE, rel=0.01)
    q = res.joint_targets
    assert q.shape == (T, 16)
    assert np.all(q >= leap.lower) and np.all(q <= leap.upper)
    # joints: the LEAP's own posture comes back (Dynamixel id order, Allegro-style angles)
    assert np.median(np.abs(q - q_true)) < 0.02 and np.abs(q[-1] - q_true[-1]).max() < 0.1
    # MuJoCo fingertips of the MJCF at the retargeted joints land on the scaled keypoint tips
    assert np.median(res.tip_error_m) < 0.001 and res.tip_error_m.max() < 0.003
    for f, flex in flexion(q).items():
        assert np.all(np.diff(flex) > -0.02), f
        assert flex[-1] - flex[0] > 1.5, f
    # the hand closes onto the block: the grasp frame is late, >= 2 fingers touch
    assert res.grasp_frame >= T // 2
    assert res.fingers.sum() >= 2 and res.fingers[3]                 # the thumb opposes
    assert np.array_equal(res.fingers, res.human_tip_distance_m[res.grasp_frame] <= 0.010)

    demo = to_demoset([res, res], mass_kg=obj.mass_kg, object_id=OBJECT, mesh=str(obj.mesh_path),
                      friction=obj.friction, joint_names=leap.joint_names)
    back = DemoSet.load(demo.save(tmp_path / OBJECT))
    assert len(back) == 2 and back.joint_targets.shape == (2, 16) and back.palm_in_object.shape == (2, 4, 4)
    assert np.allclose(back.joint_targets[0], q[res.grasp_frame], atol=1e-6)
    assert np.allclose(back.palm_in_object[0], res.palm_in_object[res.grasp_frame])
    assert back.header["demos"][0]["scale"] == pytest.approx(LEAP_SCALE, rel=0.01)
    assert back.header["joint_names"][:2] == ["leap/if_rot", "leap/if_mcp"]


def test_palm_pose_puts_the_mjcf_hand_on_the_keypoints(leap, block):
    """The palm pose + joints, replayed in MuJoCo, put every LEAP fingertip where the scaled hand has it."""
    _, mesh = block
    kp, _ = leap_shaped(leap)
    seq = HandObjectSequence(kp, object_between_thumb_and_fingers(kp), OBJECT)
    for anchor in ("wrist", "grasp"):
        res = Retargeter(leap, mesh.vertices, mesh.faces).retarget(seq, anchor=anchor)
        g = res.grasp_frame
        tips = transform(res.palm_in_world[g], leap.mjcf_points(res.joint_targets[g])[None])[0]
        if anchor == "wrist":                                      # LEAP wrist on the human wrist
            expected = kp[g, 0] + LEAP_SCALE * (kp[g, list(FINGER_TIPS)] - kp[g, 0])
        else:                                                      # grasp centre kept
            centre = 0.5 * (kp[g, list(FINGER_TIPS[:3])].mean(axis=0) + kp[g, FINGER_TIPS[3]])
            expected = centre + LEAP_SCALE * (kp[g, list(FINGER_TIPS)] - centre)
            got = 0.5 * (tips[:3].mean(axis=0) + tips[3])
            assert np.linalg.norm(got - centre) < 0.002
        assert np.linalg.norm(tips - expected, axis=1).max() < 0.003, anchor
        # palm_in_object is the world palm seen from the object
        assert np.allclose(seq.object_pose[g] @ res.palm_in_object[g], res.palm_in_world[g])


def test_human_proportioned_noisy_hand(leap, block):
    _, mesh = block
    closure = np.linspace(0.0, 0.6, T)
    rng = np.random.default_rng(3)
    kp = world_sequence(np.array([human_keypoints(c) for c in closure])) + rng.normal(0.0, 0.002, (T, 21, 3))
    seq = HandObjectSequence(kp, object_between_thumb_and_fingers(kp), OBJECT)
    res = Retargeter(leap, mesh.vertices, mesh.faces).retarget(seq)

    known = leap.length / human_length()
    assert res.scale == pytest.approx(known, rel=0.03)
    q = res.joint_targets
    assert np.all(q >= leap.lower) and np.all(q <= leap.upper)
    for f, flex in flexion(q).items():                             # noisy, but the trend is the closure's
        assert spearmanr(closure, flex).statistic > 0.9, f
        assert flex[-1] - flex[0] > 0.8, f
    # proportions differ (LEAP fingers are longer, its thumb is built differently): tips land
    # within a couple of cm of the scaled human tips, index and ring much closer
    err = np.median(res.tip_error_m, axis=0)                       # per finger: if, mf, rf, th
    assert err[[0, 2]].max() < 0.008 and err.max() < 0.03, err


def test_signed_distance_to_the_block(block):
    _, mesh = block                                                # 5 cm cube centred at the origin
    pts = np.array([[0, 0, 0.035], [0, 0, 0], [0.03, 0.03, 0], [0.03, 0.03, 0.03], [0.02, 0, 0.01]])
    want = [0.01, -0.025, 0.005 * np.sqrt(2), 0.005 * np.sqrt(3), -0.005]
    assert np.allclose(signed_distance(pts, mesh.vertices, mesh.faces), want, atol=1e-9)


def test_bad_inputs_name_the_input(leap, block, tmp_path):
    _, mesh = block
    kp, _ = leap_shaped(leap)
    obj = object_between_thumb_and_fingers(kp)
    with pytest.raises(UserError, match=r"demo.npz: keypoints has shape \(30, 20, 3\)"):
        HandObjectSequence(kp[:, :20], obj, OBJECT, source="demo.npz").validate()
    with pytest.raises(UserError, match=r"object_pose has shape \(29, 4, 4\)"):
        HandObjectSequence(kp, obj[1:], OBJECT).validate()
    nan = kp.copy()
    nan[7, 3, 1] = np.nan
    with pytest.raises(UserError, match="keypoints has NaN/inf in frame 7"):
        HandObjectSequence(nan, obj, OBJECT).validate()
    with pytest.raises(UserError, match="millimetres"):
        HandObjectSequence(kp * 1000.0, obj, OBJECT).validate()
    skew = obj.copy()
    skew[4, :3, :3] *= 1.2
    with pytest.raises(UserError, match="object_pose frame 4 is not a rigid transform"):
        HandObjectSequence(kp, skew, OBJECT).validate()
    mirrored = kp * np.array([1.0, -1.0, 1.0])                     # a left hand
    with pytest.raises(UserError, match="left hand"):
        Retargeter(leap, mesh.vertices, mesh.faces).retarget(HandObjectSequence(mirrored, obj, OBJECT))
    np.savez(tmp_path / "no_pose.npz", keypoints=kp, object_id=OBJECT)
    with pytest.raises(UserError, match=r"no_pose.npz: missing arrays \['object_pose'\]"):
        HandObjectSequence.load(tmp_path / "no_pose.npz")


def test_a_motor_map_that_disagrees_with_the_urdf_is_refused(leap):
    """The Menagerie lists if_mcp before if_rot; a map in that order would swap Dynamixel ids 0 and 1."""
    swapped = {str(k): j for k, j in enumerate(leap.motor_joints)}
    swapped["0"], swapped["1"] = swapped["1"], swapped["0"]
    with pytest.raises(UserError, match="motor_joints do not put the dex-urdf LEAP joints"):
        LeapHand(leap.urdf_dir, leap.mjcf_path, swapped)


def test_missing_dex_retargeting_is_one_line(cell, monkeypatch):
    monkeypatch.setitem(sys.modules, "dex_retargeting.retargeting_config", None)
    with pytest.raises(UserError, match="needs dex-retargeting") as err:
        LeapHand.from_cell(cell)
    assert "\n" not in str(err.value) and "dex_retargeting" in str(err.value)


def test_cli_writes_demoset_and_trajectories(leap, tmp_path, capsys):
    kp, _ = leap_shaped(leap)
    src = HandObjectSequence(kp, object_between_thumb_and_fingers(kp), OBJECT, fps=30.0).save(tmp_path / "demo.npz")
    assert main([str(src), "--out", str(tmp_path / "out" / OBJECT)]) == 0
    demo = DemoSet.load(tmp_path / "out" / f"{OBJECT}.npz")
    assert len(demo) == 1 and demo.header["object_id"] == OBJECT and demo.header["demos"][0]["fps"] == 30.0
    with np.load(tmp_path / "out" / f"{OBJECT}.trajectories.npz") as traj:
        assert traj["demo0_joint_targets"].shape == (T, 16) and traj["demo0_palm_in_object"].shape == (T, 4, 4)
    assert "scale 1.300" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    np.savez(bad, keypoints=kp[:, :, :2], object_pose=np.eye(4)[None].repeat(T, 0), object_id=OBJECT)
    assert main([str(bad), "--out", str(tmp_path / "x")]) == 2
    assert "keypoints has shape (30, 21, 2)" in capsys.readouterr().err
    assert main([str(src), "--out", str(tmp_path / "y"), "--urdf-dir", str(tmp_path)]) == 2
    assert "no LEAP URDF" in capsys.readouterr().err
