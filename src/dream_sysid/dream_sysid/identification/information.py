"""How well can a push determine mass? The expected profile likelihood.

For push design, not for identification. Replays a noise-free push of an object
of known mass and friction (an "Asimov" data set: the noise-free recording
stands for the average of all noisy ones) in the same twin over a grid of
masses, re-fitting friction along the mu*m valley at each, and reads the
expected 95 % interval where the profile rises by 3.84. For Gaussian noise the
expected chi-square rise is exactly this noise-free cost in units of the
nominal noise (fit.SIGMA_*); it is the profile-likelihood form of the Fisher
information, which unlike the curvature also holds where the profile is
asymmetric or flat on one side, as it is here for heavy objects.

The replays start with the object 10 micrometres to the side of where the recording
had it (`START_SHIFT_M`). A push in the twin is chaotic (bench/replay_sensitivity.py):
a 1 um start change moves the slow sweep's object path by a median 0.53 mm, twice what
a 1 % mass change does (0.28 mm), itself no more than a 0.1 % one (0.26 mm). So a replay
that starts exactly where its recording did is the only one that matches it, and a
profile made that way reads the jitter of every other mass as information (it gave slow_sweep a median
expected interval of 1.12x). With the shift the true mass is no longer special; but
one shifted profile is still one draw of that jitter, with lucky dips, so a mass is
ruled out only where its cost rises above the profile's minimum by the chi-square
threshold plus the jitter: how much more the true mass itself costs, at the median,
with its replay started 10 um aside in four other directions.

What it leaves out, on purpose: model error between the cell and the twin (the
bias the bench measures) and the rest of the start position's uncertainty (the
tracker's ~0.3 mm).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dream_sysid.identification.fit import CHI2_95, PushObjective
from dream_sysid.identification.twin_replay import TwinReplay

MASS_RATIOS = np.exp(np.linspace(-0.8, 0.8, 17))       # 0.45x .. 2.2x the true mass
VALLEY_HALF_WIDTH = 0.35                               # log-friction searched around mu_true / ratio
START_SHIFT_M = 1e-5                                   # replays' object start, sideways from the recording's
JITTER_SHIFTS = ((1.0, 0.0), (-1.0, 0.0), (0.0, -1.0), (0.0, 2.0))   # x, y in START_SHIFT_M: the truth's jitter


@dataclass(frozen=True)
class ExpectedInterval:
    """Expected profile over mass ratios and the 95 % interval it implies."""

    ratios: np.ndarray          # m / m_true on the grid
    delta_chi2: np.ndarray      # expected rise of the profile cost over its minimum
    lo: float                   # expected 95 % interval as mass ratios (grid ends when it runs off)
    hi: float
    closed: bool                # both ends inside the grid
    jitter: float = 0.0         # the true mass's median cost under 10 um start shifts, above the profile's minimum

    @property
    def width_ratio(self) -> float:
        """hi / lo: 1.2 means the mass is pinned down to about +-10 %."""
        return self.hi / self.lo


def expected_interval(obj: PushObjective, replay: TwinReplay, mass: float, mu: float,
                      ratios: np.ndarray = MASS_RATIOS, start_shift_m: float = START_SHIFT_M) -> ExpectedInterval:
    """`obj` and `replay` must come from a noise-free, latency-free recording at (mass, mu).

    Friction is minimised per mass by a bounded Brent search (a coarse friction
    grid alone makes the profile jagged: the cost is sharp across the valley).
    The interval is the hull of every mass whose profile stays below the 95 %
    threshold, so a profile with several dips gives the wide interval it means."""
    from scipy.optimize import minimize_scalar

    zero = torch.zeros(1, dtype=torch.float64)

    def cost(m: float, log_mu: float) -> float:
        return float((obj.stacked(obj.residuals(replay.rollout(m, float(np.exp(log_mu))), zero)) ** 2).sum())

    prof = np.empty(len(ratios))
    with replay.object_shifted(0.0, start_shift_m):
        for i, r in enumerate(ratios):
            centre = float(np.log(mu / r))
            res = minimize_scalar(lambda u: cost(mass * r, u), bounds=(centre - VALLEY_HALF_WIDTH, centre + VALLEY_HALF_WIDTH),
                                  method="bounded", options={"xatol": 2e-3})
            prof[i] = min(float(res.fun), cost(mass * r, centre))
    truth = []
    for dx, dy in JITTER_SHIFTS:
        with replay.object_shifted(dx * start_shift_m, dy * start_shift_m):
            truth.append(cost(mass, float(np.log(mu))))
    delta = prof - prof.min()
    jitter = max(0.0, float(np.median(truth)) - float(prof.min()))
    threshold = CHI2_95 + jitter
    below = np.flatnonzero(delta <= threshold)
    lo_i, hi_i = int(below[0]), int(below[-1])
    lr = np.log(ratios)

    def cross(i_in: int, i_out: int) -> float:
        y_in, y_out = delta[i_in], delta[i_out]
        f = (threshold - y_in) / (y_out - y_in) if y_out != y_in else 0.0
        return float(np.exp(lr[i_in] + f * (lr[i_out] - lr[i_in])))

    lo = cross(lo_i, lo_i - 1) if lo_i > 0 else float(ratios[0])
    hi = cross(hi_i, hi_i + 1) if hi_i < len(ratios) - 1 else float(ratios[-1])
    return ExpectedInterval(np.asarray(ratios), delta, lo, hi, bool(lo_i > 0 and hi_i < len(ratios) - 1), jitter)
