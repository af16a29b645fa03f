"""identify() end to end on a simulated push (the 'real' simulator differs from the
identification twin): the contract's result, an honest interval, and the report."""
from __future__ import annotations

import dataclasses
import json

import mujoco
import numpy as np
import pytest

from dream_sysid.catalogue import get_object
from dream_sysid.identification.api import identify
from dream_sysid.identification.synthetic import SimulatorMismatch, TrackerModel, record_push
from dream_sysid.push.planner import plan_push
from dream_sysid.push.program import load_program
from dream_sysid.twin.builder import ObjectPlacement, build_twin
from dream_sysid.twin.object_geometry import ObjectGeometry


@pytest.fixture(scope="module")
def simulated_push(cell, tmp_path_factory):
    entry = get_object("domino")
    geometry = ObjectGeometry.from_file(entry.mesh_path)
    placement = ObjectPlacement(*entry.pose_xy_yaw)
    truth = build_twin(cell, geometry, kind="push", mass_kg=0.2, friction=0.45, placement=placement)
    ident = build_twin(cell, geometry, kind="push", mass_kg=entry.mass_kg, friction=0.5, placement=placement)
    scene = ident.save(tmp_path_factory.mktemp("ident"))
    q = truth.home_data().qpos
    plan = plan_push(load_program("sweep_release"), truth, cell, q[:7], q[-7:-4], q[-4:])
    rec = record_push(truth, plan, scene, tracker=TrackerModel(latency_s=0.03), mismatch=SimulatorMismatch(), seed=4)
    return rec, scene


def test_identify_returns_the_contract_and_a_report(simulated_push, tmp_path):
    rec, scene = simulated_push
    report = tmp_path / "report"
    result = identify(rec, scene=scene, object_body="object", report_dir=report, progress=False)
    out = result.to_dict()
    assert list(out) == ["mass_kg", "mass_ci95_kg", "friction", "identifiable", "warning", "pose_rmse_m",
                         "rot_rmse_rad", "iterations", "seconds"]
    lo, hi = out["mass_ci95_kg"]
    assert 0 < lo <= out["mass_kg"] <= hi
    assert (out["warning"] is None) == out["identifiable"]
    assert out["pose_rmse_m"] < 0.01                      # the fitted push follows the tracked object
    assert 0.05 < out["friction"] < 1.5
    for png in ("trajectory.png", "loss_curve.png", "loss_profile.png"):
        assert (report / png).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((report / "result.json").read_text()) == out
    model = mujoco.MjModel.from_xml_path(str(report / "twin_identified.xml"))
    assert model.body("object").mass[0] == pytest.approx(result.mass_kg, rel=1e-4)
    geoms = [g for g in range(model.ngeom) if model.geom_bodyid[g] == model.body("object").id and model.geom_contype[g]]
    assert np.allclose(model.geom_friction[geoms, 0], result.friction, rtol=1e-4)


@pytest.fixture(scope="module")
def one_push_answer(simulated_push):
    rec, scene = simulated_push
    return identify(rec, scene=scene, object_body="object", progress=False)


def test_pushes_identified_together_add_their_likelihoods(simulated_push, one_push_answer, tmp_path):
    """The same push twice is twice the evidence: the summed likelihood crosses the 95 %
    threshold sooner, so the interval lies inside the one push's and is narrower, and the
    report draws each push."""
    rec, scene = simulated_push
    one = one_push_answer
    two = identify([rec, rec], scene=scene, object_body="object", progress=False, report_dir=tmp_path / "report")
    (lo1, hi1), (lo2, hi2) = one.mass_ci95_kg, two.mass_ci95_kg
    assert lo1 < lo2 <= two.mass_kg <= hi2 < hi1
    assert two.friction == pytest.approx(one.friction, rel=0.05)
    assert two.pose_rmse_m == pytest.approx(one.pose_rmse_m) and two.iterations == 2 * one.iterations
    for name in ("trajectory.png", "trajectory_push2.png", "loss_profile.png", "loss_curve.png"):
        assert (tmp_path / "report" / name).stat().st_size > 10_000, name


