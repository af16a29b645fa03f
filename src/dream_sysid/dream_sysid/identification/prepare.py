"""From a push recording and its twin to the arrays the differentiable push needs.

The twin supplies kinematics and the finger's servo model: where the fingertip
was commanded to be (anchor), where it really was (measured joints), and how
stiff the finger is there. The recording supplies the object's tracked poses.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mujoco
import numpy as np
import trimesh

from dream_hw.errors import UserError
from dream_hw.sim.trajectory import interpolate_from
from dream_hw.mjcf import joint_actuator
from dream_sysid.bag.recording import PushRecording, Series
from dream_sysid.identification.planar_model import PushScenario

FINGERTIPS = ("ff_tip", "mf_tip", "rf_tip", "th_tip")
MIN_POSES = 10
SIM_DT = 0.002
LEAD_IN_S = 0.15        # simulate from this long before first contact
CONTACT_MARGIN = 0.004  # tip within this of the object's section = contact
MAX_TIP_STIFFNESS = 2000.0  # N/m
MIN_TIP_MASS = 0.005       # kg
REST_TOLERANCE = 0.005     # m, 5-pose running medians vs the final pose (noise ~2 mm)
REST_TAIL_S = 0.25
MIN_TRAVEL_M = 0.005       # below this the object did not really slide
# A resting tilt above this is an object on another face (a bottle that fell over in an earlier
# push); below it, the tracker's noise about upright (1 deg a pose, averaged over the rest).
TILTED_RAD = np.radians(10.0)


@dataclass(frozen=True)
class Observations:
    t: np.ndarray          # (N,) tracked-pose stamps (s)
    xy: np.ndarray         # (N, 2) object origin
    yaw: np.ndarray        # (N,) yaw relative to the initial orientation, unwrapped
    quat: np.ndarray       # (N, 4)
    tip_t: np.ndarray      # (M,) hand-state stamps inside the window
    tip_xy: np.ndarray     # (M, 2) measured fingertip centre


@dataclass(frozen=True)
class PreparedPush:
    scenario: PushScenario
    obs: Observations
    t0: float                  # simulation start time (recording clock)
    origin_offset: np.ndarray  # (2,) object origin - COM, in the object's yaw-0 frame
    pos0: np.ndarray           # initial object position (world), from every pose before it moved
    quat0: np.ndarray          # initial object orientation
    finger: str
    mass_prior: float          # the twin's mass (kg)
    rest_dz: float = 0.0       # m, the resting origin's height above the twin's upright one (on another face)


class NotInformative(Exception):
    """The object hardly moved: the push cannot tell its mass, only bound it from below
    (identification.stall); `prep` is the push prepared over the whole bag after contact."""

    def __init__(self, travel_m: float, prep: "PreparedPush | None" = None):
        super().__init__(f"the object moved only {travel_m * 1e3:.1f} mm")
        self.travel_m = travel_m
        self.prep = prep


def _interp(t: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    return np.stack([np.interp(t, ts, values[:, j]) for j in range(values.shape[1])], axis=1)


def _hold(t: np.ndarray, ts: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Zero-order hold: the latest value at or before each t (the first before it)."""
    idx = np.clip(np.searchsorted(ts, t, side="right") - 1, 0, len(ts) - 1)
    return values[idx]


def _yaw(q: np.ndarray) -> float:
    w, x, y, z = q
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def _quat_mat(q: np.ndarray) -> np.ndarray:
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, np.asarray(q, float))
    return rot.reshape(3, 3)


def _turned_from(q0: np.ndarray):
    """The yaw a pose has turned about the vertical since the resting orientation q0 (for an
    object on its side, whose own yaw angle is ill-defined: its x axis may point down)."""
    inv = np.array([q0[0], -q0[1], -q0[2], -q0[3]])

    def turned(q: np.ndarray) -> float:
        rel = np.zeros(4)
        mujoco.mju_mulQuat(rel, np.asarray(q, float), inv)
        return _yaw(rel)
    return turned


def joint_columns(series: Series, joint_map: dict[str, str], mjcf_joints, what: str) -> np.ndarray:
    """Columns of `series` holding `mjcf_joints`, matching its names through the joint map
    (which may map several drivers' names, fr3/fer/panda, onto the same joint)."""
    mapped = [joint_map.get(n, n) for n in series.names]
    missing = [j for j in mjcf_joints if j not in mapped]
    if missing:
        raise UserError(f"{what} lacks joints {missing[:3]}{'...' if len(missing) > 3 else ''}")
    return np.array([mapped.index(j) for j in mjcf_joints])


