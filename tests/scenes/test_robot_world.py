"""robotics/arm: IK limits, each scripted task on its default latents, interventions, re-simulation,
feasibility and temporal edits (simulation only, no rendering)."""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world, check_world
from crlgen.scenes.base import BatchEdit, WorldBatch
from crlgen.scenes.robotics import _controllers, _ik, _rooms
from crlgen.scenes.robotics._arms import ARM_NAMES, MODELS
from crlgen.scenes.testing import _batch, _rss_mb

JOINTS = {0: 7, 1: 6, 2: 7}
#: Success tolerances (m). Push: 5 cm, the threshold of the Fetch push task (Plappert et al. 2018,
#: "Multi-goal reinforcement learning"); the others are placed by a held grasp and land within millimetres.
REACH_TOL, PUSH_TOL, PLACE_TOL, STACK_TOL, PRESS_TOL = 0.02, 0.05, 0.02, 0.015, 0.015


def spec_for(task: int, arm: int = 0, frames: int = 70, room: int = 0, samples: int = 8):
    """The open-space spec with another task or arm, observational and without edits."""
    spec = load_spec("robotics/open_space")
    if JOINTS[arm] == 6:  # arm.twist resolves a 7-joint arm's redundancy: the xArm6 has none
        spec = spec.replace(variables={k: v for k, v in spec.variables.items() if k != "arm.twist"})
    return spec.replace(samples=samples, parameters={"arm": arm, "task": task, "room": room},
                        objects={"obj": 2, "joint": JOINTS[arm]}, interventions={"regime": "observational"},
                        temporal_edits=(), video={"fps": 10, "frames": frames, "substeps": 24},
                        render={"size": 16, "views": 1, "engine": "tiny"})


def col(sim, name: str) -> np.ndarray:
    return sim.states[:, :, sim.state_names.index(name)]


def xyz(sim, prefix: str) -> np.ndarray:
    return np.stack([col(sim, f"{prefix}.{a}") for a in "xyz"], axis=-1)


def goal_of(batch) -> np.ndarray:
    return np.stack([batch.latents[f"goal.{a}"] for a in "xyz"], axis=-1)


@pytest.fixture(scope="module")
def kuka():
    with build_world(spec_for(2)) as w:
        yield w


# ------------------------------------------------------------------------------------------ IK


@pytest.mark.parametrize("arm", [0, 1, 2])
def test_ik_stays_within_joint_limits_and_reaches(arm):
    """Every arm, the Panda included: IK over the workspace (and beyond it) keeps every joint inside its
    URDF limits; 85 % of targets in the workspace (yaw within 0.8 rad) are reached within 1 cm."""
    with build_world(spec_for(0, arm=arm, frames=2)) as w:
        a = w._arm
        rng = np.random.default_rng(arm)
        targets = np.column_stack([rng.uniform(-0.1, 0.3, 40), rng.uniform(-0.3, 0.3, 40),
                                   rng.uniform(_rooms.TABLE_TOP + 0.03, _rooms.TABLE_TOP + 0.3, 40)])
        far = np.array([[0.9, 0.9, 0.2], [-0.9, 0.0, 2.0], [0.0, -1.2, 0.7]])  # out of reach: still within limits
        errors = []
        for k, target in enumerate(np.vstack([targets, far])):
            yaw = float(rng.uniform(-0.8, 0.8))
            a.reset(_ik.home(a), 1.0)
            q = _ik.solve(a, target, yaw)
            assert np.all(q >= a.lower) and np.all(q <= a.upper), f"{ARM_NAMES[arm]}: IK left the joint limits"
            if k < len(targets):
                for _ in range(3):  # iterate from the last solution, as the controller does frame by frame
                    a.reset(q, 1.0)
                    q = _ik.solve(a, target, yaw)
                    assert np.all(q >= a.lower) and np.all(q <= a.upper)
                a.reset(q, 1.0)
                errors.append(float(np.linalg.norm(a.tcp_pose()[0] - target)))
        assert np.median(errors) < 0.01 and np.mean(np.array(errors) < 0.01) >= 0.85, (ARM_NAMES[arm], np.round(errors, 3))


def test_models_describe_their_urdf(kuka):
    """The link names the segmentation ids use are the loaded URDF's (checked on build for every arm)."""
    for arm in (1, 2):
        with build_world(spec_for(0, arm=arm, frames=2)) as w:
            assert tuple(w._arm.link_names[j] for j in range(-1, w._arm.n_all)) == MODELS[ARM_NAMES[arm]].links


