"""identify(): a push recording + its twin -> mass, friction, a 95 % interval and
an honest identifiability verdict (plus an optional report folder)."""
from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import mujoco
import numpy as np
import torch
import trimesh

from dream_hw.cell import load_cell
from dream_hw.errors import UserError
from dream_sysid.bag.reader import load_scene_model
from dream_sysid.bag.recording import PushRecording
from dream_sysid.identification import fit
from dream_sysid.identification.prepare import NotInformative, prepare
from dream_sysid.identification.result import IdentificationResult
from dream_sysid.identification.stall import stall_bound
from dream_sysid.identification.push_fit import PushFit
from dream_sysid.identification.twin_replay import PROFILE_PASSES, SEEDED_PASSES, TwinReplay
from dream_sysid.twin.physics_only import physics_only

PROFILE_RANGE = (0.015, 3.0)   # kg: the twin's profile spans every mass the cell could push
COARSE_MASSES = 13             # log-spaced over PROFILE_RANGE (x1.55 steps)
FINE_MASSES = 6                # between the coarse neighbours of the lowest point
LINE_SEARCH_STEPS = np.geomspace(0.002, 0.4, 12)   # gradient step lengths tried, in (log m, log mu)
MAX_CI_RATIO = 1.5   # upper/lower 95 % bound above this: the push does not pin the mass down
HELP_PUSH = ("push faster or longer, or let the object slide free: mass shows only while the finger "
             "accelerates the object (bench/push_information.py gives a program's expected interval)")


def object_mesh(model: mujoco.MjModel, body: str) -> trimesh.Trimesh:
    """The object's mesh in its body frame, from the twin (visual mesh, else its collision parts)."""
    bid = model.body(body).id
    geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == bid and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_MESH]
    if not geoms:
        raise UserError(f"object body {body!r} has no mesh geoms to take its shape from")
    visual = [g for g in geoms if model.geom_contype[g] == 0] or geoms
    parts = []
    for g in visual:
        mid = model.geom_dataid[g]
        va, vn = model.mesh_vertadr[mid], model.mesh_vertnum[mid]
        fa, fn = model.mesh_faceadr[mid], model.mesh_facenum[mid]
        verts = model.mesh_vert[va:va + vn].astype(float)
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, model.geom_quat[g])
        verts = verts @ rot.reshape(3, 3).T + model.geom_pos[g]
        parts.append(trimesh.Trimesh(verts, model.mesh_face[fa:fa + fn], process=False))
    return trimesh.util.concatenate(parts)