def prepare(rec: PushRecording, model: mujoco.MjModel, mesh: trimesh.Trimesh, *, object_body: str,
            arm_joints: tuple[str, ...], hand_prefix: str, latency: float = 0.0) -> PreparedPush:
    """Builds the scenario and observations; `latency` shifts the tracked stamps back."""
    if len(rec.poses.t) < MIN_POSES:
        raise UserError(f"{rec.path}: only {len(rec.poses.t)} object poses, need at least {MIN_POSES}")
    if rec.hand_states is None:
        raise UserError(f"{rec.path}: no hand joint states (/allegroHand_0/joint_states): "
                        "the finger's deflection is what separates mass from friction")
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, object_body) < 0:
        raise UserError(f"scene has no body {object_body!r}")
    data = mujoco.MjData(model)
    key = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_KEY, "home")
    if key >= 0:
        mujoco.mj_resetDataKeyframe(model, data, key)
    oid = model.body(object_body).id
    mass_prior = float(model.body_mass[oid])

    hs = rec.hand_states
    to_mjcf = lambda name: rec.joint_map.get(name, name)  # noqa: E731
    hand_mjcf = [to_mjcf(n) for n in hs.names]
    for name in hand_mjcf:
        if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, name) < 0:
            raise UserError(f"hand joint {name!r} of the recording is not in the scene (check joint_map)")
    hand_qadr = np.array([model.jnt_qposadr[model.joint(n).id] for n in hand_mjcf])
    hand_act = [joint_actuator(model, n) for n in hand_mjcf]
    if None in hand_act:
        raise UserError(f"scene: hand joint {hand_mjcf[hand_act.index(None)]!r} has no actuator")
    kp = model.actuator_gainprm[hand_act, 0]

    t = hs.t
    # Commanded hand joints: the logged commands, else measured + effort / kp
    # (the Allegro driver's effort is its commanded PD torque).
    if rec.hand_cmds is not None and len(rec.hand_cmds.t):
        q_cmd = _hold(t, rec.hand_cmds.t, rec.hand_cmds.position)
    elif hs.effort is not None:
        q_cmd = hs.position + hs.effort / kp
    else:
        q_cmd = hs.position

    arm_qadr = np.array([model.jnt_qposadr[model.joint(j).id] for j in arm_joints])
    if rec.arm_states is not None and len(rec.arm_states.t) > 1:
        cols = joint_columns(rec.arm_states, rec.joint_map, arm_joints, "the arm's joint states")
        q_arm = _interp(t, rec.arm_states.t, rec.arm_states.position[:, cols])
    elif rec.arm_trajectories:
        q_arm = _arm_from_trajectories(rec, t, arm_joints, data.qpos[arm_qadr])
    else:
        q_arm = np.repeat(data.qpos[arm_qadr][None, :], len(t), axis=0)  # a static arm

    # Fingertip positions (measured and commanded) through the twin's kinematics.
    tips = {}
    tip_geom = {}
    for name in FINGERTIPS:
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, hand_prefix + name)
        if bid < 0:
            continue
        geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == bid and model.geom_contype[g]]
        tip_geom[name] = geoms[0]
    meas = {n: np.zeros((len(t), 3)) for n in tip_geom}
    cmd = {n: np.zeros((len(t), 3)) for n in tip_geom}
    for k in range(len(t)):
        for q_hand, out in ((hs.position[k], meas), (q_cmd[k], cmd)):
            data.qpos[arm_qadr] = q_arm[k]
            data.qpos[hand_qadr] = q_hand
            mujoco.mj_kinematics(model, data)
            for n, g in tip_geom.items():
                out[n][k] = data.geom_xpos[g]

    # Object: initial pose = median of the first tracked poses (before contact).
    pt = rec.poses.t - latency
    pos0, quat0 = rest_pose(rec.poses.pos, rec.poses.quat)
    yaw0 = _yaw(quat0)
    # COM offset in the object's frame (the twin's ipos) rotated by the initial yaw.
    ipos = model.body_ipos[oid]
    inertia_zz = body_inertia_zz(model, oid)
    yaw_of, rest_dz = _yaw, 0.0
    r0 = _quat_mat(quat0)
    tilted = bool(np.arccos(np.clip(r0[2, 2], -1.0, 1.0)) > TILTED_RAD)
    if tilted:
        # On another face: the push meets horizontal cuts of the object as it lies. The mesh,
        # COM and inertia are turned by the whole resting orientation, and the planar push's
        # frame is the world's at rest (yaw0 0), its yaw the turn about the vertical since.
        # (Taken as upright, a ketchup bottle that had fallen over read as "the hand never
        # reaches the object" on the next push.)
        upright_bottom = float(mesh.vertices[:, 2].min())
        mesh = mesh.copy()
        mesh.apply_transform(np.block([[r0, np.zeros((3, 1))], [np.zeros((1, 3)), np.ones((1, 1))]]))
        rest_dz = upright_bottom - float(mesh.vertices[:, 2].min())     # its lowest point on the table
        ipos = r0 @ ipos
        inertia_zz = body_inertia_zz(model, oid, r0)
        yaw0, yaw_of = 0.0, _turned_from(quat0)
    c0, s0 = np.cos(yaw0), np.sin(yaw0)
    com_offset_world = np.array([c0 * ipos[0] - s0 * ipos[1], s0 * ipos[0] + c0 * ipos[1]])
    com0 = pos0[:2] + com_offset_world

    # Which finger pushes: the one that comes closest to the object.
    def section_distance(points_world: np.ndarray, poly: np.ndarray) -> np.ndarray:
        rel = points_world[:, :2] - com0
        local = rel @ np.array([[c0, -s0], [s0, c0]])
        e = np.roll(poly, -1, axis=0) - poly
        n = np.stack([e[:, 1], -e[:, 0]], 1)
        n /= np.linalg.norm(n, axis=1, keepdims=True)
        return (local @ n.T - (n * poly).sum(1)).max(axis=1)

    hull_poly = _section(mesh, ipos, None)
    finger = min(tip_geom, key=lambda n: section_distance(meas[n], hull_poly).min())
    g = tip_geom[finger]
    radius = float(model.geom_size[g, 0])
    z_local = float(np.median(meas[finger][:, 2]) - (pos0[2]))
    if tilted:
        # A low object (a bottle on its side, 65 mm): the fingertip's median height over the
        # whole bag, approach included, is above it. Its heights below the object's top.
        below = meas[finger][:, 2] - pos0[2]
        below = below[below < mesh.vertices[:, 2].max()]
        if len(below):
            z_local = float(np.median(below))
    poly = _section(mesh, ipos, z_local)
    dist = section_distance(meas[finger], poly) - radius
    touching = np.flatnonzero(dist < CONTACT_MARGIN)
    if len(touching) == 0:
        raise UserError(f"{rec.path}: the hand never reaches the object: nothing to identify from")
    t_contact = float(t[touching[0]])
    t0 = max(t_contact - LEAD_IN_S, float(t[0]))
    t_end = min(float(t[-1]), float(pt[-1]))
    # Stop once the object has come to rest (nothing more to learn, and the
    # simulation is the cost): the last tracked pose more than 3 mm from the final one.
    from scipy.ndimage import median_filter

    smooth = median_filter(rec.poses.pos[:, :2], size=(5, 1), mode="nearest")
    final = np.median(rec.poses.pos[-15:, :2], axis=0)
    # Travel from the resting start (the median of every resting pose), not from the first
    # five: at 2 mm noise a 1 kg Letter U that stayed put (0.1 mm) read 5.3 mm from its
    # first five poses' median, and its last "moving" pose, a noise excursion, came before
    # the finger touched it: an empty window and a numpy traceback instead of an answer.
    travel = float(np.linalg.norm(final - pos0[:2]))
    moving = np.flatnonzero(np.linalg.norm(smooth - final, axis=1) > REST_TOLERANCE)
    moving = moving[pt[moving] > t_contact]         # before contact it is the tracker's noise
    moved = len(moving) > 0 and travel >= MIN_TRAVEL_M
    if moved:                                       # (a push that did not slide it: the whole bag)
        t_end = min(t_end, float(pt[moving[-1]]) + REST_TAIL_S)

    sim_t = t0 + SIM_DT * np.arange(int((t_end - t0) / SIM_DT) + 1)
    anchor = _interp(sim_t, t, cmd[finger][:, :2])
    measured_tip = meas[finger][:, :2]
    # Gravity sag and model error of the free finger: the mean offset before contact.
    free = t < t_contact - 0.02
    sag = (measured_tip[free] - cmd[finger][free, :2]).mean(axis=0) if free.any() else np.zeros(2)
    anchor = anchor + sag
    anchor_vel = np.gradient(anchor, SIM_DT, axis=0)
    tip0 = _interp(np.array([t0]), t, measured_tip)[0]
    tipv0 = np.gradient(_interp(np.array([t0 - 0.01, t0, t0 + 0.01]), t, measured_tip), 0.01, axis=0)[1]

    # The finger's servo as a Cartesian spring at the commanded configuration at contact.
    k_contact = int(touching[0])
    stiffness, damping, tip_mass = _finger_impedance(model, data, arm_qadr, hand_qadr, q_arm[k_contact],
                                                    q_cmd[k_contact], g, kp, hand_mjcf)

    # Observations inside the simulated window.
    sel = (pt >= t0) & (pt <= t_end)
    if sel.sum() < MIN_POSES:
        raise UserError(f"{rec.path}: only {int(sel.sum())} object poses during the push, need {MIN_POSES}")
    yaw_obs = np.unwrap(np.array([yaw_of(q) for q in rec.poses.quat[sel]])) - yaw0
    tip_sel = (t >= t0) & (t <= t_end)
    obs = Observations(pt[sel], rec.poses.pos[sel, :2], yaw_obs, rec.poses.quat[sel], t[tip_sel],
                       measured_tip[tip_sel])
    footprint = _section(mesh, ipos, float(mesh.vertices[:, 2].min()))
    torsion_radius = float(np.mean(np.linalg.norm(_fill(footprint), axis=1)))
    scenario = PushScenario(
        dt=SIM_DT, anchor=anchor, anchor_vel=anchor_vel, tip0=tip0, tipv0=tipv0, stiffness=stiffness,
        damping=damping, tip_mass=tip_mass, tip_radius=radius, polygon=poly, com0=com0, yaw0=yaw0,
        gyration2=float(inertia_zz / mass_prior), torsion_radius=max(torsion_radius, 1e-3),
    )
    prep = PreparedPush(scenario, obs, t0, -ipos[:2].copy(), pos0, quat0, finger, mass_prior, rest_dz)
    if not moved:
        raise NotInformative(travel, prep)
    return prep


