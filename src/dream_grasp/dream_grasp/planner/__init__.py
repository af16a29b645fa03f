"""Arm motion planning for a grasp: a Planner protocol (base), the CPU backend (mink IK +
MuJoCo collisions), the cuRobo backend (GPU, imported only when chosen), and the
timing of joint paths into JointTrajectory points (trajectory)."""
from __future__ import annotations

from dream_grasp.planner.base import GraspMotion, GraspRequest, Planner, PlanningFailed
from dream_hw.errors import UserError

PLANNERS = ("cpu", "curobo")


def make_planner(kind: str, twin, cell, **options) -> Planner:
    """The named backend for this grasp twin: 'cpu' or 'curobo'."""
    if kind == "cpu":
        from dream_grasp.planner.cpu import CpuPlanner

        return CpuPlanner(twin, cell, **options)
    if kind == "curobo":
        from dream_grasp.planner.curobo import CuroboPlanner

        return CuroboPlanner(twin, cell, **options)
    raise UserError(f"planner must be one of {PLANNERS}, got {kind!r}")


__all__ = ["GraspMotion", "GraspRequest", "Planner", "PlanningFailed", "PLANNERS", "make_planner"]
