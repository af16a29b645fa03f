"""`dream-sysid identify` per the contract: bad input exits 2 with one line on stderr
naming the problem; a good bag reaches the identifier and the last stdout line is
the result JSON."""
from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from dream_sysid.bag.export import write_push_bag
from dream_sysid.bag.recorder import BagRecorder
from dream_sysid.bag.recording import PoseSeries, PushRecording, Series

SCENE = '<mujoco><worldbody><body name="{body}"><freejoint/><geom size="0.01"/></body></worldbody></mujoco>'


def _recording(tmp_path: Path, n_poses: int = 30, body: str = "object") -> PushRecording:
    scene = tmp_path / "scene.xml"
    scene.write_text(SCENE.format(body=body))
    t = 10.0 + np.arange(n_poses) / 30.0
    pos = np.column_stack([0.55 + 0.001 * np.arange(n_poses), np.zeros(n_poses), np.full(n_poses, 0.011)])
    th = 100.0 + np.arange(3 * n_poses) / 90.0
    return PushRecording(
        path=tmp_path, info={"object_id": "domino", "scene": "../scene.xml", "object_body": "object",
                             "joint_map": {"joint_0.0": "allegro/ffj0"}, "program": {"name": "flick"}},
        scene=scene, object_body="object", joint_map={}, poses=PoseSeries(t, pos, np.tile([1.0, 0, 0, 0], (n_poses, 1))),
        hand_states=Series(th, tuple(f"joint_{i}.0" for i in range(16)), np.zeros((len(th), 16)),
                           np.zeros((len(th), 16)), np.zeros((len(th), 16))))


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dream_sysid.sysid_cli", *args], capture_output=True, text=True,
                          timeout=120)


def _assert_one_line_error(proc: subprocess.CompletedProcess, *words: str, prefix: str = "dream-sysid: error: ") -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), proc.stderr
    assert proc.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]


def test_missing_pose_topic(tmp_path):
    bag = tmp_path / "bag"
    with BagRecorder(bag) as rec:
        rec.write_json("/dream/push/info", {"scene": str(tmp_path / "scene.xml")}, 1)
    _assert_one_line_error(_run("identify", str(bag)), "no messages on /dream/object/pose", "/dream/push/info")


def test_missing_info_topic(tmp_path):
    recording = _recording(tmp_path)
    bag = tmp_path / "bag"
    write_push_bag(recording, bag)
    # Same bag without the info message: rewrite it from the recording minus /dream/push/info.
    bag2 = tmp_path / "bag2"
    from dream_sysid.bag.export import pose_messages

    with BagRecorder(bag2, "sqlite3") as rec:
        rec.add_topic("/dream/object/pose", "geometry_msgs/msg/PoseStamped")
        for t_ns, raw in pose_messages(recording.poses):
            rec.write("/dream/object/pose", raw, t_ns)
    _assert_one_line_error(_run("identify", str(bag2)), "no messages on /dream/push/info")


def test_unreadable_bag(tmp_path):
    bag = tmp_path / "bag"
    write_push_bag(_recording(tmp_path), bag)
    (storage,) = bag.glob("*.mcap")
    storage.write_bytes(b"\x89MCAP0\r\n" + b"garbage" * 10)   # truncated / corrupt storage file
    _assert_one_line_error(_run("identify", str(bag)), "cannot read push bag", str(bag))
    not_a_bag = tmp_path / "plain"
    not_a_bag.mkdir()
    _assert_one_line_error(_run("identify", str(not_a_bag)), "is not a rosbag2 bag")
    _assert_one_line_error(_run("identify", str(tmp_path / "missing")), "does not exist")


