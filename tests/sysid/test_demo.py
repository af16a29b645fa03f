"""The README's demo: a catalogue object rests, is pushed, and a report is written."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

DREAM = shutil.which("dream", path=os.path.dirname(sys.executable))


def test_demo_rests_pushes_and_reports(tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([DREAM, "demo", "--object", "lego_brick", "--out", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary == json.loads((out / "summary.json").read_text())
    assert summary["rest_drift_mm"] < 1.0
    moved_x, moved_y, moved_z = summary["object_moved_mm"]
    assert moved_x > 20.0 and abs(moved_y) < 0.5 * moved_x and abs(moved_z) < 2.0  # pushed forward, stays down
    assert 0.0 < summary["max_finger_deflection_rad"] < 0.5  # the finger felt the contact, nothing dragged
    for png in summary["plots"]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "twin" / "scene.xml").is_file()
    assert "rested 5 s" in proc.stderr
