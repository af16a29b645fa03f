"""Simulation study helpers (ROS-free): evaluate a trained grasp policy in the grasp twin.

What a trial does, and why it is an honest test of the policy:

  * the object sits at its TRUE mass, misplaced from the pose the policy plans with
    by a random (dx, dy, dyaw) (default +-3 mm, +-3 deg: a pose-estimate error);
  * the policy is conditioned on some mass (true, identified, arbitrary ...): it ranks
    its candidate wrist poses by its contact head (as dream_grasp.policy does: product of
    the two scores, rounded to 0.01, then more fingers, then order), predicts the joint
    targets for the chosen one, and its force head becomes per-joint currents through
    GripForceMapper (capped at the hardware cap) with the candidate's demonstrated fingers;
  * trial i uses the candidate ranked (i mod top_k): a cell does not always reach the
    best-ranked wrist pose, and one grasp alone would make the rate a coin of its own;
  * trial.run_grasp closes the floating LEAP hand from the pre-shape under those current
    limits, lifts 12 cm and holds 3 s: success = object >= 10 cm up and still in the hand.

A mass-unaware baseline keeps exactly the same wrist poses and joint targets (those of
the policy conditioned on the true mass) and replaces the currents by one fixed value.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import mujoco
import numpy as np
import torch

from dream_grasp.force import GripForceMapper
from dream_grasp.hand_scene import FloatingHandScene
from dream_grasp.model import GraspMLP
from dream_grasp.train import points_in_palm
from dream_grasp.trial import object_pose_offset, preshape, run_grasp, set_mass, thumb_mask

JITTER_M = 0.003               # +- misplacement: about the pose tracker's goal (3 mm / 2 deg median,
JITTER_RAD = np.radians(3.0)   # bench/results/tracker.json measures p95 <= 2.5 mm / 1.5 deg)
TOP_K = 5


def object_to_world(scene: FloatingHandScene) -> np.ndarray:
    """4x4 pose of the object at its home pose (where the policy believes it is)."""
    pose = np.eye(4)
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, scene.object_home[3:])
    pose[:3, :3], pose[:3, 3] = rot.reshape(3, 3), scene.object_home[:3]
    return pose


@dataclass
class Prediction:
    joint_targets: np.ndarray      # (K, 16)
    contact: np.ndarray            # (K, 2)
    force: np.ndarray              # (K,)
    fingers: np.ndarray            # (K, 4) demonstrated contact fingers

    def ranking(self) -> np.ndarray:
        score = np.round(self.contact[:, 0] * self.contact[:, 1], 2)
        k = len(score)
        return np.lexsort((np.arange(k), -self.fingers.sum(axis=1), -score))


class StudyPolicy:
    """A trained GraspMLP with its candidate wrist poses (the demonstrations' palm poses)."""

    def __init__(self, model: GraspMLP, points_object: np.ndarray, palm_in_object: np.ndarray,
                 fingers: np.ndarray, f_max: float):
        self.model = model.eval()
        self.palm_in_object = np.asarray(palm_in_object, float)
        self.fingers = np.asarray(fingers, bool)
        self.f_max = float(f_max)
        self.inputs = torch.from_numpy(points_in_palm(np.asarray(points_object, np.float32), self.palm_in_object))

    def __len__(self) -> int:
        return len(self.palm_in_object)

    def predict(self, mass_kg: float) -> Prediction:
        k = len(self)
        with torch.inference_mode():
            a, r, f = self.model(self.inputs, torch.full((k, 1), float(mass_kg)))
        return Prediction(a.numpy().astype(float), r.numpy().astype(float), f.numpy().reshape(k).astype(float),
                          self.fingers)


@dataclass
class Condition:
    """What drives a batch of trials: the mass the policy is told, or a fixed current."""

    name: str
    mass_kg: float | None = None           # conditioning mass (None: per-trial from `masses`)
    masses: np.ndarray | None = None       # per-trial conditioning masses (arbitrary-mass condition)
    fixed_current_ma: float | None = None  # baseline: targets of the true-mass policy, this current


@dataclass
class EvalResult:
    condition: str
    successes: list[bool]
    currents_ma: list[float]               # mean active-finger current per trial
    conditioning_kg: list[float | None]
    unstable: int = 0
    penetrating: int = 0
    details: list[dict] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return float(np.mean(self.successes)) if self.successes else float("nan")

    def summary(self) -> dict:
        n = len(self.successes)
        return {"success_rate": round(self.rate, 3), "successes": int(sum(self.successes)), "trials": n,
                "mean_active_current_ma": round(float(np.mean(self.currents_ma)), 1) if n else None,
                "unstable": self.unstable, "penetrating": self.penetrating}


def jitters(n: int, seed: int, jitter_m: float = JITTER_M, jitter_rad: float = JITTER_RAD) -> np.ndarray:
    """(n, 3) object misplacements (dx, dy, dyaw), the same for every condition of one seed."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-jitter_m, jitter_m, (n, 2)), rng.uniform(-jitter_rad, jitter_rad, n)])


def evaluate(scene: FloatingHandScene, policy: StudyPolicy, mapper: GripForceMapper, true_mass_kg: float,
             condition: Condition, offsets: np.ndarray, top_k: int = TOP_K) -> EvalResult:
    """len(offsets) trials of `policy` on the scene's object at its true mass under `condition`."""
    set_mass(scene, true_mass_kg)
    thumb = thumb_mask(scene)
    obj = object_to_world(scene)
    cache: dict[float, Prediction] = {}

    def prediction(mass: float) -> Prediction:
        if mass not in cache:
            cache[mass] = policy.predict(mass)
        return cache[mass]

    out = EvalResult(condition.name, [], [], [])
    for i, (dx, dy, dyaw) in enumerate(offsets):
        if condition.fixed_current_ma is not None:
            cond_mass = None
            pred = prediction(true_mass_kg)
        else:
            cond_mass = float(condition.masses[i] if condition.masses is not None else condition.mass_kg)
            pred = prediction(cond_mass)
        order = pred.ranking()
        c = int(order[i % min(top_k, len(order))])
        palm = obj @ policy.palm_in_object[c]
        q = np.clip(pred.joint_targets[c], scene.lower, scene.upper)
        if condition.fixed_current_ma is not None:
            current = np.minimum(float(condition.fixed_current_ma), scene.servo.current_cap_ma)
        else:
            current = mapper.command(q, float(pred.force[c]), pred.fingers[c], palm_rot=palm[:3, :3]).current_ma
        res = run_grasp(scene, palm[:3, 3], palm[:3, :3], preshape(q, thumb), q, current,
                        object_qpos=object_pose_offset(scene, dx, dy, dyaw))
        active = np.repeat(pred.fingers[c], 4)
        cur = np.broadcast_to(np.asarray(current, float), (16,))
        out.successes.append(bool(res.success))
        out.currents_ma.append(float(cur[active].mean()) if active.any() else float(cur.mean()))
        out.conditioning_kg.append(cond_mass)
        out.unstable += int(res.unstable)
        out.penetrating += int(res.initial_penetration_m > 0.002)
        out.details.append({"candidate": c, "rise_m": round(res.object_rise_m, 4), "fingers": int(res.n_contacts)})
    return out


def holdable_mass(scene: FloatingHandScene, policy: StudyPolicy, mapper: GripForceMapper,
                  masses: list[float], top_k: int = 10) -> dict:
    """Success at the cap current over a mass grid (policy conditioned on each mass, nominal placement,
    its top_k candidates): the largest mass any of them lifts, and the rate per mass."""
    cap = float(np.max(scene.servo.current_cap_ma))
    offsets = np.zeros((top_k, 3))
    rates: dict[str, float] = {}
    best = 0.0
    misses = 0
    for m in sorted(masses):
        res = evaluate(scene, policy, mapper, m, Condition(f"cap@{m}", mass_kg=m, fixed_current_ma=cap),
                       offsets, top_k=top_k)
        # fixed_current conditions use the true-mass prediction: here the true mass is m, as wanted
        rates[f"{m:g}"] = round(res.rate, 3)
        if res.rate > 0:
            best, misses = m, 0
        else:
            misses += 1
            if misses >= 2:
                break
    return {"max_lifted_kg": best, "success_by_mass": rates, "current_ma": cap, "candidates": top_k}


def inference_timing(policy: StudyPolicy, mapper: GripForceMapper, scene: FloatingHandScene, mass_kg: float,
                     repeats: int = 50) -> dict:
    """Milliseconds for one wrist pose (forward + currents) and for ranking all candidates (median, p90)."""
    one = policy.inputs[:1]
    mass = torch.tensor([[float(mass_kg)]])
    obj = object_to_world(scene)

    def single() -> None:
        with torch.inference_mode():
            a, _, f = policy.model(one, mass)
        palm = obj @ policy.palm_in_object[0]
        mapper.command(a.numpy()[0].astype(float), float(f), policy.fingers[0], palm_rot=palm[:3, :3])

    def ranking() -> None:
        policy.predict(mass_kg).ranking()

    out = {}
    for name, fn in (("one_candidate_forward_and_currents", single), ("rank_all_candidates", ranking)):
        for _ in range(3):
            fn()
        ts = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            ts.append((time.perf_counter() - t) * 1e3)
        out[name] = {"median_ms": round(float(np.median(ts)), 3), "p90_ms": round(float(np.percentile(ts, 90)), 3)}
    out["candidates"] = len(policy)
    out["points"] = int(policy.inputs.shape[1])
    out["torch_threads"] = torch.get_num_threads()
    return out