# ------------------------------------------------------------------------------------------ tasks


@pytest.mark.slow
@pytest.mark.parametrize("task", range(5), ids=list(_controllers.TASK_NAMES))
def test_each_task_succeeds_on_default_latents(task):
    """Four samples of each task from the catalogue's default (observational) latents reach their goal."""
    spec = spec_for(task, frames=80)
    batch = _batch(spec, 0, 4)
    with build_world(spec) as w:
        sim = w.simulate(batch)
    goal, ee, o0, o1 = goal_of(batch), xyz(sim, "ee"), xyz(sim, "obj[0]"), xyz(sim, "obj[1]")
    s0, s1 = batch.latents["obj[0].size"], batch.latents["obj[1].size"]
    top = _rooms.TABLE_TOP
    if task == 0:
        err = np.linalg.norm(ee[:, -1] - goal, axis=1)
        assert np.all(err < REACH_TOL), err
    elif task == 1:
        err = np.linalg.norm(o0[:, -1, :2] - goal[:, :2], axis=1)
        assert np.all(err < PUSH_TOL), err
        assert np.all(np.abs(o0[:, -1, 2] - (top + s0)) < 0.005)  # still on the table
    elif task == 2:
        err = np.linalg.norm(o0[:, -1, :2] - goal[:, :2], axis=1)
        assert np.all(err < PLACE_TOL), err
        assert np.all(np.abs(o0[:, -1, 2] - (top + s0)) < 0.005)
        assert np.all(o0[:, :, 2].max(axis=1) > top + s0 + 0.05)  # it was carried, not pushed there
    elif task == 3:
        err = np.linalg.norm(o0[:, -1, :2] - o1[:, -1, :2], axis=1)
        assert np.all(err < STACK_TOL), err
        assert np.all(np.abs(o0[:, -1, 2] - (o1[:, -1, 2] + s1 + s0)) < 0.006)
    else:
        press = np.column_stack([goal[:, :2], np.full(len(batch), top + _controllers.PRESS_HEIGHT)])
        err = np.linalg.norm(ee - press[:, None], axis=2).min(axis=1)
        assert np.all(err < PRESS_TOL), err
        assert np.all(np.isin(_controllers.PHASES.index("done"), sim.inputs[:, -1, -1]))
    phase = sim.inputs[:, -1, -1]
    assert np.all(phase == _controllers.PHASES.index("done") if task else phase == _controllers.PHASES.index("move"))


@pytest.mark.slow
def test_a_heavier_or_slippery_cube_slips_out_of_the_grasp(kuka):
    """Pick and place: the grasp holds at most 2 mu grip_force (the spec's grasp_hold). do(obj[0].mass) above
    what it holds, or do(obj[0].friction) low enough, and the cube slips: it ends far from the goal, having
    never been carried high; with the default latents it lands on the goal."""
    batch = _batch(kuka.spec, 0, 2)
    lat = {k: v.copy() for k, v in batch.latents.items()}
    lat["ctrl.grip_force"][:] = 10.0
    lat["obj[0].friction"][:] = 0.8
    lat["obj[0].mass"][:] = 0.3  # held: 2 * 0.8 * 10 = 16 N > 3 N
    heavy = {k: v.copy() for k, v in lat.items()}
    heavy["obj[0].mass"][:] = 2.5  # 25 N > 16 N
    slippery = {k: v.copy() for k, v in lat.items()}
    slippery["obj[0].friction"][:] = 0.1  # 2 N < 3 N
    runs = {name: kuka.simulate(WorldBatch(batch.index, l, batch.seeds, ())) for name, l in
            (("held", lat), ("heavy", heavy), ("slippery", slippery))}
    goal, top = goal_of(batch), _rooms.TABLE_TOP
    for name, sim in runs.items():
        o0 = xyz(sim, "obj[0]")
        err = np.linalg.norm(o0[:, -1, :2] - goal[:, :2], axis=1)
        lifted = o0[:, :, 2].max(axis=1) - (top + batch.latents["obj[0].size"])
        if name == "held":
            assert np.all(err < PLACE_TOL) and np.all(lifted > 0.05), (name, err, lifted)
        else:
            assert np.all(err > 0.1) and np.all(lifted < 0.05), (name, err, lifted)


