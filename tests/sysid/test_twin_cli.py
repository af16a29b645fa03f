"""`dream twin build`: the command line contract (exit 2 + one line on bad input)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import mujoco
import numpy as np
import pytest
import trimesh

DREAM = shutil.which("dream", path=os.path.dirname(sys.executable))


def run(*args, env=None):
    return subprocess.run([DREAM, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_build_catalogue_object(tmp_path):
    proc = run("twin", "build", "--object", "letter_a", "--mass", "0.3", "--out", str(tmp_path / "tw"))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["mass_kg"] == pytest.approx(0.3) and summary["collision_parts"] > 1
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "tw" / "scene.xml"))
    assert model.body("object").mass[0] == pytest.approx(0.3)


def test_missing_mesh(tmp_path):
    assert_one_line_error(run("twin", "build", "--mesh", str(tmp_path / "nope.obj"), "--mass", "0.1",
                       "--out", str(tmp_path / "o")), "nope.obj", "does not exist")


def test_non_watertight_mesh(tmp_path):
    box = trimesh.creation.box(extents=(0.05, 0.05, 0.05))
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2])  # one face of the cube removed
    path = tmp_path / "open.obj"
    open_box.export(path)
    assert_one_line_error(run("twin", "build", "--mesh", str(path), "--mass", "0.1", "--out", str(tmp_path / "o")),
                   "open.obj", "not watertight")


def test_negative_mass(tmp_path):
    assert_one_line_error(run("twin", "build", "--object", "domino", "--mass", "-0.2", "--out", str(tmp_path / "o")),
                   "mass", "positive")


def test_millimetre_mesh(tmp_path):
    path = tmp_path / "mm.stl"
    trimesh.creation.box(extents=(50.0, 50.0, 50.0)).export(path)
    assert_one_line_error(run("twin", "build", "--mesh", str(path), "--mass", "0.1", "--out", str(tmp_path / "o")),
                   "mm.stl", "millimetres")


def test_unknown_object(tmp_path):
    assert_one_line_error(run("twin", "build", "--object", "teapot", "--out", str(tmp_path / "o")), "teapot")


def test_missing_models_say_how_to_get_them(tmp_path):
    # No Menagerie root and an empty cache; downloads cannot happen here either.
    env = {"MENAGERIE_ROOT": str(tmp_path / "no-menagerie")}
    assert_one_line_error(run("twin", "build", "--box", "0.05", "0.05", "0.05", "--mass", "0.1",
                       "--out", str(tmp_path / "o"), env=env), "MENAGERIE_ROOT")


def test_mesh_input_inertia(tmp_path):
    """A user mesh off-centre: the object frame is the mesh origin, the COM where the mesh puts it."""
    mesh = trimesh.creation.box(extents=(0.08, 0.04, 0.02))
    mesh.apply_translation([0.01, 0.0, 0.0])
    path = tmp_path / "shifted.ply"
    mesh.export(path)
    proc = run("twin", "build", "--mesh", str(path), "--mass", "0.4", "--out", str(tmp_path / "tw"))
    assert proc.returncode == 0, proc.stderr
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "tw" / "scene.xml"))
    body = model.body("object")
    np.testing.assert_allclose(body.ipos, [0.01, 0.0, 0.0], atol=1e-6)
    expected = 0.4 / 12 * np.array([0.04**2 + 0.02**2, 0.08**2 + 0.02**2, 0.08**2 + 0.04**2])
    np.testing.assert_allclose(np.sort(body.inertia), np.sort(expected), rtol=1e-5)  # MJCF text precision
