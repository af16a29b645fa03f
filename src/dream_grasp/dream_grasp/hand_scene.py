"""A floating LEAP hand over the object: the grasp twin without the arm.

Testing a grasp does not need the Panda: the palm rides three world-axis slide
joints (position servos, like a stiff wrist) and a fixed orientation, while the
fingers, the object and the table are copied from the grasp twin built by
`dream_sysid.twin.build_twin` (same hand MJCF, same object collision parts, mass,
inertia and friction, same solver options). That keeps a trial ~50x cheaper than
an arm rollout and keeps its physics the twin's.

Finger actuators are force limited to current limit x torque constant, which is
what the XC330 does in current-based position mode (as in dream_hw's
MujocoLeapPlant), so a weak current limit really lets a heavy object slip.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import mujoco
import numpy as np

from dream_hw.cell import Cell
from dream_hw.errors import UserError
from dream_sysid.twin.builder import OBJECT_BODY, ObjectPlacement, Twin, build_twin
from dream_sysid.twin.object_geometry import ObjectGeometry

FINGERS = ("if", "mf", "rf", "th")       # contact groups with joints, LEAP naming
PALM_GROUP = 4                           # group index of the palm (no joints)
WRIST_KP = 5000.0                        # N/m: stiff enough that lifting 1 kg sags < 3 mm
WRIST_KV = 300.0


@dataclass(frozen=True)
class ServoFacts:
    """The servo numbers the scene needs (from grasp_hand in config/cell.yaml)."""

    torque_constant: float               # N m / A
    current_cap_ma: np.ndarray           # (16,) hard per-joint cap
    default_current_ma: float

    @classmethod
    def from_cell(cls, cell: Cell) -> "ServoFacts":
        hand = cell.grasp_hand
        servo = dict(hand.extra.get("servo") or {})
        safety = dict(hand.extra.get("safety") or {})
        cap = safety.get("current_cap_ma", 550)
        caps = np.asarray(cap if isinstance(cap, (list, tuple)) else [cap] * 16, dtype=float)
        if caps.shape != (16,) or np.any(caps < 0):
            raise UserError(f"grasp_hand.safety.current_cap_ma must be one or 16 non-negative mA, got {cap}")
        return cls(float(servo.get("torque_constant_nm_per_a", 0.52)), caps,
                   float(servo.get("default_current_ma", 350)))


class FloatingHandScene:
    """Floating LEAP hand + object + table; hand joint/actuator order = Dynamixel ids."""

    def __init__(self, twin: Twin, servo: ServoFacts):
        if twin.request.kind != "grasp":
            raise UserError(f"a floating hand scene needs a grasp twin, got a {twin.request.kind!r} twin")
        self.twin = twin
        self.servo = servo
        src = twin.spec.copy()
        for key in list(src.keys):
            src.delete(key)
        spec = mujoco.MjSpec()
        spec.modelname = f"dream_floating_leap_{twin.request.object_id}"
        for opt in ("timestep", "impratio", "cone", "integrator", "noslip_iterations"):
            setattr(spec.option, opt, getattr(twin.spec.option, opt))
        table = twin.model.geom("table")
        spec.worldbody.add_geom(name="table", type=mujoco.mjtGeom.mjGEOM_BOX, size=table.size.tolist(),
                                pos=table.pos.tolist(), friction=table.friction.tolist())
        wrist = spec.worldbody.add_body(name="wrist", pos=[0.0, 0.0, 0.0])
        for k, axis in enumerate(np.eye(3)):
            name = f"wrist_{'xyz'[k]}"
            wrist.add_joint(name=name, type=mujoco.mjtJoint.mjJNT_SLIDE, axis=axis.tolist(), armature=1.0)
            spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT,
                              gaintype=mujoco.mjtGain.mjGAIN_FIXED, gainprm=[WRIST_KP] + [0] * 9,
                              biastype=mujoco.mjtBias.mjBIAS_AFFINE, biasprm=[0, -WRIST_KP, -WRIST_KV] + [0] * 7)
        mount = wrist.add_body(name="mount")
        palm_name = twin.hand_joints[0].split("/")[0] + "/palm" if "/" in twin.hand_joints[0] else "palm"
        palm = src.body(palm_name)
        if palm is None:
            raise UserError(f"the grasp twin has no body {palm_name!r}")
        palm.pos, palm.quat = [0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # empty attach prefix: names stay the twin's
            mount.add_frame().attach_body(palm, "", "")
            spec.worldbody.add_frame().attach_body(src.body(OBJECT_BODY), "", "")
            self.model = spec.compile()
        m = self.model
        self.palm_body = m.body(palm_name).id
        self.mount_body = m.body("mount").id
        self.object_body = m.body(OBJECT_BODY).id
        self.object_qadr = int(m.jnt_qposadr[m.joint(f"{OBJECT_BODY}_free").id])
        self.object_dadr = int(m.jnt_dofadr[m.joint(f"{OBJECT_BODY}_free").id])
        self.hand_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in twin.hand_joints])
        self.hand_dadr = np.array([m.jnt_dofadr[m.joint(j).id] for j in twin.hand_joints])
        self.hand_act = np.array([m.actuator(a).id for a in twin.hand_actuators])
        self.wrist_act = np.array([m.actuator(f"wrist_{c}").id for c in "xyz"])
        self.wrist_qadr = np.array([m.jnt_qposadr[m.joint(f"wrist_{c}").id] for c in "xyz"])
        self.lower = m.jnt_range[[m.joint(j).id for j in twin.hand_joints], 0].copy()
        self.upper = m.jnt_range[[m.joint(j).id for j in twin.hand_joints], 1].copy()
        prefix = palm_name[: -len("palm")]
        self.geom_group = np.full(m.ngeom, -1, dtype=int)   # -1: not the hand
        for g in range(m.ngeom):
            body = m.body(m.geom_bodyid[g]).name
            if not body.startswith(prefix):
                continue
            short = body[len(prefix):]
            self.geom_group[g] = FINGERS.index(short[:2]) if short[:2] in FINGERS else PALM_GROUP
        self.tip_geoms = np.array([m.geom(f"{prefix}{f}_tip").id for f in FINGERS])
        self.object_home = twin.object_qpos.copy()
        self.data = mujoco.MjData(m)
        m.actuator_forcelimited[self.hand_act] = 1
        self.set_current_limit(np.minimum(servo.default_current_ma, servo.current_cap_ma))

    @classmethod
    def for_object(cls, cell: Cell, geometry: ObjectGeometry, *, mass_kg: float, friction: float,
                   object_id: str = "object", placement: ObjectPlacement | None = None) -> "FloatingHandScene":
        """Builds the grasp twin of the object (cell description) and floats its hand."""
        place = placement or ObjectPlacement(*cell.table.center_xy)
        twin = build_twin(cell, geometry, kind="grasp", mass_kg=mass_kg, friction=friction,
                          placement=place, object_id=object_id)
        return cls(twin, ServoFacts.from_cell(cell))

    # ------------------------------------------------------------------ settings
    @property
    def object_mass(self) -> float:
        return float(self.model.body_mass[self.object_body])

    def set_object_mass(self, mass_kg: float) -> None:
        """Rescales the object's mass and inertia (same shape, uniform density)."""
        if not mass_kg > 0:
            raise UserError(f"object mass must be positive, got {mass_kg}")
        s = mass_kg / self.object_mass
        self.model.body_mass[self.object_body] *= s
        self.model.body_inertia[self.object_body] *= s

    def set_current_limit(self, current_ma: np.ndarray | float) -> np.ndarray:
        """Finger actuator force range = min(current, cap) x Kt (N m); returns the mA applied."""
        ma = np.minimum(np.broadcast_to(np.asarray(current_ma, float), (16,)), self.servo.current_cap_ma)
        ma = np.maximum(ma, 0.0)
        tau = ma * 1e-3 * self.servo.torque_constant
        self.model.actuator_forcerange[self.hand_act, 0] = -tau
        self.model.actuator_forcerange[self.hand_act, 1] = tau
        return ma

    # ------------------------------------------------------------------ state
    def reset(self, palm_pos: np.ndarray, palm_rot: np.ndarray, hand_q: np.ndarray) -> None:
        """Object at rest on the table, palm at (pos, rot) in world, fingers at hand_q."""
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        quat = np.zeros(4)
        mujoco.mju_mat2Quat(quat, np.asarray(palm_rot, float).flatten())
        m.body_quat[self.mount_body] = quat
        d.qpos[self.wrist_qadr] = palm_pos
        d.ctrl[self.wrist_act] = palm_pos
        q = np.clip(hand_q, self.lower, self.upper)
        d.qpos[self.hand_qadr] = q
        d.ctrl[self.hand_act] = q
        d.qpos[self.object_qadr:self.object_qadr + 7] = self.object_home
        mujoco.mj_forward(m, d)

    def object_pose(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return d.xpos[self.object_body].copy(), d.xmat[self.object_body].reshape(3, 3).copy()

    def palm_pose(self) -> tuple[np.ndarray, np.ndarray]:
        d = self.data
        return d.xpos[self.palm_body].copy(), d.xmat[self.palm_body].reshape(3, 3).copy()

    def contact_groups(self) -> np.ndarray:
        """(5,) bool: which of index, middle, ring, thumb, palm touch the object now."""
        d, m = self.data, self.model
        touch = np.zeros(5, dtype=bool)
        for c in d.contact[: d.ncon]:
            g1, g2 = int(c.geom1), int(c.geom2)
            b1, b2 = m.geom_bodyid[g1], m.geom_bodyid[g2]
            if b1 == self.object_body and self.geom_group[g2] >= 0:
                touch[self.geom_group[g2]] = True
            elif b2 == self.object_body and self.geom_group[g1] >= 0:
                touch[self.geom_group[g1]] = True
        return touch

    def hand_penetration(self) -> float:
        """Deepest penetration (m, >= 0) between the hand and the object or table."""
        d, m = self.data, self.model
        worst = 0.0
        for c in d.contact[: d.ncon]:
            g1, g2 = int(c.geom1), int(c.geom2)
            if (self.geom_group[g1] >= 0) != (self.geom_group[g2] >= 0):
                worst = max(worst, -float(c.dist))
        return worst

    def step(self, n: int = 1) -> None:
        mujoco.mj_step(self.model, self.data, nstep=n)