@pytest.mark.slow
def test_lower_friction_lets_a_pushed_cube_slide_farther():
    """do(table.friction) low: a cube given the same push (an edit, vx += 0.6 m/s) slides farther (Coulomb
    sliding, distance v^2 / (2 mu g) with mu the product of both frictions)."""
    spec = spec_for(0, frames=20)
    batch = _batch(spec, 0, 1)
    push = BatchEdit("obj[1].vx", "add", np.array([2]), np.array([-1]), np.array([-0.6]))
    with build_world(spec) as w:
        slides = []
        for mu in (1.0, 0.3):
            lat = {k: v.copy() for k, v in batch.latents.items()}
            lat["table.friction"][:] = mu
            sim = w.simulate(WorldBatch(batch.index, lat, batch.seeds, (push,)))
            o1 = xyz(sim, "obj[1]")
            slides.append(float(np.linalg.norm(o1[0, -1, :2] - o1[0, 0, :2])))
    v, g = 0.6, 9.81
    mu_c = [1.0 * batch.latents["obj[1].friction"][0], 0.3 * batch.latents["obj[1].friction"][0]]
    assert slides[1] > 2 * slides[0]
    for s, m in zip(slides, mu_c):  # within a factor of two of the Coulomb law (a cube also tips and spins)
        assert 0.5 < s / (v * v / (2 * m * g)) < 2.0, (s, m)


# ------------------------------------------------------------------------------------------ determinism


def test_resimulation_reproduces_states_bitwise(kuka):
    """The same samples simulated again, alone, and after other samples: states and inputs bit for bit."""
    spec = kuka.spec.replace(video={"fps": 10, "frames": 25, "substeps": 24})
    batch = _batch(spec, 0, 3)
    with build_world(spec) as w:
        a = w.simulate(batch)
        b = w.simulate(batch.take(slice(2, 3)))
        c = w.simulate(batch)
    assert np.array_equal(a.states, c.states) and np.array_equal(a.inputs, c.inputs)
    assert np.array_equal(a.states[2:], b.states) and np.array_equal(a.inputs[2:], b.inputs)


@pytest.mark.parametrize("arm", [0, 2], ids=["kuka_iiwa", "franka_panda"])
def test_arm_twist_resolves_the_redundancy_and_the_task_still_succeeds(arm):
    """The same pick-and-place with arm.twist -0.8 and +0.8 rad: the upper arm's roll joint (joint[2]) and the
    forearm's (joint[4]) take other angles all clip long (the IK's null space follows the rest pose), the TCP
    follows the same commands and the cube lands on the goal both times. Without the latent the KUKA's joint[2]
    and joint[4] stayed within 3 degrees of 0, invisible at 64 px (docs/probe.md, tenth round)."""
    spec = spec_for(2, arm=arm, frames=70, samples=2)
    if arm == 2:  # the Panda's gripper opens 8 cm: cubes it can close around
        data = spec.to_dict()
        data["variables"]["obj[i].size"]["noise"] = "uniform(0.02, 0.03)"
        spec = type(spec).from_dict(data)
    batch = _batch(spec, 0, 2)
    runs = {}
    with build_world(spec) as w:
        for twist in (-0.8, 0.0, 0.8):
            lat = {**batch.latents, "arm.twist": np.full(2, twist)}
            runs[twist] = w.simulate(WorldBatch(batch.index, lat, batch.seeds, batch.edits))
    lo, hi = runs[-0.8], runs[0.8]
    for k in (2, 4):
        gap = np.abs(col(hi, f"joint[{k}].q") - col(lo, f"joint[{k}].q")).mean()
        assert gap > 0.2, (k, gap)
    assert np.abs(xyz(hi, "ee")[:, 0] - xyz(lo, "ee")[:, 0]).max() < 1e-3  # both start with the TCP at home
    assert np.abs(xyz(hi, "ee") - xyz(lo, "ee")).max() < 0.03  # and it follows the same path
    # the task's outcome is the untwisted arm's: these latents' first clip places the cube within 70 frames
    # (their second, slower one is still carrying it), twisted or not
    err = {t: np.linalg.norm(xyz(sim, "obj[0]")[:, -1, :2] - goal_of(batch)[:, :2], axis=1) for t, sim in runs.items()}
    assert err[0.0][0] < PLACE_TOL and err[-0.8][0] < PLACE_TOL and err[0.8][0] < PLACE_TOL, err
    assert np.allclose(err[-0.8], err[0.0], atol=0.01) and np.allclose(err[0.8], err[0.0], atol=0.01), err


