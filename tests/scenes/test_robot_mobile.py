"""robotics/mobile: the Husky pushes the box onto the goal on default latents; a heavier box (and weaker wheels) is
pushed less far; re-simulation is bitwise; feasibility with reasons; edits act at their frame; the contract."""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world, check_world
from crlgen.scenes.base import BatchEdit, WorldBatch
from crlgen.scenes.robotics import _mobile
from crlgen.scenes.testing import WorldContract, _batch

#: Success: the box's centre ends within 0.15 m of the goal's, inside the goal disc (radius 0.2 m); the boxes are
#: 0.28-0.4 m wide, so this is the Fetch push threshold (5 cm for 5 cm cubes, Plappert et al. 2018) scaled to them.
PUSH_TOL = 0.15
VIEWS = [{"name": "front", "azimuth": -90, "elevation": 35, "distance": 1.0},
         {"kind": "mounted", "name": "onboard", "mount": "robot", "position": [0.3, 0.0, 0.75], "look_at": [1.5, 0.0, 0.1],
          "up": [0.0, 0.0, 1.0], "fov": 75}]


def small(samples: int = 6, frames: int = 90, size: int = 16, views=1, edits=()):
    spec = load_spec("robotics/mobile")
    return spec.replace(samples=samples, interventions={"regime": "observational"}, temporal_edits=edits,
                        video={"fps": 10, "frames": frames, "substeps": 24},
                        render={"size": size, "views": views, "engine": "tiny"})


def box_xy(sim) -> np.ndarray:
    return np.stack([sim.states[:, :, sim.state_names.index(f"obj[0].{a}")] for a in "xy"], axis=-1)


def goal_of(lat) -> np.ndarray:
    return np.stack([lat["goal.x"], lat["goal.y"]], axis=-1)


@pytest.fixture(scope="module")
def world():
    with build_world(small()) as w:
        yield w


def test_push_succeeds_on_default_latents(world):
    """Six default-latent samples: the box (starting 0.7-1.6 m from the goal) ends within PUSH_TOL of it, the
    controller walks approach -> align -> push -> retreat, and the world's checks pass."""
    batch = _batch(world.spec, 0, 6, world)
    sim = world.simulate(batch)
    box, goal = box_xy(sim), goal_of(batch.latents)
    start, end = np.linalg.norm(box[:, 0] - goal, axis=-1), np.linalg.norm(box[:, -1] - goal, axis=-1)
    assert np.all(start > 0.5), start
    assert np.all(end < PUSH_TOL), np.round(end, 3)
    phases = sim.inputs[:, :, 2]
    assert np.all((phases == _mobile.PHASES.index("retreat")).any(axis=1)), "every push ends"
    for check in world.checks:
        assert check.run(world, batch, sim) == [], check.name


def test_a_heavier_box_or_weaker_wheels_push_less_far(world):
    """do(obj[0].mass = 100 kg): Coulomb friction 100 * 9.81 * 0.5 mu_box ~ 200 N at the floor, as much as the
    Husky's wheels grip (49 kg on mu 0.5): the box ends farther from the goal than the default one in every sample,
    and is moved less far on average. do(ctrl.torque = 3 N m): the same with weak motors."""
    batch = _batch(world.spec, 0, 4, world)
    base = world.simulate(batch)
    goal = goal_of(batch.latents)
    d0 = np.linalg.norm(box_xy(base)[:, -1] - goal, axis=-1)
    moved0 = np.linalg.norm(box_xy(base)[:, -1] - box_xy(base)[:, 0], axis=-1)
    for name, value in (("obj[0].mass", 100.0), ("ctrl.torque", 3.0)):
        lat = {k: v.copy() for k, v in batch.latents.items()}
        lat[name][:] = value
        sim = world.simulate(WorldBatch(batch.index, lat, batch.seeds, ()))
        d = np.linalg.norm(box_xy(sim)[:, -1] - goal, axis=-1)
        moved = np.linalg.norm(box_xy(sim)[:, -1] - box_xy(sim)[:, 0], axis=-1)
        assert np.all(d > d0) and np.all(d > PUSH_TOL), (name, np.round(d, 3), np.round(d0, 3))
        assert moved.mean() < 0.8 * moved0.mean(), (name, moved, moved0)


def test_resimulation_is_bitwise(world):
    spec = world.spec.replace(video={"fps": 10, "frames": 30, "substeps": 24})
    with build_world(spec) as w:
        batch = _batch(spec, 0, 3, w)
        a = w.simulate(batch)
        alone = w.simulate(WorldBatch(batch.index[1:2], {k: v[1:2] for k, v in batch.latents.items()}, batch.seeds[1:2], ()))
        b = w.simulate(batch)
    assert np.array_equal(a.states, b.states) and np.array_equal(a.inputs, b.inputs)
    assert np.array_equal(a.states[1:2], alone.states)


def test_feasible_flags_overlapping_starts_with_a_reason(world):
    batch = _batch(world.spec, 0, 3, world)
    lat = {k: v.copy() for k, v in batch.latents.items()}
    lat["obj[0].x0"][1] = lat["robot.x0"][1] + 0.1  # the box inside the robot
    lat["obj[0].y0"][1] = lat["robot.y0"][1]
    lat["obj[0].x0"][2] = lat["goal.x"][2]  # the box on the goal already
    lat["obj[0].y0"][2] = lat["goal.y"][2]
    lat["goal.x"][2] = min(lat["goal.x"][2], 0.3)
    lat["obj[0].x0"][2] = lat["goal.x"][2] + 0.05
    b = WorldBatch(batch.index, lat, batch.seeds, ())
    assert world.feasible(b).tolist() == [True, False, False]
    reasons = world.explain_infeasible(b)
    assert reasons[0] == ""
    assert reasons[1].startswith("obj[0] and the robot interpenetrate by ")
    assert reasons[2].startswith("obj[0] starts on the goal")


@pytest.mark.parametrize("target, op, value", [("obj[0].mass", "scale", 20.0), ("goal.y", "set", 0.9), ("obj[0].vy", "add", 1.0)])
def test_edits_act_at_their_frame(world, target, op, value):
    spec = world.spec.replace(video={"fps": 10, "frames": 60, "substeps": 24})
    f = 40
    with build_world(spec) as w:
        batch = _batch(spec, 0, 2, w)
        plain = w.simulate(batch)
        edit = BatchEdit(target, op, np.full(2, f), np.full(2, -1), np.full(2, float(value)))
        edited = w.simulate(WorldBatch(batch.index, batch.latents, batch.seeds, (edit,)))
    assert np.array_equal(plain.states[:, :f], edited.states[:, :f])
    assert np.array_equal(plain.inputs[:, :f], edited.inputs[:, :f])
    assert not np.array_equal(plain.states[:, f:], edited.states[:, f:])


def test_bad_specs_are_refused():
    spec = load_spec("robotics/mobile")
    assert any(p.startswith("parameters.room:") for p in check_world(spec.replace(parameters={"room": 9})))
    assert any(p.startswith("objects.wheel:") for p in check_world(spec.replace(objects={"obj": 2, "wheel": 3})))


@pytest.mark.slow
class TestMobileContract(WorldContract):
    spec = small(samples=6, frames=30, size=32, views=VIEWS, edits=({"at_frame": 12, "do": "goal.y = 0.0", "fraction": 0.5},))
    invisible = {
        "obj[1].mass": "obj[1] stands by: nothing touches it",
        "obj[1].friction": "obj[1] stands by: nothing touches it",
    }
    memory_samples = 24
    topdown_extent = 5.0
