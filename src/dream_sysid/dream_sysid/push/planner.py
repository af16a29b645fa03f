"""Push planning (ROS-free): a push program, the twin, the arm's current joints and
the tracked object pose -> the arm's JointTrajectory (driver joint names, times,
positions, velocities) and the Allegro posture command.

The fingertip (the Allegro index tip, other fingers curled by the posture) is
carried along straight Cartesian segments by differential IK (twin.ik.ArmIK):

    approach  current tip pose -> above the pre-push pose (orientation turned to the push direction)
    descend   straight down onto the pre-push pose
    push      along the push direction with the program's trapezoidal speed profile
    hold      (optional) stay at the end of the push
    retreat   back against the push direction and up

Each segment starts and ends at rest and is sampled densely in time (joint-space
waypoints every few millimetres), so a controller interpolating between points
reproduces the Cartesian speed profile. Segments whose joint speeds would exceed
the cell's limits (cell.arm.max_velocity) are slowed down uniformly (and the plan
says so in `warnings`). The trajectory obeys the controller's rules: all 7 joints
named, time_from_start strictly increasing from > 0, the last point at rest.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np
import trimesh

from dream_hw.cell import Cell
from dream_hw.errors import UserError
from dream_hw.sim.trajectory import interpolate_from
from dream_sysid.push.program import PushProgram
from dream_sysid.twin.builder import Twin

FINGERTIP = "allegro/ff_tip"
MAX_IK_ERROR_M = 0.004          # fingertip position error tolerated along the plan
PUSH_STEP_M = 0.002             # waypoint spacing on the push line
MOVE_STEP_M = 0.005             # and on the other segments
MAX_SAMPLE_DT = 0.02            # s: at least 50 waypoints per second of motion
ROTATE_SPEED = 1.0              # rad/s: the tip's reorientation rate on the approach


@dataclass(frozen=True)
class Trapezoid:
    """Distance along a straight line vs time: accelerate, cruise, decelerate; rest at both ends."""

    length: float
    v_peak: float
    accel: float
    decel: float

    @classmethod
    def plan(cls, length: float, v_max: float, accel: float, decel: float | None = None) -> "Trapezoid":
        decel = accel if decel is None else decel
        if length <= 0.0:
            return cls(0.0, 0.0, accel, decel)
        # A triangle when the line is too short to reach v_max.
        v_tri = math.sqrt(2.0 * length * accel * decel / (accel + decel))
        return cls(length, min(v_max, v_tri), accel, decel)

    @property
    def t_acc(self) -> float:
        return self.v_peak / self.accel if self.length > 0 else 0.0

    @property
    def t_dec(self) -> float:
        return self.v_peak / self.decel if self.length > 0 else 0.0

    @property
    def t_cruise(self) -> float:
        if self.length <= 0:
            return 0.0
        d_ramps = 0.5 * self.v_peak * (self.t_acc + self.t_dec)
        return max(0.0, (self.length - d_ramps) / self.v_peak)

    @property
    def duration(self) -> float:
        return self.t_acc + self.t_cruise + self.t_dec

    def distance(self, t: np.ndarray | float) -> np.ndarray:
        t = np.clip(np.asarray(t, float), 0.0, self.duration)
        if self.length <= 0:
            return np.zeros_like(t)
        ta, tc = self.t_acc, self.t_cruise
        d_acc = 0.5 * self.accel * ta ** 2
        s = np.where(t < ta, 0.5 * self.accel * t ** 2, 0.0)
        s = np.where((t >= ta) & (t < ta + tc), d_acc + self.v_peak * (t - ta), s)
        td = t - ta - tc
        s = np.where(t >= ta + tc, d_acc + self.v_peak * tc + self.v_peak * td - 0.5 * self.decel * td ** 2, s)
        return np.minimum(s, self.length)

    def time_at(self, s: float) -> float:
        """The first time the line's distance reaches s."""
        s = float(np.clip(s, 0.0, self.length))
        ta, tc = self.t_acc, self.t_cruise
        d_acc = 0.5 * self.accel * ta ** 2
        if s <= d_acc:
            return math.sqrt(2.0 * s / self.accel) if s > 0 else 0.0
        if s <= d_acc + self.v_peak * tc:
            return ta + (s - d_acc) / self.v_peak
        rest = self.length - s      # distance still to go while decelerating
        return self.duration - math.sqrt(max(0.0, 2.0 * rest / self.decel))


@dataclass(frozen=True)
class Segment:
    name: str
    t_start: float
    t_end: float
    time_scale: float = 1.0     # > 1: slowed down to respect joint velocity limits


