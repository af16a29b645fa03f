"""Rendered sequences shared by the perception tests (rendered once per session:
a twin build is ~1.5 s, a noisy 640x480 depth frame ~25 ms)."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def domino_frames():
    """Pushed, occluded by the hand, and hidden-then-shown-elsewhere sequences of the domino."""
    from dream_perception.sim_sequences import SequenceRenderer

    with SequenceRenderer("domino", seed=1) as r:
        out = {
            "pushed": r.render(r.pushed(40)),
            "occluded": r.render(r.occluded(30)),
            "hidden": r.render(r.hidden_and_back(6, 6, 10)),
            "cell": r.cell,
        }
    return out


@pytest.fixture(scope="session")
def scene(cell):
    from dream_perception.tracking.intrinsics import Intrinsics
    from dream_perception.tracking.segment import Scene

    cam = cell.camera
    return Scene(Intrinsics.from_k(cam.K(), cam.width, cam.height), cam.pose_in_world.matrix(), cell.table.top_z)


@pytest.fixture(scope="session")
def domino_model():
    from dream_perception.tracking.object_model import ObjectModel

    return ObjectModel.from_catalogue("domino")
