"""The identification's replay of a push in the twin, and what it is built from:
the replay reproduces a noise-free push at the true parameters; the object's
start comes from every resting pose; the interval and the expected interval
are hulls of the profile's low region; robust residuals have finite gradients."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dream_sysid.bag.reader import load_scene_model
from dream_sysid.catalogue import get_object
from dream_sysid.identification.api import object_mesh
from dream_sysid.identification.fit import PushObjective, interval, profile_mean, profile_roughness, rotation_vector
from dream_sysid.identification.information import expected_interval
from dream_sysid.identification.prepare import _arm_from_trajectories, prepare, rest_pose
from dream_sysid.identification.synthetic import TrackerModel, record_push
from dream_sysid.identification.twin_replay import TwinReplay, profile_on_twin, start_jitter
from dream_sysid.push.planner import plan_push
from dream_sysid.push.program import load_program
from dream_sysid.twin.builder import ObjectPlacement, build_twin
from dream_sysid.twin.object_geometry import ObjectGeometry
from dream_sysid.twin.physics_only import physics_only

EXACT = TrackerModel(position_sigma_m=0.0, rotation_sigma_rad=0.0, latency_s=0.0, drop_rate=0.0)


def _noise_free_push(cell, directory, object_id: str, program: str, friction: float):
    """A push of a catalogue object at its catalogue mass, recorded without tracking noise
    or simulator mismatch in the same twin the replay uses: (mass, recording, prep, replay)."""
    entry = get_object(object_id)
    geometry = ObjectGeometry.from_file(entry.mesh_path)
    placement = ObjectPlacement(*entry.pose_xy_yaw)
    twin = build_twin(cell, geometry, kind="push", mass_kg=entry.mass_kg, friction=friction, placement=placement)
    scene = twin.save(directory)
    q = twin.home_data().qpos
    plan = plan_push(load_program(program), twin, cell, q[:7], q[-7:-4], q[-4:])
    rec = record_push(twin, plan, scene, tracker=EXACT, mismatch=None)
    model = load_scene_model(scene, "object")
    prep = prepare(rec, model, object_mesh(model, "object"), object_body="object", arm_joints=cell.arm.mjcf_joints,
                   hand_prefix=cell.push_hand.prefix)
    replay = TwinReplay.build(model, rec, prep, object_body="object", arm_joints=cell.arm.mjcf_joints,
                              hand_prefix=cell.push_hand.prefix)
    return entry.mass_kg, rec, prep, replay


@pytest.fixture(scope="module")
def exact_push(cell, tmp_path_factory):
    """A noise-free slow push of the Lego brick."""
    return _noise_free_push(cell, tmp_path_factory.mktemp("lego"), "lego_brick", "slow_sweep", 0.5)


def test_replay_at_the_true_parameters_reproduces_the_push(exact_push):
    # Replaying the arm's commands through the twin's own actuators reproduces the
    # recording; following the measured joints with stiff servos left the object
    # 1-1.8 mm behind during contact on this very push.
    mass, rec, prep, replay = exact_push
    obj = PushObjective(prep)
    res = obj.residuals(replay.rollout(mass, 0.5), torch.zeros(1, dtype=torch.float64))
    pos_mm = res["pos"][0].numpy() * 2.0          # residuals are in units of the 2 mm pose sigma
    tip_mm = res["tip"][0].numpy() * 1.0          # and of the 1 mm fingertip sigma
    assert np.abs(pos_mm).max() < 0.4, np.abs(pos_mm).max()
    assert np.abs(tip_mm).max() < 0.2, np.abs(tip_mm).max()
    travel = np.linalg.norm(rec.ground_truth.pos[-1, :2] - rec.ground_truth.pos[0, :2])
    assert travel > 0.03                          # and the push really moved the brick
    # A wrong mass does not reproduce it.
    wrong = obj.residuals(replay.rollout(2 * mass, 0.5), torch.zeros(1, dtype=torch.float64))
    assert np.abs(wrong["tip"][0].numpy()).max() > 5 * np.abs(tip_mm).max()


def test_the_arm_replays_when_it_really_moved_not_when_its_command_was_stamped(exact_push, cell):
    # The bag stamps a JointTrajectory when the recorder receives it; the controller starts
    # it at its own receipt, on the simulated cell over DDS 3-9 ms later. Stamped 8 ms
    # early here, the replay finds the delay from the measured arm joints and reproduces
    # the push again; replayed from the stamp, its fingertip runs ahead.
    mass, rec, prep, replay = exact_push
    assert replay.arm_delay == 0.0                             # stamped when it ran: no delay
    early = dataclasses.replace(rec, arm_trajectories=tuple(
        dataclasses.replace(a, t_received=a.t_received - 0.008) for a in rec.arm_trajectories))
    model = load_scene_model(rec.scene, "object")
    late = TwinReplay.build(model, early, prep, object_body="object", arm_joints=cell.arm.mjcf_joints,
                            hand_prefix=cell.push_hand.prefix)
    assert late.arm_delay == pytest.approx(0.008, abs=5e-4)
    obj = PushObjective(prep)
    zero = torch.zeros(1, dtype=torch.float64)

    def cost(r: TwinReplay) -> float:
        return float((obj.stacked(obj.residuals(r.rollout(mass, 0.5), zero)) ** 2).sum())

    assert cost(late) < 1.0, cost(late)
    stamped = TwinReplay.build(model, early, prep, object_body="object", arm_joints=cell.arm.mjcf_joints,
                               hand_prefix=cell.push_hand.prefix)
    t = prep.t0 + stamped.model.opt.timestep * np.arange(len(stamped.arm_q))
    stamped.arm_ctrl = _arm_from_trajectories(early, t, cell.arm.mjcf_joints, stamped.arm_ctrl[0])
    assert cost(stamped) > 50 * max(cost(late), 0.1), (cost(stamped), cost(late))


def test_rotation_residual_is_the_geodesic_rotation_whatever_the_sign():
    # q and -q are one rotation (a raw quaternion difference would call them far apart);
    # a quarter turn about z is pi/2 along z; about x from an object lying on its side the
    # same, in the first orientation's frame.
    q = torch.tensor([np.cos(0.3), 0.0, np.sin(0.3) * 0.6, np.sin(0.3) * 0.8], dtype=torch.float64)
    assert torch.allclose(rotation_vector(q, q), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(rotation_vector(q, -q), torch.zeros(3, dtype=torch.float64), atol=1e-12)
    quarter_z = torch.tensor([np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)], dtype=torch.float64)
    ident = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(rotation_vector(ident, quarter_z), torch.tensor([0, 0, np.pi / 2], dtype=torch.float64))
    assert torch.allclose(rotation_vector(ident, -quarter_z), torch.tensor([0, 0, np.pi / 2], dtype=torch.float64))
    on_side = torch.tensor([np.cos(np.pi / 4), np.sin(np.pi / 4), 0.0, 0.0], dtype=torch.float64)   # 90 deg about x
    nudged = torch.tensor([np.cos(np.pi / 4 + 0.005), np.sin(np.pi / 4 + 0.005), 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(rotation_vector(2.0 * on_side, nudged), torch.tensor([0.01, 0, 0], dtype=torch.float64))


@pytest.fixture(scope="module")
def fallen_bottle(cell, tmp_path_factory):
    """A noise-free sweep_release push that tips the ketchup bottle over (its paper mass)."""
    return _noise_free_push(cell, tmp_path_factory.mktemp("ketchup"), "ketchup_bottle", "sweep_release", 0.64)


def test_a_bottle_that_falls_over_replays_as_tracked(fallen_bottle):
    # The tracker reports the object frame's pose. Replayed at the true parameters, the
    # fallen bottle's frame origin and orientation match it; the planar COM offset turned by
    # the yaw missed the origin by 19 mm and the yaw was 3-7 deg off once it lay on its side,
    # costing 917 where the exact replay costs a few units.
    mass, rec, prep, replay = fallen_bottle
    up = np.array([np.abs(1 - 2 * (q[1] ** 2 + q[2] ** 2)) for q in rec.ground_truth.quat])   # |R_zz|
    assert up[0] > 0.99 and up[-1] < 0.3                   # it stood, and it ended on its side
    obj = PushObjective(prep)
    res = obj.residuals(replay.rollout(mass, 0.64), torch.zeros(1, dtype=torch.float64))
    assert float(res["pos"].abs().max()) * 2.0 < 2.0       # mm (it was 19 mm)
    assert float(res["rot"].abs().max()) < 2.0             # deg
    cost = float((obj.stacked(res) ** 2).sum())
    assert cost < 20.0, cost
    heavier = float((obj.stacked(obj.residuals(replay.rollout(1.3 * mass, 0.64 / 1.3),
                                                  torch.zeros(1, dtype=torch.float64))) ** 2).sum())
    assert heavier > cost + 3.84, (heavier, cost)


def test_batched_replays_are_the_sequential_replay(exact_push):
    # mujoco.rollout on two threads, model copies per (mass, friction): the same
    # physics and the same time alignment as the one-at-a-time replay.
    mass, _, _, replay = exact_push
    masses, mus = np.array([mass, 1.7 * mass, 0.6 * mass]), np.array([0.5, 0.3, 0.8])
    batch = replay.rollout_batch(masses, mus)
    for i, (m, u) in enumerate(zip(masses, mus)):
        one = replay.rollout(float(m), float(u))
        for key in ("com", "yaw", "tip", "origin", "quat"):
            assert torch.equal(batch[key][i], one[key][0]), key
    coarse = replay.rollout_batch(masses, mus, kinematics_every_s=0.01)
    assert float((coarse["tip"] - batch["tip"]).abs().max()) < 1e-4        # 100 Hz kinematics, linear between
    assert float((coarse["com"] - batch["com"]).abs().max()) < 1e-4
    assert not torch.equal(batch["com"][0], batch["com"][1])               # the rows really differ


def test_the_twin_without_its_visual_meshes_replays_the_push_to_the_bit(exact_push, cell):
    # The Panda's and Allegro's visual meshes are 98 % of the model that rollout copies per
    # replay; some carry the Allegro's mass, so the bodies keep it as explicit inertials.
    mass, rec, prep, full = exact_push
    model = load_scene_model(rec.scene, "object")
    lean_model = physics_only(rec.scene, model, "object")
    assert lean_model.nbuffer < model.nbuffer / 10
    assert lean_model.ngeom < model.ngeom
    lean = TwinReplay.build(lean_model, rec, prep, object_body="object", arm_joints=cell.arm.mjcf_joints,
                            hand_prefix=cell.push_hand.prefix)
    masses, mus = np.array([mass, 1.7 * mass, 0.6 * mass]), np.array([0.5, 0.3, 0.8])
    a, b = full.rollout_batch(masses, mus), lean.rollout_batch(masses, mus)
    for key in ("com", "yaw", "tip", "origin", "quat"):
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["com"][0], a["com"][1])
    # The safety net: a model that is not the scene as compiled (here one whose finger joints
    # are damped more) comes back as it is, visual meshes and all, rather than as a lean model
    # that would differ from it.
    damped = load_scene_model(rec.scene, "object")
    damped.dof_damping[lean.hand_dadr] *= 1.1
    assert physics_only(rec.scene, damped, "object") is damped


def test_a_mass_seen_before_restores_what_mj_setconst_derives_from_it(exact_push):
    # _set_params computes mj_setConst once per mass and restores it after: every array of the
    # model must then be what a fresh mj_setConst gives (a MuJoCo that derived one more array
    # from the mass would fail here, not bend replays silently).
    import copy

    import mujoco

    mass, _, _, replay = exact_push
    cached, fresh = copy.deepcopy(replay.model), copy.deepcopy(replay.model)
    d = mujoco.MjData(cached)
    for m in (mass, 1.9 * mass, mass):            # the third call restores the first's constants
        replay._set_params(cached, d, m, 0.4)
    fresh.body_mass[replay.oid] = mass
    fresh.body_inertia[replay.oid] = replay.inertia0 * (mass / replay.mass0)
    fresh.geom_friction[replay.obj_geoms, 0] = 0.4
    mujoco.mj_setConst(fresh, mujoco.MjData(fresh))
    arrays = [n for n in dir(fresh) if not n.startswith("_") and isinstance(getattr(fresh, n), np.ndarray)]
    assert "dof_invweight0" in arrays
    for name in arrays:
        assert np.array_equal(getattr(cached, name), getattr(fresh, name)), name


def test_expected_interval_contains_the_truth_and_is_closed_below(exact_push):
    mass, _, prep, replay = exact_push
    ei = expected_interval(PushObjective(prep), replay, mass, 0.5, ratios=np.exp(np.linspace(-0.7, 0.7, 8)))
    assert ei.delta_chi2.min() == 0.0
    assert ei.lo <= 1.0 <= ei.hi
    assert ei.lo > np.exp(-0.7)                   # half the mass is ruled out: the finger feels it
    assert ei.width_ratio == pytest.approx(ei.hi / ei.lo)


def test_a_seeded_profile_finds_the_friction_near_its_seed(exact_push):
    # The fine profile starts from the coarse one's valley instead of the whole friction
    # range: seeded 0.15 (in log) off the true friction, it still lands on it.
    mass, _, prep, replay = exact_push
    obj = PushObjective(prep)
    lm = np.log([mass, 0.5 * mass])
    seed = np.log([0.5, 1.0]) + 0.15               # each 0.15 off its mass's valley (mu m = 0.5 x true m)
    valley = float(np.log(0.5 * mass)) + 0.3       # the reduced model's valley point, off too
    cost, lmu = profile_on_twin(obj, replay, valley, 0.0, lm, (0.05, 1.5), seed_log_mu=seed)
    assert abs(lmu[0] - np.log(0.5)) < 0.05, np.exp(lmu[0])
    at_seed = float((obj.stacked(obj.residuals(replay.rollout(mass, 0.5 * np.exp(0.15)),
                                               torch.zeros(1, dtype=torch.float64))) ** 2).sum())
    # Far below the seed's cost, though not down to the true parameters' (about 0: the replay
    # repeats the recording exactly); friction 0.005 off them already costs a few units (the
    # twin's stick-slip timing).
    assert cost[0] < 0.2 * at_seed, (cost[0], at_seed)
    assert cost[1] > cost[0] + 3.84               # and half the mass stays ruled out


def test_a_profile_replays_each_mass_and_friction_once(exact_push, monkeypatch):
    # The halving passes land about half their points on frictions replayed before; those
    # costs are looked up. Every (mass, friction) the profile asks for is replayed once, and
    # each mass's answer is the lowest of its own replays.
    import dream_sysid.identification.twin_replay as twin_replay

    mass, _, prep, replay = exact_push
    obj = PushObjective(prep)
    calls: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    batch_costs = twin_replay._batch_costs

    def recording(obj_, replay_, log_m, log_mu, lats):
        costs = batch_costs(obj_, replay_, log_m, log_mu, lats)
        calls.append((np.exp(log_m), np.exp(log_mu), costs))
        return costs

    monkeypatch.setattr(twin_replay, "_batch_costs", recording)
    lm = np.log([mass, 0.7 * mass])
    cost, lmu = profile_on_twin(obj, replay, float(np.log(0.5 * mass)), 0.0, lm, (0.05, 1.5),
                                seed_log_mu=np.log([0.5, 0.7]))
    m, mu, c = (np.concatenate(a) for a in zip(*calls))
    pairs = list(zip(m.tolist(), mu.tolist()))
    assert len(pairs) == len(set(pairs))
    # Without the look-up: 2 masses x (6 + 4 x 4) replays; each halving pass repeats about half.
    assert len(pairs) <= 2 * (6 + 4 * 4) - 2 * 4
    for i in range(2):
        mine = m == np.exp(lm[i])
        k = int(np.argmin(np.where(mine, c, np.inf)))
        assert cost[i] == c[k] and np.exp(lmu[i]) == mu[k]


def test_start_jitter_is_what_a_start_as_uncertain_as_the_trackers_costs(exact_push):
    # Replayed from exactly its recorded start at the true parameters the push costs ~0;
    # started 0.3 mm aside (the tracked start's uncertainty) it costs well above the
    # chi-square threshold, and differently in each direction: the allowance the interval
    # needs. No shift, no allowance.
    mass, _, prep, replay = exact_push
    obj = PushObjective(prep)
    start = replay.object_qpos0.copy()
    res = obj.residuals(replay.rollout(mass, 0.5), torch.zeros(1, dtype=torch.float64))
    exact = float((obj.stacked(res) ** 2).sum())
    assert exact < 1.0, exact
    jitter = start_jitter(obj, replay, float(np.log(mass)), float(np.log(0.5)), 0.0, exact)
    assert jitter > 3.84, jitter
    assert start_jitter(obj, replay, float(np.log(mass)), float(np.log(0.5)), 0.0, exact, shift_m=0.0) < 0.5
    # A minimum far above the shifted costs leaves only their spread.
    spread = start_jitter(obj, replay, float(np.log(mass)), float(np.log(0.5)), 0.0, exact + 10 * jitter)
    assert 0.0 < spread < jitter
    assert np.array_equal(replay.object_qpos0, start)        # the tracked start is back


def test_rest_pose_uses_every_resting_pose():
    rng = np.random.default_rng(3)
    n_rest, n_move = 60, 30
    true = np.array([0.55, 0.02, 0.011])
    pos = np.repeat(true[None, :], n_rest + n_move, axis=0)
    pos[n_rest:, 0] += np.linspace(0.002, 0.06, n_move)       # then pushed 6 cm along x
    noisy = pos + rng.normal(0.0, 0.002, pos.shape)
    yaw = 0.3
    quat = np.tile([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)], (len(pos), 1))
    quat[1::2] *= -1                                          # q and -q are the same orientation
    p0, q0 = rest_pose(noisy, quat)
    first5 = np.median(noisy[:5], axis=0)
    assert np.linalg.norm(p0[:2] - true[:2]) < 0.0007
    assert np.linalg.norm(p0[:2] - true[:2]) < np.linalg.norm(first5[:2] - true[:2])
    assert abs(abs(q0 @ quat[0]) - 1.0) < 1e-9


def test_the_estimate_is_the_profile_likelihoods_mean_not_its_luckiest_sample():
    centre = np.log(0.2)
    lm = np.linspace(np.log(0.015), np.log(3.0), 40)
    prof = 20.0 * (lm - centre) ** 2 + 100.0
    assert profile_mean(lm, prof, 1.0) == pytest.approx(centre, abs=0.01)
    lucky = int(np.argmin(np.abs(lm - (centre + 0.4))))
    prof[lucky] -= 5.0                          # one chaotic draw dips below the valley's floor
    assert int(np.argmin(prof)) == lucky
    assert abs(profile_mean(lm, prof, 4.0) - centre) < 0.1
    assert profile_mean(lm[::-1], prof[::-1], 4.0) == pytest.approx(profile_mean(lm, prof, 4.0))


def test_interval_is_the_hull_of_every_dip_below_threshold():
    lm = np.log(np.array([0.05, 0.07, 0.1, 0.14, 0.2, 0.28, 0.4]))
    prof = np.array([30.0, 10.0, 0.0, 12.0, 2.0, 20.0, 40.0])    # a second dip at 0.2 kg
    lo, hi, closed = interval(lm, prof, 0.0, 1.0)
    assert closed and np.exp(lo) < 0.1 and 0.2 < np.exp(hi) < 0.28
    lo, hi, closed = interval(lm, np.array([0.0, 1.0, 2.0, 8.0, 9.0, 9.0, 9.0]), 0.0, 1.0)
    assert not closed and lo == lm[0]


def test_a_jagged_profile_widens_its_interval_and_a_smooth_one_does_not():
    lm = np.log(0.1) + np.linspace(-0.5, 0.5, 11)
    smooth = 40.0 * (lm - np.log(0.1)) ** 2
    assert profile_roughness(lm, smooth, lm[0], lm[-1]) == pytest.approx(0.0, abs=1e-9)
    assert interval(lm, smooth, 0.0, 1.0, profile_roughness(lm, smooth, lm[0], lm[-1])) == pytest.approx(
        interval(lm, smooth, 0.0, 1.0), abs=1e-9)
    # Nearly flat, with one lucky dip: the raw threshold keeps only the dip.
    jagged = 2.0 * (lm - np.log(0.1)) ** 2 + np.array([6.0, 5.0, 8.0, 6.0, 7.0, 0.0, 6.0, 5.0, 8.0, 5.0, 7.0])
    lo, hi, _ = interval(lm, jagged, 0.0, 1.0)
    rough = profile_roughness(lm, jagged, lm[0], lm[-1])
    assert rough > 1.5
    lo_r, hi_r, _ = interval(lm, jagged, 0.0, 1.0, rough)
    assert hi - lo < 0.2 and hi_r - lo_r > 0.6 and lo_r <= lo and hi_r >= hi
    # The start's jitter raises the threshold as roughness does: the lucky dip's neighbours are admitted.
    lo_j, hi_j, _ = interval(lm, jagged, 0.0, 1.0, 0.0, jitter=6.0)
    assert lo_j < lo and hi_j > hi
    # A replay that failed (infinite cost) is left out rather than poisoning the threshold.
    assert profile_roughness(lm, np.where(np.arange(11) == 2, np.inf, jagged), lm[0], lm[-1]) > 1.5


def test_robust_residuals_have_finite_gradients_at_zero():
    # Noise-free joint data give residuals of exactly zero; sqrt'(0) made the whole gradient NaN.
    r = torch.tensor([0.0, 1.0, -5.0], dtype=torch.float64, requires_grad=True)
    out = PushObjective.robust(r)
    (out ** 2).sum().backward()
    assert torch.isfinite(r.grad).all()
    assert out[1].item() == pytest.approx(1.0) and out[2].item() < -3.0
    assert (out[2] ** 2).item() == pytest.approx(2 * 3.0 * (5.0 - 1.5))   # Huber beyond 3 sigma
