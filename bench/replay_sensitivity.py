"""How chaotic is a push in the twin? Replay sensitivity to tiny changes (issue 5).

For each push program and object (at its catalogue mass, friction 0.5) it records a
noise-free push in the twin's own physics, replays it at the true mass and friction
(the reference), then replays it again with one tiny change: the object's start
moved sideways by 1, 10 or 100 micrometres, or its mass or friction scaled by
1.001 or 1.01. For each it reports how far the replayed push moves from the
reference (object position RMS in mm, yaw RMS in degrees, fingertip RMS in mm) and
the rise of the identification cost (in the benchmark's noise units) from the
reference's.

Why: the identifier compares replays over a grid of masses. If a 1 % mass change
moves the object's path by less than it does when the start moves by micrometres,
the cost over mass is dominated by that jitter, not by the mass: the profile is
jagged, and no optimiser can find a sharper minimum than the jitter allows. The
trackers' start pose is uncertain by ~0.3 mm (2 mm noise, median of dozens of
resting poses), far above these perturbations.

    .venv/bin/python bench/replay_sensitivity.py            # -> bench/results/replay_sensitivity.json
    .venv/bin/python bench/replay_sensitivity.py --programs sweep_release --objects domino
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
import push_information as info_bench  # noqa: E402  (the noise-free push, recorded and ready to replay)
import sysid as sysid_bench  # noqa: E402  (object setup: identification twin, plan)

OUT = ROOT / "bench" / "results" / "replay_sensitivity.json"
FRICTION = info_bench.FRICTION
PROGRAMS = ("slow_sweep", "sweep_release")
OBJECTS = ("letter_u", "letter_a", "lego_brick", "domino", "cookie", "ketchup_bottle")
# (name, start shift along y in m, mass factor, friction factor)
PERTURBATIONS = (("start +1 um", 1e-6, 1.0, 1.0), ("start +10 um", 1e-5, 1.0, 1.0),
                 ("start +100 um", 1e-4, 1.0, 1.0), ("mass x1.001", 0.0, 1.001, 1.0),
                 ("mass x1.01", 0.0, 1.01, 1.0), ("friction x1.01", 0.0, 1.0, 1.01))


def run_case(program: str, object_id: str) -> dict:
    import torch

    from dream_sysid.identification.fit import SIGMA_POS, SIGMA_TIP, SIGMA_YAW, PushObjective

    torch.set_num_threads(1)
    mass = sysid_bench._object_setup(object_id, program)["prior_kg"]
    _, prep, replay = info_bench.exact_push(program, object_id, mass)
    row: dict = {"program": program, "object": object_id, "mass_kg": mass, "friction": FRICTION}
    if prep is None:
        return row | {"note": "object did not slide"}
    obj = PushObjective(prep)
    zero = torch.zeros(1, dtype=torch.float64)

    def cost(sim: dict) -> float:
        return float((obj.stacked(obj.residuals(sim, zero)) ** 2).sum())

    ref = replay.rollout(mass, FRICTION)
    row["reference_cost"] = round(cost(ref), 3)
    row["travel_mm"] = round(1e3 * float(np.linalg.norm(ref["com"][0, -1] - ref["com"][0, 0])), 1)
    out = []
    for name, dy, fm, fmu in PERTURBATIONS:
        with replay.object_shifted(0.0, dy):
            sim = replay.rollout(mass * fm, FRICTION * fmu)
        d_pos = (sim["com"][0] - ref["com"][0]).numpy()
        d_yaw = (sim["yaw"][0] - ref["yaw"][0]).numpy()
        d_tip = (sim["tip"][0] - ref["tip"][0]).numpy()
        out.append({"perturbation": name,
                    "object_rms_mm": round(1e3 * float(np.sqrt((d_pos ** 2).sum(1).mean())), 4),
                    "yaw_rms_deg": round(float(np.degrees(np.sqrt((d_yaw ** 2).mean()))), 4),
                    "tip_rms_mm": round(1e3 * float(np.sqrt((d_tip ** 2).sum(1).mean())), 4),
                    "cost_rise": round(cost(sim) - row["reference_cost"], 3)})
    row["noise_units"] = {"pos_m": SIGMA_POS, "yaw_rad": SIGMA_YAW, "tip_m": SIGMA_TIP}
    return row | {"perturbations": out}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--programs", nargs="+", default=list(PROGRAMS))
    p.add_argument("--objects", nargs="+", default=list(OBJECTS), help="objects at their catalogue mass")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    rows = []
    started = time.perf_counter()
    print(f"{'program':14s} {'object':15s} {'perturbation':15s} {'object mm':>9s} {'yaw deg':>8s} "
          f"{'tip mm':>7s} {'cost rise':>9s}")
    for prog in args.programs:
        for obj in args.objects:
            r = run_case(prog, obj)
            rows.append(r)
            for q in r.get("perturbations", []):
                print(f"{prog:14s} {obj:15s} {q['perturbation']:15s} {q['object_rms_mm']:9.3f} "
                      f"{q['yaw_rms_deg']:8.3f} {q['tip_rms_mm']:7.3f} {q['cost_rise']:9.2f}", flush=True)
            if "note" in r:
                print(f"{prog:14s} {obj:15s} {r['note']}")
    summary: dict = {}
    for prog in args.programs:
        per = {}
        for name, *_ in PERTURBATIONS:
            qs = [q for r in rows if r["program"] == prog for q in r.get("perturbations", [])
                  if q["perturbation"] == name]
            if qs:
                per[name] = {k: round(float(np.median([q[k] for q in qs])), 4)
                             for k in ("object_rms_mm", "yaw_rms_deg", "tip_rms_mm", "cost_rise")}
        summary[prog] = {"median_over_objects": per}
    out = {"description": __doc__.split("\n\n")[0], "friction": FRICTION, "machine": platform.platform(),
           "seconds": round(time.perf_counter() - started, 1), "summary": summary, "cases": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
