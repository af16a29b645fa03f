"""ament_python package dream_grasp: builds with colcon, installs with pip."""
from pathlib import Path

from setuptools import find_packages, setup

NAME = "dream_grasp"
HERE = Path(__file__).resolve().parent
DATA_FILES = [
    ("share/ament_index/resource_index/packages", [f"resource/{NAME}"]),
    (f"share/{NAME}", ["package.xml"]),
]
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
            "dream-grasp-demos = dream_grasp.demos.synthetic:main",
            "dream-grasp-retarget = dream_grasp.demos.retarget:main",
            "dream-grasp-train = dream_grasp.train:main",
            "dream-grasp-node = dream_grasp.nodes.grasp_node:main",
            "grasp_node = dream_grasp.nodes.grasp_node:main",
        ],
    },
)
