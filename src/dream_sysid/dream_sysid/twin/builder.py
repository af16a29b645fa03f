"""The digital twin: an MJCF scene of the cell (table, arm + hand) with the object
as a free body named `object`, built from the cell description with MjSpec.

Push twins carry the Allegro hand, grasp twins the LEAP hand. The object's inertia
is set explicitly from its mesh at the requested mass (not from MuJoCo's convex
collision parts), and its geoms have contact priority so that `friction` is the
object's friction against everything it touches (MuJoCo would otherwise take the
larger of the two geoms' coefficients).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mujoco
import numpy as np
import yaml

from dream_hw.cell import Cell, Hand, Pose
from dream_hw.errors import UserError
from dream_hw.mjcf import joint_actuator
from dream_hw.models import menagerie_xml
from dream_sysid.twin.object_geometry import ObjectGeometry

OBJECT_BODY = "object"
OBJECT_JOINT = "object_free"
CAMERA_NAME = "realsense"
TWIN_KINDS = ("push", "grasp")


@dataclass(frozen=True)
class ObjectPlacement:
    """Where the object stands: x, y on the table (world, m) and yaw (rad)."""

    x: float
    y: float
    yaw: float = 0.0


@dataclass(frozen=True)
class TwinRequest:
    """Everything a twin is built from (saved beside the MJCF as twin.yaml)."""

    kind: str
    object_id: str
    mass_kg: float
    friction: float
    placement: ObjectPlacement
    mesh_source: str = ""
    cone: str = ""  # filled from the cell at build time


@dataclass
class Twin:
    """A built twin: its spec, compiled model and the facts other code needs."""

    request: TwinRequest
    spec: mujoco.MjSpec
    model: mujoco.MjModel
    geometry: ObjectGeometry
    object_qpos: np.ndarray             # 7: pos + quat [w x y z] of the object at rest
    arm_joints: tuple[str, ...]
    hand_joints: tuple[str, ...]        # MJCF names (prefixed), in driver order
    hand_actuators: tuple[str, ...]
    mesh_files: dict[str, str] = field(default_factory=dict)

    def home_data(self) -> mujoco.MjData:
        """MjData at the 'home' keyframe: arm home, hand posture, object at rest."""
        data = mujoco.MjData(self.model)
        mujoco.mj_resetDataKeyframe(self.model, data, self.model.key("home").id)
        mujoco.mj_forward(self.model, data)
        return data

    def save(self, out_dir: str | Path) -> Path:
        """Writes scene.xml (+ twin.yaml); returns the scene path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for mesh in self.spec.meshes:
            if mesh.name in self.mesh_files:
                mesh.file = self.mesh_files[mesh.name]
        scene = out / "scene.xml"
        scene.write_text(self.spec.to_xml())
        summary = {
            "request": asdict(self.request),
            "object_body": OBJECT_BODY,
            "object_qpos": [float(v) for v in self.object_qpos],
            "mass_kg": float(self.model.body_mass[self.model.body(OBJECT_BODY).id]),
            "principal_inertia": [float(v) for v in self.model.body_inertia[self.model.body(OBJECT_BODY).id]],
            "collision_parts": len(self.geometry.parts),
            "cone": "elliptic" if self.model.opt.cone == mujoco.mjtCone.mjCONE_ELLIPTIC else "pyramidal",
            "timestep": float(self.model.opt.timestep),
            "arm_joints": list(self.arm_joints),
            "hand_joints": list(self.hand_joints),
        }
        (out / "twin.yaml").write_text(yaml.safe_dump(summary, sort_keys=False))
        return scene


def _load_spec(robot: str, file: str) -> tuple[mujoco.MjSpec, dict[str, str]]:
    """A Menagerie MJCF as a spec, plus absolute paths of its mesh files.

    MjSpec.to_xml writes mesh files relative to each source model's meshdir,
    which breaks once models are composed; absolute paths keep the twin loadable.
    """
    path = menagerie_xml(robot, file)
    spec = mujoco.MjSpec.from_file(str(path))
    meshdir = path.parent / (spec.meshdir or "")
    files = {m.name: str((meshdir / m.file).resolve()) for m in spec.meshes if m.file}
    return spec, files