def identify(recording: PushRecording | Sequence[PushRecording], *, scene: Path, object_body: str = "object",
             report_dir: Path | None = None, progress: bool = True) -> IdentificationResult:
    """The object's mass from one push recording, or from several pushes of the same object
    (their likelihoods over mass added: each push keeps its own friction and latency)."""
    started = time.monotonic()
    recordings = [recording] if isinstance(recording, PushRecording) else list(recording)
    if not recordings:
        raise UserError("no push recordings to identify from")
    log = (lambda msg: print(f"[identify] {msg}", file=sys.stderr)) if progress else (lambda msg: None)
    model = load_scene_model(Path(scene), object_body)
    cell = load_cell()
    mesh = object_mesh(model, object_body)
    pushes: list[PushFit] = []
    stalled: list[tuple[PushRecording, NotInformative]] = []
    for n, rec in enumerate(recordings):
        tag = f"push {n + 1} of {len(recordings)}: " if len(recordings) > 1 else ""
        try:
            prep = prepare(rec, model, mesh, object_body=object_body, arm_joints=cell.arm.mjcf_joints,
                           hand_prefix=cell.push_hand.prefix)
        except NotInformative as exc:
            if len(recordings) > 1:
                log(f"{tag}{exc}: left out")
            stalled.append((rec, exc))
            continue
        pushes.append(_reduced_fit(rec, prep, Path(scene), model, object_body, cell, lambda m: log(tag + m)))
    if not pushes:
        return _not_moved(stalled, Path(scene), model, object_body, cell, started, log)

    # Settle the estimate and its interval on the MuJoCo twin itself (the reduced
    # model's finger and contacts only approximate it): a profile over the whole
    # mass range with friction re-fitted over its whole range at each mass, then two
    # finer passes around its lowest point. (Friction over its whole range, not only along
    # the reduced model's mu*m valley: measured on the ketchup bottle at 0.7 kg, that valley
    # sat at mu*m 0.016 for a true 0.19.) Several pushes: every push on the same masses,
    # the passes placed by their summed costs.
    t_stage = time.monotonic()
    coarse = np.linspace(np.log(PROFILE_RANGE[0]), np.log(PROFILE_RANGE[1]), COARSE_MASSES)
    bar = _bar(progress, "twin profile", (PROFILE_PASSES + 2 * SEEDED_PASSES) * len(pushes))
    tick = (lambda i, n: bar.update(1)) if bar else None
    for p in pushes:
        p.add_pass(coarse, seeded=False, progress=tick)
    i = int(np.argmin(sum(p.cost for p in pushes)))
    # The finely sampled stretch: between the coarse neighbours of the lowest coarse point
    # (x1.13 steps), then a finest pass at quarter steps either side of the lowest point so far
    # (the mass resolves to ~3 %). Each pass starts from the valley before it (log-friction
    # interpolated between its masses) and searches half a step either side of it.
    window = (coarse[max(i - 1, 0)], coarse[min(i + 1, COARSE_MASSES - 1)])
    fine = np.linspace(*window, FINE_MASSES + 2)[1:-1]
    for p in pushes:
        p.add_pass(fine, seeded=True, progress=tick)
    step = float(fine[1] - fine[0])
    lowest = pushes[0].lm[int(np.argmin(sum(p.cost for p in pushes)))]
    finest = np.clip(lowest + step * np.array([-0.5, -0.25, 0.25, 0.5]), coarse[0], coarse[-1])
    for p in pushes:
        p.add_pass(finest, seeded=True, progress=tick)
    if bar:
        bar.close()
    log(f"twin profile ({time.monotonic() - t_stage:.1f} s)")
    for p in pushes:
        p.settle(window)
    # Model error shows as residuals above the noise and correlated in time: both
    # inflate each push's noise scale (scale2), and as a jagged profile (roughness); the
    # chaos of the push as the estimate's own cost under start shifts (jitter). The
    # interval admits all three. Several pushes: their likelihoods and allowances add.
    plm = pushes[0].lm
    like = sum(p.likelihood for p in pushes)
    roughness = sum(p.roughness / p.scale2 for p in pushes)
    jitter = sum(p.jitter / p.scale2 for p in pushes)
    lo, hi, closed = fit.interval(plm, like, 0.0, 1.0, roughness, jitter)
    ratio = float(np.exp(hi - lo))
    identifiable = closed and ratio <= MAX_CI_RATIO
    warning = None
    if not identifiable:
        what = "this push does not" if len(pushes) == 1 else f"these {len(pushes)} pushes do not"
        warning = (f"{what} determine mass (95 % interval {np.exp(lo):.3f}-{np.exp(hi):.3f} kg"
                   f"{'' if closed else ' or wider'}: mass and friction trade off along a valley); {HELP_PUSH}")
    if stalled:
        warning = (warning + "; " if warning else "") + f"{len(stalled)} of {len(recordings)} pushes did not " \
            "slide the object and were left out"
    # The estimate: the profile likelihood's mean (fit.profile_mean), friction from each
    # push's valley there. The best-fitting replays give the noise scale, the RMSEs and the
    # report's trajectories.
    log_m = float(np.clip(fit.profile_mean(plm, like, 1.0), lo, hi))
    mu = float(np.exp(np.mean([np.interp(log_m, plm, p.lmu) for p in pushes])))
    rmse = np.array([_rmse(p.final_res) for p in pushes])
    pose_rmse, rot_rmse = (float(v) for v in np.sqrt((rmse ** 2).mean(axis=0)))
    result = IdentificationResult(
        mass_kg=float(np.exp(log_m)), mass_ci95_kg=(float(np.exp(lo)), float(np.exp(hi))),
        friction=mu, identifiable=bool(identifiable), warning=warning,
        pose_rmse_m=pose_rmse, rot_rmse_rad=rot_rmse, iterations=sum(p.iterations for p in pushes),
        seconds=time.monotonic() - started,
    )
    if report_dir is not None:
        from dream_sysid.identification.report import write_report

        write_report(Path(report_dir), pushes, (plm, like, roughness, jitter), result, Path(scene), object_body)
        log(f"report written to {report_dir}")
    return result


