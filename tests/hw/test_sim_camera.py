"""The simulated RealSense: geometry of the rendered depth against the twin's
true surfaces (ROS-free), the noise model, and the three camera topics of the
sim_cell process over DDS."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ros_helpers import NodeProcess

BOX = (0.06, 0.04, 0.03)


@pytest.fixture(scope="module")
def twin():
    from dream_hw.cell import load_cell
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    return build_twin(load_cell(), ObjectGeometry.box(BOX), kind="push", mass_kg=0.2, friction=0.5,
                      placement=ObjectPlacement(0.55, 0.12, 0.4))


def _frustum_ids(model, data, cam):
    """Per-pixel geom ids from a segmentation render with the same K as SimCamera."""
    import mujoco

    from dream_hw.sim.camera import apply_intrinsics

    seg = mujoco.Renderer(model, cam.height, cam.width)
    try:
        seg.enable_segmentation_rendering()
        seg.update_scene(data, "realsense")
        apply_intrinsics(seg.scene, cam.K(), cam.width, cam.height)
        return seg.render()[:, :, 0]
    finally:
        seg.close()


def _world_points(depth_m, cam):
    from dream_hw.sim.camera import backproject

    t = cam.pose_in_world.matrix()
    return backproject(depth_m, cam.K()) @ t[:3, :3].T + t[:3, 3]


def _box_distance(points, data, model):
    """Unsigned distance of world points to the box's surface."""
    oid = model.body("object").id
    local = (points - data.xpos[oid]) @ data.xmat[oid].reshape(3, 3)
    d = np.abs(local) - np.array(BOX) / 2
    return np.abs(np.linalg.norm(np.maximum(d, 0.0), axis=1) + np.minimum(d.max(axis=1), 0.0))


# Off-centre principal point and fx != fy too: K must still be exact.
@pytest.mark.parametrize("override", [{}, {"cx": 300.0, "cy": 255.0, "fy": 600.0}])
def test_depth_backprojects_onto_true_surfaces(twin, override):
    from dream_hw.sim.camera import DepthNoise, SimCamera

    cam = dataclasses.replace(_cell_camera(), **override)
    model, data = twin.model, twin.home_data()
    with SimCamera(model, cam, noise=DepthNoise.off()) as sim_cam:
        depth = sim_cam.render_depth_m(data)
        mm = sim_cam.render_depth_mm(data)
        rgb = sim_cam.render_rgb(data)
    ids = _frustum_ids(model, data, cam)
    points = _world_points(depth, cam)
    on_box = ids == model.geom("object_visual").id
    on_table = ids == model.geom("table").id
    assert on_box.sum() > 500 and on_table.sum() > 100_000
    assert np.percentile(_box_distance(points[on_box], data, model), 99) < 3e-4  # half a pixel off in K: up to 0.6 mm
    assert np.abs(points[on_table][:, 2] - 0.0).max() < 0.001  # the table top is z = 0
    # The uint16 image is the same depth in mm (table at the camera's distance: 0.5-1.5 m).
    table_mm = mm[on_table].astype(float)
    assert np.abs(table_mm - depth[on_table] * 1000).max() <= 0.5 + 1e-6
    assert 500 < np.median(table_mm) < 1500
    assert rgb.shape == (cam.height, cam.width, 3) and rgb.dtype == np.uint8
    assert rgb[on_box].mean(axis=0)[0] > rgb[on_box].mean(axis=0)[2] + 50  # the red box is where depth says


def _cell_camera():
    from dream_hw.cell import load_cell

    return load_cell().camera


def test_reduced_render_resolution_keeps_size_and_k(twin):
    from dream_hw.sim.camera import DepthNoise, SimCamera

    cam = _cell_camera()
    model, data = twin.model, twin.home_data()
    with SimCamera(model, cam, noise=DepthNoise.off(), render_scale=0.5) as sim_cam:
        depth = sim_cam.render_depth_m(data)
        assert sim_cam.render_rgb(data).shape == (cam.height, cam.width, 3)
    assert depth.shape == (cam.height, cam.width)
    ids = _frustum_ids(model, data, cam)
    table = _world_points(depth, cam)[ids == model.geom("table").id]
    assert np.percentile(np.abs(table[:, 2]), 99) < 0.003  # within half a render pixel at the far edge


def test_noise_grows_with_z_squared_and_drops_pixels(twin):
    from dream_hw.sim.camera import DepthNoise, SimCamera, depth_to_mm

    cam = _cell_camera()
    model, data = twin.model, twin.home_data()
    with SimCamera(model, cam, noise=DepthNoise.off()) as sim_cam:
        depth = sim_cam.render_depth_m(data).astype(float)
    table = _frustum_ids(model, data, cam) == model.geom("table").id
    k = cam.depth_noise["sigma_per_m2"]
    noise = DepthNoise(sigma_per_m2=k, dropout=0.0)
    noisy = depth_to_mm(depth, cam.K(), cam.depth_range_m, noise, np.random.default_rng(1)).astype(float)
    err = noisy - depth * 1000
    sigmas = []
    for lo, hi in ((0.65, 0.75), (1.05, 1.2)):
        sel = table & (depth > lo) & (depth < hi)
        assert sel.sum() > 5000
        z = depth[sel]
        measured = np.sqrt(max(err[sel].var() - 1.0 / 12.0, 0.0))  # minus the mm quantisation
        expected = 1000 * k * np.sqrt(np.mean(z**4))
        assert measured == pytest.approx(expected, rel=0.1)
        sigmas.append(measured)
    assert sigmas[1] > 2.0 * sigmas[0]  # (1.12/0.7)^2 = 2.6: grows like z^2, not z

    dropped = depth_to_mm(depth, cam.K(), cam.depth_range_m, DepthNoise(dropout=0.05), np.random.default_rng(2))
    assert (dropped[table] == 0).mean() == pytest.approx(0.05, abs=0.01)


