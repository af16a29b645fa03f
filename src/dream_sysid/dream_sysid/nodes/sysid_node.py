"""sysid_node: identifies the object's mass from the newest push bag (or bags).

Service /dream/sysid/identify (std_srvs/Trigger): reads the newest push bag under
`bag_root` (the push executor's; the newest `pushes` bags, identified together, when
the object was pushed several times), runs the identification and answers with the
contract's JSON result; publishes the identified mass on /dream/object/inertia
(geometry_msgs/InertiaStamped, transient-local so late subscribers such as the
grasp node get it; m = mass, com and inertia = the twin's object scaled to that
mass, frame `object`). Bad bags answer success=false with the one-line reason.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from geometry_msgs.msg import InertiaStamped
from rcl_interfaces.msg import IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from std_srvs.srv import Trigger

from dream_hw.cell import load_cell
from dream_hw.errors import UserError
from dream_hw.nodes.runner import run_node
from dream_sysid.bag.reader import DEFAULT_BAG_ROOT, newest_bags, read_push_bags

INERTIA_TOPIC = "/dream/object/inertia"
INERTIA_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def object_inertia(scene: Path, body: str, mass: float) -> tuple[np.ndarray, np.ndarray]:
    """(com, 3x3 inertia about the com in the body frame) of `body` in `scene`, scaled to `mass`."""
    import mujoco

    model = mujoco.MjModel.from_xml_path(str(scene))
    bid = model.body(body).id
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, model.body_iquat[bid])
    rot = rot.reshape(3, 3)
    inertia = rot @ np.diag(model.body_inertia[bid]) @ rot.T
    scale = mass / float(model.body_mass[bid]) if model.body_mass[bid] > 0 else 0.0
    return model.body_ipos[bid].copy(), inertia * scale


class SysidNode(Node):
    def __init__(self, **kwargs):
        super().__init__("sysid_node", **kwargs)
        self.declare_parameter("bag_root", DEFAULT_BAG_ROOT, ParameterDescriptor(
            description="folder of push bags (the push executor's bag_root); the newest one is used"))
        self.declare_parameter("scene", "", ParameterDescriptor(
            description="twin MJCF overriding the scene named in the bag (empty: the bag's)"))
        self.declare_parameter("object_body", "", ParameterDescriptor(
            description="object body overriding the bag's (empty: the bag's, default 'object')"))
        self.declare_parameter("report", False, ParameterDescriptor(
            description="also write the report (plots, updated twin) into <bag>/sysid_report"))
        self.declare_parameter("pushes", 1, ParameterDescriptor(
            description="identify from the newest this many push bags together (pushes of the same object: "
                        "their likelihoods over mass add; a push is chaotic, so a few do better than one)",
            integer_range=[IntegerRange(from_value=1, to_value=20, step=1)]))
        self.declare_parameter("cell", "", ParameterDescriptor(description="cell YAML (default config/cell.yaml)"))
        p = lambda name: self.get_parameter(name).value  # noqa: E731
        self.cell = load_cell(p("cell") or None)
        self.bag_root = Path(p("bag_root")).expanduser()
        self.scene = p("scene") or None
        self.object_body = p("object_body") or None
        self.report = bool(p("report"))
        self.pushes = int(p("pushes"))
        self.pub = self.create_publisher(InertiaStamped, INERTIA_TOPIC, INERTIA_QOS)
        self.create_service(Trigger, "/dream/sysid/identify", self.on_identify)
        newest = "the newest push bag" if self.pushes == 1 else f"the newest {self.pushes} push bags"
        self.get_logger().info(f"identifying from {newest} under {self.bag_root}")

    def on_identify(self, request, response):
        try:
            bags = newest_bags(self.bag_root, self.pushes)
            bag = bags[-1]
            self.get_logger().info(f"identifying from {', '.join(str(b) for b in bags)}")
            recordings = read_push_bags(bags, scene=self.scene, object_body=self.object_body, cell=self.cell)
            recording = recordings[0]
            from dream_sysid.identification.api import identify

            result = identify(recordings, scene=recording.scene, object_body=recording.object_body,
                              report_dir=bag / "sysid_report" if self.report else None, progress=False)
        except UserError as exc:
            response.success, response.message = False, str(exc)
            self.get_logger().error(str(exc))
            return response
        except ImportError as exc:
            response.success, response.message = False, f"the identification module is not available ({exc})"
            self.get_logger().error(response.message)
            return response
        self.publish_inertia(recording.scene, recording.object_body, float(result.mass_kg))
        response.success, response.message = True, result.to_json()
        self.get_logger().info(f"{bag.name}: {response.message}")
        return response

    def publish_inertia(self, scene: Path, body: str, mass: float) -> None:
        msg = InertiaStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.cell.frames.get("object", "object")
        msg.inertia.m = mass
        try:
            com, inertia = object_inertia(scene, body, mass)
            msg.inertia.com.x, msg.inertia.com.y, msg.inertia.com.z = map(float, com)
            i = inertia
            (msg.inertia.ixx, msg.inertia.ixy, msg.inertia.ixz,
             msg.inertia.iyy, msg.inertia.iyz, msg.inertia.izz) = map(
                float, (i[0, 0], i[0, 1], i[0, 2], i[1, 1], i[1, 2], i[2, 2]))
        except (ValueError, KeyError) as exc:  # the mass is the contract; the rest is a courtesy
            self.get_logger().warning(f"published the mass without inertia: {exc}")
        self.pub.publish(msg)


def main(args: list[str] | None = None) -> int:
    return run_node(SysidNode, "sysid_node", args)


if __name__ == "__main__":
    sys.exit(main())
