"""The model-based tracker (ROS-free) on sequences rendered from the twin with the
D435i noise model. Bounds come from bench/tracker.py (bench/results/tracker.json):
there, median errors are ~0.2-0.5 mm and ~0.2-0.4 deg and 95th percentiles below
~1.5 mm and ~1.2 deg; the bounds below leave ~2-3x margin for other seeds while
staying inside the issue's goal (3 mm, 2 deg median)."""
from __future__ import annotations

import numpy as np
import pytest

from dream_hw.errors import UserError


def _run(frames, model, scene, init=None):
    from dream_perception.tracking.tracker import ModelTracker

    trk = ModelTracker(model, scene)
    trk.initialise(frames[0].truth if init is None else init)
    return [trk.step(f.depth_mm.astype(np.float32) * 0.001) for f in frames]


def _errors(frames, results, syms):
    from dream_perception.tracking.se3 import pose_error

    errs = [pose_error(r.pose, f.truth, syms) for f, r in zip(frames, results)
            if r.tracking and f.truth is not None]
    pos = np.array([e[0] for e in errs])
    rot = np.degrees([e[1] for e in errs])
    return pos, rot


def test_pushed_object_is_tracked_within_bounds(domino_frames, domino_model, scene):
    frames = domino_frames["pushed"]
    # The push is real motion: 12 cm and 25 deg at up to 0.22 m/s.
    travel = np.linalg.norm(frames[-1].truth[:3, 3] - frames[0].truth[:3, 3])
    assert travel > 0.1
    results = _run(frames, domino_model, scene)
    assert all(r.tracking for r in results)
    pos, rot = _errors(frames, results, domino_model.symmetries())
    assert np.median(pos) < 1.5e-3 and np.percentile(pos, 95) < 3e-3
    assert np.median(rot) < 1.0 and np.percentile(rot, 95) < 2.5


def test_tracking_continues_while_the_hand_hides_part_of_the_object(domino_frames, domino_model, scene):
    from dream_perception.tracking.quality import depth_support
    from dream_perception.tracking.view import render_view

    frames = domino_frames["occluded"]
    # The hand really covers the object in some frames (less of it in view).
    seen = [depth_support(f.depth_mm * 0.001, scene,
                          render_view(domino_model, scene.cam_from_world @ f.truth, scene.intr), 0.006).seen
            for f in frames]
    assert min(seen) < 0.7 and max(seen) > 0.95
    results = _run(frames, domino_model, scene)
    assert sum(r.tracking for r in results) >= 0.9 * len(results)
    pos, rot = _errors(frames, results, domino_model.symmetries())
    assert np.median(pos) < 2e-3 and np.percentile(pos, 95) < 4e-3
    assert np.median(rot) < 1.5


def test_track_is_lost_when_hidden_and_recovers_when_shown_again(domino_frames, domino_model, scene):
    from dream_perception.tracking.se3 import pose_error
    from dream_perception.tracking.tracker import TrackState

    frames = domino_frames["hidden"]
    results = _run(frames, domino_model, scene)
    states = [r.state for r in results]
    assert all(s == TrackState.TRACKING for s in states[:6])
    assert states[6] == TrackState.LOST                       # the first frame without the object
    assert all(s == TrackState.REINITIALISING for s in states[7:12])
    # Back 5 cm away and turned by 25 deg: found again within two frames, accurately.
    back = next(k for k in range(12, len(states)) if states[k] == TrackState.TRACKING)
    assert back <= 13
    for f, r in zip(frames[back:], results[back:]):
        assert r.tracking
        pos, rot = pose_error(r.pose, f.truth, domino_model.symmetries())
        assert pos < 2e-3 and np.degrees(rot) < 2.0


def test_a_wrong_initial_pose_far_from_any_object_is_not_accepted(domino_frames, domino_model, scene):
    from dream_perception.tracking.se3 import make_pose

    frames = domino_frames["pushed"][:3]
    far = make_pose(np.eye(3), np.array([0.3, -0.3, 0.011]))   # empty table there
    results = _run(frames, domino_model, scene, init=far)
    assert not any(r.tracking for r in results)


def test_missing_mesh_is_a_clear_error(tmp_path):
    from dream_perception.tracking.object_model import ObjectModel

    with pytest.raises(UserError, match="does not exist"):
        ObjectModel.from_file(tmp_path / "nope.obj")
    with pytest.raises(UserError, match="unknown object 'nope'"):
        ObjectModel.from_catalogue("nope")
    bad = tmp_path / "bad.txt"
    bad.write_text("x")
    with pytest.raises(UserError, match="expected one of"):
        ObjectModel.from_file(bad)


