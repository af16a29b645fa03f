"""The CPU grasp planner: differential IK (mink, through dream_sysid.twin.ik.ArmIK) on
the grasp twin's MuJoCo model, and MuJoCo collision checks (planner.collision).

For one candidate palm pose:
  pre-grasp  IK from the current joints to the palm backed off `pre_grasp_m` along
             its normal; the approach is the straight joint-space line to it, or, if
             that line hits something, a detour through the pre-grasp raised `detour_m`;
  insert     the palm on a straight line to the grasp pose (IK every `step_m`);
  lift       the palm straight up `lift_m`.
A candidate is rejected (PlanningFailed, naming the phase and the reason) when IK
misses a pose by more than `max_error_m` / `max_error_rad`, or when the arm or the
open hand touches the table or the object, at a solution or anywhere along the
joint-space path (sampled every 0.02 rad). The lift is checked against the table
only: the object leaves with the hand.
"""
from __future__ import annotations

import mink
import numpy as np

from dream_grasp.planner.base import GraspMotion, GraspRequest, PlanningFailed, lifted_pose, pre_grasp_pose
from dream_grasp.planner.collision import DEFAULT_TOLERANCE_M, CollisionChecker
from dream_hw.cell import Cell
from dream_hw.errors import UserError
from dream_sysid.twin.builder import Twin
from dream_sysid.twin.ik import ArmIK

PRE_GRASP_M = 0.08
LIFT_M = 0.12
DETOUR_M = 0.15
STEP_M = 0.005               # Cartesian waypoint spacing on the insert and the lift
MAX_ERROR_M = 0.001          # IK must put the palm within 1 mm ...
MAX_ERROR_RAD = 0.01         # ... and 0.6 deg of every target