def test_a_push_that_did_not_slide_the_object_is_left_out_of_several(simulated_push, one_push_answer):
    """Of two pushes, one the tracker saw stay put: the answer is the moving push's, and the
    warning says one was left out."""
    rec, scene = simulated_push
    rng = np.random.default_rng(0)
    still = rec.poses.pos[:1] + rng.normal(0.0, 0.001, rec.poses.pos.shape) * [1.0, 1.0, 0.0]
    held = dataclasses.replace(rec, poses=dataclasses.replace(rec.poses, pos=still))
    both = identify([held, rec], scene=scene, object_body="object", progress=False)
    assert both.mass_kg == one_push_answer.mass_kg and both.mass_ci95_kg == one_push_answer.mass_ci95_kg
    assert "1 of 2 pushes did not slide the object and were left out" in both.warning


def test_the_report_draws_the_point_the_tracker_tracks():
    # The tracker reports the object frame's origin; a Letter A's COM sits 4 mm aside of it,
    # and its replay, drawn by the COM, looked 4 mm off the tracked path where it matched.
    import types

    import torch

    from dream_sysid.identification.fit import PushObjective
    from dream_sysid.identification.report import _with_origin

    obj = object.__new__(PushObjective)
    obj.prep = types.SimpleNamespace(scenario=types.SimpleNamespace(yaw0=0.3))
    obj.offset = torch.tensor([0.01, 0.0], dtype=torch.float64)     # origin - COM in the object's frame
    com = torch.zeros(1, 2, 2, dtype=torch.float64)
    yaw = torch.tensor([[0.3, 0.3 + np.pi / 2]], dtype=torch.float64)
    planar = _with_origin(obj, {"com": com, "yaw": yaw})
    c0, s0 = np.cos(0.3), np.sin(0.3)
    assert np.allclose(planar["origin"][0], [0.01 * c0, 0.01 * s0])              # at the start: the offset
    assert np.allclose(planar["origin"][1], [-0.01 * s0, 0.01 * c0])             # turned a quarter with the body
    twin = _with_origin(obj, {"com": com, "yaw": yaw, "origin": torch.ones(1, 2, 2, dtype=torch.float64)})
    assert np.array_equal(twin["origin"], np.ones((2, 2)))                      # the twin's own origin as replayed


def test_a_push_that_does_not_move_the_object_is_an_answer_not_a_number(simulated_push):
    import dataclasses

    rec, scene = simulated_push
    still = np.repeat(rec.poses.pos[:1], len(rec.poses.t), axis=0)
    still = still + np.random.default_rng(0).normal(0.0, 0.002, still.shape)
    rec = dataclasses.replace(rec, poses=dataclasses.replace(rec.poses, pos=still))
    result = identify(rec, scene=scene, object_body="object", progress=False)
    out = json.loads(result.to_json())
    assert out["identifiable"] is False and "moved only" in out["warning"]
    assert out["mass_ci95_kg"][1] / out["mass_ci95_kg"][0] > 10   # honest: anything from light to heavy
    assert out["friction"] is None


@pytest.fixture(scope="module")
def stalled_push(cell, tmp_path_factory):
    """A 1 kg Lego brick with friction 0.6 (6 N to slide it): the finger bends and rides over it,
    the brick stays."""
    entry = get_object("lego_brick")
    geometry = ObjectGeometry.from_file(entry.mesh_path)
    placement = ObjectPlacement(*entry.pose_xy_yaw)
    truth = build_twin(cell, geometry, kind="push", mass_kg=1.0, friction=0.6, placement=placement)
    ident = build_twin(cell, geometry, kind="push", mass_kg=entry.mass_kg, friction=0.5, placement=placement)
    scene = ident.save(tmp_path_factory.mktemp("ident"))
    q = truth.home_data().qpos
    plan = plan_push(load_program("sweep_release"), truth, cell, q[:7], q[-7:-4], q[-4:])
    rec = record_push(truth, plan, scene, tracker=TrackerModel(latency_s=0.03), mismatch=SimulatorMismatch(), seed=5)
    assert np.linalg.norm(rec.ground_truth.pos[-1, :2] - rec.ground_truth.pos[0, :2]) < 0.003   # it held
    return rec, scene