def test_grazing_angle_holes(twin):
    from dream_hw.sim.camera import DepthNoise, SimCamera, depth_to_mm

    cam = _cell_camera()
    model, data = twin.model, twin.home_data()
    with SimCamera(model, cam, noise=DepthNoise.off()) as sim_cam:
        depth = sim_cam.render_depth_m(data)
    table = _frustum_ids(model, data, cam) == model.geom("table").id
    # True incidence angle on the table: between the ray and the table normal (0, 0, 1).
    rays = _world_points(depth, cam) - np.array(cam.pose_in_world.pos)
    angle = np.degrees(np.arccos(np.abs(rays[..., 2]) / np.linalg.norm(rays, axis=-1)))
    assert angle[table].min() < 55 and angle[table].max() > 65  # the threshold below cuts the table
    mm = depth_to_mm(depth, cam.K(), cam.depth_range_m, DepthNoise(grazing_angle_deg=60.0), np.random.default_rng(0))
    gv, gu = np.gradient(depth.astype(float))
    interior = table & (np.abs(gv) < 0.01) & (np.abs(gu) < 0.01)  # away from depth edges
    steep, flat = interior & (angle > 61), interior & (angle < 59)
    assert steep.sum() > 1000 and flat.sum() > 1000
    assert (mm[steep] == 0).mean() > 0.99
    assert (mm[flat] == 0).mean() < 0.01
    # With the configured 80 deg the table keeps its depth except at its borders.
    mm80 = depth_to_mm(depth, cam.K(), cam.depth_range_m, DepthNoise(grazing_angle_deg=80.0), np.random.default_rng(0))
    assert (mm80[interior] == 0).mean() < 0.01


def test_camera_info_fields():
    from dream_hw.sim.camera import camera_info_fields

    cam = dataclasses.replace(_cell_camera(), cx=300.0, fy=600.0)
    f = camera_info_fields(cam)
    assert f.k == (cam.fx, 0.0, 300.0, 0.0, 600.0, cam.cy, 0.0, 0.0, 1.0)
    assert f.p == (cam.fx, 0.0, 300.0, 0.0, 0.0, 600.0, cam.cy, 0.0, 0.0, 0.0, 1.0, 0.0)
    assert f.d == (0.0,) * 5 and f.distortion_model == "plumb_bob" and (f.width, f.height) == (640, 480)


@pytest.fixture(scope="module")
def push_scene(twin, tmp_path_factory):
    return twin.save(tmp_path_factory.mktemp("twin"))


def test_camera_topics_over_dds(ros_node, push_scene, cell):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    sim = NodeProcess("dream_hw.nodes.sim_cell", params={"scene": str(push_scene), "camera_rate_hz": 10.0})
    try:
        color = ros_node.collect(Image, "/camera/camera/color/image_raw", qos_profile_sensor_data)
        depth = ros_node.collect(Image, "/camera/camera/aligned_depth_to_color/image_raw", qos_profile_sensor_data)
        info = ros_node.collect(CameraInfo, "/camera/camera/color/camera_info", qos_profile_sensor_data)
        ros_node.spin_until(lambda: len(color) >= 2 and len(depth) >= 2 and info or not sim.alive(), 40.0,
                            "colour, depth and camera_info from sim_cell")
        assert sim.alive(), sim.output()
    finally:
        code = sim.stop()
    assert code == 0, sim.output()

    cam = cell.camera
    k = info[-1]
    assert list(k.k) == pytest.approx(list(cam.K().flatten()))
    assert (k.width, k.height, k.distortion_model) == (cam.width, cam.height, "plumb_bob")
    assert list(k.d) == [0.0] * 5
    for msg in (color[-1], depth[-1], k):
        assert msg.header.frame_id == "camera_color_optical_frame"
    c, d = color[-1], depth[-1]
    assert (c.encoding, c.width, c.height, c.step, len(c.data)) == ("rgb8", 640, 480, 1920, 640 * 480 * 3)
    assert (d.encoding, d.width, d.height, d.step, len(d.data)) == ("16UC1", 640, 480, 1280, 640 * 480 * 2)
    mm = np.frombuffer(bytes(d.data), dtype="<u2" if not d.is_bigendian else ">u2").reshape(480, 640)
    # Straight ahead, the optical axis meets the table at the look-at point, |pos - look_at| away.
    ahead = np.linalg.norm(np.array([1.15, 0.0, 0.45]) - np.array([0.5, 0.0, 0.0])) * 1000
    centre = mm[230:250, 300:340]
    assert np.median(centre[centre > 0]) == pytest.approx(ahead, abs=10)
    assert 0.003 < (mm[300:] == 0).mean() < 0.05  # on the table: ~1 % dropout, not a blank image
    assert (mm[:10, :40] == 0).all()  # nothing within range above the table's far edge
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for m in depth]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))  # simulation time of each render