class CpuPlanner:
    """Plans grasp motions in one grasp twin (keeps its IK and collision models between plans)."""

    name = "cpu"

    def __init__(self, twin: Twin, cell: Cell, *, pre_grasp_m: float = PRE_GRASP_M, lift_m: float = LIFT_M,
                 detour_m: float = DETOUR_M, tolerance_m: float = DEFAULT_TOLERANCE_M):
        if twin.request.kind != "grasp":
            raise UserError(f"the grasp planner needs a grasp twin, got a {twin.request.kind!r} twin")
        if pre_grasp_m <= 0 or lift_m <= 0 or detour_m < 0:
            raise UserError(f"pre-grasp back-off and lift must be positive (got {pre_grasp_m}, {lift_m})")
        self.twin, self.cell = twin, cell
        self.pre_grasp_m, self.lift_m, self.detour_m = float(pre_grasp_m), float(lift_m), float(detour_m)
        self.palm = cell.grasp_hand.prefix + cell.grasp_hand.root_body
        self.ik = ArmIK(twin, self.palm)
        m = self.ik.model
        self.hand_qadr = np.array([m.jnt_qposadr[m.joint(j).id] for j in twin.hand_joints])
        self.checker = CollisionChecker(twin, tolerance_m)

    # -- IK ------------------------------------------------------------------------------------
    def configuration(self, arm_q: np.ndarray, hand_q: np.ndarray) -> np.ndarray:
        """Full qpos of the IK model with these arm and hand joints."""
        q = self.ik.model.qpos0.copy()
        q[self.ik.arm_qadr] = arm_q
        q[self.hand_qadr] = hand_q
        return q

    def palm_pose(self, arm_q: np.ndarray, hand_q: np.ndarray | None = None) -> np.ndarray:
        """4x4 world pose of the LEAP palm at these arm joints (forward kinematics)."""
        hand = np.zeros(len(self.hand_qadr)) if hand_q is None else hand_q
        return self.ik.frame_pose(self.configuration(arm_q, hand)).as_matrix()

    def solve(self, seed: np.ndarray, target: np.ndarray, hand_q: np.ndarray, what: str) -> np.ndarray:
        """Arm joints putting the palm at `target` (4x4), from `seed`; PlanningFailed if IK misses it."""
        q = self.ik.solve(self.configuration(seed, hand_q), mink.SE3.from_matrix(np.asarray(target, float)))
        arm = q[self.ik.arm_qadr].copy()
        got = self.palm_pose(arm, hand_q)
        pos_err = float(np.linalg.norm(got[:3, 3] - target[:3, 3]))
        rot_err = float(np.linalg.norm(mink.SO3.from_matrix(got[:3, :3]).inverse()
                                       .multiply(mink.SO3.from_matrix(target[:3, :3])).log()))
        if pos_err > MAX_ERROR_M or rot_err > MAX_ERROR_RAD:
            raise PlanningFailed(f"{what}: out of reach (IK misses the palm pose by {pos_err * 1e3:.1f} mm, "
                                 f"{np.degrees(rot_err):.1f} deg)")
        return arm

    def line(self, seed: np.ndarray, start: np.ndarray, end: np.ndarray, hand_q: np.ndarray, what: str) -> np.ndarray:
        """Arm waypoints (N, 7) carrying the palm on the straight line start -> end (4x4, same orientation)."""
        n = max(1, int(np.ceil(np.linalg.norm(end[:3, 3] - start[:3, 3]) / STEP_M)))
        out, q = [], np.asarray(seed, float)
        for i in range(1, n + 1):
            target = np.array(end, float)
            target[:3, 3] = start[:3, 3] + (end[:3, 3] - start[:3, 3]) * i / n
            q = self.solve(q, target, hand_q, what)
            out.append(q)
        return np.array(out)

    # -- collisions ----------------------------------------------------------------------------
    def check_path(self, start: np.ndarray, path: np.ndarray, hand_q: np.ndarray, what: str,
                   with_object: bool = True) -> None:
        hit = self.checker.first_collision_on_path(start, path, hand_q, with_object)
        if hit is not None:
            raise PlanningFailed(f"{what}: collision at {hit[0] * 100:.0f} % of the path ({hit[1]})")

    # -- the plan ------------------------------------------------------------------------------
    def plan(self, request: GraspRequest) -> GraspMotion:
        arm_q = np.asarray(request.arm_q, float)
        hand = np.asarray(request.hand_open, float)
        if arm_q.shape != (len(self.twin.arm_joints),) or hand.shape != (len(self.twin.hand_joints),):
            raise UserError(f"grasp request: need {len(self.twin.arm_joints)} arm and "
                            f"{len(self.twin.hand_joints)} hand joints, got {arm_q.shape} and {hand.shape}")
        self.checker.set_object(request.object_pose)
        grasp = np.asarray(request.palm_grasp, float)
        pre = pre_grasp_pose(grasp, self.pre_grasp_m)
        lift = lifted_pose(grasp, self.lift_m)

        q_pre = self.solve(arm_q, pre, hand, "pre-grasp")
        approach = self._approach(arm_q, q_pre, pre, hand)
        insert = self.line(approach[-1], pre, grasp, hand, "insert")
        self.check_path(approach[-1], insert, hand, "insert")
        lifted = self.line(insert[-1], grasp, lift, hand, "lift")
        self.check_path(insert[-1], lifted, hand, "lift", with_object=False)
        return GraspMotion(approach=approach, insert=insert, lift=lifted, palm_pre=pre, palm_lift=lift)

    def _approach(self, arm_q: np.ndarray, q_pre: np.ndarray, pre: np.ndarray, hand: np.ndarray) -> np.ndarray:
        """The straight joint-space line to the pre-grasp, or a detour above it when the line collides."""
        direct = q_pre[None].copy()
        try:
            self.check_path(arm_q, direct, hand, "approach")
            return direct
        except PlanningFailed as exc:
            if self.detour_m <= 0:
                raise
            first = exc
        above = np.array(pre, float)
        above[2, 3] += self.detour_m
        try:
            q_above = self.solve(q_pre, above, hand, "approach detour")
            down = self.line(q_above, above, pre, hand, "approach detour")
            path = np.vstack([q_above[None], down])
            self.check_path(arm_q, path, hand, "approach detour")
        except PlanningFailed as exc:
            raise PlanningFailed(f"{first}; {exc}") from None
        return path