def test_a_push_that_cannot_slide_a_heavy_object_bounds_its_mass_from_below(stalled_push):
    """The answer is no mass but a lower bound above the catalogue's 58 g prior that the truth
    respects (the finger held ~2 N against it and lifted it by its face)."""
    rec, scene = stalled_push
    prior = get_object("lego_brick").mass_kg
    out = identify(rec, scene=scene, object_body="object", progress=False).to_dict()
    lo, hi = out["mass_ci95_kg"]
    assert out["identifiable"] is False and "at least" in out["warning"]
    assert 2 * prior < lo <= 1.0 and hi == 3.0
    assert out["mass_kg"] == lo                 # the prior, raised to the bound
    assert out["friction"] is None


def test_a_tracker_that_starts_off_does_not_make_a_stalled_object_move(cell, stalled_push):
    """The tracker's first poses 6 mm off the resting ones (at 2 mm noise a 1 kg Letter U's
    first five read 5.3 mm off, by chance): the push is still one that did not slide the
    object, measured from the median of its resting poses. Measured from the first five, it
    read as a 6 mm slide that ended before the finger touched it, and prepare() fell over on
    an empty push window (a numpy ValueError)."""
    from dream_sysid.identification.prepare import NotInformative, prepare

    rec, scene = stalled_push
    pos = rec.poses.pos.copy()
    pos[:5, 0] += 0.006
    startled = dataclasses.replace(rec, poses=dataclasses.replace(rec.poses, pos=pos))
    model = mujoco.MjModel.from_xml_path(str(scene))
    mesh = ObjectGeometry.from_file(get_object("lego_brick").mesh_path).mesh
    with pytest.raises(NotInformative) as stalled:
        prepare(startled, model, mesh, object_body="object", arm_joints=cell.arm.mjcf_joints,
                hand_prefix=cell.push_hand.prefix)
    assert stalled.value.travel_m < 0.002
    assert stalled.value.prep is not None and len(stalled.value.prep.obs.t) > 50     # the whole bag after contact


def test_an_object_lying_on_its_side_is_pushed_as_it_lies(cell, tmp_path):
    """A ketchup bottle on its side (as the first of several pushes leaves it): the push meets
    horizontal cuts of the bottle as it lies, 65 mm tall, and the twin starts it lying on the
    table. Taken as upright (its 19 cm standing section, the fingertip's median height over
    the bag), prepare() said the hand never reached it; started at its upright height, the
    replay would drop it 6 cm."""
    from dream_sysid.identification.prepare import prepare

    entry = get_object("ketchup_bottle")
    geometry = ObjectGeometry.from_file(entry.mesh_path)
    placement = ObjectPlacement(*entry.pose_xy_yaw)
    truth = build_twin(cell, geometry, kind="push", mass_kg=0.4, friction=0.5, placement=placement)
    ident = build_twin(cell, geometry, kind="push", mass_kg=entry.mass_kg, friction=0.5, placement=placement)
    scene = ident.save(tmp_path / "ident")
    lying = np.array([np.cos(np.pi / 4), 0.0, np.sin(np.pi / 4), 0.0])        # its axis along x
    rot = np.zeros(9)
    mujoco.mju_quat2Mat(rot, lying)
    verts = geometry.mesh.vertices
    key = truth.model.key_qpos[truth.model.key("home").id]
    key[-5] += verts[:, 2].min() - (verts @ rot.reshape(3, 3).T)[:, 2].min()
    key[-4:] = lying
    q = truth.home_data().qpos
    plan = plan_push(load_program("sweep_release"), truth, cell, q[:7], q[-7:-4], q[-4:])
    rec = record_push(truth, plan, scene, tracker=TrackerModel(latency_s=0.03), mismatch=SimulatorMismatch(), seed=3)
    gt = rec.ground_truth
    assert np.linalg.norm(gt.pos[-1, :2] - gt.pos[0, :2]) > 0.02          # it slid, still lying
    assert abs(gt.pos[-1, 2] - key[-5]) < 0.002

    model = mujoco.MjModel.from_xml_path(str(scene))
    prep = prepare(rec, model, geometry.mesh, object_body="object", arm_joints=cell.arm.mjcf_joints,
                   hand_prefix=cell.push_hand.prefix)
    assert prep.finger == "ff_tip"
    assert prep.rest_dz == pytest.approx(key[-5] - ident.home_data().qpos[-5], abs=1e-5)     # (float32 mesh)
    out = identify(rec, scene=scene, object_body="object", progress=False)
    lo, hi = out.mass_ci95_kg
    assert lo <= 0.4 <= hi
    assert out.pose_rmse_m < 0.006            # the twin replayed the bottle where it lay


