"""Which pushes determine mass? Expected 95 % mass intervals per push program (issue 5).

For each push program in config/push_programs and each case (object, true
mass, friction 0.5) it records a noise-free push in the twin, then computes the
expected profile likelihood over mass at the benchmark's noise (2 mm, 1 deg
tracked poses; 1 mm fingertip) with
`dream_sysid.identification.information.expected_interval`, and reports the
expected interval as mass ratios (lo, hi) and its width hi/lo. A width of 1.2
means about +-10 %; an interval that runs off the grid (0.45x-2.2x) is "open".

The replays start the object 10 um to the side of the recording's start: the push
is chaotic in the twin (bench/replay_sensitivity.py), and a replay from exactly the
recorded start is the only one that matches, which made every other mass look ruled
out (slow_sweep's median expected interval was 1.12x that way). A mass is ruled out
only above the chi-square threshold plus that jitter (`jitter`: what the true mass
itself costs with its start 10 um aside, in other directions).

This is information, not accuracy: model error between cell and twin comes on
top (bench/sysid.py measures that).

    .venv/bin/python bench/push_information.py                 # -> bench/results/push_information.json + .png
    .venv/bin/python bench/push_information.py --programs flick --objects domino
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
import sysid as sysid_bench  # noqa: E402  (object setup: identification twin, plan)

OUT = ROOT / "bench" / "results" / "push_information.json"
FRICTION = 0.5
PAPER_OBJECTS = ("letter_u", "letter_a", "lego_brick", "domino", "cookie", "ketchup_bottle")
MASS_SWEEP_OBJECT = "domino"
MASS_SWEEP_KG = (0.05, 0.2, 0.4, 0.7, 1.0)


def exact_push(program: str, object_id: str, mass: float):
    """A noise-free, latency-free push of `object_id` at `mass` (friction FRICTION), recorded in
    the twin's own physics: (recording, prepared push, replay), the last two None if the object
    did not slide. Shared with bench/replay_sensitivity.py."""
    from dream_sysid.bag.reader import load_scene_model
    from dream_sysid.identification.api import object_mesh
    from dream_sysid.identification.prepare import NotInformative, prepare
    from dream_sysid.identification.synthetic import TrackerModel, record_push
    from dream_sysid.identification.twin_replay import TwinReplay
    from dream_sysid.twin.builder import build_twin

    setup = sysid_bench._object_setup(object_id, program)
    cell = sysid_bench._STATE["cell"]
    twin = build_twin(cell, setup["geometry"], kind="push", mass_kg=mass, friction=FRICTION,
                      placement=setup["placement"], object_id=object_id)
    exact = TrackerModel(position_sigma_m=0.0, rotation_sigma_rad=0.0, latency_s=0.0, drop_rate=0.0)
    rec = record_push(twin, setup["plan"], setup["scene"], tracker=exact, mismatch=None)
    model = load_scene_model(setup["scene"], "object")
    try:
        prep = prepare(rec, model, object_mesh(model, "object"), object_body="object",
                       arm_joints=cell.arm.mjcf_joints, hand_prefix=cell.push_hand.prefix)
    except NotInformative:
        return rec, None, None
    replay = TwinReplay.build(model, rec, prep, object_body="object", arm_joints=cell.arm.mjcf_joints,
                              hand_prefix=cell.push_hand.prefix)
    return rec, prep, replay


def run_case(program: str, object_id: str, mass: float) -> dict:
    import torch

    from dream_sysid.identification.fit import PushObjective
    from dream_sysid.identification.information import expected_interval

    torch.set_num_threads(1)
    rec, prep, replay = exact_push(program, object_id, mass)
    travel = float(np.linalg.norm(rec.ground_truth.pos[-1, :2] - rec.ground_truth.pos[0, :2]))
    row = {"program": program, "object": object_id, "mass_kg": mass, "friction": FRICTION,
           "travel_mm": round(1e3 * travel, 1)}
    if prep is None:
        return row | {"lo": None, "hi": None, "width_ratio": None, "closed": False, "note": "object did not slide"}
    ei = expected_interval(PushObjective(prep), replay, mass, FRICTION)
    return row | {"lo": round(ei.lo, 3), "hi": round(ei.hi, 3), "width_ratio": round(ei.width_ratio, 3),
                  "closed": ei.closed, "jitter": round(ei.jitter, 2), "ratios": np.round(ei.ratios, 4).tolist(),
                  "delta_chi2": np.round(ei.delta_chi2, 3).tolist()}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    programs = sorted({r["program"] for r in rows})
    fig, axes = plt.subplots(1, len(programs), figsize=(5 * len(programs), 4), sharey=True, squeeze=False)
    for ax, prog in zip(axes[0], programs):
        for r in rows:
            if r["program"] == prog and r.get("ratios"):
                ax.plot(r["ratios"], r["delta_chi2"], marker=".", label=f"{r['object']} {r['mass_kg']:.3g} kg")
        ax.axhline(3.84, color="k", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_ylim(0, 30)
        ax.set_title(prog)
        ax.set_xlabel("mass / true mass")
    axes[0][0].set_ylabel("expected profile rise (chi-square)")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    from dream_sysid.push.program import available_programs

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--programs", nargs="+", default=sorted(f.stem for f in available_programs()))
    p.add_argument("--objects", nargs="+", default=None, help="objects at their catalogue mass (default: the paper's six)")
    p.add_argument("--no-mass-sweep", action="store_true", help=f"skip {MASS_SWEEP_OBJECT} at {MASS_SWEEP_KG} kg")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    from dream_sysid.catalogue import load_catalogue

    cat = load_catalogue()
    cases = [(o, cat[o].mass_kg) for o in (args.objects or PAPER_OBJECTS)]
    if not args.no_mass_sweep:
        cases += [(MASS_SWEEP_OBJECT, m) for m in MASS_SWEEP_KG]
    rows = []
    started = time.perf_counter()
    print(f"{'program':14s} {'object':10s} {'mass kg':>8s} {'travel mm':>9s} {'expected 95% interval':>24s} {'hi/lo':>6s}")
    for prog in args.programs:
        for obj, mass in cases:
            t = time.perf_counter()
            r = run_case(prog, obj, mass)
            r["seconds"] = round(time.perf_counter() - t, 1)
            rows.append(r)
            iv = (f"{r['lo']:.2f}x - {r['hi']:.2f}x{'' if r['closed'] else ' (open)'}" if r.get("lo") else r.get("note", ""))
            width = f"{r['width_ratio']:.2f}" if r.get("width_ratio") else "-"
            print(f"{prog:14s} {obj:10s} {mass:8.3f} {r['travel_mm']:9.1f} {iv:>24s} {width:>6s}", flush=True)
    summary = {}
    for prog in args.programs:
        # An open interval or an object that did not slide counts as infinitely wide.
        w = np.array([r["width_ratio"] if r.get("closed") else np.inf for r in rows if r["program"] == prog])
        med = float(np.median(w)) if len(w) else np.inf
        summary[prog] = {"median_width_ratio": med if np.isfinite(med) else None,
                         "closed_intervals": int(np.isfinite(w).sum()), "cases": int(len(w)),
                         "within_pm10pct": int((w <= 1.22).sum()), "within_pm25pct": int((w <= 1.65).sum())}
    out = {"description": __doc__.split("\n\n")[0], "friction": FRICTION,
           "noise": {"position_sigma_m": 0.002, "rotation_sigma_deg": 1.0, "tip_sigma_m": 0.001, "rate_hz": 30},
           "machine": platform.platform(), "seconds": round(time.perf_counter() - started, 1),
           "summary": summary, "cases": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    plot(rows, args.out.with_suffix(".png"))
    print(json.dumps(summary, indent=1))
    print(f"wrote {args.out} and {args.out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
