"""robotics/buttons: the circuit law, planned presses landing, lamps following the circuit in every
frame, do(button[2].press) lighting lamp 3 through the graph, feasibility with reasons, the contract;
and ArmWorld.explain_infeasible (the cubes' overlap reason)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.pipeline._expressions import compile_expression
from crlgen.scenes import build_world, check_world
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.robotics import _buttons
from crlgen.scenes.testing import WorldContract, _batch

VIEWS = [{"name": "front", "azimuth": 90, "elevation": 28, "distance": 0.85},
         {"kind": "mounted", "name": "wrist", "mount": "ee", "position": [-0.1, 0.0, -0.1], "look_at": [0.1, 0.0, 0.12],
          "up": [0.0, 0.0, -1.0], "fov": 70}]


def small(samples: int = 6, frames: int = 80, size: int = 16, views=1):
    spec = load_spec("robotics/buttons_lights")
    return spec.replace(samples=samples, interventions={"regime": "observational"}, counterfactuals=None,
                        video={"fps": 10, "frames": frames, "substeps": 24},
                        render={"size": size, "views": views, "engine": "tiny"})


def columns(sim, prefix: str, field: str, n: int = 4) -> np.ndarray:
    return sim.states[:, :, [sim.state_names.index(f"{prefix}[{k}].{field}") for k in range(n)]]


@pytest.fixture(scope="module")
def world():
    with build_world(small()) as w:
        yield w


def test_circuit_law_is_the_specs():
    """lamps() is the circuit the catalogue spec states: its lamp[i].on mechanisms, compiled by the pipeline and
    evaluated lamp by lamp, give the world's lamps for all 16 button states."""
    spec = load_spec("robotics/buttons_lights")
    law = [compile_expression(spec.variables[f"lamp[{k}].on"].mechanism) for k in range(4)]
    for b in itertools.product((0.0, 1.0), repeat=4):
        env = {f"button[{j}].press": np.array([b[j]]) for j in range(4)}
        for k in range(4):
            env[f"lamp[{k}].on"] = (law[k](env) != 0).astype(np.float64)
        assert _buttons.lamps(np.array(b)).tolist() == [float(env[f"lamp[{k}].on"][0]) for k in range(4)], b


def test_planned_presses_land_and_lamps_follow_the_circuit_every_frame(world):
    """Default latents: every planned button ends latched on (and no other), the lamps equal the circuit of that frame's
    buttons in every frame, the end lamps equal the spec's lamp[i].on latents, and the world's checks pass."""
    batch = _batch(world.spec, 0, 6, world)
    sim = world.simulate(batch)
    b, lamp = columns(sim, "button", "state"), columns(sim, "lamp", "state")
    plan = np.stack([batch.latents[f"button[{j}].press"] for j in range(4)], axis=1)
    assert plan.sum() >= 3, "the sample draws too few presses to test anything"
    np.testing.assert_array_equal(b[:, -1], plan)
    np.testing.assert_array_equal(lamp, _buttons.lamps(b))
    np.testing.assert_array_equal(lamp[:, -1], np.stack([batch.latents[f"lamp[{k}].on"] for k in range(4)], axis=1))
    assert np.all(np.diff(b, axis=1) >= 0), "a latched button never releases"
    assert np.all(b[:, 0] == 0) and np.all(lamp[:, 0] == 0), "everything starts off"
    for check in world.checks:
        assert check.run(world, batch, sim) == [], check.name


def test_do_button_2_lights_lamp_3_through_the_graph(world):
    """With button 0 pressed (lamp 0, hence lamp 1, lit), do(button[2].press = 1) lights lamp 2 and, through
    lamp 3 = b3 or (l1 and l2), lamp 3; without button 0 the same intervention leaves lamp 3 dark. The press
    shows in the frame after it: lamp 3 is off in the frame before button 2 latches and lit from that frame on."""
    batch = _batch(world.spec, 0, 4, world)
    lat = {k: v.copy() for k, v in batch.latents.items()}
    lat["button[0].press"][:] = [1, 1, 0, 0]
    lat["button[1].press"][:] = 0
    lat["button[2].press"][:] = [0, 1, 0, 1]
    lat["button[3].press"][:] = 0
    for k in range(4):
        lat.pop(f"lamp[{k}].on")
    sim = world.simulate(WorldBatch(batch.index, lat, batch.seeds, ()))
    b, lamp = columns(sim, "button", "state"), columns(sim, "lamp", "state")
    assert lamp[:, -1, 3].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert lamp[:, -1, 2].tolist() == [0.0, 1.0, 0.0, 1.0]
    t = int(np.argmax(b[1, :, 2]))  # the frame button 2 latched in sample 1
    assert t > 0 and lamp[1, t - 1, 3] == 0.0 and np.all(lamp[1, t:, 3] == 1.0)
    # the arm moved differently: the intervention acts on the pixels' cause (the TCP path), not only on the labels
    assert not np.array_equal(sim.inputs[0], sim.inputs[1])


def test_overlapping_buttons_are_infeasible_with_a_reason(world):
    batch = _batch(world.spec, 0, 3, world)
    lat = {k: v.copy() for k, v in batch.latents.items()}
    lat["button[2].x"][1] = lat["button[1].x"][1] + 0.01
    lat["button[2].y"][1] = lat["button[1].y"][1] + 0.02
    lat["button[1].y"][1] = -0.01
    lat["button[2].y"][1] = 0.01
    bad = WorldBatch(batch.index, lat, batch.seeds, ())
    assert world.feasible(bad).tolist() == [True, False, True]
    reasons = world.explain_infeasible(bad)
    assert reasons[0] == reasons[2] == "" and reasons[1].startswith("button[1] and button[2] overlap by 0.0")


def test_arm_world_explains_interpenetrating_cubes():
    spec = load_spec("robotics/open_space").replace(samples=2, interventions={"regime": "observational"}, temporal_edits=(),
                                                    video={"fps": 10, "frames": 3, "substeps": 24},
                                                    render={"size": 16, "views": 1, "engine": "tiny"})
    with build_world(spec) as w:
        batch = _batch(spec, 0, 2)
        lat = {k: v.copy() for k, v in batch.latents.items()}
        lat["obj[1].x0"][1] = lat["obj[0].x0"][1]
        lat["obj[1].y0"][1] = lat["obj[0].y0"][1]
        reasons = w.explain_infeasible(WorldBatch(batch.index, lat, batch.seeds, ()))
        assert reasons[0] == "" and reasons[1].startswith("obj[0] and obj[1] interpenetrate by ")


def test_bad_button_specs_are_refused():
    spec = load_spec("robotics/buttons_lights")
    assert any(p.startswith("objects.lamp:") for p in check_world(spec.replace(objects={"button": 4, "lamp": 3, "joint": 7})))
    assert any(p.startswith("parameters.task:") for p in check_world(spec.replace(parameters={**spec.parameters, "task": 2})))


@pytest.mark.slow
class TestButtonsContract(WorldContract):
    spec = small(samples=6, frames=56, size=32, views=VIEWS)  # long enough for three presses: lamp[i].on are end states
    memory_samples = 24
    topdown_extent = 1.2
