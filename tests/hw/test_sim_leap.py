"""The LEAP driver runs unchanged against the simulated cell: sim_cell (grasp
twin) exposes the LEAP hand as an emulated Dynamixel bus on a pty, leap_driver
opens it like a real U2D2, and joint commands move the twin's LEAP joints."""
from __future__ import annotations

import numpy as np
import pytest
from sensor_msgs.msg import JointState

from ros_helpers import NodeProcess, wait_for_subscriber


@pytest.fixture(scope="module")
def grasp_scene(tmp_path_factory):
    from dream_hw.cell import load_cell
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    twin = build_twin(load_cell(), ObjectGeometry.box((0.05, 0.05, 0.05)), kind="grasp", mass_kg=0.1,
                      friction=0.5, placement=ObjectPlacement(0.55, 0.0))
    return twin.save(tmp_path_factory.mktemp("grasp_twin"))


def test_leap_driver_drives_the_simulated_hand(ros_node, grasp_scene, tmp_path):
    link = tmp_path / "leap_bus"
    sim = NodeProcess("dream_hw.nodes.sim_cell", params={"scene": str(grasp_scene), "camera_enabled": False,
                                                         "leap_port_link": str(link)})
    driver = None
    try:
        ros_node.spin_until(lambda: link.is_symlink() or not sim.alive(), 30.0, "the emulated LEAP bus")
        assert sim.alive(), sim.output()
        driver = NodeProcess("dream_hw.nodes.leap_driver", params={"port": str(link), "rate_hz": 100.0})
        states = ros_node.collect(JointState, "/leap_hand/joint_states")
        ros_node.spin_until(lambda: len(states) > 5 or not driver.alive(), 30.0, "LEAP joint states")
        assert driver.alive(), driver.output()
        names = list(states[-1].name)
        assert len(names) == 16
        mcp = names.index("if_mcp")

        pub = ros_node.node.create_publisher(JointState, "/leap_hand/joint_cmd", 10)
        wait_for_subscriber(ros_node, "/leap_hand/joint_cmd")
        target = np.array(states[-1].position)
        target[mcp] = 1.0
        cmd = JointState(name=names, position=target.tolist(), effort=[0.3] * 16)

        def moved() -> bool:
            pub.publish(cmd)  # keep the command fresh (the driver's watchdog holds stale ones)
            return abs(states[-1].position[mcp] - 1.0) < 0.1

        ros_node.spin_until(moved, 20.0, "the simulated index MCP joint to reach 1.0 rad")
        assert states[-1].effort[mcp] != 0.0  # present current x torque constant, read from the physics
    finally:
        codes = [driver.stop() if driver else 0, sim.stop()]
    assert codes == [0, 0], (driver.output() if driver else "") + sim.output()
    assert not link.exists(), "sim_cell removes its pty link on shutdown"
