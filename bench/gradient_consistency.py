"""How far the differentiable push (torch planar model) agrees with MuJoCo on the same push.

Issue 5 asks for autodiff gradients of the trajectory loss that agree with central finite
differences of the MuJoCo twin within 5 % where the loss is smooth. This script measures
where that stands on the simplest case both can simulate (dream_sysid.identification.
mujoco_push, with the push twin's friction cone): a 5 cm box on the table pushed by a
compliant fingertip (Cartesian spring + damper to a commanded anchor, the reduced model of
the Allegro finger under its PD gains), the fingertip rigid at a fixed height
(`face_friction_coupling=0` in the planar model).

`--case sliding` is the smooth case (mujoco_push.sliding_push; the test
tests/sysid/test_gradient_consistency.py asserts it): the object is already sliding
(0.3 m/s) with the fingertip pressed on it, the commanded fingertip speed swings 0.3 +- 0.06
m/s at 1.5 Hz, and the box rests on a single support point. MuJoCo's gradient there is the
median of the loss increments at 1e-4 steps in log space, with their spread
(-> gradient_consistency_sliding.json), once with MuJoCo's default (soft) fingertip contact
and once with a near-rigid one, as the planar model's tip contact is. MuJoCo's soft
friction is not quite Coulomb's: `sliding_friction` in the results measures a free box
sliding on the table with the twins' two cone settings (why push twins are pyramidal, and
planar_model.TABLE_FRICTION_SCALE).

It prints and saves (bench/results/gradient_consistency.json):
  * trajectories: final object x and RMS difference, MuJoCo vs torch, over masses;
  * smoothness: MuJoCo's loss slope over log-mass at a coarse step (0.5 %) and a fine
    step (0.01 %): stick-slip onsets and stops land on 2 ms steps, so the loss is smooth
    only piecewise;
  * gradients: torch autodiff against MuJoCo central differences (eps 1e-4 in log space)
    at several (mass, friction) points, loss over the push (first 0.25 s) and the whole run.

    .venv/bin/python bench/gradient_consistency.py
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import mujoco
import numpy as np
import torch

from dream_hw.cell import load_cell
from dream_sysid.identification import mujoco_push as mp
from dream_sysid.identification.planar_model import PushScenario, rollout, straight_push

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "gradient_consistency.json"

CELL = load_cell()
TWIN = {"cone": CELL.sim.cone("push"), "impratio": CELL.sim.impratio("push")}   # the push twin's


def mujoco_push(scn: PushScenario, mass: float, mu: float, contacts: mp.Contacts | None = None) -> np.ndarray:
    return mp.simulate(scn, mass, mu, contacts, **TWIN)


def torch_push(scn: PushScenario, mass: float, mu: float) -> np.ndarray:
    with torch.no_grad():
        o = rollout(scn, torch.tensor([np.log(mass)], dtype=torch.float64),
                    torch.tensor([np.log(mu)], dtype=torch.float64))
    return o["com"][0].numpy()


def loss_mujoco(scn, log_m, log_mu, target, steps, contacts: mp.Contacts | None = None) -> float:
    return mp.loss(scn, log_m, log_mu, target, steps, contacts=contacts, **TWIN)


def grad_torch(scn, log_m, log_mu, target, steps) -> tuple[float, np.ndarray]:
    p = torch.tensor([log_m, log_mu], dtype=torch.float64, requires_grad=True)
    o = rollout(scn, p[0:1], p[1:2])
    loss = ((o["com"][0][:steps] - torch.as_tensor(target[:steps])) ** 2).sum() * 1e4
    loss.backward()
    return float(loss.detach()), p.grad.numpy().copy()


def grad_mujoco(scn, log_m, log_mu, target, steps, eps: float) -> np.ndarray:
    g = []
    for i in range(2):
        d = np.eye(2)[i] * eps
        g.append((loss_mujoco(scn, log_m + d[0], log_mu + d[1], target, steps)
                  - loss_mujoco(scn, log_m - d[0], log_mu - d[1], target, steps)) / (2 * eps))
    return np.array(g)


def sliding_case(args) -> int:
    t0 = time.time()
    report: dict = {"what": __doc__.split("\n\n")[1].replace("\n", " "), "dt_s": args.dt,
                    "twin": TWIN, "target": "MuJoCo at 0.3 kg, mu 0.4", "tip_contacts": {}}
    for label, contacts in (("mujoco_default", mp.POINT_SUPPORT), ("stiff", mp.POINT_SUPPORT.stiff_tip())):
        report["tip_contacts"][label] = _sliding_points(args.dt, label, contacts)
    print("MuJoCo's friction on a free box sliding on the table (mu 0.4, 0.2 kg):")
    report["sliding_friction"] = sliding_friction(args.dt)
    report["machine"] = {"mujoco": mujoco.__version__, "torch": torch.__version__}
    report["wall_seconds"] = round(time.time() - t0, 1)
    out = args.out or DEFAULT_OUT.with_name("gradient_consistency_sliding.json")
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"results: {out}")
    return 0


_FREE_BOX = """
<mujoco>
  <option timestep="{dt}" cone="{cone}" impratio="{impratio}" integrator="implicitfast"/>
  <worldbody>
    <geom type="plane" size="1 1 0.1" friction="{mu} 0.005 0.0001"/>
    <body pos="0 0 0.03"><freejoint/>
      <geom type="box" size="0.03 0.03 0.03" mass="{m}" friction="{mu} 0.005 0.0001"/>
    </body>
  </worldbody>