@dataclass(frozen=True)
class PushPlan:
    """The arm trajectory and hand command of one push."""

    joint_names: tuple[str, ...]     # driver names (cell.arm.driver_joint_names)
    times: np.ndarray                # (N,) time_from_start, strictly increasing, > 0
    positions: np.ndarray            # (N, 7)
    velocities: np.ndarray           # (N, 7), last row zero
    hand_names: tuple[str, ...]      # Allegro driver names (joint_0.0 ...)
    hand_posture: np.ndarray         # (16,) driver order
    tip_targets: np.ndarray          # (N, 3) fingertip position each waypoint puts the tip at (world)
    segments: tuple[Segment, ...]
    contact_time: float              # when the fingertip is planned to touch the object's back face
    direction: np.ndarray            # (2,) unit push direction in world xy
    warnings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def duration(self) -> float:
        return float(self.times[-1])

    def segment_at(self, t: float) -> str:
        for seg in self.segments:
            if t <= seg.t_end + 1e-9:
                return seg.name
        return self.segments[-1].name

    def arm_target(self, t: float, start: np.ndarray) -> np.ndarray:
        """Joint target at time t as a controller interpolating linearly from `start` (at t=0) does."""
        return interpolate_from(start, self.times, self.positions, t)

    def summary(self) -> dict:
        return {
            "duration_s": round(self.duration, 4),
            "contact_time_s": round(self.contact_time, 4),
            "points": int(len(self.times)),
            "direction_xy": [round(float(v), 6) for v in self.direction],
            "segments": [{"name": s.name, "t_start": round(s.t_start, 4), "t_end": round(s.t_end, 4),
                          "time_scale": round(s.time_scale, 4)} for s in self.segments],
            "warnings": list(self.warnings),
        }


def hand_posture(program: PushProgram, cell: Cell) -> np.ndarray:
    """The program's Allegro posture, or the cell's push posture."""
    if program.hand_posture is not None:
        return np.array(program.hand_posture, float)
    return np.array(cell.push_hand.extra["push_posture"], float)