def test_arm_twist_on_the_six_joint_xarm_is_refused():
    spec = load_spec("robotics/open_space").replace(parameters={"arm": 1, "task": 2, "room": 0}, objects={"obj": 2, "joint": 6})
    assert check_world(spec) == ["variables.arm.twist: the xarm6 has 6 joints and no redundancy for arm.twist to "
                                 "resolve; it needs a 7-joint arm (parameters.arm 0 kuka_iiwa or 2 franka_panda)"]
    with pytest.raises(ValueError, match="the xarm6 has 6 joints and no redundancy"):
        _ik.rest_pose(MODELS["xarm6"], 0.5)
    assert _ik.rest_pose(MODELS["kuka_iiwa"], 0.5)[2] == 0.5 and _ik.rest_pose(MODELS["xarm6"], 0.0).shape == (6,)


def test_a_new_client_changes_no_sample():
    """The world builds a new PyBullet client every REBUILD_EVERY sample set-ups (a removed cube's shapes stay in a
    client until it closes). Where a rebuild falls changes nothing: a world rebuilding every 2 set-ups renders a batch
    (states, inputs, colour, depth, segmentation) bit for bit like one that never rebuilds."""
    spec = spec_for(1, frames=12, samples=5)
    with build_world(spec) as never, build_world(spec) as often:
        never.REBUILD_EVERY, often.REBUILD_EVERY = 10 ** 9, 2
        first = often.client
        batch = _batch(spec, 0, 5, never)
        a, b = never.render(batch), often.render(batch)
        assert often.client is not first and never.client is not None
    assert a.outputs.keys() == b.outputs.keys()
    for name in a.outputs:
        np.testing.assert_array_equal(a.outputs[name], b.outputs[name], err_msg=name)
    np.testing.assert_array_equal(a.simulation.states, b.simulation.states)


@pytest.mark.slow
def test_memory_stays_flat_over_a_long_shard():
    """900 samples (feasibility and simulation, 2 cubes each) on one world: resident memory after the last 700 stays
    within 3 MB of what it was after the first 200. Without the client rebuild it grew ~16 MB per 1000 samples here
    (PyBullet keeps a removed cube's shapes), so this would have grown ~11 MB."""
    spec = spec_for(0, frames=2, samples=900).replace(video={"fps": 10, "frames": 2, "substeps": 2})
    with build_world(spec) as w:
        for a in range(0, 900, 100):
            w.simulate(_batch(spec, a, a + 100, w))
            if a + 100 == 200:
                warm = _rss_mb()
        growth = _rss_mb() - warm
    assert growth < 3.0, f"resident memory grew {growth:.1f} MB over 700 samples"


# ------------------------------------------------------------------------------------------ feasibility


def test_feasible_flags_interpenetrating_starts(kuka):
    """feasible() is False where two cubes overlap (and only there); cubes resting on the table are fine."""
    batch = _batch(kuka.spec, 0, 3)
    assert kuka.feasible(batch).tolist() == [True, True, True]
    lat = {k: v.copy() for k, v in batch.latents.items()}
    lat["obj[1].x0"][1] = lat["obj[0].x0"][1] + 0.5 * lat["obj[0].size"][1]  # cube 1 half inside cube 0
    lat["obj[1].y0"][1] = lat["obj[0].y0"][1]
    lat["obj[1].x0"][2] = lat["obj[0].x0"][2] + lat["obj[0].size"][2] + lat["obj[1].size"][2] + 0.002  # 2 mm apart
    lat["obj[1].y0"][2] = lat["obj[0].y0"][2]
    lat["obj[0].yaw0"] = np.zeros(3)
    lat["obj[1].yaw0"] = np.zeros(3)
    assert kuka.feasible(WorldBatch(batch.index, lat, batch.seeds, ())).tolist() == [True, False, True]


# ------------------------------------------------------------------------------------------ edits


@pytest.mark.parametrize("target,op,value", [("obj[1].vy", "add", 0.5), ("obj[0].mass", "scale", 20.0),
                                             ("goal.y", "set", -0.2)])