def rest_pose(pos: np.ndarray, quat: np.ndarray, *, departure_m: float = 0.003,
              margin: int = 6) -> tuple[np.ndarray, np.ndarray]:
    """The object's pose before the push from every tracked pose while it rested.

    The start of the replay sets where contact happens, and a few millimetres
    there shift the whole simulated push: the median of all resting poses (often
    dozens during the approach) is ~5x less noisy than the first few. Resting =
    before the final run of poses whose 5-pose running median stays more than
    `departure_m` from the first poses' median (the object left for good; noise
    crosses the threshold now and then, but never for the rest of the bag),
    minus `margin` poses (the departure is seen late)."""
    from scipy.ndimage import median_filter

    head = np.median(pos[:5], axis=0)
    smooth = median_filter(pos, size=(5, 1), mode="nearest")
    far = np.linalg.norm(smooth[:, :2] - head[:2], axis=1) > departure_m
    near = np.flatnonzero(~far)
    departure = int(near[-1]) + 1 if len(near) else 0
    n = max(5, departure - margin)
    rest_q = quat[:n] * np.sign(quat[:n] @ quat[0])[:, None]       # one hemisphere
    q0 = rest_q.mean(axis=0)
    return np.median(pos[:n], axis=0), q0 / np.linalg.norm(q0)