def _add_table(spec: mujoco.MjSpec, cell: Cell) -> None:
    t = cell.table
    spec.worldbody.add_geom(
        name="table",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[t.size_xy[0] / 2, t.size_xy[1] / 2, t.thickness / 2],
        pos=[t.center_xy[0], t.center_xy[1], t.top_z - t.thickness / 2],
        friction=[t.friction, 0.005, 0.0001],
        rgba=[0.55, 0.45, 0.35, 1.0],
    )
    spec.worldbody.add_light(name="key", pos=[0.5, -0.5, 1.5], dir=[0.0, 0.3, -1.0], castshadow=False)


def _add_camera(spec: mujoco.MjSpec, cell: Cell) -> None:
    """The RealSense as a MuJoCo camera: optical frame (z forward, y down) -> MuJoCo (-z forward, y up)."""
    optical = cell.camera.pose_in_world
    flip = np.array([0.0, 1.0, 0.0, 0.0])  # 180 deg about x
    quat = np.zeros(4)
    mujoco.mju_mulQuat(quat, np.array(optical.quat), flip)
    spec.worldbody.add_camera(name=CAMERA_NAME, pos=list(optical.pos), quat=list(quat), fovy=cell.camera.fovy_deg)


def _attach_hand(arm: mujoco.MjSpec, cell: Cell, hand: Hand, mesh_files: dict[str, str]) -> None:
    hand_spec, files = _load_spec(hand.menagerie.robot, hand.menagerie.file)
    # The hand models ask for an elliptic cone and MjSpec keeps the parent's on
    # attach (with a warning); the cone is set once, explicitly, from the cell.
    hand_spec.option.cone = arm.option.cone
    hand_spec.option.impratio = arm.option.impratio
    mesh_files.update({hand.prefix + k: v for k, v in files.items()})
    root = hand_spec.body(hand.root_body)
    if root is None:
        raise UserError(f"hand model {hand.menagerie.file} has no body {hand.root_body!r}")
    # The mount in the cell is the full palm pose relative to the flange.
    root.pos = [0.0, 0.0, 0.0]
    root.quat = [1.0, 0.0, 0.0, 0.0]
    site = arm.site(cell.arm.flange_site)
    if site is None:
        raise UserError(f"arm model has no flange site {cell.arm.flange_site!r}")
    flange = Pose(tuple(site.pos), tuple(site.quat))  # type: ignore[arg-type]
    mount = flange.matrix() @ hand.mount.matrix()
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, mount[:3, :3].flatten())
    frame = site.parent.add_frame(pos=mount[:3, 3], quat=quat)
    frame.attach_body(root, hand.prefix, "")


def _add_object(spec: mujoco.MjSpec, geometry: ObjectGeometry, mass: float, friction: float,
                placement: ObjectPlacement, cell: Cell) -> np.ndarray:
    props = geometry.mass_properties(mass)
    if not 0.0 < friction <= 5.0:
        raise UserError(f"object friction must be in (0, 5], got {friction}")
    yaw_quat = np.array([np.cos(placement.yaw / 2), 0.0, 0.0, np.sin(placement.yaw / 2)])
    z = cell.table.top_z - float(geometry.mesh.vertices[:, 2].min())
    pos = np.array([placement.x, placement.y, z])
    body = spec.worldbody.add_body(name=OBJECT_BODY, pos=pos, quat=yaw_quat)
    body.add_freejoint(name=OBJECT_JOINT)
    body.explicitinertial = True
    body.mass = props.mass
    body.ipos = props.com
    i = props.inertia
    body.fullinertia = [i[0, 0], i[1, 1], i[2, 2], i[0, 1], i[0, 2], i[1, 2]]
    for k, part in enumerate(geometry.parts):
        name = f"object_collision_{k}"
        spec.add_mesh(name=name, uservert=part.vertices.flatten().tolist(),
                      userface=part.faces.flatten().tolist())
        body.add_geom(name=name, type=mujoco.mjtGeom.mjGEOM_MESH, meshname=name,
                      friction=[friction, 0.005, 0.0001], priority=1, group=3, rgba=[0.2, 0.6, 0.9, 0.0])
    spec.add_mesh(name="object_visual", uservert=geometry.mesh.vertices.flatten().tolist(),
                  userface=geometry.mesh.faces.flatten().tolist())
    body.add_geom(name="object_visual", type=mujoco.mjtGeom.mjGEOM_MESH, meshname="object_visual",
                  contype=0, conaffinity=0, group=2, rgba=[0.85, 0.25, 0.2, 1.0])
    body.add_site(name="object_origin", size=[0.004, 0.004, 0.004])
    return np.concatenate([pos, yaw_quat])


