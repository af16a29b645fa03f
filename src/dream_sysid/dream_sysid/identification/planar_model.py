"""The differentiable push (torch): a planar rigid object on the table, pushed by a
compliant fingertip, integrated with semi-implicit Euler and penalty contact as in
the paper (eqs. 3-5).

Why this reduced model is enough to see mass: the pushing finger is a PD servo,
i.e. a spring of Cartesian stiffness K = (J Kp^-1 J^T)^-1 (taken from the twin)
pulling the fingertip toward its commanded position. The object resists with
m (a + mu g): the finger's deflection and the object's lag carry m*a, the slide
after release carries mu*g alone, so together they separate m from mu.

Everything is batched over parameter sets (B,) so that a coarse global search
and the gradient refinement use the same code.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

G = 9.81
LOADING_RATE_SCALE = 1e-5  # m^2/s: deflection x deflection rate where the tip's slip direction turns
# The twin's soft friction (MuJoCo, the push twin's pyramidal cone) slides an object at 0.970
# (0.3 m/s) to 0.982 (0.1 m/s) of mu N (bench/gradient_consistency.py: sliding_friction). The
# planar model's mu is the twin's, so its table friction is scaled alike; without it its
# gradients came out 8-10 % steeper than the twin's.
TABLE_FRICTION_SCALE = 0.975


@dataclass(frozen=True)
class PushScenario:
    """Everything about one push that is data, not a parameter (all float64 numpy)."""

    dt: float
    anchor: np.ndarray            # (T, 2) commanded fingertip position (world xy), gravity-sag calibrated
    anchor_vel: np.ndarray        # (T, 2)
    tip0: np.ndarray              # (2,) initial fingertip position
    tipv0: np.ndarray             # (2,)
    stiffness: np.ndarray         # (2, 2) fingertip Cartesian stiffness (N/m)
    damping: np.ndarray           # (2, 2) fingertip Cartesian damping (N s/m)
    tip_mass: float               # effective fingertip mass (kg)
    tip_radius: float             # m
    polygon: np.ndarray           # (P, 2) object cross-section at fingertip height, CCW, COM frame
    com0: np.ndarray              # (2,) initial COM position (world xy)
    yaw0: float                   # initial yaw (rad)
    gyration2: float              # I_zz / m about the COM (m^2)
    torsion_radius: float         # mean distance of the support from the COM (m)
    contact_stiffness: float = 3000.0
    contact_damping: float = 10.0
    face_friction_coupling: float = 1.0   # 1: a bending finger slides up the face (the twin); 0: rigid tip at fixed height
    com_vel0: tuple[float, float] = (0.0, 0.0)  # initial object velocity (m/s): 0 for a push from rest

    @property
    def steps(self) -> int:
        return len(self.anchor)


def straight_push(speed: float = 0.3, accel: float = 3.0, push_until: float = 0.25, steps: int = 300,
                  dt: float = 0.002, half: float = 0.025, coupling: float = 1.0) -> PushScenario:
    """A square object (side 2*half) pushed along +x by a fingertip whose anchor follows a
    trapezoidal velocity profile: the reference case for tests and the consistency bench."""
    t = dt * np.arange(steps)
    v = np.minimum(accel * t, speed)
    v[t > push_until] = 0.0
    x = -(half + 0.015) + np.cumsum(v) * dt
    anchor = np.stack([x, np.zeros_like(x)], 1)
    poly = np.array([[-half, -half], [half, -half], [half, half], [-half, half]])
    return PushScenario(dt=dt, anchor=anchor, anchor_vel=np.gradient(anchor, dt, axis=0), tip0=anchor[0],
                        tipv0=np.zeros(2), stiffness=np.diag([60.0, 2000.0]), damping=np.diag([0.5, 15.0]),
                        tip_mass=0.015, tip_radius=0.012, polygon=poly, com0=np.zeros(2), yaw0=0.0,
                        gyration2=(2 * half) ** 2 / 6, torsion_radius=0.019 * half / 0.025,
                        face_friction_coupling=coupling)


def _edges(polygon: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Outward unit normals and offsets of a CCW convex polygon's edges."""
    a, b = polygon, torch.roll(polygon, -1, dims=0)
    e = b - a
    n = torch.stack([e[:, 1], -e[:, 0]], dim=1)
    n = n / torch.linalg.norm(n, dim=1, keepdim=True)
    d = (n * a).sum(dim=1)
    return n, d