def _arm_from_trajectories(rec: PushRecording, t: np.ndarray, arm_joints: tuple[str, ...],
                           q_start: np.ndarray) -> np.ndarray:
    """Commanded arm joints over time from JointTrajectory messages (JTC semantics:
    each message replaces the last, starting from where the arm was)."""
    out = np.repeat(q_start[None, :], len(t), axis=0)
    current = q_start.copy()
    trajs = sorted(rec.arm_trajectories, key=lambda a: a.t_received)
    for i, traj in enumerate(trajs):
        mapped = [rec.joint_map.get(n, n) for n in traj.names]
        if sorted(mapped) != sorted(arm_joints):
            raise UserError(f"{rec.path}: a JointTrajectory does not name all arm joints")
        points = traj.positions[:, [mapped.index(j) for j in arm_joints]]
        end = trajs[i + 1].t_received if i + 1 < len(trajs) else np.inf
        sel = (t >= traj.t_received) & (t < end)
        out[sel] = interpolate_from(current, traj.times, points, t[sel] - traj.t_received)
        current = interpolate_from(current, traj.times, points, min(end, 1e9) - traj.t_received)
    return out


def body_inertia_zz(model: mujoco.MjModel, oid: int, turn: np.ndarray | None = None) -> float:
    """I_zz about the COM in the body's (upright) frame, from the principal inertia; with `turn`
    (3x3), of the body turned by it (an object resting on another face)."""
    rot = _quat_mat(model.body_iquat[oid])
    if turn is not None:
        rot = turn @ rot
    return float((rot @ np.diag(model.body_inertia[oid]) @ rot.T)[2, 2])


