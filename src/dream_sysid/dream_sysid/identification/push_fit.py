"""One push's part of an identification: its reduced-model fit, its profile over mass on the
MuJoCo twin, and that profile as a likelihood in units of its own noise.

Several pushes of one object identify its mass together by adding their likelihoods
(identification/api.py): each push keeps its own friction valley and latency (the table
under the object changes between pushes), and their masses must agree. A push is chaotic
(bench/replay_sensitivity.py), so one push's profile is one draw; the sum of a few is less
of one.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from dream_sysid.identification import fit
from dream_sysid.identification.twin_replay import TwinReplay, profile_on_twin, start_jitter


@dataclass
class PushFit:
    obj: fit.PushObjective            # the differentiable push's residuals (obj.prep: the push)
    twin_obj: fit.PushObjective       # the twin's (its fingertip weighed at the encoders' noise)
    replay: TwinReplay
    start: np.ndarray                 # global stage's [log m, log mu, latency]
    reduced: np.ndarray               # after the gradient step
    history: list
    iterations: int
    grid: tuple                       # the global stage's (lm, lmu, costs), for the report
    lm: np.ndarray = field(default_factory=lambda: np.empty(0))      # twin profile: log-masses (sorted)
    cost: np.ndarray = field(default_factory=lambda: np.empty(0))    # its cost at each
    lmu: np.ndarray = field(default_factory=lambda: np.empty(0))     # its best log-friction at each
    # Set by settle():
    final: dict | None = None         # the lowest profile point replayed once (RMSEs, report)
    final_res: dict | None = None
    scale2: float = 1.0               # the residuals' own noise scale (reduced chi-square x correlation)
    roughness: float = 0.0
    jitter: float = 0.0

    @property
    def log_mu_m(self) -> float:
        return float(self.reduced[0] + self.reduced[1])

    @property
    def latency(self) -> float:
        return float(self.reduced[2])

    def add_pass(self, masses: np.ndarray, *, seeded: bool, progress=None) -> None:
        """Profile these log-masses on the twin: friction over its whole range (seeded=False), or
        around the valley of the masses profiled so far (seeded=True)."""
        seed = np.interp(masses, self.lm, self.lmu) if seeded else None
        c, u = profile_on_twin(self.twin_obj, self.replay, self.log_mu_m, self.latency, masses, fit.MU_RANGE,
                               seed_log_mu=seed, progress=progress)
        order = np.argsort(np.concatenate([self.lm, masses]))
        self.lm = np.concatenate([self.lm, masses])[order]
        self.cost, self.lmu = np.concatenate([self.cost, c])[order], np.concatenate([self.lmu, u])[order]

    def settle(self, window: tuple[float, float]) -> None:
        """The lowest profile point, replayed once: the noise scale of its residuals (inflated for
        their correlation in time), and the profile's roughness over `window` and the push's
        chaos at that point (twin_replay.start_jitter), which widen the interval."""
        i = int(np.argmin(self.cost))
        log_m, log_mu, cost_min = float(self.lm[i]), float(self.lmu[i]), float(self.cost[i])
        self.jitter = start_jitter(self.twin_obj, self.replay, log_m, log_mu, self.latency, cost_min)
        self.final = self.replay.rollout(float(np.exp(log_m)), float(np.exp(log_mu)))
        self.final_res = self.twin_obj.residuals(self.final, torch.tensor([self.latency], dtype=torch.float64))
        n_res = int(self.twin_obj.stacked(self.final_res).numel())
        reduced = cost_min / max(n_res - 3, 1)
        self.scale2 = max(1.0, reduced) * fit.correlation_inflation(self.final_res)
        self.roughness = fit.profile_roughness(self.lm, self.cost, *window)

    @property
    def likelihood(self) -> np.ndarray:
        """-2 log profile likelihood over `lm`, above its minimum, in units of the noise scale."""
        return (self.cost - self.cost.min()) / self.scale2
