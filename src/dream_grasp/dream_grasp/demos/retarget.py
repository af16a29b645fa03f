"""Human hand-object demonstrations -> LEAP grasp demonstrations (dex-retargeting).

Stage §IV-C of the paper: per-frame human hand keypoints (HaMeR) and object poses
(MCC-HO / the pose tracker) become LEAP palm poses relative to the object and 16
LEAP joint targets.

Input: one `.npz` per demonstration
  keypoints    (T, 21, 3) float   right hand, MANO/OpenPose joint order, metres, all
                                  frames in one fixed frame W (camera or world), as
                                  HaMeR outputs them:
                                  0 wrist; thumb 1-4 (CMC, MCP, IP, tip); index 5-8,
                                  middle 9-12, ring 13-16, little 17-20 (MCP, PIP, DIP, tip)
  object_pose  (T, 4, 4) float    the object frame (= the catalogue mesh's frame) in W
  object_id    str                catalogue object id (config/objects/catalogue.yaml)
  fps          float, optional    recorded in the output header
Frames with NaN, a wrong shape, non-rigid object poses or a left hand are refused
(UserError naming the input).

Method (what is fixed here, and why):
* Hand frame H (per frame): origin at the wrist keypoint, z from the wrist to the
  midpoint of the index and little MCPs (along the fingers), x along the palm normal
  (index MCP - wrist) x (little MCP - wrist), which points out of the palm of a right
  hand, y = z x x (towards the thumb). The LEAP gets the same frame from its own
  keypoint equivalents (`LeapHand.keypoints`: wrist = dex-urdf `base`, MCP = the
  flexion joint nearest the palm, PIP/DIP = the next two flexion joints, tip = the
  `*_tip_head` links, the missing little finger = the ring finger moved by one
  knuckle spacing); the fixed rotation between the two is `LeapHand.frame_in_base`.
* Scale gap: the human hand length is measured on the keypoints (wrist -> MCP ->
  PIP -> DIP -> tip polyline, mean of index/middle/ring, median over frames: bone
  lengths do not change with the pose); s = the LEAP's same length / the human's.
  The human hand is scaled by s about its grasp centre (the midpoint between the
  thumb tip and the mean index/middle/ring tip at the grasp frame, a point fixed in
  H): the hand shape becomes LEAP-sized while the grasp centre stays where the human
  had it relative to the object (scaling about the wrist instead would put the
  LEAP fingertips (s - 1) x the wrist-tip distance further out, into or past the
  object). `anchor="wrist"`
  keeps the wrist fixed instead; `scale=` overrides the estimate.
* Joints: dex-retargeting's vector retargeting (SeqRetargeting, LEAP right URDF
  from dex-urdf) on two kinds of vectors, both in the LEAP base frame:
  reach vectors wrist -> thumb/index/middle/ring tip, scaled by s (where the tips
  go; listed 3 times, i.e. weighted 3x), and bone vectors (thumb MCP-IP-tip, finger
  MCP-PIP-DIP-tip) = the human bone's direction x the LEAP bone's length (how each
  finger bends, whatever the two hands' proportions). On keypoints made by LEAP
  forward kinematics this recovers the joints (median error ~0.003 rad); on human
  proportions the LEAP's longer fingers and different thumb leave tip residuals (see
  `RetargetedDemo.tip_error_m`). Bounds = the URDF limits intersected with the
  Menagerie MJCF's (the thumb's differ), results clipped to the MJCF limits. URDF
  joint "k" is Dynamixel id k; `LeapHand` checks at start-up that the cell's
  grasp_hand.motor_joints map puts them on the MJCF joints with the same zero and
  sign (fingertips and PIPs agree to < 0.1 mm over random postures) and refuses
  otherwise.
* Palm pose: the LEAP `palm` body (MJCF, = URDF `palm_lower`) at
  H * [R = frame_in_base^T, t = (1 - s) * anchor] * base_to_palm, i.e. the dex-urdf
  `base` (the LEAP's wrist) on the scaled human wrist.
* Grasp frame: the first frame whose human thumb/index/middle/ring tips are, on
  average, within 2 mm of their closest approach to the object (penetration counts as
  0); `grasp_frame=` overrides. Its posture and palm pose are the demonstration.

Output: a DemoSet (demos/dataset.py), one row per input file:
  palm_in_object  palm pose in the object frame at the grasp frame
  joint_targets   retargeted LEAP joints at the grasp frame (Allegro-style rad, id order)
  fingers         which human tips (index, middle, ring, thumb; the little finger has
                  no LEAP counterpart) are within `contact_m` (default 10 mm: a tip
                  keypoint sits ~one finger radius from a touching pad) of the object
                  mesh at the grasp frame
  contact_flags   (>= 2 of those touch from the grasp frame to the end,
                   the object was carried: moved >= 3 cm after the grasp frame with a
                   tip still touching at the end) -- read off the human demonstration,
                  not a simulated trial
  force_n, force_label, mass_kg  as the synthetic demos (paper Eq. 10, Alg. 2) at the
                  catalogue mass (or `mass_kg=`)
and `<out>.trajectories.npz` with every frame (`demo<i>_joint_targets` (T, 16),
`demo<i>_palm_in_object` (T, 4, 4), `demo<i>_grasp_frame`). The JSON header records
per demonstration the scale, hand length, grasp frame and the fingertip residuals.

CLI: dream-grasp-retarget DEMO.npz [DEMO.npz ...] --out DIR/NAME
     [--urdf-dir ../shared/dex-urdf] [--scale S] [--grasp-frame N] [--anchor grasp|wrist]
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dream_grasp.demos.dataset import DemoSet
from dream_grasp.hand_scene import FINGERS
from dream_grasp.trial import N_MIN
from dream_hw.errors import OneLineArgumentParser, UserError, cli_main

# ---------------------------------------------------------------- keypoints (MANO order)
N_KEYPOINTS = 21
WRIST = 0
THUMB = (1, 2, 3, 4)
INDEX = (5, 6, 7, 8)
MIDDLE = (9, 10, 11, 12)
RING = (13, 14, 15, 16)
LITTLE = (17, 18, 19, 20)
TIPS = {"if": 8, "mf": 12, "rf": 16, "th": 4}           # dream's finger names -> keypoint
FINGER_TIPS = tuple(TIPS[f] for f in FINGERS)          # in FINGERS order (if, mf, rf, th)

# Retargeting vectors (origin link, task link) <- human keypoints (a, b), in two kinds:
#   reach: LEAP wrist -> tip = s * (human wrist -> tip)       (where the tips go)
#   bone:  LEAP bone = unit(human bone) * the LEAP bone length (how each finger bends)
REACH = (("base", "thumb_tip_head", 0, 4), ("base", "index_tip_head", 0, 8),
         ("base", "middle_tip_head", 0, 12), ("base", "ring_tip_head", 0, 16))
BONES = (("thumb_dip", "thumb_fingertip", 2, 3), ("thumb_fingertip", "thumb_tip_head", 3, 4),
         ("mcp_joint", "dip", 5, 6), ("dip", "fingertip", 6, 7), ("fingertip", "index_tip_head", 7, 8),
         ("mcp_joint_2", "dip_2", 9, 10), ("dip_2", "fingertip_2", 10, 11), ("fingertip_2", "middle_tip_head", 11, 12),
         ("mcp_joint_3", "dip_3", 13, 14), ("dip_3", "fingertip_3", 14, 15), ("fingertip_3", "ring_tip_head", 15, 16))
REACH_WEIGHT = 3               # reach vectors are listed this many times (the optimiser weighs vectors equally)
# LEAP keypoint equivalents in MANO order (little finger: see LeapHand.keypoints).
_LEAP_KEYPOINT_LINKS = ("base",
                        "thumb_pip", "thumb_dip", "thumb_fingertip", "thumb_tip_head",
                        "mcp_joint", "dip", "fingertip", "index_tip_head",
                        "mcp_joint_2", "dip_2", "fingertip_2", "middle_tip_head",
                        "mcp_joint_3", "dip_3", "fingertip_3", "ring_tip_head")
# The same points on the Menagerie MJCF: the body that carries each point, and the URDF
# link with that body's frame (the point's offset in it comes from the URDF)
_MJCF_POINTS = {"thumb_tip_head": "th_ds", "index_tip_head": "if_ds", "middle_tip_head": "mf_ds",
                "ring_tip_head": "rf_ds", "thumb_dip": "th_px", "dip": "if_md", "dip_2": "mf_md", "dip_3": "rf_md"}
_MJCF_PARENT_LINK = {"thumb_tip_head": "thumb_fingertip", "index_tip_head": "fingertip",
                     "middle_tip_head": "fingertip_2", "ring_tip_head": "fingertip_3",
                     "thumb_dip": "thumb_dip", "dip": "dip", "dip_2": "dip_2", "dip_3": "dip_3"}
TIP_LINKS = {"if": "index_tip_head", "mf": "middle_tip_head", "rf": "ring_tip_head", "th": "thumb_tip_head"}

LEAP_URDF = Path("leap_hand") / "leap_hand_right.urdf"
DEFAULT_CONTACT_M = 0.010
GRASP_SLACK_M = 0.002          # grasp frame: first frame within this of the closest approach
CARRIED_M = 0.03               # the object moved this much after the grasp frame: carried
# Optimiser settings, measured on exact LEAP keypoint sequences (40 frames, closing hand):
# dex-retargeting's defaults (pull to the last frame 4e-3, ftol 1e-6) leave the solution
# lagging the hand by ~0.1 rad / ~1 mm at the tips; these follow it to ~0.01 rad / 0.1 mm.
NORM_DELTA = 1e-3
FTOL_ABS = 1e-8
LEFT_CURL = 0.05               # palmar_curl below -this (~3 deg backwards on average): not a right hand
MAPPING_TOL_M = 1e-4           # URDF vs MJCF forward kinematics must agree this well


def require_dex_retargeting():
    """Imports dex-retargeting, or one UserError line naming what is missing."""
    try:
        from dex_retargeting.retargeting_config import RetargetingConfig
    except ImportError as exc:
        what = getattr(exc, "name", None) or str(exc).splitlines()[0]
        raise UserError(f"human-demonstration retargeting needs dex-retargeting and its dependencies "
                        f"(missing: {what}); they are pinned in requirements.txt: run scripts/setup.sh") from None
    return RetargetingConfig


def find_urdf_dir(urdf_dir: str | Path | None = None) -> Path:
    """The folder holding leap_hand/leap_hand_right.urdf: urdf_dir, $DEX_URDF_DIR or ../shared/dex-urdf."""
    from dream_hw.paths import shared_dir

    if urdf_dir is not None:
        roots, what = [Path(urdf_dir)], f"--urdf-dir {urdf_dir}"
    elif os.environ.get("DEX_URDF_DIR"):
        roots, what = [Path(os.environ["DEX_URDF_DIR"])], f"DEX_URDF_DIR={os.environ['DEX_URDF_DIR']}"
    else:
        shared = shared_dir()
        roots = [shared / "dex-urdf"] if shared is not None else []
        what = "../shared/dex-urdf beside the checkout"
    for root in roots:
        for sub in (root, root / "hands", root / "robots" / "hands"):
            if (sub / LEAP_URDF).is_file():
                return sub.resolve()
    raise UserError(f"no LEAP URDF ({LEAP_URDF}) under {what}: point --urdf-dir or DEX_URDF_DIR "
                    f"at a dex-urdf checkout")


# ---------------------------------------------------------------- geometry helpers
def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def hand_frames(keypoints: np.ndarray) -> np.ndarray:
    """(T, 21, 3) -> (T, 4, 4) hand frames H (module docstring): origin wrist, z fingers, x palm normal."""
    kp = np.asarray(keypoints, dtype=float)
    w, i, l = kp[:, WRIST], kp[:, INDEX[0]], kp[:, LITTLE[0]]
    z_raw = 0.5 * (i + l) - w
    n = np.cross(i - w, l - w)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_raw = n - np.sum(n * _unit(z_raw), axis=-1, keepdims=True) * _unit(z_raw)
    bad = np.flatnonzero((np.linalg.norm(z_raw, axis=-1) < 1e-6) | ~(np.linalg.norm(x_raw, axis=-1) > 1e-9))
    if bad.size:
        raise UserError(f"keypoints frame {int(bad[0])}: wrist, index MCP and little MCP are collinear "
                        f"(no palm plane)")
    z, x = _unit(z_raw), _unit(x_raw)
    frames = np.tile(np.eye(4), (len(kp), 1, 1))
    frames[:, :3, 0], frames[:, :3, 1], frames[:, :3, 2], frames[:, :3, 3] = x, np.cross(z, x), z, w
    return frames


def palmar_curl(local: np.ndarray) -> float:
    """Mean sine of the bend between consecutive finger bones, positive towards the palm.

    Keypoints in H (T, 21, 3). A right hand's fingers flex towards +x, so each bend axis
    (bone k x bone k+1) points along +y; a left hand (or a mirrored/misordered one) in
    the same construction bends towards -x. A flat hand gives ~0 and passes."""
    sines = []
    for finger in (INDEX, MIDDLE, RING, LITTLE):
        bones = np.diff(local[:, (WRIST,) + finger], axis=1)[:, 1:]           # MCP-PIP, PIP-DIP, DIP-tip
        bones = bones / np.maximum(np.linalg.norm(bones, axis=-1, keepdims=True), 1e-9)
        sines.append(np.cross(bones[:, :-1], bones[:, 1:])[..., 1])
    return float(np.mean(sines))


def finger_chain_lengths(keypoints: np.ndarray) -> np.ndarray:
    """(T, 21, 3) -> (T, 3): wrist-MCP-PIP-DIP-tip polyline lengths of index, middle, ring."""
    kp = np.asarray(keypoints, dtype=float)
    out = []
    for finger in (INDEX, MIDDLE, RING):
        chain = kp[:, (WRIST,) + finger]
        out.append(np.linalg.norm(np.diff(chain, axis=1), axis=-1).sum(axis=1))
    return np.stack(out, axis=1)


def hand_length(keypoints: np.ndarray) -> float:
    """The hand length used for the scale: mean over index/middle/ring, median over frames (m)."""
    return float(np.median(finger_chain_lengths(keypoints).mean(axis=1)))


def invert(pose: np.ndarray) -> np.ndarray:
    """Inverse of rigid transforms (..., 4, 4)."""
    out = np.zeros_like(pose)
    rt = np.swapaxes(pose[..., :3, :3], -1, -2)
    out[..., :3, :3] = rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rt, pose[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


def transform(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Applies (..., 4, 4) poses to (..., N, 3) points."""
    return np.einsum("...ij,...nj->...ni", pose[..., :3, :3], points) + pose[..., None, :3, 3]


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest points on each triangle to each point: p (P,1,3), a/b/c (1,F,3) -> (P,F,3) (Ericson 5.1.5)."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = va + vb + vc
        v_in, w_in = vb / denom, vc / denom
        out = a + ab * v_in[..., None] + ac * w_in[..., None]
        w_bc = (d4 - d3) / ((d4 - d3) + (d5 - d6))
        out = np.where(((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0))[..., None], b + (c - b) * w_bc[..., None], out)
        w_ac = d2 / (d2 - d6)
        out = np.where(((vb <= 0) & (d2 >= 0) & (d6 <= 0))[..., None], a + ac * w_ac[..., None], out)
        out = np.where(((d6 >= 0) & (d5 <= d6))[..., None], np.broadcast_to(c, out.shape), out)
        v_ab = d1 / (d1 - d3)
        out = np.where(((vc <= 0) & (d1 >= 0) & (d3 <= 0))[..., None], a + ab * v_ab[..., None], out)
        out = np.where(((d3 >= 0) & (d4 <= d3))[..., None], np.broadcast_to(b, out.shape), out)
        out = np.where(((d1 <= 0) & (d2 <= 0))[..., None], np.broadcast_to(a, out.shape), out)
    return out


def signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, chunk: int = 64) -> np.ndarray:
    """Distance of points (N, 3) to a closed triangle mesh, negative inside (winding number)."""
    pts = np.asarray(points, dtype=float).reshape(-1, 3)
    tri = np.asarray(vertices, dtype=float)[np.asarray(faces)]
    a, b, c = tri[None, :, 0], tri[None, :, 1], tri[None, :, 2]
    out = np.empty(len(pts))
    for s in range(0, len(pts), chunk):
        p = pts[s:s + chunk, None, :]
        dist = np.linalg.norm(_closest_on_triangles(p, a, b, c) - p, axis=-1).min(axis=1)
        ra, rb, rc = a - p, b - p, c - p
        la, lb, lc = (np.linalg.norm(r, axis=-1) for r in (ra, rb, rc))
        num = (ra * np.cross(rb, rc)).sum(-1)
        den = la * lb * lc + (ra * rb).sum(-1) * lc + (ra * rc).sum(-1) * lb + (rb * rc).sum(-1) * la
        winding = np.abs(2.0 * np.arctan2(num, den).sum(axis=1) / (4.0 * math.pi))
        out[s:s + chunk] = np.where(winding > 0.5, -dist, dist)
    return out


# ---------------------------------------------------------------- the LEAP hand, both models
class LeapHand:
    """The right LEAP hand as dex-urdf's URDF (pinocchio) and the cell's Menagerie MJCF (MuJoCo).

    Joint vectors are in Dynamixel id order (URDF joint "k" = id k = cell motor_joints[k]),
    Allegro-style radians. Construction checks that both models agree.
    """

    def __init__(self, urdf_dir: Path, mjcf_path: Path, motor_joints: dict[str, str], prefix: str = "",
                 palm_body: str = "palm"):
        RetargetingConfig = require_dex_retargeting()
        from dex_retargeting.robot_wrapper import RobotWrapper
        import mujoco

        self.urdf_dir = Path(urdf_dir)
        self.urdf_path = self.urdf_dir / LEAP_URDF
        self._RetargetingConfig = RetargetingConfig
        try:
            self.robot = RobotWrapper(str(self.urdf_path))
        except Exception as exc:  # pinocchio raises ValueError/RuntimeError on broken URDFs
            raise UserError(f"LEAP URDF {self.urdf_path} could not be loaded: {exc}".splitlines()[0]) from None
        names = self.robot.dof_joint_names
        ids = [str(k) for k in range(16)]
        if sorted(names) != sorted(ids):
            raise UserError(f"LEAP URDF {self.urdf_path}: expected joints '0'..'15' (Dynamixel ids), got {names}")
        self.pin_of_id = np.array([names.index(i) for i in ids])     # q_pin[pin_of_id] = q_id
        self.mjcf_path = Path(mjcf_path)
        self.model = mujoco.MjModel.from_xml_path(str(self.mjcf_path))
        self.data = mujoco.MjData(self.model)
        self.motor_joints = [motor_joints[str(k)] for k in range(16)]
        self.joint_names = [prefix + j for j in self.motor_joints]
        try:
            jids = [self.model.joint(j).id for j in self.motor_joints]
        except KeyError as exc:
            raise UserError(f"grasp_hand.motor_joints names a joint the LEAP MJCF {self.mjcf_path} "
                            f"lacks: {exc}") from None
        self.qadr = self.model.jnt_qposadr[jids]
        self.lower = self.model.jnt_range[jids, 0].copy()
        self.upper = self.model.jnt_range[jids, 1].copy()
        urdf_lim = self.robot.joint_limits[self.pin_of_id]
        self.bound_lower = np.maximum(self.lower, urdf_lim[:, 0])
        self.bound_upper = np.minimum(self.upper, urdf_lim[:, 1])
        try:
            self.palm_body = self.model.body(palm_body).id
        except KeyError:
            raise UserError(f"the LEAP MJCF {self.mjcf_path} has no body {palm_body!r}") from None
        self.base_to_palm = self._urdf_poses(np.zeros(16), ("palm_lower",))[0]   # palm_lower (= MJCF palm) in base
        # point offsets in the MJCF body frames, from the URDF (link frame = MJCF body frame)
        links = tuple(_MJCF_POINTS) + tuple(sorted(set(_MJCF_PARENT_LINK.values())))
        by_name = dict(zip(links, self._urdf_poses(np.zeros(16), links)))
        self.mjcf_offsets = {k: (invert(by_name[_MJCF_PARENT_LINK[k]]) @ by_name[k])[:3, 3] for k in _MJCF_POINTS}
        self.mjcf_bodies = {k: self.model.body(b).id for k, b in _MJCF_POINTS.items()}
        self.vectors = REACH * REACH_WEIGHT + BONES
        self.n_reach = len(REACH) * REACH_WEIGHT
        bone_links = sorted({n for v in BONES for n in v[:2]})
        at_zero = dict(zip(bone_links, self._urdf_poses(np.zeros(16), tuple(bone_links))))
        self.bone_lengths = np.array([np.linalg.norm(at_zero[b][:3, 3] - at_zero[a][:3, 3]) for a, b, *_ in BONES])
        self.bone_lengths = self.bone_lengths.reshape(len(BONES))
        kp0 = self.keypoints(np.zeros(16))
        self.frame_in_base = hand_frames(kp0[None])[0]                # the LEAP's hand frame H in base
        self.length = float(finger_chain_lengths(kp0[None]).mean())   # its hand length (m)
        self._check_mapping()

    @classmethod
    def from_cell(cls, cell, urdf_dir: str | Path | None = None) -> "LeapHand":
        from dream_hw.models import menagerie_xml

        hand = cell.grasp_hand
        return cls(find_urdf_dir(urdf_dir), menagerie_xml(hand.menagerie.robot, hand.menagerie.file),
                   dict(hand.joint_map), hand.prefix, hand.root_body)

    # ---------------------------------------------------------------- kinematics
    def _pin_q(self, q_id: np.ndarray) -> np.ndarray:
        q = np.zeros(self.robot.dof)
        q[self.pin_of_id] = q_id
        return q

    def _urdf_poses(self, q_id: np.ndarray, links: tuple[str, ...]) -> list[np.ndarray]:
        self.robot.compute_forward_kinematics(self._pin_q(q_id))
        return [self.robot.get_link_pose(self.robot.get_link_index(n)) for n in links]

    def keypoints(self, q_id: np.ndarray) -> np.ndarray:
        """(21, 3) MANO-order keypoint equivalents of the LEAP at q, in the URDF `base` frame.

        The little finger (absent on the LEAP) is the ring finger moved by the ring-middle
        knuckle spacing; only its MCP is used (hand frame)."""
        pts = np.array([p[:3, 3] for p in self._urdf_poses(np.asarray(q_id, float), _LEAP_KEYPOINT_LINKS)])
        little = pts[list(RING)] + (pts[RING[0]] - pts[MIDDLE[0]])
        return np.concatenate([pts, little])

    def mjcf_points(self, q_id: np.ndarray,
                    names: tuple[str, ...] = tuple(TIP_LINKS[f] for f in FINGERS)) -> np.ndarray:
        """Points of the MJCF hand (default: tips in FINGERS order) in the palm frame, by MuJoCo FK."""
        import mujoco

        d = self.data
        d.qpos[:] = 0.0
        d.qpos[self.qadr] = q_id
        mujoco.mj_kinematics(self.model, d)
        rp, pp = d.xmat[self.palm_body].reshape(3, 3), d.xpos[self.palm_body]
        out = []
        for n in names:
            b = self.mjcf_bodies[n]
            world = d.xpos[b] + d.xmat[b].reshape(3, 3) @ self.mjcf_offsets[n]
            out.append(rp.T @ (world - pp))
        return np.array(out)

    def _check_mapping(self) -> None:
        rng = np.random.default_rng(0)
        names = tuple(_MJCF_POINTS)
        palm_inv = invert(self.base_to_palm)
        worst = 0.0
        for k in range(6):
            q = np.zeros(16) if k == 0 else rng.uniform(self.bound_lower, self.bound_upper)
            urdf = np.array([(palm_inv @ p)[:3, 3] for p in self._urdf_poses(q, names)])
            worst = max(worst, float(np.abs(urdf - self.mjcf_points(q, names)).max()))
        if worst > MAPPING_TOL_M:
            raise UserError(f"grasp_hand.motor_joints do not put the dex-urdf LEAP joints on the MJCF "
                            f"{self.mjcf_path.name} joints with the same zero and sign (fingertips differ by "
                            f"{worst * 1e3:.1f} mm)")

    # ---------------------------------------------------------------- retargeting
    def build_retargeting(self):
        """A fresh dex-retargeting SeqRetargeting (vector type) with dream's joint bounds."""
        cfg = self._RetargetingConfig
        cfg.set_default_urdf_dir(str(self.urdf_dir))
        config = cfg.from_dict({
            "type": "vector", "urdf_path": str(LEAP_URDF),
            "target_origin_link_names": [v[0] for v in self.vectors],
            "target_task_link_names": [v[1] for v in self.vectors],
            "target_link_human_indices": [[v[2] for v in self.vectors], [v[3] for v in self.vectors]],
            "scaling_factor": 1.0,      # the keypoints arrive already scaled to the LEAP
            "normal_delta": NORM_DELTA,
            "low_pass_alpha": -1,       # offline: no filter (the optimizer already regularises to the last frame)
        })
        old = tempfile.tempdir
        with tempfile.TemporaryDirectory(prefix="dream-retarget-") as tmp:
            tempfile.tempdir = tmp      # build() writes a URDF copy into a mkdtemp() it never removes
            try:
                seq = config.build()
            finally:
                tempfile.tempdir = old
        opt = seq.optimizer
        bounds = np.zeros((16, 2))
        bounds[self.pin_of_id, 0], bounds[self.pin_of_id, 1] = self.bound_lower, self.bound_upper
        bounds = bounds[opt.idx_pin2target]
        opt.set_joint_limit(bounds, epsilon=0.0)
        opt.opt.set_ftol_abs(FTOL_ABS)
        seq.joint_limits = bounds
        seq.last_qpos = bounds.mean(axis=1).astype(np.float32)
        return seq

    def target_vectors(self, keypoints_base: np.ndarray, scale: float) -> np.ndarray:
        """(T, 21, 3) human keypoints in LEAP base axes (wrist at 0) -> (T, n_vectors, 3) targets."""
        kp = np.asarray(keypoints_base, dtype=float)
        diff = np.stack([kp[:, b] - kp[:, a] for _, _, a, b in self.vectors], axis=1)
        reach, bones = diff[:, :self.n_reach] * scale, diff[:, self.n_reach:]
        with np.errstate(divide="ignore", invalid="ignore"):
            bones = np.nan_to_num(_unit(bones)) * self.bone_lengths[:, None]
        return np.concatenate([reach, bones], axis=1)

    def to_ids(self, q_pin: np.ndarray) -> np.ndarray:
        return np.asarray(q_pin)[..., self.pin_of_id]


