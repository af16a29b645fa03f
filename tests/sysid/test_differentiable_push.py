"""The differentiable push (torch): physics that makes mass observable, and
autodiff gradients that agree with finite differences of the same simulation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dream_sysid.identification.planar_model import G, TABLE_FRICTION_SCALE, PushScenario, rollout, straight_push


def scenario(speed: float = 0.3, accel: float = 3.0, push_until: float = 0.25, steps: int = 300) -> PushScenario:
    """A 5 cm square object pushed along +x by a fingertip anchored to a trapezoidal motion."""
    return straight_push(speed, accel, push_until, steps)


def _run(scn, masses, mus):
    with torch.no_grad():
        out = rollout(scn, torch.log(torch.tensor(masses, dtype=torch.float64)),
                      torch.log(torch.tensor(mus, dtype=torch.float64)))
    return {k: v.numpy() for k, v in out.items()}


def test_heavier_objects_deflect_the_finger_more():
    scn = scenario()
    out = _run(scn, [0.05, 0.1, 0.2], [0.5, 0.5, 0.5])
    deflection = np.abs(out["tip"][:, :, 0] - scn.anchor[None, :, 0]).max(axis=1)
    assert deflection[0] < deflection[1] < deflection[2]
    # The finger spring must at least overcome friction mu m g to move the 0.2 kg object.
    assert deflection[2] * scn.stiffness[0, 0] > 0.5 * 0.2 * G
    assert out["com"][2, -1, 0] > 0.05


def test_free_slide_decelerates_at_mu_g_whatever_the_mass():
    scn = scenario(speed=0.35, accel=8.0, push_until=0.12)
    out = _run(scn, [0.05, 0.1], [0.4, 0.4])
    touching = scn.tip_radius + 0.025 + 0.001   # tip centre to object centre when in contact (+1 mm)
    for b in range(2):
        x = out["com"][b, :, 0]
        v = np.gradient(x, scn.dt)
        free = (x - out["tip"][b, :, 0] > touching) & (v > 0.08)
        sliding = np.flatnonzero(free)
        breaks = np.flatnonzero(np.diff(sliding) > 1)
        sliding = sliding[breaks[-1] + 1:] if len(breaks) else sliding   # the final free slide
        assert len(sliding) > 10, "the object should slide free after the finger stops"
        decel = -np.polyfit(sliding * scn.dt, v[sliding], 1)[0]
        assert decel == pytest.approx(TABLE_FRICTION_SCALE * 0.4 * G, rel=0.03)


def test_autodiff_gradient_matches_finite_differences():
    scn = scenario()
    target = _run(scn, [0.2], [0.5])
    xy = torch.as_tensor(target["com"][0])
    tip = torch.as_tensor(target["tip"][0])

    def cost(params: torch.Tensor) -> torch.Tensor:
        out = rollout(scn, params[0:1], params[1:2])
        return ((out["com"][0] - xy) ** 2).sum() * 1e4 + ((out["tip"][0] - tip) ** 2).sum() * 1e4

    p = torch.tensor([np.log(0.3), np.log(0.4)], dtype=torch.float64, requires_grad=True)
    cost(p).backward()
    grad = p.grad.numpy()
    eps = 1e-5
    fd = []
    with torch.no_grad():
        for i in range(2):
            d = torch.zeros(2, dtype=torch.float64)
            d[i] = eps
            fd.append(float((cost(p + d) - cost(p - d)) / (2 * eps)))
    np.testing.assert_allclose(grad, fd, rtol=1e-4)
    assert np.all(np.abs(grad) > 1e-3)  # both parameters matter to this push
