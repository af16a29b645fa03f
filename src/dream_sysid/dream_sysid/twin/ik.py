"""Differential IK for the twin's arm (mink): joint waypoints that carry a hand
frame (e.g. the Allegro index fingertip) along a Cartesian path.

The IK model is the twin without the object, and only the arm's joints move: the
hand keeps its posture, the object is not part of the robot.
"""
from __future__ import annotations

import mink
import mujoco
import numpy as np

from dream_hw.errors import UserError
from dream_sysid.twin.builder import OBJECT_BODY, Twin


class ArmIK:
    """Solves arm joint angles that put `frame` (a body of the twin) at target poses."""

    def __init__(self, twin: Twin, frame: str, orientation_cost: float = 0.5):
        spec = twin.spec.copy()
        spec.delete(spec.body(OBJECT_BODY))
        for key in list(spec.keys):
            spec.delete(key)
        self.model = spec.compile()
        if mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, frame) < 0:
            raise UserError(f"the twin has no body {frame!r} to steer")
        self.frame = frame
        self.arm_qadr = np.array([self.model.jnt_qposadr[self.model.joint(j).id] for j in twin.arm_joints])
        arm_dofs = np.array([self.model.jnt_dofadr[self.model.joint(j).id] for j in twin.arm_joints])
        self.configuration = mink.Configuration(self.model)
        self.task = mink.FrameTask(frame, "body", position_cost=1.0, orientation_cost=orientation_cost)
        posture_cost = np.full(self.model.nv, 1e4)   # hand joints: frozen
        posture_cost[arm_dofs] = 1e-3                 # arm joints: free, lightly regularised
        self.posture = mink.PostureTask(self.model, cost=posture_cost)
        self.limits = [mink.ConfigurationLimit(self.model)]

    def frame_pose(self, qpos: np.ndarray) -> mink.SE3:
        self.configuration.update(qpos)
        return self.configuration.get_transform_frame_to_world(self.frame, "body")

    def solve(self, qpos: np.ndarray, target: mink.SE3, tol: float = 5e-4, max_iters: int = 300,
              dt: float = 0.02) -> np.ndarray:
        """Full qpos (IK model layout) with the arm moved so `frame` reaches `target`."""
        self.configuration.update(qpos)
        self.posture.set_target(qpos)
        self.task.set_target(target)
        for _ in range(max_iters):
            vel = mink.solve_ik(self.configuration, [self.task, self.posture], dt, "daqp",
                                damping=1e-3, limits=self.limits)
            self.configuration.integrate_inplace(vel, dt)
            err = self.task.compute_error(self.configuration)
            if np.linalg.norm(err[:3]) < tol and np.linalg.norm(err[3:]) < 20 * tol:
                break
        return self.configuration.q.copy()

    def cartesian_path(self, qpos: np.ndarray, points: np.ndarray, rotation: mink.SO3) -> np.ndarray:
        """Arm joint waypoints (N x 7) for the frame passing through `points` with fixed orientation."""
        out = []
        q = qpos.copy()
        for p in points:
            q = self.solve(q, mink.SE3.from_rotation_and_translation(rotation, np.asarray(p, float)))
            out.append(q[self.arm_qadr])
        return np.array(out)