</mujoco>"""


def sliding_friction(dt: float, mu: float = 0.4, mass: float = 0.2) -> dict:
    """A 6 cm box, free on the table as the push twin's object is, launched along x at several
    speeds, with the twins' two cone settings: the share of steps it touches the table, its
    highest rise above rest and its deceleration over mu g (1 for Coulomb friction) while
    it slides, over 0.6 s."""
    out = {}
    for cone, impratio in (("elliptic", 10), ("pyramidal", 1)):
        rows = []
        for v0 in (0.1, 0.3, 0.6, 1.0):
            model = mujoco.MjModel.from_xml_string(_FREE_BOX.format(dt=dt, cone=cone, impratio=impratio, mu=mu, m=mass))
            data = mujoco.MjData(model)
            for _ in range(int(round(1.0 / dt))):
                mujoco.mj_step(model, data)
            z_rest = data.qpos[2]
            data.qvel[0] = v0
            n = int(round(0.6 / dt))
            z, v, touching = np.empty(n), np.empty(n), np.empty(n)
            for k in range(n):
                mujoco.mj_step(model, data)
                z[k], v[k], touching[k] = data.qpos[2] - z_rest, data.qvel[0], data.ncon > 0
            moving = v > 0.02
            decel = -np.polyfit(dt * np.flatnonzero(moving), v[moving], 1)[0]
            rows.append({"speed_m_s": v0, "touching_table": round(float(touching[moving].mean()), 2),
                         "rise_mm": round(1e3 * float(z[moving].max()), 3),
                         "deceleration_over_mu_g": round(float(decel / (mu * 9.81)), 3)})
            print(f"  {cone:9s} impratio {impratio:2d}, launched at {v0} m/s: on the table "
                  f"{rows[-1]['touching_table']:.0%} of steps, rise {rows[-1]['rise_mm']} mm, "
                  f"deceleration {rows[-1]['deceleration_over_mu_g']} mu g")
        out[f"{cone}_impratio{impratio}"] = rows
    return out


def _sliding_points(dt: float, label: str, contacts: mp.Contacts) -> dict:
    scn = mp.sliding_push(dt=dt)
    target = mujoco_push(scn, 0.3, 0.4, contacts)
    report: dict = {"tip_contact": contacts.tip, "points": []}
    print(f"sliding case, {label} fingertip contact: torch autodiff vs MuJoCo (median of 1e-4 increments), "
          "loss over 0.5 s")
    for m, mu in ((0.2, 0.3), (0.3, 0.3), (0.25, 0.35), (0.45, 0.22), (0.45, 0.27), (0.22, 0.45), (0.35, 0.45),
                  (0.38, 0.4), (0.4, 0.4), (0.5, 0.5), (0.4, 0.3), (0.25, 0.5)):
        lt, gt = grad_torch(scn, np.log(m), np.log(mu), target, scn.steps)
        s = [mp.slope(scn, np.log(m), np.log(mu), target, scn.steps, i, contacts=contacts, **TWIN) for i in range(2)]
        gm = np.array([s[0][0], s[1][0]])
        spread = np.array([s[0][1], s[1][1]])
        rel = (gt - gm) / np.abs(gm)
        rms = float(np.sqrt(((mujoco_push(scn, m, mu, contacts) - torch_push(scn, m, mu)) ** 2).sum(axis=1).mean()))
        row = {"mass_kg": m, "mu": mu, "loss_torch": round(lt, 2),
               "loss_mujoco": round(loss_mujoco(scn, np.log(m), np.log(mu), target, scn.steps, contacts), 2),
               "trajectory_rms_mm": round(1e3 * rms, 3), "grad_torch": gt.round(2).tolist(),
               "grad_mujoco_median_increment": gm.round(2).tolist(), "increment_spread": spread.round(3).tolist(),
               "smooth": bool(np.all(spread <= 0.1)), "rel_error": rel.round(3).tolist(),
               "within_5pct": bool(np.all(np.abs(rel) <= 0.05))}
        report["points"].append(row)
        print(f"  m {m:4.2f} mu {mu:4.2f}: torch {gt.round(1)} MuJoCo {gm.round(1)} rel {rel.round(3)} "
              f"spread {spread.round(3)} traj RMS {1e3 * rms:.2f} mm")
    smooth = [r for r in report["points"] if r["smooth"]]
    report["smooth_points"] = len(smooth)
    report["within_5pct_of_smooth"] = sum(r["within_5pct"] for r in smooth)
    print(f"smooth points (increment spread <= 10 %): {len(smooth)} of {len(report['points'])}; "
          f"within 5 % of them: {report['within_5pct_of_smooth']}")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dt", type=float, default=0.002,
                    help="timestep of both simulators (s); 0.0005 makes MuJoCo's loss smoother")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default bench/results/"
                    "gradient_consistency.json, _dt<ms>ms.json for other timesteps)")
    ap.add_argument("--case", choices=("straight", "sliding"), default="straight",
                    help="straight: a push from rest (stick-slip); sliding: the smooth case (see above)")
    args = ap.parse_args(argv)
    if not 1e-5 <= args.dt <= 0.01:
        ap.error(f"--dt must be in [1e-5, 0.01] s, got {args.dt}")
    if args.case == "sliding":
        return sliding_case(args)
    if args.out is None:
        args.out = DEFAULT_OUT if args.dt == 0.002 else DEFAULT_OUT.with_name(
            f"gradient_consistency_dt{1e3 * args.dt:g}ms.json")
    t0 = time.time()
    scn = straight_push(coupling=0.0, dt=args.dt, steps=int(round(0.6 / args.dt)))
    push_steps = int(round(0.25 / scn.dt))
    report: dict = {"what": __doc__.split("\n\n")[0], "scenario": "straight_push(coupling=0): 5 cm box, "
                    f"anchor 0.3 m/s for 0.25 s, K = diag(60, 2000) N/m, dt {1e3 * args.dt:g} ms, 0.6 s",
                    "trajectories": [], "smoothness": {}, "gradients": []}

    print("trajectories (mu 0.5): final x MuJoCo / torch, RMS difference")
    for m in (0.05, 0.1, 0.2, 0.3, 0.5):
        a, b = mujoco_push(scn, m, 0.5), torch_push(scn, m, 0.5)
        rms = float(np.sqrt(((a - b) ** 2).sum(axis=1).mean()))
        report["trajectories"].append({"mass_kg": m, "final_x_mujoco_m": round(float(a[-1, 0]), 5),
                                       "final_x_torch_m": round(float(b[-1, 0]), 5), "rms_mm": round(1e3 * rms, 2)})
        print(f"  {m:5.2f} kg: {1e3 * a[-1, 0]:6.1f} / {1e3 * b[-1, 0]:6.1f} mm, RMS {1e3 * rms:.2f} mm")

    target = mujoco_push(scn, 0.2, 0.5)
    lm0, lmu0 = np.log(0.3), np.log(0.4)
    for name, step in (("coarse_0.5pct", 0.005), ("fine_0.01pct", 1e-4)):
        ls = lm0 + step * np.arange(-4, 5)
        losses = np.array([loss_mujoco(scn, v, lmu0, target, scn.steps) for v in ls])
        slopes = np.diff(losses) / step
        report["smoothness"][name] = {"log_mass_step": step, "slopes": slopes.round(1).tolist(),
                                      "slope_spread_pct": round(float(100 * np.ptp(slopes) / np.abs(slopes).mean()), 1)}
        print(f"MuJoCo loss slope over log-mass, step {step:g}: spread {report['smoothness'][name]['slope_spread_pct']} %")

    print("gradients (target: MuJoCo at 0.2 kg, mu 0.5): torch autodiff vs MuJoCo central differences")
    for steps, label in ((push_steps, "push"), (scn.steps, "whole")):
        for m, mu in ((0.3, 0.4), (0.4, 0.3), (0.12, 0.45), (0.25, 0.5), (0.15, 0.6)):
            lt, gt = grad_torch(scn, np.log(m), np.log(mu), target, steps)
            gm = grad_mujoco(scn, np.log(m), np.log(mu), target, steps, 1e-4)
            gm_coarse = grad_mujoco(scn, np.log(m), np.log(mu), target, steps, 1e-2)
            rel = (gt - gm) / np.abs(gm)
            row = {"loss_window": label, "mass_kg": m, "mu": mu, "loss_torch": round(lt, 2),
                   "loss_mujoco": round(loss_mujoco(scn, np.log(m), np.log(mu), target, steps), 2),
                   "grad_torch": gt.round(2).tolist(), "grad_mujoco_fd_1e-4": gm.round(2).tolist(),
                   "grad_mujoco_fd_1e-2": gm_coarse.round(2).tolist(), "rel_error": rel.round(3).tolist(),
                   "within_5pct": bool(np.all(np.abs(rel) <= 0.05))}
            report["gradients"].append(row)
            print(f"  {label:5s} m {m:4.2f} mu {mu:4.2f}: torch {gt.round(1)}  MuJoCo {gm.round(1)} "
                  f"(eps 1e-2: {gm_coarse.round(1)})  rel {rel.round(3)}")
    n_ok = sum(r["within_5pct"] for r in report["gradients"])
    report["within_5pct"] = f"{n_ok} of {len(report['gradients'])}"
    report["machine"] = {"cores_visible": os.cpu_count(), "mujoco": mujoco.__version__, "torch": torch.__version__}
    report["wall_seconds"] = round(time.time() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"within 5 %: {report['within_5pct']} points; results: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
