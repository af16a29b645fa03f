"""What a push bag holds, as arrays (the identifier's input; see bag/reader.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Series:
    """A time series of joint-state-like data."""

    t: np.ndarray                    # (N,) seconds (header stamp if non-zero, else bag receive time), increasing
    names: tuple[str, ...]
    position: np.ndarray             # (N, J)
    velocity: np.ndarray | None = None
    effort: np.ndarray | None = None


@dataclass(frozen=True)
class PoseSeries:
    t: np.ndarray                    # (N,) seconds, increasing
    pos: np.ndarray                  # (N, 3)
    quat: np.ndarray                 # (N, 4) [w, x, y, z]
    frame_id: str = "world"


@dataclass(frozen=True)
class ArmTrajectory:
    """One JointTrajectory message."""

    t_received: float                # bag receive time (s)
    names: tuple[str, ...]
    times: np.ndarray                # (P,) time_from_start (s)
    positions: np.ndarray            # (P, J)


@dataclass(frozen=True)
class PushRecording:
    path: Path
    info: dict                       # /dream/push/info JSON
    scene: Path                      # resolved (relative to the bag dir or absolute)
    object_body: str
    joint_map: dict[str, str]
    poses: PoseSeries                # /dream/object/pose
    hand_states: Series | None = None       # /allegroHand_0/joint_states
    hand_cmds: Series | None = None         # /allegroHand_0/joint_cmd
    arm_states: Series | None = None        # /joint_states
    arm_trajectories: tuple[ArmTrajectory, ...] = field(default_factory=tuple)
    ground_truth: PoseSeries | None = None  # /sim/object/pose_gt