def test_arm_joints_are_matched_through_a_full_joint_map(cell, simulated_push):
    """Push bags carry the cell's whole arm map (fr3_*, fer_*, panda_* -> joint*): several driver
    names per MJCF joint must still find the recorded columns, in prepare and in the twin replay."""
    import dataclasses

    from dream_sysid.identification.prepare import prepare
    from dream_sysid.identification.twin_replay import TwinReplay

    rec, scene = simulated_push
    full = dict(cell.arm.joint_map) | {k: v for k, v in rec.joint_map.items() if k.startswith("joint_")}
    rec = dataclasses.replace(rec, joint_map=full)
    model = mujoco.MjModel.from_xml_path(str(scene))
    mesh = ObjectGeometry.from_file(get_object("domino").mesh_path).mesh
    prep = prepare(rec, model, mesh, object_body="object", arm_joints=cell.arm.mjcf_joints,
                   hand_prefix=cell.push_hand.prefix)
    replay = TwinReplay.build(model, rec, prep, object_body="object", arm_joints=cell.arm.mjcf_joints,
                              hand_prefix=cell.push_hand.prefix)
    recorded = np.array([np.interp(prep.t0, rec.arm_states.t, rec.arm_states.position[:, i]) for i in range(7)])
    np.testing.assert_allclose(replay.arm_q[0], recorded, atol=1e-9)


def test_commanded_trajectory_stands_in_for_missing_arm_states(cell, simulated_push):
    """A bag without /joint_states: the arm is taken from its JointTrajectory as the controller
    interpolates it. The commanded fingertip leads the measured one along the push (the Panda
    servos lag ~1-2 cm at speed) and meets it once the arm has stopped."""
    import dataclasses

    from dream_sysid.identification.prepare import prepare

    rec, scene = simulated_push
    model = mujoco.MjModel.from_xml_path(str(scene))
    mesh = ObjectGeometry.from_file(get_object("domino").mesh_path).mesh
    kw = dict(object_body="object", arm_joints=cell.arm.mjcf_joints, hand_prefix=cell.push_hand.prefix)
    measured = prepare(rec, model, mesh, **kw)
    commanded = prepare(dataclasses.replace(rec, arm_states=None), model, mesh, **kw)
    t = measured.t0 + measured.scenario.dt * np.arange(measured.scenario.steps)
    tc = commanded.t0 + commanded.scenario.dt * np.arange(commanded.scenario.steps)
    anchor_c = np.stack([np.interp(t, tc, commanded.scenario.anchor[:, i]) for i in range(2)], axis=1)
    lead = anchor_c[:, 0] - measured.scenario.anchor[:, 0]          # along the push (+x)
    assert lead.min() > -0.001 and 0.005 < lead.max() < 0.03
    assert np.linalg.norm(anchor_c[-1] - measured.scenario.anchor[-1]) < 0.001


