"""What a push that did not move the object still says about its mass: a lower bound.

The object stayed put, so at every instant its friction held the robot's push:
|F_h| <= mu (m g - F_z), with F_h the push's horizontal part and F_z its upward
part. With the friction at most `mu_max` (the identifier's own bound), the mass is
at least |F_h| / (mu_max g) + F_z / g. The push force is the twin's: the logged
commands replayed with the object too heavy and too rough to move, so the compliant
finger loads, bends and rides over it as the real one did (on the bench's stalled
sweep_release pushes about 2 N where it asks the most of friction, whatever the
object's mass; 4 N on the taller light block). The bound holds only if that replay
also leaves the object in place; otherwise there is none.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dream_sysid.identification import fit
from dream_sysid.identification.prepare import MIN_TRAVEL_M
from dream_sysid.identification.twin_replay import TwinReplay

GRAVITY = 9.81
# Sustained force only: a boxcar this long over the contact force, so an impact's spike
# (too short to slide anything) does not raise the bound.
SMOOTH_S = 0.05


@dataclass(frozen=True)
class StallBound:
    mass_kg: float      # the mass is at least this
    force_n: float      # the push's horizontal force where it asks the most of friction
    mu_max: float       # the friction the bound allows at most


def stall_bound(replay: TwinReplay, mu_max: float = fit.MU_RANGE[1]) -> StallBound | None:
    """The lower bound on the mass from a push that left the object in place, or None when the
    twin, replayed at the heaviest mass and `mu_max`, moves the object (it does not reproduce
    the stall, so its force says nothing)."""
    force, travel = replay.hand_force(fit.MASS_RANGE[1], mu_max)
    if travel >= MIN_TRAVEL_M:
        return None
    n = max(1, int(round(SMOOTH_S / replay.model.opt.timestep)))
    box = np.ones(n) / n
    f_h = np.convolve(np.linalg.norm(force[:, :2], axis=1), box, mode="same")
    f_up = np.convolve(force[:, 2], box, mode="same")
    need = f_h / (mu_max * GRAVITY) + f_up / GRAVITY
    k = int(np.argmax(need))
    return StallBound(mass_kg=max(0.0, float(need[k])), force_n=float(f_h[k]), mu_max=mu_max)
