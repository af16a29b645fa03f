"""The identification report: plots a researcher would rather look at than read,
the result as JSON, and the twin updated with the identified mass and friction."""
from __future__ import annotations

import json
from pathlib import Path

import mujoco
import numpy as np
import torch

from dream_sysid.identification import fit
from dream_sysid.identification.result import IdentificationResult


def _trajectory(obj: fit.PushObjective, params: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        p = torch.as_tensor(params, dtype=torch.float64).reshape(1, 3)
        sim = obj.simulate(p[:, 0], p[:, 1])
    return _with_origin(obj, sim)


def _with_origin(obj: fit.PushObjective, sim: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """A rollout (B=1) as arrays, with the object frame's origin: the point the tracker tracks and
    the identification compares. (The COM is not it: plotted against the tracked origin, a Letter A's
    replay looked 4 mm off sideways where it matched.)"""
    out = {k: v[0].numpy() for k, v in sim.items()}
    if "origin" not in out:
        with torch.no_grad():
            out["origin"] = obj.planar_origin(sim["com"], sim["yaw"] - obj.prep.scenario.yaw0)[0].numpy()
    return out


def write_report(out: Path, pushes: list, prof: tuple, result: IdentificationResult, scene: Path,
                 object_body: str) -> None:
    """`pushes`: the identification's push_fit.PushFit, settled (each: the global stage's
    estimate, shown with the differentiable push, and its best twin replay); `prof`: the
    (summed) profile likelihood over log-mass and the interval's two allowances. One
    trajectory figure per push (trajectory.png, then trajectory_push2.png, ...)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    for n, p in enumerate(pushes):
        name = "trajectory.png" if n == 0 else f"trajectory_push{n + 1}.png"
        _trajectory_figure(plt, out / name, p.obj, p.start, p.final)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for n, p in enumerate(pushes):
        if p.history:
            it, m, mu, c = zip(*p.history)
            ax.semilogy(it, c, "o-", label=f"push {n + 1}" if len(pushes) > 1 else None)
    if len(pushes) > 1:
        ax.legend(fontsize=7)
    ax.set_xlabel("iteration (0 = best grid point)")
    ax.set_ylabel("robust cost")
    ax.set_title("Gradient refinement")
    fig.tight_layout()
    fig.savefig(out / "loss_curve.png", dpi=120)
    plt.close(fig)

    lm, lmu, costs = pushes[0].grid
    plm, like, roughness, jitter = prof
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    if len(pushes) > 1:
        for n, p in enumerate(pushes):
            ax.plot(np.exp(plm), p.likelihood, lw=0.8, alpha=0.6, label=f"push {n + 1}")
    ax.plot(np.exp(plm), like, "o-", ms=3, color="k" if len(pushes) > 1 else "C0",
            label="all pushes" if len(pushes) > 1 else None)
    ax.axhline(fit.CHI2_95 + 2.0 * roughness + jitter, color="C3", ls="--", lw=1,
               label="95 % threshold (raised by the profile's roughness and the push's chaos)")
    ax.axvspan(*result.mass_ci95_kg, color="C3", alpha=0.1, label="95 % interval")
    ax.axvline(result.mass_kg, color="C3", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("mass (kg)")
    ax.set_ylabel("twin profile Δχ² (friction, latency re-fitted)")
    ax.set_ylim(0, max(4 * fit.CHI2_95, 1))
    ax.legend(fontsize=7)
    ax = axes[1]
    sc = ax.scatter(np.exp(lmu).ravel(), np.repeat(np.exp(lm), lmu.shape[1]), c=np.log10(costs.min(axis=2)).ravel(),
                    s=18, cmap="viridis")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("friction μ")
    ax.set_ylabel("mass (kg)")
    ax.set_title("log10 cost over the global grid (laid along μ·m)" + (", push 1" if len(pushes) > 1 else ""))
    fig.colorbar(sc, ax=ax)
    fig.tight_layout()
    fig.savefig(out / "loss_profile.png", dpi=120)
    plt.close(fig)

    (out / "result.json").write_text(json.dumps(result.to_dict(), indent=2))
    _updated_twin(out, scene, object_body, result)


def _trajectory_figure(plt, path: Path, obj: fit.PushObjective, start: np.ndarray, final: dict) -> None:
    """Tracked against simulated: the differentiable push at the global stage's `start`, and the
    twin's replay `final` at the identified point; top view and x over time with the finger's
    deflection."""
    prep = obj.prep
    scn = prep.scenario
    t_sim = prep.t0 + scn.dt * np.arange(scn.steps)
    before = _trajectory(obj, start)
    after = _with_origin(obj, final)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    ax = axes[0]
    ax.plot(prep.obs.xy[:, 0], prep.obs.xy[:, 1], ".", color="k", ms=4, label="tracked")
    ax.plot(before["origin"][:, 0], before["origin"][:, 1], "--", color="C1", label="differentiable push, global stage")
    ax.plot(after["origin"][:, 0], after["origin"][:, 1], color="C3", label="twin replay, identified")
    ax.plot(after["tip"][:, 0], after["tip"][:, 1], color="0.6", lw=1, label="fingertip (sim)")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_title("Object frame's origin (top view)")
    ax.legend(fontsize=7)
    ax = axes[1]
    x0 = prep.pos0[0]        # the object's resting start, from every resting pose (the replays start there)
    ax.plot(prep.obs.t - prep.t0, (prep.obs.xy[:, 0] - x0) * 1e3, ".", color="k", ms=4, label="tracked x")
    ax.plot(t_sim - prep.t0, (before["origin"][:, 0] - x0) * 1e3, "--", color="C1", label="before")
    ax.plot(t_sim - prep.t0, (after["origin"][:, 0] - x0) * 1e3, color="C3", label="after")
    ax.plot(prep.obs.tip_t - prep.t0, (prep.obs.tip_xy[:, 0] - np.interp(prep.obs.tip_t, t_sim, scn.anchor[:, 0])) * 1e3,
            ".", color="C0", ms=3, label="finger deflection, measured (mm)")
    ax.plot(t_sim - prep.t0, (after["tip"][:, 0] - scn.anchor[:, 0]) * 1e3, color="C0", label="finger deflection, sim")
    ax.set_xlabel("time in push window (s)")
    ax.set_ylabel("mm")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _updated_twin(out: Path, scene: Path, object_body: str, result: IdentificationResult) -> None:
    """The twin with the identified mass (inertia scaled with it) and friction."""
    spec = mujoco.MjSpec.from_file(str(scene))
    body = spec.body(object_body)
    scale = result.mass_kg / body.mass if body.mass > 0 else 1.0
    body.mass = result.mass_kg
    body.fullinertia = [v * scale for v in body.fullinertia]
    body.inertia = [v * scale for v in body.inertia]
    for geom in body.geoms:
        if geom.contype or geom.conaffinity:
            geom.friction = [result.friction, geom.friction[1], geom.friction[2]]
    (out / "twin_identified.xml").write_text(spec.to_xml())
