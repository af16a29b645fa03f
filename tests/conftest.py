"""Test harness: every test process gets its own ROS 2 domain, localhost-only
discovery and a temporary ROS log dir, set before rclpy is imported anywhere."""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def _fresh_domain_id() -> int:
    """A domain id for this pytest process (0 and the top of the range are left to users)."""
    return 10 + (os.getpid() % 150)


os.environ["ROS_DOMAIN_ID"] = str(_fresh_domain_id())
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ["ROS_LOG_DIR"] = tempfile.mkdtemp(prefix="dream-roslog-")
os.environ.setdefault("MUJOCO_GL", "egl")
if "MENAGERIE_ROOT" not in os.environ and (SHARED / "menagerie").is_dir():
    os.environ["MENAGERIE_ROOT"] = str(SHARED / "menagerie")

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def cell():
    from dream_hw.cell import load_cell

    return load_cell()


@pytest.fixture
def rclpy_context():
    """An initialised rclpy context for one test, shut down afterwards."""
    import rclpy

    ctx = rclpy.Context()
    rclpy.init(context=ctx)
    yield ctx
    ctx.try_shutdown()


@pytest.fixture
def ros_node(rclpy_context):
    """A plain helper node in the test's context, with its own executor."""
    from ros_helpers import TestNode

    node = TestNode("dream_test", rclpy_context)
    yield node
    node.close()