# ---------------------------------------------------------------- input
@dataclass
class HandObjectSequence:
    """One human demonstration (see the module docstring for the fields)."""

    keypoints: np.ndarray              # (T, 21, 3) m, in W
    object_pose: np.ndarray            # (T, 4, 4), object in W
    object_id: str
    fps: float | None = None
    source: str = "<arrays>"

    def validate(self) -> "HandObjectSequence":
        src = self.source
        kp = np.asarray(self.keypoints)
        if kp.ndim != 3 or kp.shape[1:] != (N_KEYPOINTS, 3) or kp.shape[0] < 1:
            raise UserError(f"{src}: keypoints has shape {kp.shape}, expected (T, 21, 3) (MANO order, metres)")
        pose = np.asarray(self.object_pose)
        if pose.shape != (kp.shape[0], 4, 4):
            raise UserError(f"{src}: object_pose has shape {pose.shape}, expected ({kp.shape[0]}, 4, 4) "
                            f"(one pose per keypoint frame)")
        for name, arr in (("keypoints", kp), ("object_pose", pose)):
            if not np.issubdtype(arr.dtype, np.number):
                raise UserError(f"{src}: {name} is not numeric ({arr.dtype})")
            bad = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
            if bad.size:
                raise UserError(f"{src}: {name} has NaN/inf in frame {int(bad[0])} ({bad.size} frames): "
                                f"drop or fill those frames")
        self.keypoints, self.object_pose = kp.astype(float), pose.astype(float)
        rot = self.object_pose[:, :3, :3]
        err = np.abs(np.einsum("tji,tjk->tik", rot, rot) - np.eye(3)).max(axis=(1, 2))
        det = np.linalg.det(rot)
        last = np.abs(self.object_pose[:, 3] - [0, 0, 0, 1]).max(axis=1)
        bad = np.flatnonzero((err > 1e-3) | (det < 0) | (last > 1e-9))
        if bad.size:
            raise UserError(f"{src}: object_pose frame {int(bad[0])} is not a rigid transform "
                            f"(rotation must be orthonormal, last row 0 0 0 1)")
        if not isinstance(self.object_id, str) or not self.object_id:
            raise UserError(f"{src}: object_id must be a catalogue object id, got {self.object_id!r}")
        if self.fps is not None and not (np.isfinite(self.fps) and self.fps > 0):
            raise UserError(f"{src}: fps must be positive, got {self.fps}")
        length = hand_length(self.keypoints)
        if not 0.08 <= length <= 0.5:
            hint = " (millimetres? HaMeR keypoints are metres)" if length > 0.5 else ""
            raise UserError(f"{src}: keypoints give a hand length (wrist to fingertip) of {length:.3g} m, "
                            f"expected 0.08-0.5 m{hint}")
        return self

    @classmethod
    def load(cls, path: str | Path, object_id: str | None = None) -> "HandObjectSequence":
        path = Path(path)
        if not path.is_file():
            raise UserError(f"demonstration {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except Exception as exc:  # numpy raises several kinds for non-npz files
            raise UserError(f"demonstration {path} is not a readable .npz: {exc}".splitlines()[0]) from None
        missing = [k for k in ("keypoints", "object_pose") if k not in arrays]
        if object_id is None and "object_id" not in arrays:
            missing.append("object_id")
        if missing:
            raise UserError(f"demonstration {path}: missing arrays {missing} (need keypoints (T,21,3), "
                            f"object_pose (T,4,4), object_id)")
        oid = object_id if object_id is not None else str(arrays["object_id"])
        fps = float(arrays["fps"]) if "fps" in arrays else None
        return cls(arrays["keypoints"], arrays["object_pose"], oid, fps, str(path)).validate()

    def save(self, path: str | Path) -> Path:
        path = Path(path).with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        extra = {} if self.fps is None else {"fps": np.float64(self.fps)}
        np.savez_compressed(path, keypoints=self.keypoints, object_pose=self.object_pose,
                            object_id=np.str_(self.object_id), **extra)
        return path


# ---------------------------------------------------------------- the retargeting itself
@dataclass
class RetargetedDemo:
    """Every frame of one retargeted demonstration, and the facts that summarise it."""

    joint_targets: np.ndarray          # (T, 16) id order, Allegro-style rad, within the MJCF limits
    palm_in_world: np.ndarray          # (T, 4, 4) LEAP palm in W
    palm_in_object: np.ndarray         # (T, 4, 4)
    grasp_frame: int
    scale: float                       # LEAP / human
    human_hand_length_m: float
    human_tip_distance_m: np.ndarray   # (T, 4) signed, FINGERS order
    leap_tip_distance_m: np.ndarray    # (T, 4) signed, FINGERS order (MuJoCo FK)
    tip_error_m: np.ndarray            # (T, 4) |LEAP tip - scaled human tip|, FINGERS order
    fingers: np.ndarray                # (4,) bool at the grasp frame
    contact_flags: np.ndarray          # (2,) float32
    info: dict[str, Any] = field(default_factory=dict)


class Retargeter:
    """Human keypoint sequences -> LEAP demonstrations for one object mesh."""

    def __init__(self, leap: LeapHand, mesh_vertices: np.ndarray, mesh_faces: np.ndarray,
                 contact_m: float = DEFAULT_CONTACT_M):
        if not contact_m > 0:
            raise UserError(f"contact distance must be positive, got {contact_m}")
        self.leap = leap
        self.vertices, self.faces = np.asarray(mesh_vertices, float), np.asarray(mesh_faces)
        self.contact_m = float(contact_m)

    def object_distance(self, object_pose: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Signed distances (T, N) of world points (T, N, 3) to the object at its per-frame poses."""
        local = transform(invert(object_pose), points)
        return signed_distance(local.reshape(-1, 3), self.vertices, self.faces).reshape(points.shape[:2])

    def retarget(self, demo: HandObjectSequence, *, scale: float | None = None, grasp_frame: int | None = None,
                 anchor: str = "grasp") -> RetargetedDemo:
        demo.validate()
        leap = self.leap
        kp, obj = demo.keypoints, demo.object_pose
        n = len(kp)
        if anchor not in ("grasp", "wrist"):
            raise UserError(f"anchor must be 'grasp' or 'wrist', got {anchor!r}")
        if grasp_frame is not None and not -n <= grasp_frame < n:
            raise UserError(f"{demo.source}: grasp frame {grasp_frame} outside the {n} frames")
        frames = hand_frames(kp)
        local = transform(invert(frames), kp)                     # keypoints in H
        curl = palmar_curl(local)
        if curl < -LEFT_CURL:
            raise UserError(f"{demo.source}: the fingers bend away from the palm normal of a right hand "
                            f"(mean {math.degrees(math.asin(max(curl, -1.0))):.0f} deg): a left hand, or "
                            f"keypoints not in MANO order (right hands only)")
        human_len = hand_length(kp)
        s = leap.length / human_len if scale is None else float(scale)
        if not (np.isfinite(s) and 0.2 <= s <= 5.0):
            raise UserError(f"scale LEAP/human must be in 0.2-5, got {s}")

        # joints: reach and bone vectors (LeapHand.target_vectors) in the LEAP base frame
        rot = leap.frame_in_base[:3, :3]
        vectors = leap.target_vectors(np.einsum("ij,tnj->tni", rot, local), s)
        seq = leap.build_retargeting()
        q_pin = np.zeros((n, 16))
        for _ in range(5):                                        # settle the first frame from mid-range
            prev = np.array(seq.last_qpos, dtype=float)
            q_pin[0] = seq.retarget(vectors[0])
            if np.abs(q_pin[0] - prev).max() < 1e-4:
                break
        for t in range(1, n):
            q_pin[t] = seq.retarget(vectors[t])
        q = np.clip(leap.to_ids(q_pin), leap.lower, leap.upper)

        # grasp frame from the human fingertips' approach to the object
        human_tips = kp[:, list(FINGER_TIPS)]
        human_d = self.object_distance(obj, human_tips)
        if grasp_frame is None:
            closeness = np.maximum(human_d, 0.0).mean(axis=1)
            g = int(np.flatnonzero(closeness <= closeness.min() + GRASP_SLACK_M)[0])
        else:
            g = int(grasp_frame) % n

        # palm: the LEAP base on the human wrist scaled about the anchor (fixed in H)
        tips_g = local[g, list(FINGER_TIPS)]
        anchor_h = 0.5 * (tips_g[:3].mean(axis=0) + tips_g[3]) if anchor == "grasp" else np.zeros(3)
        h_base = np.eye(4)
        h_base[:3, :3], h_base[:3, 3] = rot.T, (1.0 - s) * anchor_h
        base_world = frames @ h_base
        palm_world = base_world @ leap.base_to_palm
        palm_obj = invert(obj) @ palm_world

        # LEAP tips by MuJoCo FK vs the scaled human tips; contacts
        leap_tips = np.stack([transform(palm_world[t], leap.mjcf_points(q[t])[None])[0] for t in range(n)])
        scaled = transform(frames, anchor_h + s * (local[:, list(FINGER_TIPS)] - anchor_h))
        tip_err = np.linalg.norm(leap_tips - scaled, axis=-1)
        leap_d = self.object_distance(obj, leap_tips)
        touching = human_d <= self.contact_m
        fingers = touching[g].copy()
        sustained = bool((touching[g:].sum(axis=1) >= N_MIN).all())
        moved = float(np.linalg.norm(obj[g:, :3, 3] - obj[g, :3, 3], axis=1).max())
        carried = bool(moved >= CARRIED_M and touching[-1].any())
        info = {
            "source": demo.source, "frames": n, "fps": demo.fps, "grasp_frame": g, "anchor": anchor,
            "scale": round(s, 5), "scale_estimated": scale is None,
            "human_hand_length_m": round(human_len, 5), "leap_hand_length_m": round(leap.length, 5),
            "fingers": list(FINGERS),
            "human_tip_distance_mm_at_grasp": [round(float(v) * 1e3, 2) for v in human_d[g]],
            "leap_tip_distance_mm_at_grasp": [round(float(v) * 1e3, 2) for v in leap_d[g]],
            "tip_error_mm_at_grasp": [round(float(v) * 1e3, 2) for v in tip_err[g]],
            "tip_error_mm_median_all_frames": round(float(np.median(tip_err)) * 1e3, 2),
            "object_moved_after_grasp_m": round(moved, 4),
        }
        return RetargetedDemo(q, palm_world, palm_obj, g, s, human_len, human_d, leap_d, tip_err, fingers,
                              np.array([sustained, carried], dtype=np.float32), info)


# ---------------------------------------------------------------- output
def to_demoset(demos: list[RetargetedDemo], *, mass_kg: float, object_id: str, mesh: str, friction: float,
               joint_names: list[str], f_max: float | None = None) -> DemoSet:
    """One DemoSet row per retargeted demonstration (its grasp frame)."""
    from dream_grasp.demos.synthetic import DEFAULT_F_MAX_N, force_targets

    if not demos:
        raise UserError("no retargeted demonstrations to write")
    if not mass_kg > 0:
        raise UserError(f"object mass must be positive, got {mass_kg}")
    f_max = DEFAULT_F_MAX_N if f_max is None else f_max
    forces = [force_targets(mass_kg, int(d.fingers.sum()), f_max) for d in demos]
    return DemoSet(
        palm_in_object=np.array([d.palm_in_object[d.grasp_frame] for d in demos], dtype=np.float64),
        joint_targets=np.array([d.joint_targets[d.grasp_frame] for d in demos], dtype=np.float32),
        contact_flags=np.array([d.contact_flags for d in demos], dtype=np.float32),
        fingers=np.array([d.fingers for d in demos], dtype=bool),
        force_n=np.array([f for f, _ in forces], dtype=np.float32),
        force_label=np.array([f for _, f in forces], dtype=np.float32),
        mass_kg=np.full(len(demos), mass_kg, dtype=np.float32),
        header={
            "source": "retargeted human demonstrations (dream_grasp.demos.retarget: dex-retargeting vector, "
                      "LEAP right; fingers/contact flags read off the human demonstration, not simulated)",
            "object_id": object_id,
            "mesh": mesh,
            "friction": friction,
            "f_max_n": f_max,
            "joint_names": list(joint_names),
            "fingers": list(FINGERS),
            "angle_convention": "Allegro-style rad (LEAP hardware = this + pi)",
            "demos": [d.info for d in demos],
        },
    ).validate()


def save_trajectories(demos: list[RetargetedDemo], path: str | Path) -> Path:
    """Every frame: demo<i>_joint_targets (T,16), demo<i>_palm_in_object (T,4,4), demo<i>_grasp_frame."""
    arrays: dict[str, np.ndarray] = {}
    for i, d in enumerate(demos):
        arrays[f"demo{i}_joint_targets"] = d.joint_targets.astype(np.float32)
        arrays[f"demo{i}_palm_in_object"] = d.palm_in_object
        arrays[f"demo{i}_grasp_frame"] = np.int64(d.grasp_frame)
    path = Path(path)
    np.savez_compressed(path, **arrays)
    return path


# ---------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="dream-grasp-retarget", description=__doc__.split("\n\n")[0])
    p.add_argument("inputs", nargs="+", help="demonstration .npz files (keypoints, object_pose, object_id)")
    p.add_argument("--out", required=True, help="output path without suffix (writes .npz, .json, .trajectories.npz)")
    p.add_argument("--object", default=None, help="catalogue object id (default: each file's object_id)")
    p.add_argument("--mass", type=float, default=None, help="object mass (kg; default: the catalogue's)")
    p.add_argument("--urdf-dir", default=None, help="dex-urdf folder (default: $DEX_URDF_DIR or ../shared/dex-urdf)")
    p.add_argument("--scale", type=float, default=None, help="LEAP/human scale (default: from the hand length)")
    p.add_argument("--grasp-frame", type=int, default=None, help="grasp frame (default: closest approach)")
    p.add_argument("--anchor", choices=("grasp", "wrist"), default="grasp", help="fixed point of the scaling")
    p.add_argument("--contact-mm", type=float, default=DEFAULT_CONTACT_M * 1e3,
                   help="human fingertip-object distance that counts as touching")
    return p


@cli_main("dream-grasp-retarget")
def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from dream_hw.cell import load_cell
    from dream_sysid.catalogue import get_object
    from dream_sysid.twin.object_geometry import read_mesh_file

    t0 = time.monotonic()
    seqs = [HandObjectSequence.load(p, args.object) for p in args.inputs]
    ids = sorted({s.object_id for s in seqs})
    if len(ids) != 1:
        raise UserError(f"one output holds one object; the inputs show {ids} (use --object or split them)")
    obj = get_object(ids[0])
    mesh = read_mesh_file(obj.mesh_path)
    leap = LeapHand.from_cell(load_cell(), args.urdf_dir)
    retargeter = Retargeter(leap, mesh.vertices, mesh.faces, contact_m=args.contact_mm * 1e-3)
    done = [retargeter.retarget(s, scale=args.scale, grasp_frame=args.grasp_frame, anchor=args.anchor)
            for s in seqs]
    demo = to_demoset(done, mass_kg=args.mass or obj.mass_kg, object_id=obj.id, mesh=str(obj.mesh_path),
                      friction=obj.friction, joint_names=leap.joint_names)
    path = demo.save(args.out)
    base = Path(args.out).with_suffix("")
    traj = save_trajectories(done, base.parent / f"{base.name}.trajectories.npz")
    for d in done:
        i = d.info
        print(f"{i['source']}: {i['frames']} frames, grasp frame {i['grasp_frame']}, scale {i['scale']:.3f} "
              f"(hand {i['human_hand_length_m'] * 100:.1f} cm), fingers touching "
              f"{[f for f, t in zip(FINGERS, d.fingers) if t]}, tip error {i['tip_error_mm_median_all_frames']} mm",
              file=sys.stderr)
    print(f"{path} (+ {traj.name}): {len(demo)} demonstrations in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
