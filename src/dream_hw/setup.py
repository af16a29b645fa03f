"""ament_python package dream_hw: builds with colcon, installs with pip."""
from pathlib import Path

from setuptools import find_packages, setup

NAME = "dream_hw"
HERE = Path(__file__).resolve().parent
DATA_FILES = [
    ("share/ament_index/resource_index/packages", [f"resource/{NAME}"]),
    (f"share/{NAME}", ["package.xml"]),
]
# The cell-wide config/ and launch/ folders live at the repository root; the
# base package installs them into its share/ so `ros2 launch dream_hw ...` and
# an installed dream find them.
ROOT = Path("..", "..")
for folder in ("config", "launch"):
    for path in sorted((HERE / ROOT / folder).rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = path.relative_to(HERE / ROOT)
            DATA_FILES.append((f"share/{NAME}/{rel.parent}", [str(ROOT / rel)]))

setup(
    name=NAME,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=DATA_FILES,
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="dream developers",
    maintainer_email="dream@example.org",
    description=open(HERE / "package.xml").read().split("<description>")[1].split("</description>")[0],
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "leap_driver = dream_hw.nodes.leap_driver:main",
            "sim_cell = dream_hw.nodes.sim_cell:main"
        ],
    },
)