def _reduced_fit(rec: PushRecording, prep, scene: Path, model: mujoco.MjModel, object_body: str, cell,
                 log) -> PushFit:
    """One push through the differentiable push (global search, one gradient step): the mu*m
    valley and the latency the twin profile starts from."""
    obj = fit.PushObjective(prep)
    log(f"{len(prep.obs.t)} tracked poses and {len(prep.obs.tip_t)} hand states in the push window "
        f"({prep.scenario.steps * prep.scenario.dt:.2f} s); pushing finger: {prep.finger}")
    t_stage = time.monotonic()
    lm, lmu, costs = fit.global_search(obj)
    i, j, k = np.unravel_index(int(np.argmin(costs)), costs.shape)
    start = np.array([lm[i], lmu[i, j], fit.LATENCIES[k]])
    log(f"global search: mass {np.exp(lm[i]):.3f} kg, friction {np.exp(lmu[i, j]):.2f}, "
        f"latency {fit.LATENCIES[k] * 1e3:.0f} ms ({time.monotonic() - t_stage:.1f} s)")
    t_stage = time.monotonic()
    history: list[tuple[int, float, float, float]] = []
    reduced, _, iterations = refine_with_gradients(obj, start, history)
    log(f"gradient refinement: mass {np.exp(reduced[0]):.4f} kg, friction {np.exp(reduced[1]):.3f} "
        f"after {iterations} iterations ({time.monotonic() - t_stage:.1f} s)")
    # The twin's own finger: its fingertip weighed at the encoders' noise (fit.SIGMA_TIP_TWIN).
    twin_obj = fit.PushObjective(prep, sigma_scale={"pos": 1.0, "rot": 1.0, "tip": fit.SIGMA_TIP_TWIN / fit.SIGMA_TIP})
    replay = _twin_replay(scene, model, rec, prep, object_body, cell)
    return PushFit(obj=obj, twin_obj=twin_obj, replay=replay,
                   start=start, reduced=reduced, history=history, iterations=iterations, grid=(lm, lmu, costs))


def _twin_replay(scene: Path, model: mujoco.MjModel, recording: PushRecording, prep, object_body: str,
                 cell) -> TwinReplay:
    """The push replayed in the twin without its visual meshes (twin/physics_only.py): the same
    replays, and the model copies mujoco.rollout needs are 0.6 MB instead of 36."""
    return TwinReplay.build(physics_only(scene, model, object_body), recording, prep, object_body=object_body,
                            arm_joints=cell.arm.mjcf_joints, hand_prefix=cell.push_hand.prefix)


