"""GraspMLP (paper Table IV): object surface points -> LEAP joint targets,
two contact scores and a normalised grip force.

Each point (in the palm frame of the intended wrist pose, so the input carries
the object's shape *and* its pose relative to the hand) is positionally encoded
and joined with the mass; a shared 3 x 256 ReLU MLP runs per point, max-pooling
over points makes the result independent of point order and count, and three
linear heads decode it (sigmoid on the contact and force heads).
"""
from __future__ import annotations

import math

import torch
from torch import nn

N_JOINTS = 16
N_CONTACT = 2


class PositionalEncoding(nn.Module):
    """x -> [x, sin(2^k pi x), cos(2^k pi x)], k < n_freqs, on coordinates divided by `scale` (m)."""

    def __init__(self, n_freqs: int = 6, scale: float = 0.2):
        super().__init__()
        self.n_freqs, self.scale = n_freqs, scale
        self.register_buffer("freqs", (2.0 ** torch.arange(n_freqs, dtype=torch.float32)) * math.pi)

    @property
    def out_dim(self) -> int:
        return 3 * (1 + 2 * self.n_freqs)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        x = points / self.scale                                    # (B, N, 3)
        angles = x.unsqueeze(-1) * self.freqs                      # (B, N, 3, F)
        enc = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1).flatten(-2)
        return torch.cat([x, enc], dim=-1)


class GraspMLP(nn.Module):
    """(points (B, N, 3) m, mass (B, 1) kg) -> (actions (B, 16) rad, contact (B, 2), force (B, 1))."""

    def __init__(self, hidden: int = 256, n_freqs: int = 6, scale: float = 0.2, mass_scale: float = 1.0):
        super().__init__()
        self.encoding = PositionalEncoding(n_freqs, scale)
        self.mass_scale = mass_scale
        d_in = self.encoding.out_dim + 2                           # + mass, log mass
        self.backbone = nn.Sequential(
            nn.Linear(d_in, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(),
        )
        self.action_head = nn.Linear(hidden, N_JOINTS)
        self.contact_head = nn.Linear(hidden, N_CONTACT)
        self.force_head = nn.Linear(hidden, 1)

    def features(self, points: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
        """The max-pooled backbone output (B, hidden) the three heads read."""
        m = mass.reshape(-1, 1) / self.mass_scale
        mass_feat = torch.cat([m, torch.log(m.clamp_min(1e-3))], dim=-1)           # (B, 2)
        feat = torch.cat([self.encoding(points),
                          mass_feat.unsqueeze(1).expand(-1, points.shape[1], -1)], dim=-1)
        return self.backbone(feat).max(dim=1).values

    def forward(self, points: torch.Tensor, mass: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pooled = self.features(points, mass)
        return (self.action_head(pooled), torch.sigmoid(self.contact_head(pooled)),
                torch.sigmoid(self.force_head(pooled)))