class PushPlanner:
    """Plans pushes in one twin (keeps the IK model between plans)."""

    def __init__(self, twin: Twin, cell: Cell, fingertip: str = FINGERTIP):
        from dream_sysid.twin.ik import ArmIK

        self.twin = twin
        self.cell = cell
        mapped = tuple(cell.arm.joint_map.get(n, n) for n in cell.arm.driver_joint_names)
        if mapped != tuple(twin.arm_joints):
            raise UserError(f"{cell.path}: arm.driver_joint_names map to {list(mapped)} through arm.joint_map, "
                            f"but the twin's arm joints are {list(twin.arm_joints)} (same order expected)")
        self.ik = ArmIK(twin, fingertip)
        self.fingertip = fingertip
        self._surface: np.ndarray | None = None   # object surface samples (object frame), made once
        m = self.ik.model
        self.hand_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in twin.hand_joints])
        self.data = mujoco.MjData(m)

    # -- geometry of the tip ---------------------------------------------------------------
    def _configuration(self, arm_q: np.ndarray, posture: np.ndarray) -> np.ndarray:
        m = self.ik.model
        q = m.qpos0.copy()
        q[self.ik.arm_qadr] = arm_q
        for k, adr in enumerate(self.hand_qadr):
            jid = int(np.flatnonzero(m.jnt_qposadr == adr)[0])
            lo, hi = m.jnt_range[jid] if m.jnt_limited[jid] else (-np.inf, np.inf)
            q[adr] = float(np.clip(posture[k], lo, hi))
        return q

    def _tip_geometry(self, q: np.ndarray) -> tuple[float, float]:
        """(depth of the tip's lowest point below the tip body origin, horizontal radius of the tip)."""
        m, d = self.ik.model, self.data
        d.qpos[:] = q
        mujoco.mj_kinematics(m, d)
        tid = m.body(self.fingertip).id
        geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] == tid and m.geom_contype[g]]
        if not geoms:
            raise UserError(f"the twin's fingertip {self.fingertip!r} has no collision geometry")
        depth = max(float(d.xpos[tid][2] - (d.geom_xpos[g][2] - m.geom_rbound[g])) for g in geoms)
        radius = max(float(m.geom_size[g][0]) if m.geom_type[g] in (mujoco.mjtGeom.mjGEOM_SPHERE,
                                                                     mujoco.mjtGeom.mjGEOM_CAPSULE)
                     else float(m.geom_rbound[g]) for g in geoms)
        return depth, radius

    # -- planning ----------------------------------------------------------------------------
    def plan(self, program: PushProgram, arm_joints: np.ndarray, object_pos: np.ndarray,
             object_quat: np.ndarray) -> PushPlan:
        """arm_joints: current arm positions in the cell's MJCF joint order (= driver_joint_names order);
        object_pos / object_quat [w, x, y, z]: the object's pose in world."""
        import mink

        cell = self.cell
        arm_joints = np.asarray(arm_joints, float)
        if arm_joints.shape != (len(self.twin.arm_joints),):
            raise UserError(f"expected {len(self.twin.arm_joints)} arm joint positions, got {arm_joints.shape}")
        posture = hand_posture(program, cell)
        if posture.shape != (len(self.twin.hand_joints),):
            raise UserError(f"push posture has {posture.size} values; the twin's hand has "
                            f"{len(self.twin.hand_joints)} joints")
        q_now = self._configuration(arm_joints, posture)
        tip_now = self.ik.frame_pose(q_now)
        # Push orientation: the tip's orientation at the cell's home pose, turned about z to the push direction.
        tip_home = self.ik.frame_pose(self._configuration(np.array(cell.arm.home), posture))
        theta = math.radians(program.direction_deg)
        r_push = mink.SO3.from_z_radians(theta) @ tip_home.rotation()
        depth, radius = self._tip_geometry(q_now)

        d = np.array([math.cos(theta), math.sin(theta)])
        verts = self._object_vertices(object_pos, object_quat)
        table_z = cell.table.top_z
        top = float(verts[:, 2].max())
        z_tip_low = table_z + program.approach.tip_clearance_m
        if z_tip_low >= top - 0.002:
            raise UserError(f"the object is {(top - table_z) * 1e3:.0f} mm tall: the fingertip "
                            f"({program.approach.tip_clearance_m * 1e3:.0f} mm above the table) would pass over it")
        z = z_tip_low + depth
        centre = np.asarray(object_pos, float)[:2]
        back = self._first_contact(object_pos, object_quat, centre, d, z_tip_low + radius, radius)
        contact_xy = centre + (back - centre @ d) * d           # tip surface touches here
        start = np.array([*(contact_xy - (program.approach.offset_m + radius) * d), z])
        end = np.array([*(contact_xy - radius * d + program.push.distance_past_contact_m * d), z])
        above = start + np.array([0.0, 0.0, program.approach.pre_push_height_m])
        retreat = end + np.array([*(-program.retreat.back_m * d), program.retreat.lift_m])

        a, r = program.approach, program.retreat
        move = Trapezoid.plan(float(np.linalg.norm(above - tip_now.translation())), a.speed_m_s, a.acceleration_m_s2)
        turn = float(np.linalg.norm((tip_now.rotation().inverse() @ r_push).log()))
        segs = [
            ("approach", tip_now.translation(), above, tip_now.rotation(), r_push, move, MOVE_STEP_M,
             turn / ROTATE_SPEED),
            ("descend", above, start, r_push, r_push,
             Trapezoid.plan(float(np.linalg.norm(start - above)), a.speed_m_s, a.acceleration_m_s2), MOVE_STEP_M, 0.0),
            ("push", start, end, r_push, r_push,
             Trapezoid.plan(float(np.linalg.norm(end - start)), program.push.max_speed_m_s,
                            program.push.acceleration_m_s2, program.push.decel), PUSH_STEP_M, 0.0),
            ("retreat", end, retreat, r_push, r_push,
             Trapezoid.plan(float(np.linalg.norm(retreat - end)), r.speed_m_s, r.acceleration_m_s2), MOVE_STEP_M, 0.0),
        ]

        q = q_now.copy()
        times: list[np.ndarray] = []
        joints: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        names: list[str] = []
        push_profile = segs[2][5]
        for name, p0, p1, rot0, rot1, profile, step, min_duration in segs:
            duration = max(profile.duration, min_duration)
            if duration <= 0.0:
                continue
            stretch = duration / profile.duration if profile.duration > 0 else 1.0
            v_peak = max(profile.v_peak, 1e-6)
            n = max(2, int(math.ceil(duration / min(MAX_SAMPLE_DT, step / v_peak))))
            ts = np.linspace(0.0, duration, n + 1)[1:]
            frac = (profile.distance(ts / stretch) / profile.length) if profile.length > 0 else ts / duration
            seg_q, seg_p = [], []
            for f in frac:
                p = p0 + f * (p1 - p0)
                rot = rot0 @ mink.SO3.exp(float(f) * (rot0.inverse() @ rot1).log()) if rot0 is not rot1 else rot1
                q = self.ik.solve(q, mink.SE3.from_rotation_and_translation(rot, p))
                err = float(np.linalg.norm(self.ik.frame_pose(q).translation() - p))
                if err > MAX_IK_ERROR_M:
                    raise UserError(f"the push is out of the arm's reach: the fingertip misses its {name} "
                                    f"target {np.round(p, 3).tolist()} by {err * 1e3:.0f} mm "
                                    "(object too far, or direction unreachable)")
                seg_q.append(q[self.ik.arm_qadr].copy())
                seg_p.append(p)
            times.append(ts)
            joints.append(np.array(seg_q))
            targets.append(np.array(seg_p))
            names.append(name)
            if name == "push" and program.push.hold_s > 0:
                times.append(np.array([program.push.hold_s]))
                joints.append(np.array(seg_q[-1:]))
                targets.append(np.array(seg_p[-1:]))
                names.append("hold")

        return self._assemble(arm_joints, names, times, joints, targets, posture, d,
                              push_profile.time_at(program.approach.offset_m), program)

    def _first_contact(self, pos, quat, centre: np.ndarray, d: np.ndarray, z: float, radius: float) -> float:
        """Where along the push line the fingertip first meets the object (projection on d).

        Not the object's rearmost point: a non-convex object (a letter A pushed between
        its legs) is met later. Surface samples inside the band the fingertip sweeps
        (within its radius of the push line and of its height) decide."""
        if self._surface is None:
            self._surface = np.asarray(trimesh.sample.sample_surface_even(self.twin.geometry.mesh, 20000, seed=0)[0])
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, np.asarray(quat, float) / np.linalg.norm(quat))
        pts = self._surface @ rot.reshape(3, 3).T + np.asarray(pos, float)
        lateral = (pts[:, :2] - centre) @ np.array([-d[1], d[0]])
        band = (np.abs(lateral) <= radius) & (np.abs(pts[:, 2] - z) <= radius)
        if not band.any():   # the fingertip's band misses the object: fall back to the rearmost point
            band = np.ones(len(pts), bool)
        return float((pts[band, :2] @ d).min())

    def _object_vertices(self, pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
        quat = np.asarray(quat, float)
        norm = float(np.linalg.norm(quat))
        if not np.all(np.isfinite(quat)) or norm < 1e-9 or not np.all(np.isfinite(pos)):
            raise UserError("object pose is not finite or its quaternion is zero")
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, quat / norm)
        return self.twin.geometry.mesh.vertices @ rot.reshape(3, 3).T + np.asarray(pos, float)

    def _assemble(self, arm_joints, names, times, joints, targets, posture, d, contact_in_push,
                  program) -> PushPlan:
        vmax = np.array(self.cell.arm.max_velocity, float)
        t0 = 0.0
        all_t, all_q, all_p, segments, warnings = [], [], [], [], []
        prev = np.asarray(arm_joints, float)
        contact_time = 0.0
        for name, ts, qs, ps in zip(names, times, joints, targets):
            steps = np.diff(np.vstack([prev[None, :], qs]), axis=0)
            dts = np.diff(np.concatenate([[0.0], ts]))
            speed_ratio = float((np.abs(steps) / dts[:, None] / vmax[None, :]).max()) if len(ts) else 0.0
            scale = max(1.0, speed_ratio * 1.02) if speed_ratio > 1.0 else 1.0
            if scale > 1.0 and name in ("push", "hold"):
                warnings.append(f"{program.name}: the push was slowed down {scale:.2f}x to respect the arm's "
                                "joint velocity limits (cell.arm.safety.max_velocity)")
            if name == "push":
                contact_time = t0 + contact_in_push * scale
            seg_t = t0 + ts * scale
            segments.append(Segment(name, t0, float(seg_t[-1]), scale))
            all_t.append(seg_t)
            all_q.append(qs)
            all_p.append(ps)
            t0 = float(seg_t[-1])
            prev = qs[-1]
        t = np.concatenate(all_t)
        q = np.vstack(all_q)
        p = np.vstack(all_p)
        if np.any(np.diff(t) <= 0) or t[0] <= 0:
            raise AssertionError("planner produced non-increasing times")  # a bug, not a user error
        vel = np.zeros_like(q)
        if len(t) > 2:
            vel[1:-1] = (q[2:] - q[:-2]) / (t[2:] - t[:-2])[:, None]
        ends = np.searchsorted(t, [s.t_end for s in segments])
        vel[np.clip(ends, 0, len(t) - 1)] = 0.0     # every segment ends at rest
        vel[-1] = 0.0
        vel = np.clip(vel, -vmax, vmax)
        return PushPlan(
            joint_names=tuple(self.cell.arm.driver_joint_names),
            times=t, positions=q, velocities=vel,
            hand_names=tuple(self.cell.push_hand.joint_map), hand_posture=posture,
            tip_targets=p, segments=tuple(segments), contact_time=contact_time,
            direction=d, warnings=tuple(warnings),
        )


def plan_push(program: PushProgram, twin: Twin, cell: Cell, arm_joints: np.ndarray,
              object_pos: np.ndarray, object_quat: np.ndarray) -> PushPlan:
    """One-shot planning (see PushPlanner to plan repeatedly in the same twin)."""
    return PushPlanner(twin, cell).plan(program, arm_joints, object_pos, object_quat)