def rollout(scn: PushScenario, log_mass: torch.Tensor, log_mu: torch.Tensor,
            record_every: int = 1) -> dict[str, torch.Tensor]:
    """Simulates B pushes (parameters shaped (B,)); returns COM xy, yaw and tip xy per recorded step."""
    dtype = log_mass.dtype
    B = log_mass.shape[0]
    t = lambda a: torch.as_tensor(a, dtype=dtype)  # noqa: E731
    m = torch.exp(log_mass)
    mu = torch.exp(log_mu)
    mu_table = TABLE_FRICTION_SCALE * mu
    inertia = m * scn.gyration2
    n_edge, d_edge = _edges(t(scn.polygon))
    K, D = t(scn.stiffness), t(scn.damping)
    anchor, anchor_v = t(scn.anchor), t(scn.anchor_vel)
    inv_mf = 1.0 / scn.tip_mass
    ke, kd, r = scn.contact_stiffness, scn.contact_damping, scn.tip_radius
    dt = scn.dt

    com = t(scn.com0).expand(B, 2).clone()
    yaw = torch.full((B,), scn.yaw0, dtype=dtype)
    v = t(scn.com_vel0).expand(B, 2).clone()
    w = torch.zeros(B, dtype=dtype)
    p = t(scn.tip0).expand(B, 2).clone()
    pv = t(scn.tipv0).expand(B, 2).clone()
    out_com, out_yaw, out_tip = [], [], []
    for k in range(scn.steps):
        c, s = torch.cos(yaw), torch.sin(yaw)
        rel = p - com
        # Fingertip centre in the object's COM frame.
        local = torch.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], dim=1)
        dist = local @ n_edge.T - d_edge                     # (B, P) signed distances to edge lines
        sd, idx = dist.max(dim=1)
        nl = n_edge[idx]                                     # (B, 2) contact normal, object frame
        nw = torch.stack([c * nl[:, 0] - s * nl[:, 1], s * nl[:, 0] + c * nl[:, 1]], dim=1)
        pen = torch.clamp(r - sd, min=0.0)
        contact = (pen > 0).to(dtype)
        arm = rel - r * nw                                   # COM -> contact point
        v_point = v + torch.stack([-w * arm[:, 1], w * arm[:, 0]], dim=1)
        vrel = pv - v_point
        vn = (vrel * nw).sum(dim=1)
        fn = torch.clamp(ke * pen - kd * vn * contact, min=0.0)
        vt = vrel - vn[:, None] * nw
        # Finger-object friction as an impulse that at most stops the relative
        # sliding within the step (Coulomb with stiction, stable at any dt).
        vt_norm = torch.sqrt((vt * vt).sum(dim=1, keepdim=True) + 1e-12)
        stop = vt_norm / (dt * (inv_mf + 1.0 / m[:, None]))
        ft = -torch.minimum(stop, mu[:, None] * fn[:, None]) * vt / vt_norm
        f_tip = fn[:, None] * nw + ft                        # on the fingertip
        spring = (anchor[k] - p) @ K.T + (anchor_v[k] - pv) @ D.T
        pv = pv + dt * inv_mf * (spring + f_tip)
        p = p + dt * pv
        f_obj = -f_tip
        tau = arm[:, 0] * f_obj[:, 1] - arm[:, 1] * f_obj[:, 0]
        v = v + dt * f_obj / m[:, None]
        w = w + dt * tau / inertia
        # Table friction, likewise: reduces the velocity by at most mu N dt / m.
        # N = m g +- mu fn: a finger bending back under load slides its tip up
        # the object's face, and that friction presses the object onto the
        # table (measured in the MuJoCo twin: the steady push force is
        # mu m g / (1 - mu^2), not mu m g); unloading it lifts.
        # Loading (deflection growing) slides the tip up the face, unloading down.
        defl = p - anchor[k]
        loading = torch.tanh(((defl * (pv - anchor_v[k])).sum(dim=1)) / LOADING_RATE_SCALE)
        normal = torch.clamp(m * G + scn.face_friction_coupling * mu * fn * loading, min=0.0)
        speed = torch.sqrt((v * v).sum(dim=1, keepdim=True) + 1e-12)
        v = v * torch.clamp(1.0 - dt * (mu_table * normal / m)[:, None] / speed, min=0.0)
        spin = torch.sqrt(w * w + 1e-12)
        w = w * torch.clamp(1.0 - dt * mu_table * normal * scn.torsion_radius / (inertia * spin), min=0.0)
        com = com + dt * v
        yaw = yaw + dt * w
        if k % record_every == 0:
            out_com.append(com)
            out_yaw.append(yaw)
            out_tip.append(p)
    return {"com": torch.stack(out_com, 1), "yaw": torch.stack(out_yaw, 1), "tip": torch.stack(out_tip, 1)}