def test_edits_act_at_their_frame(kuka, target, op, value):
    """A push, a mass change and a goal change at frame f: states and inputs before f are the unedited run's
    bit for bit; from f on they differ (the goal at once in the inputs, the push at once in the states)."""
    spec = kuka.spec.replace(video={"fps": 10, "frames": 40, "substeps": 24})
    batch = _batch(spec, 0, 1)
    plain_batch = WorldBatch(batch.index, batch.latents, batch.seeds, ())
    f = 20 if target != "obj[0].mass" else 12
    edit = BatchEdit(target, op, np.array([f]), np.array([-1]), np.array([value]))
    with build_world(spec) as w:
        plain = w.simulate(plain_batch)
        edited = w.simulate(WorldBatch(batch.index, batch.latents, batch.seeds, (edit,)))
    assert np.array_equal(plain.states[:, :f], edited.states[:, :f])
    assert np.array_equal(plain.inputs[:, :f], edited.inputs[:, :f])
    assert not np.array_equal(plain.states[:, f:], edited.states[:, f:])
    if target == "goal.y":
        assert edited.inputs[0, f:, :3].tolist() != plain.inputs[0, f:, :3].tolist()
    if target == "obj[1].vy":
        assert not np.array_equal(plain.states[:, f], edited.states[:, f])


def test_edits_at_frame_0_act_at_frame_0():
    """An edit at frame 0 acts at frame 0 (reach, 6 frames): a push changes the velocity stored for frame 0, a goal
    change moves the marker filmed in frame 0 and the command from the first step; a counterfactual push at frame 0
    makes the partner differ from its factual sample from frame 0; a push at frame 3 leaves states[:3] unchanged."""
    spec = spec_for(0, frames=6, samples=4).replace(
        render={"size": 32, "views": 1, "engine": "tiny"},
        counterfactuals={"fraction": 0.5, "edit": {"at_frame": 0, "do": "obj[1].vy += 0.4"}})
    with build_world(spec) as w:
        batch = _batch(spec, 0, 4, w)
        push = batch.edits[0]
        one = WorldBatch(batch.index[:1], {k: v[:1] for k, v in batch.latents.items()}, batch.seeds[:1], ())
        plain = w.render(one)

        def edited(target, op, f, value):
            e = BatchEdit(target, op, np.array([f]), np.array([-1]), np.array([value]))
            return w.render(WorldBatch(one.index, one.latents, one.seeds, (e,)))

        kicked, late = edited("obj[1].vy", "add", 0, 0.4), edited("obj[1].vy", "add", 3, 0.4)
        moved = edited("goal.y", "set", 0, -0.2)
        pairs = w.simulate(batch)
    vy = plain.simulation.state_names.index("obj[1].vy")
    assert kicked.simulation.states[0, 0, vy] == plain.simulation.states[0, 0, vy] + 0.4
    assert not np.array_equal(moved.outputs["frames"][0, 0], plain.outputs["frames"][0, 0])  # the goal marker
    assert not np.array_equal(moved.simulation.inputs[0, 1], plain.simulation.inputs[0, 1])  # steers to it at once
    assert np.array_equal(late.simulation.states[:, :3], plain.simulation.states[:, :3])
    assert late.simulation.states[0, 3, vy] != plain.simulation.states[0, 3, vy]
    partners = np.flatnonzero(push.frame == 0)
    assert partners.size and np.all(push.frame[partners - 1] == -1)  # each partner follows its factual sample
    for j in partners:
        assert pairs.states[j, 0, vy] == pairs.states[j - 1, 0, vy] + 0.4


# ------------------------------------------------------------------------------------------ catalogue


@pytest.mark.parametrize("name", ["open_space", "living_room", "kitchen", "study_room"])
def test_room_specs_check_and_build(name):
    spec = load_spec(f"robotics/{name}")
    assert check_world(spec) == []
    small = spec.replace(samples=2, temporal_edits=(), video={"fps": 10, "frames": 3, "substeps": 24},
                         render={"size": 16, "views": 1})
    with build_world(small) as w:
        assert w.room_model.name == name
        sim = w.simulate(_batch(small, 0, 1))
        assert np.isfinite(sim.states).all()


def test_bad_parameters_are_refused():
    spec = load_spec("robotics/open_space")
    problems = check_world(spec.replace(parameters={**spec.parameters, "arm": 5}))
    assert problems and problems[0].startswith("parameters.arm:")
    problems = check_world(spec.replace(objects={"obj": 2, "joint": 6}))
    assert problems == ["objects.joint: the kuka_iiwa has 7 joints, the spec asks for 6"]