def test_each_finer_profile_starts_from_the_valley_before_it(simulated_push, monkeypatch):
    # The fine masses search friction around the coarse profile's valley (interpolated in
    # log mass), not the whole range again (a seed that was once added and never passed);
    # the finest pass, quarter steps either side of the lowest point, around both.
    from dream_sysid.identification import api, push_fit

    calls = []
    real = push_fit.profile_on_twin

    def spy(obj, replay, log_mu_m, latency, lm, friction_range, **kw):
        out = real(obj, replay, log_mu_m, latency, lm, friction_range, **kw)
        calls.append((np.array(lm), kw.get("seed_log_mu"), out[0], out[1]))
        return out

    monkeypatch.setattr(push_fit, "profile_on_twin", spy)
    rec, scene = simulated_push
    identify(rec, scene=scene, object_body="object", progress=False)
    (coarse, coarse_seed, coarse_cost, coarse_lmu), (fine, fine_seed, fine_cost, fine_lmu), \
        (finest, finest_seed, _, _) = calls
    assert coarse_seed is None and len(coarse) == api.COARSE_MASSES
    assert len(fine) == api.FINE_MASSES
    assert np.allclose(fine_seed, np.interp(fine, coarse, coarse_lmu))
    lm = np.concatenate([coarse, fine])
    order = np.argsort(lm)
    step = fine[1] - fine[0]
    lowest = lm[np.argmin(np.concatenate([coarse_cost, fine_cost]))]
    assert np.allclose(finest, lowest + step * np.array([-0.5, -0.25, 0.25, 0.5]))
    assert np.allclose(finest_seed, np.interp(finest, lm[order], np.concatenate([coarse_lmu, fine_lmu])[order]))


def test_the_gradient_step_goes_downhill_along_the_autodiff_gradient(cell, simulated_push):
    # One steepest-descent step from a point 0.3 off the mu*m valley (in log friction): the
    # line search's batch keeps the candidate that lowers the cost, on the ray against the
    # reverse-mode gradient, and the history records both ends for the report's loss curve.
    import torch

    from dream_sysid.identification import fit
    from dream_sysid.identification.api import refine_with_gradients
    from dream_sysid.identification.prepare import prepare

    rec, scene = simulated_push
    model = mujoco.MjModel.from_xml_path(str(scene))
    mesh = ObjectGeometry.from_file(get_object("domino").mesh_path).mesh
    prep = prepare(rec, model, mesh, object_body="object", arm_joints=cell.arm.mjcf_joints,
                   hand_prefix=cell.push_hand.prefix)
    obj = fit.PushObjective(prep)
    start = np.array([np.log(0.2), np.log(0.45) + 0.3, 0.03])
    history: list = []
    best, cost, iterations = refine_with_gradients(obj, start, history)
    p = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    c = (obj.residual_vector(p) ** 2).sum()
    c.backward()
    c0, grad = float(c.detach()), p.grad.numpy()[:2]
    step = best[:2] - start[:2]
    assert iterations == 1 and cost < c0 and best[2] == start[2]
    assert np.dot(step, -grad) / (np.linalg.norm(step) * np.linalg.norm(grad)) > 0.999999
    assert [h[0] for h in history] == [0, 1] and history[1][3] == pytest.approx(cost)
    assert history[0][3] == pytest.approx(c0)


def test_the_correlation_inflation_follows_the_signal_that_carries_the_cost():
    # Correlated residuals are fewer independent ones: the fingertip's, which carry the twin
    # profile's cost, count by their share, not only the tracked position's.
    import torch

    from dream_sysid.identification.fit import correlation_inflation as _correlation_inflation

    rng = np.random.default_rng(0)
    white = torch.as_tensor(rng.normal(size=(1, 200, 2)))
    drift = torch.as_tensor(10.0 * np.cumsum(rng.normal(size=(1, 200, 2)), axis=1))   # lag-1 rho ~ 1
    res = {"pos": white, "rot": torch.zeros(1, 200, dtype=torch.float64), "tip": drift}
    assert _correlation_inflation(res) > 15.0          # rho clipped at 0.9: 19 at most
    assert _correlation_inflation(res | {"tip": 0.0 * drift}) < 1.5
