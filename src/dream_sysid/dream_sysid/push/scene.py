"""A saved twin (scene.xml written by Twin.save / `dream twin build`) back as a Twin
the planner can use: spec, compiled model, the object's mesh, arm and hand joints."""
from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import trimesh
import yaml

from dream_hw.cell import Cell
from dream_hw.errors import UserError
from dream_sysid.twin.builder import OBJECT_BODY, ObjectPlacement, Twin, TwinRequest, _actuator_for
from dream_sysid.twin.object_geometry import ObjectGeometry

VISUAL_MESH = "object_visual"


def _object_mesh(spec: mujoco.MjSpec, scene: Path) -> trimesh.Trimesh:
    meshes = [m for m in spec.meshes if m.name == VISUAL_MESH] or \
             [m for m in spec.meshes if m.name.startswith("object_collision_")]
    parts = []
    for mesh in meshes:
        verts = np.asarray(mesh.uservert, float).reshape(-1, 3)
        faces = np.asarray(mesh.userface, int).reshape(-1, 3)
        if len(verts) and len(faces):
            parts.append(trimesh.Trimesh(verts, faces, process=False))
    if not parts:
        raise UserError(f"twin scene {scene} holds no object mesh ({VISUAL_MESH!r}): is it a dream twin?")
    return parts[0] if len(parts) == 1 else trimesh.util.concatenate(parts)


def load_twin(scene: str | Path, cell: Cell, kind: str = "push") -> Twin:
    """Loads a dream twin's scene.xml (and twin.yaml beside it, if present)."""
    scene = Path(scene)
    if not scene.is_file():
        raise UserError(f"twin scene {scene} does not exist (build one with `dream twin build`)")
    try:
        spec = mujoco.MjSpec.from_file(str(scene))
        model = spec.compile()
    except ValueError as exc:
        raise UserError(f"twin scene {scene} does not load in MuJoCo: {exc}".splitlines()[0]) from None
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, OBJECT_BODY) < 0:
        raise UserError(f"twin scene {scene} has no body {OBJECT_BODY!r}")
    hand = cell.hand(kind)
    arm_joints = tuple(cell.arm.mjcf_joints)
    hand_joints = tuple(hand.prefix + j for j in hand.joint_map.values())
    for joint in arm_joints + hand_joints:
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint) < 0:
            raise UserError(f"twin scene {scene} has no joint {joint!r} (is it a {kind} twin of this cell?)")
    mesh = _object_mesh(spec, scene)
    geometry = ObjectGeometry(mesh, (), f"{scene}#{VISUAL_MESH}")

    summary = {}
    summary_path = scene.parent / "twin.yaml"
    if summary_path.is_file():
        try:
            summary = yaml.safe_load(summary_path.read_text()) or {}
        except yaml.YAMLError:
            summary = {}
    req = summary.get("request") if isinstance(summary, dict) else None
    req = req if isinstance(req, dict) else {}
    oid = model.body(OBJECT_BODY).id
    jnt = model.body_jntadr[oid]
    object_qpos = (model.qpos0[model.jnt_qposadr[jnt]:model.jnt_qposadr[jnt] + 7].copy() if jnt >= 0
                   else np.concatenate([model.body_pos[oid], model.body_quat[oid]]))
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0 and jnt >= 0:
        adr = model.jnt_qposadr[jnt]
        object_qpos = model.key_qpos[key][adr:adr + 7].copy()
    placement = req.get("placement") or {}
    request = TwinRequest(
        kind=str(req.get("kind", kind)),
        object_id=str(req.get("object_id", scene.parent.name or "object")),
        mass_kg=float(req.get("mass_kg", model.body_mass[oid])),
        friction=float(req.get("friction", 0.0)),
        placement=ObjectPlacement(float(placement.get("x", object_qpos[0])), float(placement.get("y", object_qpos[1])),
                                  float(placement.get("yaw", 0.0))),
        mesh_source=str(req.get("mesh_source", "")),
        cone=str(req.get("cone", cell.sim.cone(str(req.get("kind", kind))))),
    )
    hand_actuators = tuple(_actuator_for(model, j) for j in hand_joints)
    return Twin(request, spec, model, geometry, object_qpos, arm_joints, hand_joints, hand_actuators)