def test_scene_without_the_object_body(tmp_path):
    bag = tmp_path / "bag"
    write_push_bag(_recording(tmp_path, body="box"), bag)
    _assert_one_line_error(_run("identify", str(bag)), "has no body 'object'", "scene.xml")
    # --object-body names the body the scene does have; --scene overrides the bag's scene.
    other = tmp_path / "other.xml"
    other.write_text(SCENE.format(body="puck"))
    _assert_one_line_error(_run("identify", str(bag), "--scene", str(other), "--object-body", "box"),
                    "other.xml has no body 'box'")
    _assert_one_line_error(_run("identify", str(bag), "--scene", str(tmp_path / "nope.xml")), "nope.xml does not exist")


def test_too_few_poses(tmp_path):
    bag = tmp_path / "bag"
    write_push_bag(_recording(tmp_path, n_poses=9), bag)
    _assert_one_line_error(_run("identify", str(bag)), "only 9 poses", "at least 10")


def test_usage_errors_and_help():
    _assert_one_line_error(_run("identify"), "BAG", "--help", prefix="dream-sysid identify: error: ")
    proc = _run("identify", "--help")
    assert proc.returncode == 0
    for word in ("/dream/object/pose", "/dream/push/info", "joint_map", "at least 10", "--report", "exit status"):
        assert word in proc.stdout, word


def test_good_bag_reaches_identify_and_prints_json_last(tmp_path, monkeypatch, capsys):
    """The identifier is another module: a stand-in checks what the CLI hands it."""
    from dream_sysid.identification.result import IdentificationResult
    from dream_sysid.sysid_cli import main

    bag = tmp_path / "bag"
    write_push_bag(_recording(tmp_path), bag, storage="sqlite3")
    calls = []

    def identify(recordings, *, scene, object_body, report_dir, progress):
        calls.append((recordings, scene, object_body, report_dir, progress))
        print("fitting ...", file=sys.stderr)
        return IdentificationResult(0.106, (0.1, 0.11), 0.5, True, None, 0.002, 0.02, 12, 1.5)

    fake = types.ModuleType("dream_sysid.identification.api")
    fake.identify = identify
    monkeypatch.setitem(sys.modules, "dream_sysid.identification.api", fake)
    assert main(["identify", str(bag), "--report", str(tmp_path / "report")]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out.strip().splitlines()[-1])
    assert result["mass_kg"] == pytest.approx(0.106) and result["mass_ci95_kg"] == [0.1, 0.11]
    assert "fitting" in err and "30 poses" in err
    ([recording], scene, body, report, progress), = calls
    assert scene == (tmp_path / "scene.xml").resolve() and body == "object" and progress is True
    assert report == tmp_path / "report" and report.is_dir()
    assert len(recording.poses.t) == 30 and recording.hand_states.position.shape == (90, 16)


def test_several_bags_are_one_identification_of_one_object(tmp_path, monkeypatch, capsys):
    """Pushes identified together: every bag reaches the identifier, in the order given; bags that
    name different scenes are bad input (one line, exit 2) unless --scene sets one for all."""
    from dream_sysid.identification.result import IdentificationResult
    from dream_sysid.sysid_cli import main

    first, second = tmp_path / "a" / "bag", tmp_path / "b" / "bag"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    write_push_bag(_recording(tmp_path / "a"), first)
    write_push_bag(_recording(tmp_path / "b", n_poses=40), second)
    _assert_one_line_error(_run("identify", str(first), str(second)), "name different scenes", "--scene")

    calls = []

    def identify(recordings, *, scene, object_body, report_dir, progress):
        calls.append((recordings, scene))
        return IdentificationResult(0.106, (0.1, 0.11), 0.5, True, None, 0.002, 0.02, 12, 1.5)

    fake = types.ModuleType("dream_sysid.identification.api")
    fake.identify = identify
    monkeypatch.setitem(sys.modules, "dream_sysid.identification.api", fake)
    scene = tmp_path / "a" / "scene.xml"
    assert main(["identify", str(second), str(first), "--scene", str(scene)]) == 0
    (recordings, used), = calls
    assert [len(r.poses.t) for r in recordings] == [40, 30] and used == scene.resolve()
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["mass_kg"] == pytest.approx(0.106)
