"""The four packages are what a ROS 2 workspace expects: colcon builds them as
ament_python packages, with executables, ament index markers and shared data."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dream_hw", "dream_perception", "dream_sysid", "dream_grasp")


def test_package_manifests_are_format_3_ament_python():
    for pkg in PACKAGES:
        root = ET.parse(ROOT / "src" / pkg / "package.xml").getroot()
        assert root.get("format") == "3" and root.findtext("name") == pkg
        assert root.find("export").findtext("build_type") == "ament_python"
        deps = {d.text for d in root.findall("exec_depend")}
        assert "rclpy" in deps
        assert (ROOT / "src" / pkg / "resource" / pkg).is_file()


def test_colcon_build(tmp_path):
    colcon = shutil.which("colcon", path=os.path.dirname(sys.executable))
    proc = subprocess.run(
        [colcon, "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(ROOT / "src"),
         "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    install = tmp_path / "install"
    for pkg in PACKAGES:
        assert (install / pkg / "share" / "ament_index" / "resource_index" / "packages" / pkg).is_file()
    for pkg, exe in [("dream_hw", "sim_cell"), ("dream_perception", "pose_tracker"), ("dream_sysid", "dream")]:
        assert os.access(install / pkg / "lib" / pkg / exe, os.X_OK), f"{pkg}/{exe} not installed"
    share = install / "dream_hw" / "share" / "dream_hw"
    assert (share / "config" / "cell.yaml").is_file()
    assert (share / "config" / "objects" / "catalogue.yaml").is_file()
    assert (share / "launch" / "sim.launch.py").is_file()


def test_launch_files_name_installed_executables():
    """launch_ros is not installable here: check each Node(...) names a real entry point."""
    import ast
    import re

    entry_points = {}
    for pkg in PACKAGES:
        text = (ROOT / "src" / pkg / "setup.py").read_text()
        entry_points[pkg] = set(re.findall(r'"(\w+) = [\w.]+:\w+"', text))
    found = 0
    for launch in sorted((ROOT / "launch").glob("*.launch.py")):
        tree = ast.parse(launch.read_text())
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "generate_launch_description" in names, launch
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "Node":
                kw = {k.arg: k.value.value for k in call.keywords if isinstance(k.value, ast.Constant)}
                assert kw["executable"] in entry_points[kw["package"]], f"{launch.name}: {kw}"
                found += 1
    assert found >= 3
