"""The cuRobo grasp planner (NVlabs cuRobo MotionGen, GPU): the same three paths as the CPU
planner, planned collision-free against the table (a cuboid) and the object (its mesh
at the tracked pose).

  approach  MotionGen.plan_single to the pre-grasp (IK seeds + graph fallback + trajopt)
  insert    plan_single to the grasp with the orientation and the palm's x, y held
            (PoseCostMetric hold_partial_pose, in the goal frame: a straight line along
            the palm normal), the object disabled in the world (the fingers must reach it)
  lift      plan_single straight up with the orientation held, the object still disabled

Written against cuRobo 0.7 (curobo.wrap.reacher.motion_gen). cuRobo is not a dependency
of dream: it is imported when this planner is chosen and fails with one line naming
what is missing (the package, a CUDA device, or the robot configuration). cuRobo needs
a robot YAML with collision spheres for the Panda *with the LEAP hand*, whose
`ee_link` is the LEAP palm and whose hand joints are locked (`lock_joints`); dream does
not ship one (parameter curobo_robot_config).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dream_grasp.planner.base import GraspMotion, GraspRequest, PlanningFailed, lifted_pose, pre_grasp_pose
from dream_grasp.planner.cpu import LIFT_M, PRE_GRASP_M
from dream_hw.cell import Cell
from dream_hw.errors import UserError
from dream_sysid.twin.builder import Twin

OBJECT_NAME = "object"
HOLD_POSE = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0]    # [rx, ry, rz, x, y, z] in the goal frame: move along z only
HOLD_ORIENTATION = [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def _quat_wxyz(rot: np.ndarray) -> list[float]:
    import mujoco

    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.asarray(rot, float).flatten())
    return [float(v) for v in q]


class CuroboPlanner:
    """GraspMotion from cuRobo MotionGen (see the module docstring)."""

    name = "curobo"

    def __init__(self, twin: Twin, cell: Cell, *, robot_config: str = "", pre_grasp_m: float = PRE_GRASP_M,
                 lift_m: float = LIFT_M, device: str = "cuda:0", max_attempts: int = 5, **_unused):
        try:
            import torch
            from curobo.geom.sdf.world import CollisionCheckerType
            from curobo.geom.types import Cuboid, Mesh, WorldConfig
            from curobo.rollout.cost.pose_cost import PoseCostMetric
            from curobo.types.base import TensorDeviceType
            from curobo.types.math import Pose
            from curobo.types.state import JointState
            from curobo.util_file import load_yaml
            from curobo.wrap.reacher.motion_gen import MotionGen, MotionGenConfig, MotionGenPlanConfig
        except ImportError as exc:
            raise UserError(f"planner 'curobo' needs NVlabs cuRobo 0.7 (pip install git+https://github.com/NVlabs/"
                            f"curobo, with CUDA): {exc}") from None
        if not torch.cuda.is_available():
            raise UserError("planner 'curobo' needs a CUDA device (torch.cuda.is_available() is False); "
                            "use planner:=cpu")
        path = Path(robot_config).expanduser() if robot_config else None
        if path is None or not path.is_file():
            raise UserError("planner 'curobo' needs parameter curobo_robot_config: a cuRobo robot YAML of the arm "
                            f"with the LEAP hand (collision spheres, ee_link = the LEAP palm); got {robot_config!r}")
        self._torch, self._Pose, self._JointState = torch, Pose, JointState
        self._PlanConfig, self._PoseCostMetric = MotionGenPlanConfig, PoseCostMetric
        self.pre_grasp_m, self.lift_m, self.max_attempts = float(pre_grasp_m), float(lift_m), int(max_attempts)
        self.tensor_args = TensorDeviceType(device=torch.device(device))
        robot = load_yaml(str(path))
        robot = robot.get("robot_cfg", robot)
        t = cell.table
        table = Cuboid(name="table", dims=[t.size_xy[0], t.size_xy[1], t.thickness],
                       pose=[t.center_xy[0], t.center_xy[1], t.top_z - t.thickness / 2, 1.0, 0.0, 0.0, 0.0])
        mesh = twin.geometry.mesh
        obj = Mesh(name=OBJECT_NAME, pose=[*map(float, twin.object_qpos[:3]), *map(float, twin.object_qpos[3:])],
                   vertices=np.asarray(mesh.vertices).tolist(), faces=np.asarray(mesh.faces).tolist())
        config = MotionGenConfig.load_from_robot_config(
            robot, WorldConfig(cuboid=[table], mesh=[obj]), self.tensor_args, interpolation_dt=0.02,
            collision_checker_type=CollisionCheckerType.MESH, use_cuda_graph=False)
        self.motion_gen = MotionGen(config)
        self.motion_gen.warmup()
        self.joint_names = list(self.motion_gen.kinematics.joint_names)[: len(twin.arm_joints)]

    # -- cuRobo conversions --------------------------------------------------------------------
    def _pose(self, matrix: np.ndarray):
        pos = self.tensor_args.to_device([[float(v) for v in matrix[:3, 3]]])
        quat = self.tensor_args.to_device([_quat_wxyz(matrix[:3, :3])])
        return self._Pose(position=pos, quaternion=quat)

    def _start(self, arm_q: np.ndarray):
        return self._JointState.from_position(self.tensor_args.to_device([[float(v) for v in arm_q]]),
                                              joint_names=self.joint_names)

    def _plan(self, arm_q: np.ndarray, goal: np.ndarray, what: str, hold: list[float] | None = None) -> np.ndarray:
        metric = None
        if hold is not None:
            metric = self._PoseCostMetric(hold_partial_pose=True, hold_vec_weight=self.tensor_args.to_device(hold))
        cfg = self._PlanConfig(enable_graph=hold is None, max_attempts=self.max_attempts, pose_cost_metric=metric)
        result = self.motion_gen.plan_single(self._start(arm_q), self._pose(goal), cfg)
        if not bool(result.success.view(-1)[0].item()):
            raise PlanningFailed(f"{what}: cuRobo found no collision-free motion ({result.status})")
        path = result.get_interpolated_plan().position.detach().cpu().numpy().reshape(-1, len(arm_q))
        return path[1:] if len(path) > 1 else path

    # -- Planner ---------------------------------------------------------------------------------
    def plan(self, request: GraspRequest) -> GraspMotion:
        checker = self.motion_gen.world_coll_checker
        checker.update_obstacle_pose(OBJECT_NAME, self._pose(np.asarray(request.object_pose, float)))
        grasp = np.asarray(request.palm_grasp, float)
        pre, lift = pre_grasp_pose(grasp, self.pre_grasp_m), lifted_pose(grasp, self.lift_m)
        approach = self._plan(np.asarray(request.arm_q, float), pre, "approach")
        checker.enable_obstacle(OBJECT_NAME, False)
        try:
            insert = self._plan(approach[-1], grasp, "insert", HOLD_POSE)
            lifted = self._plan(insert[-1], lift, "lift", HOLD_ORIENTATION)
        finally:
            checker.enable_obstacle(OBJECT_NAME, True)
        return GraspMotion(approach=approach, insert=insert, lift=lifted, palm_pre=pre, palm_lift=lift)