def build_twin(cell: Cell, geometry: ObjectGeometry, *, kind: str, mass_kg: float, friction: float,
               placement: ObjectPlacement, object_id: str = "object") -> Twin:
    """Composes arm + hand + table + object into one compiled twin."""
    if kind not in TWIN_KINDS:
        raise UserError(f"twin kind must be one of {TWIN_KINDS}, got {kind!r}")
    hand = cell.hand(kind)
    spec, mesh_files = _load_spec(cell.arm.menagerie.robot, cell.arm.menagerie.file)
    spec.modelname = f"dream_{kind}_twin_{object_id}"
    for key in list(spec.keys):
        spec.delete(key)
    spec.option.cone = (mujoco.mjtCone.mjCONE_ELLIPTIC if cell.sim.cone(kind) == "elliptic"
                        else mujoco.mjtCone.mjCONE_PYRAMIDAL)
    _attach_hand(spec, cell, hand, mesh_files)
    spec.option.timestep = cell.sim.timestep
    spec.option.impratio = cell.sim.impratio(kind)
    spec.option.noslip_iterations = cell.sim.noslip_iterations
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    _add_table(spec, cell)
    _add_camera(spec, cell)
    object_qpos = _add_object(spec, geometry, mass_kg, friction, placement, cell)
    for mesh in spec.meshes:  # compile against absolute mesh paths
        if mesh.name in mesh_files:
            mesh.file = mesh_files[mesh.name]
    spec.meshdir = ""
    model = _compile(spec)

    arm_joints = cell.arm.mjcf_joints
    hand_joints = tuple(hand.prefix + j for j in hand.joint_map.values())
    hand_actuators = tuple(_actuator_for(model, j) for j in hand_joints)
    qpos = model.qpos0.copy()
    ctrl = np.zeros(model.nu)
    for name, q in zip(arm_joints, cell.arm.home):
        qpos[model.jnt_qposadr[model.joint(name).id]] = q
        ctrl[_actuator_index(model, name)] = q
    posture = hand.extra.get("push_posture") if kind == "push" else None
    for k, name in enumerate(hand_joints):
        jid = model.joint(name).id
        lo, hi = model.jnt_range[jid] if model.jnt_limited[jid] else (-np.inf, np.inf)
        q = float(np.clip(posture[k], lo, hi)) if posture else float(np.clip(0.0, lo, hi))
        qpos[model.jnt_qposadr[jid]] = q
        ctrl[model.actuator(hand_actuators[k]).id] = q
    qpos[model.jnt_qposadr[model.joint(OBJECT_JOINT).id]:][:7] = object_qpos
    spec.add_key(name="home", qpos=qpos.tolist(), ctrl=ctrl.tolist())
    model = _compile(spec)
    request = TwinRequest(kind=kind, object_id=object_id, mass_kg=float(mass_kg), friction=float(friction),
                          placement=placement, mesh_source=geometry.source, cone=cell.sim.cone(kind))
    return Twin(request, spec, model, geometry, object_qpos, arm_joints, hand_joints, hand_actuators,
                mesh_files)


def _compile(spec: mujoco.MjSpec) -> mujoco.MjModel:
    try:
        return spec.compile()
    except ValueError as exc:
        raise UserError(f"the twin does not compile in MuJoCo: {exc}".splitlines()[0]) from None


def _actuator_index(model: mujoco.MjModel, joint: str) -> int:
    return model.actuator(_actuator_for(model, joint)).id


def _actuator_for(model: mujoco.MjModel, joint: str) -> str:
    """The (single) actuator driving `joint`."""
    act = joint_actuator(model, joint)
    if act is None:
        raise UserError(f"the twin has no actuator on joint {joint!r}")
    return model.actuator(act).name


def describe(twin: Twin) -> str:
    """One JSON line about the twin (for CLIs)."""
    m = twin.model
    oid = m.body(OBJECT_BODY).id
    return json.dumps({
        "kind": twin.request.kind, "object_id": twin.request.object_id,
        "mass_kg": round(float(m.body_mass[oid]), 6), "friction": twin.request.friction,
        "collision_parts": len(twin.geometry.parts), "nq": m.nq, "nu": m.nu,
        "cone": twin.request.cone,
    })
