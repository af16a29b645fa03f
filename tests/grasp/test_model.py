"""GraspMLP: shapes, ranges, permutation invariance and the TorchScript round trip."""
from __future__ import annotations

import torch

from dream_grasp.model import GraspMLP


def test_shapes_and_ranges():
    torch.manual_seed(0)
    model = GraspMLP()
    points = torch.randn(5, 200, 3) * 0.05
    actions, contact, force = model(points, torch.full((5, 1), 0.3))
    assert actions.shape == (5, 16) and contact.shape == (5, 2) and force.shape == (5, 1)
    assert torch.all((contact > 0) & (contact < 1)) and torch.all((force > 0) & (force < 1))
    assert sum(p.numel() for p in model.backbone.parameters()) > 2 * 256 * 256   # 3 x 256 backbone


def test_point_order_does_not_matter_but_mass_does():
    torch.manual_seed(0)
    model = GraspMLP(hidden=64)
    points = torch.randn(1, 100, 3) * 0.05
    a1, _, f1 = model(points, torch.tensor([[0.2]]))
    a2, _, f2 = model(points[:, torch.randperm(100)], torch.tensor([[0.2]]))
    assert torch.allclose(a1, a2, atol=1e-6) and torch.allclose(f1, f2, atol=1e-6)
    _, _, f3 = model(points, torch.tensor([[0.9]]))
    assert not torch.allclose(f1, f3)


def test_torchscript_round_trip(tmp_path):
    torch.manual_seed(0)
    model = GraspMLP(hidden=64).eval()
    path = tmp_path / "m.pt"
    torch.jit.script(model).save(str(path))
    loaded = torch.jit.load(str(path))
    points, mass = torch.randn(3, 50, 3) * 0.05, torch.tensor([[0.1], [0.5], [1.0]])
    with torch.no_grad():
        for a, b in zip(model(points, mass), loaded(points, mass)):
            assert torch.allclose(a, b, atol=1e-6)


def test_heads_read_the_pooled_features():
    """forward = the three heads on features(): what phase 2 trains the heads on."""
    torch.manual_seed(0)
    model = GraspMLP(hidden=64).eval()
    points, mass = torch.randn(2, 40, 3) * 0.05, torch.tensor([[0.1], [0.4]])
    with torch.no_grad():
        feat = model.features(points, mass)
        actions, contact, force = model(points, mass)
        assert feat.shape == (2, 64)
        assert torch.allclose(actions, model.action_head(feat))
        assert torch.allclose(contact, torch.sigmoid(model.contact_head(feat)))
        assert torch.allclose(force, torch.sigmoid(model.force_head(feat)))