def _not_moved(stalled: list[tuple[PushRecording, NotInformative]], scene: Path, model: mujoco.MjModel,
               object_body: str, cell, started: float, log) -> IdentificationResult:
    """Pushes that did not slide the object: no mass, but a lower bound (identification.stall;
    of several pushes, the highest). The value reported is the twin's prior, raised to the
    bound where the prior is below it."""
    prior = float(model.body_mass[model.body(object_body).id])
    exc, bound = stalled[0][1], None
    for recording, e in stalled:
        if e.prep is None:
            continue
        b = stall_bound(_twin_replay(scene, model, recording, e.prep, object_body, cell))
        if b is not None and (bound is None or b.mass_kg > bound.mass_kg):
            exc, bound = e, b
    if bound is None:
        log(f"{exc}: nothing to identify from")
        mass, ci = prior, fit.MASS_RANGE
        warning = (f"{exc}: a push that does not slide the object cannot tell its mass "
                   f"(the value is the twin's prior); push harder or with a stiffer finger posture")
    else:
        lo = min(max(bound.mass_kg, fit.MASS_RANGE[0]), fit.MASS_RANGE[1])
        log(f"{exc}: the push held {bound.force_n:.2f} N without sliding it: mass >= {lo:.3f} kg")
        mass, ci = max(prior, lo), (lo, fit.MASS_RANGE[1])
        warning = (f"{exc}: the push pressed it with up to {bound.force_n:.1f} N and it held, so its mass is at "
                   f"least {lo:.3f} kg (friction at most {bound.mu_max:g}); the value is the twin's prior, raised "
                   f"to that bound if below it; push harder or with a stiffer finger posture")
    return IdentificationResult(
        mass_kg=mass, mass_ci95_kg=ci, friction=float("nan"), identifiable=False, warning=warning,
        pose_rmse_m=float("nan"), rot_rmse_rad=float("nan"), iterations=0, seconds=time.monotonic() - started)


def refine_with_gradients(obj: fit.PushObjective, start: np.ndarray, history: list,
                          step_lengths: np.ndarray = LINE_SEARCH_STEPS) -> tuple[np.ndarray, float, int]:
    """One steepest-descent step on (log m, log mu): the gradient by reverse-mode autodiff through
    the differentiable push, the step's length by a line search whose candidates run as one
    batch of that push (forward only). Latency is held from the global stage.

    What the twin profile takes from here is the mu*m valley point. L-BFGS-B, one iteration,
    did the same with five sequential forward + backward passes (10 s of a 21 s identification
    of a 1.9 s push) and moved the valley by 1-2 %; this takes one backward pass and one batch."""
    latency = float(start[2])
    p = torch.tensor([start[0], start[1], latency], dtype=torch.float64, requires_grad=True)
    c = (obj.residual_vector(p) ** 2).sum()
    c.backward()
    c0, grad = float(c.detach()), p.grad.numpy()[:2].copy()
    history.append((0, float(np.exp(start[0])), float(np.exp(start[1])), c0))
    norm = float(np.linalg.norm(grad))
    if not np.isfinite(norm) or norm == 0.0:
        return start.copy(), c0, 0
    lo = np.log([fit.MASS_RANGE[0], fit.MU_RANGE[0]])
    hi = np.log([fit.MASS_RANGE[1], fit.MU_RANGE[1]])
    cand = np.clip(start[:2] - np.asarray(step_lengths, float)[:, None] * grad / norm, lo, hi)
    with torch.no_grad():
        costs, _ = obj.cost(torch.as_tensor(cand[:, 0]), torch.as_tensor(cand[:, 1]), np.array([latency]))
    costs = costs[:, 0].numpy()
    k = int(np.argmin(costs))
    if not costs[k] < c0:
        return start.copy(), c0, 1
    history.append((1, float(np.exp(cand[k, 0])), float(np.exp(cand[k, 1])), float(costs[k])))
    return np.array([cand[k, 0], cand[k, 1], latency]), float(costs[k]), 1


def _bar(progress: bool, desc: str, total: int):
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="pass", file=sys.stderr, leave=False)


def _rmse(res: dict[str, torch.Tensor]) -> tuple[float, float]:
    """Position (m) and rotation (rad) RMSE from normalised residuals (the Huber-free ones)."""
    pos = res["pos"][0].numpy() * fit.SIGMA_POS
    rot = res["rot"][0].numpy() * fit.SIGMA_YAW      # the yaw, or the rotation about the vertical
    return float(np.sqrt((pos ** 2).sum(axis=1).mean())), float(np.sqrt((rot ** 2).mean()))