@pytest.mark.parametrize("k, size, match", [
    ([0, 0, 320, 0, 615, 240, 0, 0, 1], (640, 480), "focal lengths must be positive"),
    ([615, 0, 900, 0, 615, 240, 0, 0, 1], (640, 480), "principal point"),
    ([615, 0, 320, 0, 615, 240, 0, 0, 1], (0, 0), "empty"),
    ([615, 0, 320, 0, 400, 240, 0, 0, 1], (640, 480), "fx/fy"),
    ([5000, 0, 320, 0, 5000, 240, 0, 0, 1], (640, 480), "field of view"),
])
def test_wrong_intrinsics_are_a_clear_error(k, size, match):
    from dream_perception.tracking.intrinsics import Intrinsics

    with pytest.raises(UserError, match=match):
        Intrinsics.from_k(k, *size)


def test_depth_image_of_another_size_than_camera_info_is_refused(scene):
    with pytest.raises(UserError, match="aligned to colour"):
        scene.intr.check_image((240, 320))


def test_symmetries_of_catalogue_objects(domino_model):
    from dream_perception.tracking.object_model import ObjectModel

    assert len(domino_model.symmetries()) == 4                          # a box: three half-turns
    assert len(ObjectModel.from_catalogue("letter_u").symmetries()) == 2  # only the flip about its up axis


def test_aruco_marker_gives_the_object_pose(cell):
    import cv2

    from dream_perception.tracking.aruco import MarkerInitialiser, MarkerSpec
    from dream_perception.tracking.intrinsics import Intrinsics
    from dream_perception.tracking.se3 import make_pose, pose_error, yaw_rotation

    cam = cell.camera
    intr = Intrinsics.from_k(cam.K(), cam.width, cam.height)
    world_cam = cam.pose_in_world.matrix()
    marker_in_object = make_pose(np.eye(3), np.array([0.0, 0.0, 0.011]))   # on the domino's top face
    obj = make_pose(yaw_rotation(0.4), np.array([0.55, 0.03, 0.011]))
    cam_marker = np.linalg.inv(world_cam) @ obj @ marker_in_object
    # Draw the marker where it would appear: warp its image by the plane's homography.
    size, px = 0.04, 200
    img = cv2.aruco.generateImageMarker(cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50), 7, px)
    img = cv2.copyMakeBorder(img, 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255)
    scale = size / px
    n = img.shape[0]
    src = np.array([[0, 0], [n - 1, 0], [n - 1, n - 1], [0, n - 1]], np.float32)
    plane = np.array([[(u - (n - 1) / 2) * scale, ((n - 1) / 2 - v) * scale, 0, 1] for u, v in src])
    pc = (cam_marker @ plane.T).T[:, :3]
    dst = (intr.K() @ pc.T).T
    dst = (dst[:, :2] / dst[:, 2:]).astype(np.float32)
    warped = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (cam.width, cam.height),
                                 borderValue=128)
    rgb = np.repeat(warped[:, :, None], 3, axis=2)
    # Depth of the marker's plane at every pixel (what the aligned depth shows there).
    normal, point = cam_marker[:3, 2], cam_marker[:3, 3]
    uu, vv = np.meshgrid(np.arange(cam.width), np.arange(cam.height))
    rays = np.stack([(uu - intr.cx) / intr.fx, (vv - intr.cy) / intr.fy, np.ones_like(uu, float)], axis=-1)
    depth = (normal @ point) / (rays @ normal)
    init = MarkerInitialiser(MarkerSpec("DICT_4X4_50", 7, size, marker_in_object))
    pose = init.object_pose(rgb, intr, world_cam)
    assert pose is not None
    pos, rot = pose_error(pose, obj)
    # A ~30 px marker: direction and rotation good, range from its size off by ~2 cm.
    assert pos < 0.03 and np.degrees(rot) < 5.0
    pos_d, rot_d = pose_error(init.object_pose(rgb, intr, world_cam, depth), obj)
    assert pos_d < 0.004 and pos_d < pos / 3 and np.degrees(rot_d) < 5.0
    assert MarkerInitialiser(MarkerSpec("DICT_4X4_50", 8, size)).object_pose(rgb, intr, world_cam) is None


def test_foundationpose_backend_names_what_is_missing(tmp_path):
    from dream_perception.tracking.foundationpose import FoundationPoseTracker

    with pytest.raises(UserError, match="FoundationPose checkout is missing"):
        FoundationPoseTracker("mesh.obj", "")
    (tmp_path / "estimater.py").write_text("")
    with pytest.raises(UserError, match="weights folder .*2023-10-28-18-33-37 is missing"):
        FoundationPoseTracker("mesh.obj", tmp_path)
    for name in ("2023-10-28-18-33-37", "2024-01-11-20-02-45"):
        (tmp_path / "weights" / name).mkdir(parents=True)
    # torch here is a CPU build (or absent): either way one line, naming it.
    with pytest.raises(UserError, match="foundationpose backend: (no CUDA GPU|PyTorch is missing)"):
        FoundationPoseTracker("mesh.obj", tmp_path)