def _section(mesh: trimesh.Trimesh, com: np.ndarray, z: float | None) -> np.ndarray:
    """CCW convex polygon (COM frame, xy) of the mesh cut at height z (None: the whole footprint)."""
    from scipy.spatial import ConvexHull

    verts = mesh.vertices
    pts = verts[:, :2]
    if z is not None:
        zmin, zmax = verts[:, 2].min(), verts[:, 2].max()
        zc = float(np.clip(z, zmin + 1e-4, zmax - 1e-4))
        path = mesh.section(plane_origin=[0, 0, zc], plane_normal=[0, 0, 1])
        if path is not None and len(path.vertices):
            pts = np.asarray(path.vertices)[:, :2]
    hull = ConvexHull(pts)
    poly = pts[hull.vertices] - com[:2]          # scipy gives CCW order in 2-D
    return poly


def _fill(poly: np.ndarray, n: int = 30) -> np.ndarray:
    """Points filling a convex polygon (for the mean support radius)."""
    lo, hi = poly.min(0), poly.max(0)
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n))
    pts = np.stack([gx.ravel(), gy.ravel()], 1)
    e = np.roll(poly, -1, axis=0) - poly
    nrm = np.stack([e[:, 1], -e[:, 0]], 1)
    inside = ((pts @ nrm.T) - (nrm * poly).sum(1) <= 0).all(axis=1)
    return pts[inside] if inside.any() else poly


def _finger_impedance(model, data, arm_qadr, hand_qadr, q_arm, q_hand, geom, kp, hand_mjcf):
    """Cartesian stiffness, damping and effective mass (xy) of the fingertip's servoed joints."""
    data.qpos[arm_qadr] = q_arm
    data.qpos[hand_qadr] = q_hand
    mujoco.mj_forward(model, data)
    jac = np.zeros((3, model.nv))
    mujoco.mj_jacGeom(model, data, jac, None, geom)
    dofs = np.array([model.jnt_dofadr[model.joint(n).id] for n in hand_mjcf])
    moving = np.abs(jac[:, dofs]).sum(axis=0) > 1e-9
    J = jac[:, dofs[moving]]
    kp_m = kp[moving]
    compliance = ((J / kp_m) @ J.T)[:2, :2]
    damp = np.maximum(model.dof_damping[dofs[moving]], 1e-6)
    mass = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, mass)
    sub = mass[np.ix_(dofs[moving], dofs[moving])]
    mobility = (J @ np.linalg.solve(sub, J.T))[:2, :2]
    # Directions in which the servos give (almost) nothing, e.g. sideways for a
    # straight finger whose abduction axis runs along it, move with the hand:
    # capped at a stiffness the explicit integrator still resolves.
    c, u = np.linalg.eigh(compliance)
    k = np.minimum(1.0 / np.maximum(c, 1e-12), MAX_TIP_STIFFNESS)
    stiffness = u @ np.diag(k) @ u.T
    soft = u[:, np.argmax(c)]
    tip_mass = float(max(1.0 / max(soft @ mobility @ soft, 1e-9), MIN_TIP_MASS))
    d_soft = 1.0 / max(soft @ ((J / damp) @ J.T)[:2, :2] @ soft, 1e-12)
    critical = 2.0 * np.sqrt(k * tip_mass)
    damping = u @ np.diag(np.where(c == c.max(), d_soft, 0.5 * critical)) @ u.T
    return stiffness, damping, tip_mass
