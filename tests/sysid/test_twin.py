"""The digital twin: every catalogue object compiles, has the mass and inertia it
was asked for, rests still on the table, and the saved MJCF reloads."""
from __future__ import annotations

import mujoco
import numpy as np
import pytest

from dream_hw.errors import UserError
from dream_sysid.catalogue import load_catalogue
from dream_sysid.twin.builder import OBJECT_BODY, ObjectPlacement, build_twin
from dream_sysid.twin.object_geometry import ObjectGeometry

CATALOGUE = load_catalogue()


@pytest.fixture(scope="module")
def geometries():
    return {oid: ObjectGeometry.from_file(entry.mesh_path) for oid, entry in CATALOGUE.items()}


def _twin(cell, geometry, entry, kind="push", mass=None):
    return build_twin(cell, geometry, kind=kind, mass_kg=mass or entry.mass_kg, friction=entry.friction,
                      placement=ObjectPlacement(*entry.pose_xy_yaw), object_id=entry.id)


@pytest.mark.parametrize("object_id", sorted(CATALOGUE))
def test_mass_and_inertia_match_the_mesh(cell, geometries, object_id):
    entry, geometry = CATALOGUE[object_id], geometries[object_id]
    twin = _twin(cell, geometry, entry)
    body = twin.model.body(OBJECT_BODY)
    assert body.mass[0] == pytest.approx(entry.mass_kg, rel=1e-9)
    # Reference: trimesh's inertia of the watertight mesh at uniform density.
    ref = np.sort(np.linalg.eigvalsh(geometry.mesh.moment_inertia * entry.mass_kg / geometry.mesh.mass))
    np.testing.assert_allclose(np.sort(body.inertia), ref, rtol=0.01)
    np.testing.assert_allclose(body.ipos, geometry.mesh.center_mass, atol=1e-6)


@pytest.mark.parametrize("object_id", sorted(CATALOGUE))
@pytest.mark.parametrize("kind", ["push", "grasp"])
def test_object_rests_still_for_five_seconds(cell, geometries, object_id, kind):
    entry = CATALOGUE[object_id]
    twin = _twin(cell, geometries[object_id], entry, kind=kind)
    model, data = twin.model, twin.home_data()
    oid = model.body(OBJECT_BODY).id
    start = data.xpos[oid].copy()
    while data.time < 5.0:
        mujoco.mj_step(model, data)
    drift = np.linalg.norm(data.xpos[oid] - start)
    assert drift < 1e-3, f"{object_id} drifted {drift * 1e3:.3f} mm"
    # Only the table touches the object: the hand is clear of it at home.
    touching = {model.geom(c.geom1).name or model.body(model.geom_bodyid[c.geom1]).name
                for c in data.contact[:data.ncon]
                if oid in (model.geom_bodyid[c.geom1], model.geom_bodyid[c.geom2])}
    touching |= {model.geom(c.geom2).name for c in data.contact[:data.ncon]
                 if oid == model.geom_bodyid[c.geom1]}
    assert touching <= {"table"} | {model.geom(g).name for g in range(model.ngeom) if model.geom_bodyid[g] == oid}


def test_non_convex_objects_are_decomposed(geometries):
    for object_id, entry in CATALOGUE.items():
        parts = len(geometries[object_id].parts)
        assert (parts > 1) == (not entry.convex), f"{object_id}: {parts} collision parts, convex={entry.convex}"


def test_mass_changes_only_the_object(cell, geometries):
    entry = CATALOGUE["domino"]
    light = _twin(cell, geometries["domino"], entry, mass=0.05)
    heavy = _twin(cell, geometries["domino"], entry, mass=1.0)
    oid = light.model.body(OBJECT_BODY).id
    assert heavy.model.body_mass[oid] / light.model.body_mass[oid] == pytest.approx(20.0)
    np.testing.assert_allclose(heavy.model.body_inertia[oid] / light.model.body_inertia[oid], 20.0, rtol=1e-9)
    others = np.delete(np.arange(light.model.nbody), oid)
    np.testing.assert_array_equal(light.model.body_mass[others], heavy.model.body_mass[others])


def test_friction_is_the_objects_against_the_table(cell, geometries):
    entry = CATALOGUE["domino"]
    twin = build_twin(cell, geometries["domino"], kind="push", mass_kg=0.1, friction=0.23,
                      placement=ObjectPlacement(0.55, 0.0))
    model, data = twin.model, twin.home_data()
    while data.time < 0.05:
        mujoco.mj_step(model, data)
    table = model.geom("table").id
    frictions = [c.friction[0] for c in data.contact[:data.ncon] if table in (c.geom1, c.geom2)]
    assert frictions and np.allclose(frictions, 0.23)


def test_saved_scene_reloads(cell, geometries, tmp_path):
    entry = CATALOGUE["letter_u"]
    twin = _twin(cell, geometries["letter_u"], entry)
    scene = twin.save(tmp_path / "twin")
    model = mujoco.MjModel.from_xml_path(str(scene))
    assert model.body(OBJECT_BODY).mass[0] == pytest.approx(entry.mass_kg)
    assert model.nq == twin.model.nq and model.nu == twin.model.nu
    assert model.opt.cone == twin.model.opt.cone


def test_cone_and_impratio_come_from_the_cell_per_twin_kind(cell, geometries, tmp_path):
    import yaml

    from dream_hw.cell import load_cell
    from dream_hw.errors import UserError

    entry = CATALOGUE["domino"]
    # The shipped cell: push twins pyramidal (an object sliding on the table), grasp twins
    # elliptic with impratio 10 (no slip in the grasp).
    push = _twin(cell, geometries["domino"], entry, kind="push")
    grasp = _twin(cell, geometries["domino"], entry, kind="grasp")
    assert push.model.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL and push.model.opt.impratio == 1.0
    assert grasp.model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and grasp.model.opt.impratio == 10.0
    assert push.request.cone == "pyramidal" and grasp.request.cone == "elliptic"
    # One value serves both kinds.
    raw = yaml.safe_load(cell.path.read_text())
    raw["sim"]["cone"], raw["sim"]["impratio"] = "elliptic", 5
    path = tmp_path / "cell.yaml"
    path.write_text(yaml.safe_dump(raw))
    both = _twin(load_cell(path), geometries["domino"], entry, kind="push")
    assert both.model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC and both.model.opt.impratio == 5.0
    # A mapping must name every kind.
    raw["sim"]["cone"] = {"push": "pyramidal"}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match="sim.cone"):
        load_cell(path)


def test_hand_joints_follow_the_driver_order(cell, geometries):
    entry = CATALOGUE["domino"]
    push = _twin(cell, geometries["domino"], entry, kind="push")
    grasp = _twin(cell, geometries["domino"], entry, kind="grasp")
    assert push.hand_joints[0] == "allegro/ffj0" and push.hand_joints[12] == "allegro/thj0"
    assert grasp.hand_joints[0] == "leap/if_rot" and grasp.hand_joints[1] == "leap/if_mcp"
    for twin in (push, grasp):
        assert len(twin.hand_joints) == 16 and len(twin.hand_actuators) == 16


def test_bad_mass_is_a_user_error(cell, geometries):
    entry = CATALOGUE["domino"]
    with pytest.raises(UserError, match="mass"):
        _twin(cell, geometries["domino"], entry, mass=-0.1)
