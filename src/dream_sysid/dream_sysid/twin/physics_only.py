"""The twin without what only renders: the model that replays pushes.

The Menagerie Panda and Allegro carry 70 visual meshes (380 k vertices and their
bounding-volume trees: 36 MB of a 36.3 MB model). A replay never touches them, but
mujoco.rollout needs one model copy per replay of a batch, and copying eight of them
took 0.9 s of a 5.6 s identification. Without them the model is 0.6 MB.

Some of those meshes carry mass (the Allegro's bodies take their inertia from their
visual geoms), so every body keeps, as an explicit inertial, exactly what the full
model computed. The result is checked against the full model and the full model is
returned wherever anything differs: the replay is the same to the bit.
"""
from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

# What must come out identical for the replay to be (bodies' inertials, the tree, the actuators).
SAME = ("body_mass", "body_inertia", "body_ipos", "body_iquat", "body_pos", "body_quat", "body_parentid",
        "jnt_type", "jnt_qposadr", "dof_damping", "dof_armature", "actuator_trnid", "actuator_gainprm",
        "actuator_biasprm", "geom_friction", "geom_solref", "geom_solimp")


def physics_only(scene: Path, model: mujoco.MjModel, keep_body: str) -> mujoco.MjModel:
    """`model` (`scene` as compiled, unmodified) without its unnamed geoms that collide with nothing,
    except those of `keep_body` (the object: its visual mesh is its shape). Named geoms stay,
    since sensors or contact pairs may name them. The bodies' inertials are `model`'s; the
    rest comes from `scene` and is checked against `model` (SAME), so a model that is not the
    scene as compiled comes back unchanged."""
    try:
        spec = mujoco.MjSpec.from_file(str(scene))
        for body in spec.bodies:
            if not body.name or body.name == "world":
                continue
            i = model.body(body.name).id
            body.explicitinertial = True
            body.mass = float(model.body_mass[i])
            body.ipos = model.body_ipos[i].copy()
            body.iquat = model.body_iquat[i].copy()
            body.inertia = model.body_inertia[i].copy()
        visual = [g for g in spec.geoms if g.contype == 0 and g.conaffinity == 0 and not g.name
                  and g.parent.name and g.parent.name != keep_body]
        for geom in visual:
            spec.delete(geom)
        used = {g.meshname for g in spec.geoms}
        for mesh in list(spec.meshes):
            if mesh.name not in used:
                spec.delete(mesh)
        lean = spec.compile()
    except (ValueError, KeyError):       # a scene MjSpec cannot round-trip: keep the full model
        return model
    same_shape = (lean.nq, lean.nv, lean.nu, lean.nbody) == (model.nq, model.nv, model.nu, model.nbody)
    if not same_shape:
        return model
    kept = _collidable(model)
    if not np.array_equal(_collidable(lean), kept):
        return model
    for name in SAME:
        a, b = getattr(model, name), getattr(lean, name)
        if name.startswith("geom_"):
            a = a[model.geom_contype + model.geom_conaffinity > 0]
            b = b[lean.geom_contype + lean.geom_conaffinity > 0]
        if a.shape != b.shape or not np.array_equal(a, b):
            return model
    return lean


def _collidable(model: mujoco.MjModel) -> np.ndarray:
    """(body, type, size) of every geom that can collide, in order."""
    rows = model.geom_contype + model.geom_conaffinity > 0
    return np.column_stack([model.geom_bodyid[rows], model.geom_type[rows], model.geom_size[rows]])
