"""The differentiable planar push (planar_model) built in MuJoCo: the reference its
autodiff gradients are checked against (tests/sysid/test_gradient_consistency.py,
bench/gradient_consistency.py).

A box on four joints (x, y, z slides and yaw, so it cannot rock: the planar model has
no tilt) and a fingertip sphere on x, y slides at a fixed height, pulled by the
scenario's Cartesian spring and damper (applied each step, explicitly, as the planar
model integrates them). The box either rests on its bottom face or, for a push that
starts sliding, on a single support point under its centre (so four corner contacts
do not share its weight by the solver's choice).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import mujoco
import numpy as np

from dream_sysid.identification.planar_model import PushScenario, straight_push

_XML = """
<mujoco>
  <option timestep="{dt}" cone="{cone}" impratio="{impratio}" integrator="Euler"/>
  <default><geom friction="{mu} 0.005 0.0001"/></default>
  <worldbody>
    <geom name="table" type="plane" size="1 1 0.1"/>
    <body name="box" pos="0 0 {half}">
      <joint type="slide" axis="1 0 0"/><joint type="slide" axis="0 1 0"/>
      <joint type="slide" axis="0 0 1"/><joint type="hinge" axis="0 0 1"/>
      <geom type="box" size="{half} {half} {half}" mass="{m}" {box}/>
      {support}
    </body>
    <body name="tip" pos="0 0 {tip_z}">
      <joint name="tx" type="slide" axis="1 0 0"/><joint name="ty" type="slide" axis="0 1 0"/>
      <geom type="sphere" size="{r}" mass="{mt}" {tip}/>
    </body>
  </worldbody>
  <contact><exclude body1="tip" body2="world"/></contact>
</mujoco>"""

STIFF_TIP = 'solref="0.004 1" solimp="0.99 0.99 0.001"'   # near-rigid, as the planar model's tip contact


@dataclass(frozen=True)
class Contacts:
    """Geom attributes of the box and the tip, and the support geom (or none)."""

    box: str = ""
    tip: str = ""
    support: str = ""

    def stiff_tip(self) -> "Contacts":
        return dataclasses.replace(self, tip=f"{self.tip} {STIFF_TIP}".strip())


BOX_ON_TABLE = Contacts()
# The box touches the table at one point under its COM; the tip touches only the box,
# frictionless. priority="1": MuJoCo gives a contact the larger condim of its two geoms
# unless their priorities differ, so condim="1" alone left the tip with friction, which
# acted vertically on the box (the tip's height is fixed) and made it chatter on its support.
POINT_SUPPORT = Contacts(box='contype="2" conaffinity="2"', tip='contype="2" conaffinity="2" condim="1" priority="1"',
                         support='<geom type="sphere" size="0.005" pos="0 0 {z}" mass="0"/>')


def sliding_push(dt: float = 0.002, duration: float = 0.5, speed: float = 0.3, swing: float = 0.06,
                 freq: float = 1.5, half: float = 0.025, preload_n: float = 1.18) -> PushScenario:
    """The smooth case: the object sliding at `speed` from the start, the tip pressed on it
    0.5 mm deep with the spring preloaded by `preload_n` (mu m g at 0.3 kg, mu 0.4), its
    anchor speed swinging: nothing sticks and the tip stays on the box. Sideways damping
    5 N s/m: 15 on a 15 g tip sits at explicit Euler's limit at 2 ms (D dt / m = 2), and a
    frictionless tip then shakes sideways."""
    base = straight_push(dt=dt, steps=2, half=half, coupling=0.0)
    t = dt * np.arange(int(round(duration / dt)))
    va = speed + swing * np.sin(2 * np.pi * freq * t)
    tip0 = np.array([-(half + base.tip_radius) + 0.0005, 0.0])
    x = tip0[0] + preload_n / base.stiffness[0, 0] + np.concatenate([[0.0], np.cumsum(va[:-1]) * dt])
    return dataclasses.replace(base, anchor=np.stack([x, np.zeros_like(x)], 1),
                               anchor_vel=np.stack([va, np.zeros_like(va)], 1), tip0=tip0,
                               tipv0=np.array([speed, 0.0]), com_vel0=(speed, 0.0),
                               damping=np.diag([base.damping[0, 0], 5.0]))


def simulate(scn: PushScenario, mass: float, mu: float, contacts: Contacts | None = None,
             cone: str = "pyramidal", impratio: float = 1.0) -> np.ndarray:
    """The object's xy over the push (T, 2). `contacts` defaults to the point support for a
    push that starts sliding (scn.com_vel0), which first rests the box on it, and to the
    box on the table otherwise; the cone defaults to the push twin's (config/cell.yaml)."""
    half = float(np.abs(scn.polygon).max())
    sliding = any(scn.com_vel0)
    c = contacts or (POINT_SUPPORT if sliding else BOX_ON_TABLE)
    model = mujoco.MjModel.from_xml_string(_XML.format(
        dt=scn.dt, cone=cone, impratio=impratio, mu=mu, m=mass, half=half, tip_z=0.8 * half, r=scn.tip_radius,
        mt=scn.tip_mass, box=c.box, tip=c.tip, support=c.support.format(z=-half + 0.005)))
    data = mujoco.MjData(model)
    if sliding:
        data.qpos[4] = -0.5
        for _ in range(int(round(0.3 / scn.dt))):
            mujoco.mj_step(model, data)
        data.qpos[0:2] = 0.0
        data.qvel[:] = 0.0
        data.qvel[0:2] = scn.com_vel0
        data.qvel[4:6] = scn.tipv0
    data.qpos[4:6] = scn.tip0
    mujoco.mj_forward(model, data)
    out = np.empty((scn.steps, 2))
    for k in range(scn.steps):
        data.qfrc_applied[4:6] = (scn.stiffness @ (scn.anchor[k] - data.qpos[4:6])
                                  + scn.damping @ (scn.anchor_vel[k] - data.qvel[4:6]))
        mujoco.mj_step(model, data)
        out[k] = data.qpos[0:2]
    return out


def loss(scn: PushScenario, log_m: float, log_mu: float, target: np.ndarray, steps: int, **kw) -> float:
    """Squared xy error to `target` over the first `steps` (in cm^2, as the bench and test use)."""
    xy = simulate(scn, float(np.exp(log_m)), float(np.exp(log_mu)), **kw)
    return float(((xy[:steps] - target[:steps]) ** 2).sum() * 1e4)


def slope(scn: PushScenario, log_m: float, log_mu: float, target: np.ndarray, steps: int, i: int,
          h: float = 1e-4, n: int = 8, **kw) -> tuple[float, float]:
    """The loss's slope along log-parameter i: the median of 2n increments at step h (robust to
    isolated jumps), and the spread of the middle half of them relative to it (smooth: small)."""
    e = np.eye(2)[i] * h
    losses = np.array([loss(scn, log_m + k * e[0], log_mu + k * e[1], target, steps, **kw) for k in range(-n, n + 1)])
    inc = np.sort(np.diff(losses) / h)
    med = float(np.median(inc))
    return med, float(np.ptp(inc[n // 2: -(n // 2)]) / abs(med)) if med else float("inf")
