"""Mass-identification benchmark (issue 5): how well does `identify()` recover an
object's mass from a simulated push?

Each case is a catalogue object at a true mass (log-spaced 50 g - 1 kg, plus the
paper's six objects at their catalogue masses) with a true friction drawn
uniformly from [0.2, 0.8] (seeded, unknown to the identifier). The data come from
a TRUE twin (true mass and friction) run by `record_push` in a perturbed simulator
(SimulatorMismatch defaults: timestep, solver iterations, contact softness) with
tracking noise 2 mm / 1 deg at 30 Hz, latency drawn from [20, 50] ms and 5 %
dropped frames. The identifier gets a SEPARATE twin at the catalogue's mass prior
and friction 0.5 (saved to a temp dir) and the recording, nothing else.

Per case it records true/identified mass, relative error, 95 % interval and
whether it covers the truth, the identifiable flag, true/identified friction and
seconds; then a summary against the goals (<= 3 % mean, <= 6 % worst |error|,
coverage >= 90 %, <= 5 s per identification) and the paper's Table I row.
An exception in a case is recorded as that case's error; the run goes on.

    MENAGERIE_ROOT=../shared/menagerie .venv/bin/python bench/sysid.py            # 30 cases -> bench/results/sysid.json
    .venv/bin/python bench/sysid.py --program slow_sweep                         # -> bench/results/sysid_slow_sweep.json
    .venv/bin/python bench/sysid.py --no-mismatch        # diagnostic: no simulator mismatch -> sysid_no_mismatch.json
    .venv/bin/python bench/sysid.py --no-mismatch --no-noise   # the identifier's floor on perfect data
    .venv/bin/python bench/sysid.py --quick --out /tmp/sysid_quick.json          # 6-case smoke run
    .venv/bin/python bench/sysid.py --cases 0                                    # all 54 cases
    .venv/bin/python bench/sysid.py --objects domino cookie --out /tmp/two_objects.json
    .venv/bin/python bench/sysid.py --repeats 3       # each case pushed 3 times -> sysid_repeats3.json
    .venv/bin/python bench/sysid.py --together 3      # ... and identified from all 3 -> sysid_together3.json

Cases are a pure function of --seed (a case's friction, latency and noise seed do
not depend on --cases, --jobs or --objects), so subsets of a run are comparable.

--repeats K pushes every case K times: the first push is the case as above, each
further one with fresh tracker noise and the object's true start moved by
~0.5 mm (a real object is never put back to the micrometre, and the push is
chaotic). One run of 30 cases is one draw of the noise per case, and the
estimates of one case spread a median 12.7 points between its pushes
(sysid_repeats3.json): the repeats say how much of a figure is the draw.
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass, replace  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if "MENAGERIE_ROOT" not in os.environ and (ROOT.parent / "shared" / "menagerie").is_dir():
    os.environ["MENAGERIE_ROOT"] = str(ROOT.parent / "shared" / "menagerie")

DEFAULT_OUT = ROOT / "bench" / "results" / "sysid.json"      # sysid_<program>.json for other programs
DEFAULT_PROGRAM = "sweep_release"
IDENT_DIR = ROOT / "src" / "dream_sysid" / "dream_sysid" / "identification"

GRID_MASSES_KG = (0.05, 0.1, 0.2, 0.4, 0.7, 1.0)
FRICTION_RANGE = (0.2, 0.8)
LATENCY_RANGE_S = (0.020, 0.050)
ID_FRICTION = 0.5                 # the identification twin's friction (its mass: the catalogue's)
TRACKER = {"rate_hz": 30.0, "position_sigma_m": 0.002, "rotation_sigma_deg": 1.0, "drop_rate": 0.05}
GOAL = {"mean_abs_mass_error_pct": 3.0, "worst_abs_mass_error_pct": 6.0, "ci_coverage_pct": 90.0,
        "seconds_per_identification": 5.0}
DEFAULT_CASES = 30
MOVED_MM = 2.0                    # true object travel below this: the push did not move it (tracker noise level)
MAX_JOBS = 2
REPEAT_SHIFT_M = 5e-4             # repeats: the true start moved by this much (standard deviation, x and y)


@dataclass(frozen=True)
class Case:
    index: int                   # position in the full, seed-determined case list
    kind: str                    # "paper" (catalogue mass) or "grid"
    object_id: str
    mass_kg: float
    friction: float
    latency_s: float
    record_seed: int
    push: int = 0                # --repeats: 0 is the case itself, 1.. a repeat of it
    start_shift_m: tuple[float, float] = (0.0, 0.0)   # the true object's start moved by this (repeats)


# ------------------------------------------------------------------------------ cases


def _finite(value: float, digits: int) -> float | None:
    """None for values the identifier could not determine (NaN is not JSON)."""
    value = float(value)
    return round(value, digits) if math.isfinite(value) else None

def all_cases(catalogue: dict, seed: int) -> list[Case]:
    """The paper objects at their catalogue masses, then objects x GRID_MASSES_KG in blocks of
    one case per mass with the object rotating (a Latin-square order), so every prefix spans
    the mass range and the objects evenly. Object order within the rotation is seeded."""
    rng = np.random.default_rng(seed)
    ids = list(catalogue)
    paper = [i for i in ids if catalogue[i].paper_table1_error_pct is not None]
    objects = [ids[k] for k in rng.permutation(len(ids))]
    specs: list[tuple[str, str, float]] = [("paper", i, catalogue[i].mass_kg) for i in paper]
    for block in range(len(objects)):
        for m, mass in enumerate(GRID_MASSES_KG):
            specs.append(("grid", objects[(m + block) % len(objects)], mass))
    cases = []
    for index, (kind, object_id, mass) in enumerate(specs):
        # Per-case stream keyed by (seed, object, mass, kind): independent of order and subset.
        key = int.from_bytes(hashlib.sha256(f"{kind}/{object_id}/{mass:.6f}".encode()).digest()[:4], "little")
        r = np.random.default_rng([seed, key])
        cases.append(Case(index, kind, object_id, float(mass), float(r.uniform(*FRICTION_RANGE)),
                          float(r.uniform(*LATENCY_RANGE_S)), int(r.integers(0, 2**31 - 1))))
    return cases


def repeated(cases: list[Case], repeats: int) -> list[Case]:
    """Each case followed by its repeats 1..repeats-1: a fresh noise seed and a start shift,
    drawn from the case's own record seed (so a case's repeats do not depend on the others)."""
    out = []
    for c in cases:
        out.append(c)
        for j in range(1, repeats):
            r = np.random.default_rng([c.record_seed, j])
            dx, dy = (float(v) for v in r.normal(0.0, REPEAT_SHIFT_M, 2))
            out.append(replace(c, push=j, start_shift_m=(dx, dy), record_seed=int(r.integers(0, 2**31 - 1))))
    return out


def select_cases(cases: list[Case], *, quick: bool, n: int | None, objects: list[str] | None) -> list[Case]:
    if objects:
        cases = [c for c in cases if c.object_id in objects]
    if quick:
        paper = [c for c in cases if c.kind == "paper"][:2]
        grid: list[Case] = []
        for mass in (0.05, 0.2, 0.7, 1.0):
            grid += [c for c in cases if c.kind == "grid" and c.mass_kg == mass][:1]
        return paper + grid
    if n is not None and n > 0:
        cases = cases[:n]
    return cases


# ------------------------------------------------------------------------------ worker

_STATE: dict = {}


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)
    torch.set_num_interop_threads(1)


def _object_setup(object_id: str, program_name: str) -> dict:
    """Per worker and object: geometry, the identification twin (saved to a temp dir) and the plan."""
    import tempfile

    from dream_hw.cell import load_cell
    from dream_sysid.catalogue import load_catalogue
    from dream_sysid.push.planner import plan_push
    from dream_sysid.push.program import load_program
    from dream_sysid.twin.builder import ObjectPlacement, build_twin
    from dream_sysid.twin.object_geometry import ObjectGeometry

    key = (object_id, program_name)
    if key in _STATE:
        return _STATE[key]
    if "cell" not in _STATE:
        _STATE["cell"] = load_cell()
        _STATE["catalogue"] = load_catalogue()
        _STATE["tmp"] = tempfile.TemporaryDirectory(prefix="dream_bench_sysid_")
    cell, entry = _STATE["cell"], _STATE["catalogue"][object_id]
    geometry = ObjectGeometry.from_file(entry.mesh_path)
    placement = ObjectPlacement(*entry.pose_xy_yaw)
    id_twin = build_twin(cell, geometry, kind="push", mass_kg=entry.mass_kg, friction=ID_FRICTION,
                         placement=placement, object_id=object_id)
    scene = id_twin.save(Path(_STATE["tmp"].name) / f"{object_id}_id_twin")
    # The robot plans with what it knows (the identification twin); only the geometry matters.
    qpos = id_twin.home_data().qpos
    plan = plan_push(load_program(program_name), id_twin, cell, qpos[:7].copy(), qpos[-7:-4].copy(),
                     qpos[-4:].copy())
    _STATE[key] = {"geometry": geometry, "placement": placement, "scene": scene, "plan": plan,
                   "prior_kg": entry.mass_kg}
    return _STATE[key]


def _one_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def run_case(case: Case, program_name: str, mismatch: bool = True, noise: bool = True, together: int = 1) -> dict:
    """Generate the push with the true twin, identify with the identification twin; never raises.
    Diagnostics: mismatch=False records in the twin's own physics; noise=False tracks perfectly
    (no pose noise, no dropped frames; the latency stays, unknown to the identifier).
    together=K: the case and its K-1 repeats (see `repeated`) identified as one, from all K pushes."""
    out: dict = {**asdict(case), "stage": "setup"}
    out["friction"] = round(case.friction, 4)
    out["latency_s"] = round(case.latency_s, 4)
    try:
        from dream_sysid.identification.synthetic import SimulatorMismatch, TrackerModel, record_push
        from dream_sysid.twin.builder import build_twin

        setup = _object_setup(case.object_id, program_name)
        out["prior_mass_kg"] = setup["prior_kg"]
        out["stage"] = "record"
        recs = []
        for push in repeated([case], together):
            p = setup["placement"]
            placement = replace(p, x=p.x + push.start_shift_m[0], y=p.y + push.start_shift_m[1])
            true_twin = build_twin(_STATE["cell"], setup["geometry"], kind="push", mass_kg=case.mass_kg,
                                   friction=case.friction, placement=placement, object_id=case.object_id)
            scale = 1.0 if noise else 0.0
            tracker = TrackerModel(rate_hz=TRACKER["rate_hz"], position_sigma_m=scale * TRACKER["position_sigma_m"],
                                   rotation_sigma_rad=scale * math.radians(TRACKER["rotation_sigma_deg"]),
                                   latency_s=case.latency_s, drop_rate=scale * TRACKER["drop_rate"])
            recs.append(record_push(true_twin, setup["plan"], setup["scene"], tracker=tracker,
                                    mismatch=SimulatorMismatch() if mismatch else None, seed=push.record_seed))
        rec = recs[0]
        if rec.ground_truth is not None and len(rec.ground_truth.pos):
            gt = np.asarray(rec.ground_truth.pos)
            out["object_travel_mm"] = round(1000.0 * float(np.linalg.norm(gt[-1, :2] - gt[0, :2])), 1)
        out["stage"] = "identify"
        from dream_sysid.identification.api import identify

        started = time.perf_counter()
        res = identify(recs if together > 1 else rec, scene=setup["scene"], object_body="object", report_dir=None,
                       progress=False)
        seconds = time.perf_counter() - started
    except Exception as exc:  # noqa: BLE001 -- the identifier is a moving target: record and go on
        out["error"] = f"{out['stage']}: {_one_line(exc)}"
        return out
    lo, hi = (float(v) for v in res.mass_ci95_kg)
    m = float(res.mass_kg)
    out.update({
        "identified_mass_kg": round(m, 5),
        "mass_error_pct": round(100.0 * (m - case.mass_kg) / case.mass_kg, 3),
        "mass_ci95_kg": [round(lo, 5), round(hi, 5)],
        "ci_covers_truth": bool(lo <= case.mass_kg <= hi),
        "ci_ratio": round(hi / lo, 3) if lo > 0 else None,
        "identifiable": bool(res.identifiable),
        "identified_friction": _finite(res.friction, 4),
        "friction_error_pct": _finite(100.0 * (float(res.friction) - case.friction) / case.friction, 2),
        # mass and friction moving in opposite directions with mu*m nearly kept = sliding along the valley
        "mu_m_product_error_pct": _finite(100.0 * (m * float(res.friction) / (case.mass_kg * case.friction) - 1), 2),
        "pose_rmse_mm": _finite(1000.0 * float(res.pose_rmse_m), 3),
        "iterations": int(res.iterations),
        "seconds": round(seconds, 3),
        "warning": res.warning,
    })
    out.pop("stage", None)
    return out


# ------------------------------------------------------------------------------ summary

def _stats(rows: list[dict]) -> dict:
    ok = [r for r in rows if "error" not in r]
    if not ok:
        return {"cases": len(rows), "failed": len(rows)}
    err = np.array([abs(r["mass_error_pct"]) for r in ok])
    return {
        "cases": len(rows),
        "failed": len(rows) - len(ok),
        "mean_abs_mass_error_pct": round(float(err.mean()), 2),
        "median_abs_mass_error_pct": round(float(np.median(err)), 2),
        "worst_abs_mass_error_pct": round(float(err.max()), 2),
        "median_signed_mass_error_pct": round(float(np.median([r["mass_error_pct"] for r in ok])), 2),
        "ci_coverage_pct": round(100.0 * float(np.mean([r["ci_covers_truth"] for r in ok])), 1),
        "identifiable_pct": round(100.0 * float(np.mean([r["identifiable"] for r in ok])), 1),
    }


def summarise(rows: list[dict], catalogue: dict) -> dict:
    ok = [r for r in rows if "error" not in r]
    ident = [r for r in ok if r["identifiable"]]
    # Only the identifications that fitted: an unmoved object returns the prior in ~0.1 s,
    # which would flatter the median.
    secs = [r["seconds"] for r in ok if r.get("iterations", 0) > 0]
    moved = [r for r in ok if r.get("object_travel_mm", 0.0) >= MOVED_MM]
    summary: dict = {"all": _stats(rows), "identifiable_only": _stats(ident) if ident else {"cases": 0},
                     "object_moved_only": _stats(moved) if moved else {"cases": 0},
                     "object_moved_pct": round(100.0 * len(moved) / len(ok), 1) if ok else None,
                     "not_moved_but_flagged_identifiable": sum(1 for r in ok if r["identifiable"]
                                                               and r.get("object_travel_mm", 0.0) < MOVED_MM)}
    summary["seconds_per_identification"] = ({"median": round(float(np.median(secs)), 2),
                                              "max": round(float(np.max(secs)), 2), "fitted_cases": len(secs)}
                                             if secs else None)
    summary["errors"] = len(rows) - len(ok)
    a = summary["all"]
    if ok:
        summary["goals_met"] = {
            "mean_abs_mass_error": a["mean_abs_mass_error_pct"] <= GOAL["mean_abs_mass_error_pct"],
            "worst_abs_mass_error": a["worst_abs_mass_error_pct"] <= GOAL["worst_abs_mass_error_pct"],
            "ci_coverage": a["ci_coverage_pct"] >= GOAL["ci_coverage_pct"],
            "seconds": bool(secs) and summary["seconds_per_identification"]["median"] <= GOAL["seconds_per_identification"],
        }
        slid = [r for r in ok if r.get("identified_friction") is not None]  # unknown when nothing slid
        le_m = np.array([math.log(r["identified_mass_kg"] / r["mass_kg"]) for r in slid])
        le_mu = np.array([math.log(r["identified_friction"] / r["friction"]) for r in slid])
        summary["valley"] = {
            "what": "log mass error vs log friction error across cases: a correlation near -1 with small "
                    "mu*m error means fits slide along the mass-friction valley (mu*m = const)",
            "corr_log_mass_err_vs_log_friction_err": (round(float(np.corrcoef(le_m, le_mu)[0, 1]), 3)
                                                      if len(slid) > 2 and le_m.std() > 0 and le_mu.std() > 0
                                                      else None),
            "median_abs_mu_m_product_error_pct": (round(float(np.median([abs(r["mu_m_product_error_pct"])
                                                                         for r in slid])), 2) if slid else None),
        }
    summary["by_mass"] = {f"{m:g}": _stats([r for r in rows if r["mass_kg"] == m and r["kind"] == "grid"])
                          for m in GRID_MASSES_KG if any(r["mass_kg"] == m and r["kind"] == "grid" for r in rows)}
    summary["by_object"] = {o: _stats([r for r in rows if r["object_id"] == o])
                            for o in catalogue if any(r["object_id"] == o for r in rows)}
    if any(r.get("push", 0) for r in rows):
        summary["repeats"] = _repeat_stats(moved)
    paper = []
    for object_id in dict.fromkeys(r["object_id"] for r in rows if r["kind"] == "paper"):
        pushes = [r for r in rows if r["kind"] == "paper" and r["object_id"] == object_id]
        ok_pushes = [r for r in pushes if "error" not in r]
        e = catalogue[object_id]
        paper.append({"object_id": object_id, "mass_kg": pushes[0]["mass_kg"],
                      "paper_table1_mass_kg": e.paper_table1_mass_kg,
                      "paper_error_pct": e.paper_table1_error_pct,
                      # with --repeats, the mean over the object's pushes
                      "our_abs_error_pct": (round(float(np.mean([abs(r["mass_error_pct"]) for r in ok_pushes])), 2)
                                            if ok_pushes else None),
                      "pushes": len(pushes),
                      "identifiable": any(r.get("identifiable") for r in ok_pushes),
                      "error": next((r["error"] for r in pushes if "error" in r), None)})
    if paper:
        ours = [p["our_abs_error_pct"] for p in paper if p["our_abs_error_pct"] is not None]
        summary["paper_objects"] = {
            "rows": paper,
            "paper_mean_error_pct": round(float(np.mean([p["paper_error_pct"] for p in paper])), 2),
            "our_mean_abs_error_pct": round(float(np.mean(ours)), 2) if ours else None,
        }
    return summary


def _repeat_stats(moved: list[dict]) -> dict:
    """How much of a figure is the draw: the moved objects' mean |error| of each repeat on its
    own, the spread of one case's estimates between its pushes, and the error of their
    geometric mean (what averaging a case's pushes would give)."""
    by_case: dict[int, list[dict]] = {}
    for r in moved:
        by_case.setdefault(r["index"], []).append(r)
    pushes = sorted({r["push"] for r in moved})
    per_push = {str(j): round(float(np.mean([abs(r["mass_error_pct"]) for r in moved if r["push"] == j])), 2)
                for j in pushes}
    full = [rs for rs in by_case.values() if len(rs) == len(pushes)]
    spread = [max(r["mass_error_pct"] for r in rs) - min(r["mass_error_pct"] for r in rs) for rs in full]
    mean_err = [100.0 * (math.exp(np.mean([math.log(r["identified_mass_kg"]) for r in rs])) / rs[0]["mass_kg"] - 1)
                for rs in full]
    e = np.abs(np.asarray(mean_err))
    return {"what": "moved objects only; cases with every push moved and identified",
            "mean_abs_mass_error_pct_by_push": per_push,
            "cases_with_all_pushes": len(full),
            "median_spread_between_pushes_pct": round(float(np.median(spread)), 2) if spread else None,
            "geometric_mean_of_pushes": {"mean_abs_mass_error_pct": round(float(e.mean()), 2),
                                         "median_abs_mass_error_pct": round(float(np.median(e)), 2),
                                         "worst_abs_mass_error_pct": round(float(e.max()), 2)} if full else None}


def _fmt(v, spec: str, width: int) -> str:
    """Right-aligned number (spec like '.2f' or '+.1f'), or '-' for an unknown value."""
    if v is None:
        return f"{'-':>{width}}"
    sign, rest = ("+", spec[1:]) if spec.startswith("+") else ("", spec)
    return f"{v:{sign}{width}{rest}}"


def print_table(rows: list[dict]) -> None:
    head = (f"{'#':>3} {'object':15} {'kind':5} {'m_true':>7} {'m_id':>7} {'err%':>7} {'CI95 kg':>15} "
            f"{'cov':>3} {'id?':>3} {'mu':>5} {'mu_id':>5} {'mu*m%':>6} {'mm':>5} {'s':>6}")
    print(head)
    print("-" * len(head))
    for r in sorted(rows, key=lambda r: (r["index"], r.get("push", 0))):
        tag = f"{r['index']}" + (f".{r['push']}" if r.get("push") else "")
        base = f"{tag:>3} {r['object_id']:15} {r['kind']:5} {r['mass_kg']:7.3f} "
        if "error" in r:
            print(base + f"ERROR {r['error']}")
            continue
        ci = f"{r['mass_ci95_kg'][0]:.3f}-{r['mass_ci95_kg'][1]:.3f}"
        print(base + f"{r['identified_mass_kg']:7.3f} {r['mass_error_pct']:+7.1f} {ci:>15} "
              f"{'y' if r['ci_covers_truth'] else 'N':>3} {'y' if r['identifiable'] else 'n':>3} "
              f"{r['friction']:5.2f} {_fmt(r['identified_friction'], '.2f', 5)} "
              f"{_fmt(r['mu_m_product_error_pct'], '+.1f', 6)} "
              f"{_fmt(r.get('object_travel_mm'), '.1f', 5)} {r['seconds']:6.1f}")


def print_summary(summary: dict) -> None:
    def mark(ok: bool | None) -> str:
        return "" if ok is None else ("  ok" if ok else "  MISSED")

    a, i = summary["all"], summary["identifiable_only"]
    g = summary.get("goals_met", {})
    print()
    print(f"cases {a['cases']}, errors {summary['errors']}")
    if "mean_abs_mass_error_pct" not in a:
        return
    print(f"{'':28}{'all':>10}{'identifiable':>14}{'goal':>10}")
    for key, label, goal, gk in (
            ("mean_abs_mass_error_pct", "mean |mass error| %", f"<= {GOAL['mean_abs_mass_error_pct']:g}",
             "mean_abs_mass_error"),
            ("worst_abs_mass_error_pct", "worst |mass error| %", f"<= {GOAL['worst_abs_mass_error_pct']:g}",
             "worst_abs_mass_error"),
            ("median_abs_mass_error_pct", "median |mass error| %", "", None),
            ("ci_coverage_pct", "95 % CI coverage %", f">= {GOAL['ci_coverage_pct']:g}", "ci_coverage")):
        print(f"{label:28}{a[key]:>10}{_fmt(i.get(key), '', 14)}{goal:>10}{mark(g.get(gk) if gk else None)}")
    print(f"{'identifiable %':28}{a['identifiable_pct']:>10}  ({i.get('cases', 0)} cases)")
    mv = summary["object_moved_only"]
    print(f"object moved >= {MOVED_MM:g} mm in {summary['object_moved_pct']} % of cases; on those: mean |error| "
          f"{mv.get('mean_abs_mass_error_pct', '-')} %, worst {mv.get('worst_abs_mass_error_pct', '-')} %, "
          f"coverage {mv.get('ci_coverage_pct', '-')} %; unmoved but flagged identifiable: "
          f"{summary['not_moved_but_flagged_identifiable']}")
    s = summary["seconds_per_identification"]
    if s:
        print(f"{'seconds / identification':28}{'median ' + str(s['median']):>10}  max {s['max']}"
              f"{'<= ' + str(GOAL['seconds_per_identification']):>12}{mark(g.get('seconds'))}"
              f"  ({s['fitted_cases']} fitted; unmoved objects return the prior at once)")
    v = summary.get("valley", {})
    print(f"valley: corr(log m err, log mu err) = {v.get('corr_log_mass_err_vs_log_friction_err')}, "
          f"median |mu*m error| = {v.get('median_abs_mu_m_product_error_pct')} %")
    if summary["by_mass"]:
        print("\nby true mass (grid cases): " + "  ".join(
            f"{m} kg: {st.get('mean_abs_mass_error_pct', '-')}% (signed med {st.get('median_signed_mass_error_pct', '-')}%,"
            f" n={st['cases']})" for m, st in summary["by_mass"].items()))
    print("by object: " + "  ".join(
        f"{o}: {st.get('mean_abs_mass_error_pct', '-')}% (n={st['cases']})" for o, st in summary["by_object"].items()))
    rp = summary.get("repeats")
    if rp:
        g = rp["geometric_mean_of_pushes"] or {}
        print(f"\nrepeats (moved objects): mean |error| by push {rp['mean_abs_mass_error_pct_by_push']}; "
              f"median spread of a case's estimates {rp['median_spread_between_pushes_pct']} points; "
              f"geometric mean of a case's pushes: mean |error| {g.get('mean_abs_mass_error_pct', '-')} %, "
              f"worst {g.get('worst_abs_mass_error_pct', '-')} % ({rp['cases_with_all_pushes']} cases)")
    p = summary.get("paper_objects")
    if p:
        print("\npaper objects at catalogue mass   " + "  ".join(f"{r['object_id']:>14}" for r in p["rows"])
              + f"  {'mean':>6}")
        print("  paper Table I |error| %        " + "  ".join(f"{r['paper_error_pct']:>14}" for r in p["rows"])
              + f"  {p['paper_mean_error_pct']:>6}")
        print("  this identifier |error| %      " + "  ".join(
            f"{('ERR' if r['our_abs_error_pct'] is None else r['our_abs_error_pct']):>14}" for r in p["rows"])
              + f"  {_fmt(p['our_mean_abs_error_pct'], '', 6)}")


# ------------------------------------------------------------------------------ main

def _git(*args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        return None


def _identifier_fingerprint() -> str:
    """sha256 over identification/*.py: the identifier changes between runs, so say which one ran."""
    h = hashlib.sha256()
    for f in sorted(IDENT_DIR.glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--program", default=DEFAULT_PROGRAM,
                   help=f"push program name or YAML path (default: {DEFAULT_PROGRAM}, the push executor's)")
    p.add_argument("--quick", action="store_true", help="6-case smoke run (2 paper objects + 4 masses); "
                   "writes a results file only with --out")
    p.add_argument("--cases", type=int, default=DEFAULT_CASES,
                   help=f"first N cases of the seeded order (default {DEFAULT_CASES}; 0 = all)")
    p.add_argument("--objects", nargs="+", metavar="ID", help="only these catalogue objects")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1,
                   help=f"worker processes (at most {MAX_JOBS}; default 1, so that each identification has "
                        "the machine's 2 cores to itself, as the seconds goal means; 2 halves the wall time "
                        "but each identification then shares the cores and its seconds roughly double)")
    p.add_argument("--no-mismatch", action="store_true",
                   help="record the pushes in the identification twin's own physics (same timestep, solver and "
                        "contact softness; only the tracking is noisy): a diagnostic of how much of the error is "
                        "model mismatch (writes ..._no_mismatch.json)")
    p.add_argument("--no-noise", action="store_true",
                   help="track perfectly (no pose noise, no dropped frames; the latency stays, unknown to the "
                        "identifier): with --no-mismatch, the identifier's floor on perfect data "
                        "(writes ..._no_noise.json)")
    p.add_argument("--repeats", type=int, default=1, metavar="K",
                   help="push every case K times (fresh noise, true start moved ~0.5 mm): how much of a figure is "
                        "the draw (writes ..._repeats<K>.json)")
    p.add_argument("--together", type=int, default=1, metavar="K",
                   help="push every case K times as --repeats does, and identify its mass from all K pushes at "
                        "once (their likelihoods added; writes ..._together<K>.json)")
    p.add_argument("--out", type=Path, default=None, help=f"results JSON (default {DEFAULT_OUT.relative_to(ROOT)}; "
                   "sysid_<program>.json for another program)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    jobs = max(1, min(args.jobs, MAX_JOBS))
    from dream_sysid.catalogue import load_catalogue
    from dream_sysid.identification.synthetic import SimulatorMismatch
    from dream_sysid.push.program import load_program

    catalogue = load_catalogue()
    program = load_program(args.program)          # fail early on a bad program name
    if args.objects:
        unknown = [o for o in args.objects if o not in catalogue]
        if unknown:
            print(f"unknown object(s) {unknown}; known: {', '.join(catalogue)}", file=sys.stderr)
            return 2
    cases = select_cases(all_cases(catalogue, args.seed), quick=args.quick,
                         n=args.cases, objects=args.objects)
    default_out = (DEFAULT_OUT if program.name == DEFAULT_PROGRAM
                   else DEFAULT_OUT.with_name(f"sysid_{program.name}.json"))
    if args.no_mismatch:
        default_out = default_out.with_name(default_out.stem + "_no_mismatch.json")
    if args.no_noise:
        default_out = default_out.with_name(default_out.stem + "_no_noise.json")
    if args.repeats > 1 and args.together > 1:
        print("--repeats and --together are two ways to use repeated pushes: pick one", file=sys.stderr)
        return 2
    if args.together > 1:
        default_out = default_out.with_name(default_out.stem + f"_together{args.together}.json")
    if args.repeats > 1:
        cases = repeated(cases, args.repeats)
        default_out = default_out.with_name(default_out.stem + f"_repeats{args.repeats}.json")
    out_path = args.out if args.out is not None else (None if args.quick else default_out)
    fingerprint = _identifier_fingerprint()
    load0 = os.getloadavg()
    print(f"{len(cases)} cases, program {program.name}, {jobs} job(s), identifier {fingerprint}",
          file=sys.stderr)

    from tqdm import tqdm

    t0 = time.time()
    rows: list[dict] = []
    bar = tqdm(total=len(cases), file=sys.stderr, desc="sysid", unit="case", dynamic_ncols=True)

    def done(row: dict) -> None:
        rows.append(row)
        err = f"{row['mass_error_pct']:+.1f}%" if "error" not in row else "ERROR"
        bar.set_postfix_str(f"{row['object_id']} {row['mass_kg']:g} kg {err}")
        bar.update(1)
        if "error" in row:
            tqdm.write(f"case {row['index']} ({row['object_id']}, {row['mass_kg']:g} kg): {row['error']}",
                       file=sys.stderr)

    if jobs == 1:
        _init_worker()
        for c in cases:
            done(run_case(c, args.program, not args.no_mismatch, not args.no_noise, args.together))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        # Cases of the same object go to the same worker where possible (its twin and plan are cached).
        ordered = sorted(cases, key=lambda c: (c.object_id, c.index))
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                 initializer=_init_worker) as pool:
            futures = {pool.submit(run_case, c, args.program, not args.no_mismatch, not args.no_noise,
                                   args.together): c
                       for c in ordered}
            for fut in as_completed(futures):
                c = futures[fut]
                try:
                    done(fut.result())
                except (BrokenProcessPool, Exception) as exc:  # noqa: BLE001 -- a worker died
                    done({**asdict(c), "error": f"worker: {_one_line(exc)}"})
    bar.close()
    wall = time.time() - t0
    rows.sort(key=lambda r: (r["index"], r.get("push", 0)))

    print_table(rows)
    summary = summarise(rows, catalogue)
    print_summary(summary)
    print(f"\nwall {wall:.0f} s with {jobs} job(s); load average before {load0[0]:.2f}, "
          f"after {os.getloadavg()[0]:.2f}")

    import mujoco
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    report = {
        "what": "mass identification (dream_sysid.identification.identify) on simulated pushes: data from a "
                "true twin (true mass, true friction) in a perturbed simulator with tracker noise; identified "
                "with a separate twin at the catalogue mass prior and friction 0.5",
        "goal": GOAL,
        "config": {
            "program": program.name,
            "program_spec": program.to_dict(),
            "seed": args.seed,
            "quick": args.quick,
            "cases_requested": None if args.quick else args.cases,
            "objects_filter": args.objects,
            "grid_masses_kg": list(GRID_MASSES_KG),
            "paper_objects_at_catalogue_mass": True,
            "true_friction_uniform": list(FRICTION_RANGE),
            "identification_twin": {"mass_kg": "catalogue mass_kg (prior)", "friction": ID_FRICTION},
            "tracker": {**TRACKER, "latency_uniform_s": list(LATENCY_RANGE_S), "joint_state_rate_hz": 100.0,
                        "noise_and_drops": not args.no_noise},
            "simulator_mismatch": None if args.no_mismatch else asdict(SimulatorMismatch()),
            "repeats": args.repeats,
            "identified_together": args.together,
            "repeat_start_shift_sigma_m": REPEAT_SHIFT_M if max(args.repeats, args.together) > 1 else None,
            "record_seeds": "per case (see cases[].record_seed), from numpy SeedSequence([seed, hash(case)])",
            "jobs": jobs,
            "torch_threads_per_worker": 1,
        },
        "identifier": {"sha256_16_of_identification_py": fingerprint,
                       "changed_during_run": _identifier_fingerprint() != fingerprint,
                       "git_head": _git("rev-parse", "HEAD"),
                       "identification_dir_dirty": bool(_git("status", "--porcelain", str(IDENT_DIR)))},
        "machine": {"cores_visible": cores, "cpu_count": os.cpu_count(), "python": platform.python_version(),
                    "torch": torch.__version__, "mujoco": mujoco.__version__, "numpy": np.__version__,
                    "load_average_before": round(load0[0], 2), "load_average_after": round(os.getloadavg()[0], 2),
                    "note": f"seconds are wall time per identify() call, {jobs} identification(s) at a time "
                            f"on {cores} cores (shared with other work on this machine)"},
        "summary": summary,
        "cases": rows,
        "wall_seconds": round(wall, 1),
    }
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_path.with_suffix(out_path.suffix + ".tmp")
        tmp.write_text(json.dumps(report, indent=2) + "\n")
        tmp.replace(out_path)
        print(f"results: {out_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
