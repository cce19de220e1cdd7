"""robotics/buttons: the circuit law is the spec's (the catalogue's CausalCircuit law, and another circuit
written in YAML with other counts and logic), planned presses landing, lamps following the circuit in every
frame, do(button[2].press) lighting lamp 3 through the graph, arm.twist moving the hidden joints, feasibility with reasons, specs the world
refuses, the contract; and ArmWorld.explain_infeasible (the cubes' overlap reason)."""

from __future__ import annotations

import itertools
import textwrap

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world, check_world
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.testing import WorldContract, _batch
from support.cli import run_cli

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


def causal_circuit(b: np.ndarray) -> np.ndarray:
    """CausalCircuit's four-lamp law (the catalogue's), written out: (..., 4) buttons -> (..., 4) lamps."""
    b = np.asarray(b) > 0.5
    l0 = b[..., 0]
    l1 = b[..., 1] | l0
    l2 = b[..., 2]
    l3 = b[..., 3] | (l1 & l2)
    return np.stack([l0, l1, l2, l3], axis=-1).astype(np.float64)


def other_circuit(b: np.ndarray) -> np.ndarray:
    """The law OTHER_CIRCUIT states, written out: (..., 3) buttons -> (..., 5) lamps."""
    b = np.asarray(b) > 0.5
    l0 = b[..., 0] & ~b[..., 1]
    l1 = b[..., 2]
    l2 = l0 | l1
    l3 = ~l2
    l4 = b[..., 1] != b[..., 2]
    return np.stack([l0, l1, l2, l3, l4], axis=-1).astype(np.float64)


#: A user's circuit in YAML: three buttons, five lamps, other logic (and, not, xor, a lamp lit with no button).
OTHER_CIRCUIT = textwrap.dedent("""\
    name: other_circuit
    world: robotics/buttons
    objects: {button: 3, lamp: 5, joint: 7}
    parameters: {arm: 0, room: 0}
    variables:
      floor.hue:       {range: [0, 1], period: 1, noise: "uniform(0, 1)"}
      table.hue:       {range: [0, 1], period: 1, noise: "uniform(0, 1)"}
      ctrl.kp:         {range: [0.05, 0.5], noise: "uniform(0.1, 0.25)"}
      ctrl.speed:      {range: [0.1, 0.6], noise: "uniform(0.3, 0.45)"}
      ctrl.max_qd:     {range: [0.3, 3.0], mechanism: "0.5 + 3 * ctrl.speed + eps", noise: "uniform(-0.1, 0.1)"}
      ctrl.height:     {range: [0.04, 0.2], noise: "uniform(0.05, 0.1)"}
      button[i].x:     {range: [-0.05, 0.25], noise: "uniform(0.0, 0.2)"}
      button[0].y:     {range: [-0.32, -0.15], noise: "uniform(-0.3, -0.2)"}
      button[1].y:     {range: [-0.06, 0.06], noise: "uniform(-0.05, 0.05)"}
      button[2].y:     {range: [0.15, 0.32], noise: "uniform(0.2, 0.3)"}
      button[i].press: {type: boolean, noise: "bernoulli(0.5)"}
      lamp[i].hue:     {range: [0, 1], period: 1, noise: "uniform(0, 1)"}
      lamp[0].on:      {type: boolean, mechanism: "button[0].press and not button[1].press"}
      lamp[1].on:      {type: boolean, mechanism: "button[2].press"}
      lamp[2].on:      {type: boolean, mechanism: "lamp[0].on or lamp[1].on"}
      lamp[3].on:      {type: boolean, mechanism: "not lamp[2].on"}
      lamp[4].on:      {type: boolean, mechanism: "button[1].press != button[2].press"}
      joint[i].q:      {time_varying: true}
      button[i].state: {time_varying: true}
      lamp[i].state:   {time_varying: true}
    interventions: {regime: observational}
    video: {fps: 10, frames: 80, substeps: 24}
    render:
      size: 48
      engine: tiny
      views: [{name: front, azimuth: 90, elevation: 28, distance: 0.85}]
    samples: 8
    """)


def test_the_catalogue_circuit_is_causal_circuits(world):
    """The world's law is the catalogue spec's lamp[i].on mechanisms, and those state CausalCircuit's circuit: for all
    16 button states the compiled law equals the law written out here."""
    b = np.array(list(itertools.product((0.0, 1.0), repeat=4)))
    np.testing.assert_array_equal(world.circuit(b, {}), causal_circuit(b))


def test_a_circuit_written_in_yaml_drives_the_lamps_in_every_frame(tmp_path):
    """Another circuit (3 buttons, 5 lamps, and / not / xor, a lamp lit before any press) written in YAML runs: in every
    frame of every sample the lamp states equal the spec's equations on that frame's button states, each planned press
    lands, the end lamps equal the sampler's lamp[i].on latents, the world's checks pass, and the film shows each
    lamp brighter in the frames it is lit than in those it is dark."""
    path = tmp_path / "other_circuit.yaml"
    path.write_text(OTHER_CIRCUIT)
    spec = load_spec(str(path))
    assert check_world(spec) == []
    with build_world(spec) as w:
        assert (w.n_buttons, w.n_lamps) == (3, 5)
        batch = _batch(spec, 0, 8, w)
        lat = {k: v.copy() for k, v in batch.latents.items()}
        plans = [(0, 0, 0), (1, 0, 0), (1, 1, 0), (0, 0, 1), (0, 1, 1), (1, 0, 1), (1, 1, 1), (0, 1, 0)]
        for j in range(3):
            lat[f"button[{j}].press"] = np.array([float(p[j]) for p in plans])
        for k in range(5):  # the end states the sampler would give these plans (the spec's law, evaluated by it)
            lat[f"lamp[{k}].on"] = other_circuit(np.array(plans, dtype=float))[:, k]
        batch = WorldBatch(batch.index, lat, batch.seeds, ())
        out = w.render(batch)
        sim = out.simulation
        b, lamp = columns(sim, "button", "state", 3), columns(sim, "lamp", "state", 5)
        np.testing.assert_array_equal(b[:, -1], np.array(plans, dtype=float))
        np.testing.assert_array_equal(lamp, other_circuit(b))
        assert np.all(lamp[:, 0] == [0, 0, 0, 1, 0]), "before any press only lamp 3 (not lamp 2) is lit"
        assert (np.diff(lamp, axis=1) != 0).any(axis=(0, 1)).all(), "every lamp switches in some video"
        for check in w.checks:
            assert check.run(w, batch, sim) == [], check.name
        ids = {name: i for i, name in type(w)._segmentation_ids(spec, 0).items()}
        seg, rgb = out.outputs["segmentation"][:, :, 0], out.outputs["frames"][:, :, 0].astype(float).sum(axis=-1)
        for k in range(5):
            mask = seg == ids[f"lamp[{k}]"]
            lit = [rgb[i, t][mask[i, t]].mean() for i in range(8) for t in range(80) if lamp[i, t, k] == 1 and mask[i, t].any()]
            dark = [rgb[i, t][mask[i, t]].mean() for i in range(8) for t in range(80) if lamp[i, t, k] == 0 and mask[i, t].any()]
            assert lit and dark and min(lit) > max(dark), f"lamp {k}"


def test_planned_presses_land_and_lamps_follow_the_circuit_every_frame(world):
    """Default latents: every planned button ends latched on (and no other), the lamps equal the circuit of that frame's
    buttons in every frame, the end lamps equal the spec's lamp[i].on latents, and the world's checks pass."""
    batch = _batch(world.spec, 0, 6, world)
    sim = world.simulate(batch)
    b, lamp = columns(sim, "button", "state"), columns(sim, "lamp", "state")
    plan = np.stack([batch.latents[f"button[{j}].press"] for j in range(4)], axis=1)
    assert plan.sum() >= 3, "the sample draws too few presses to test anything"
    np.testing.assert_array_equal(b[:, -1], plan)
    np.testing.assert_array_equal(lamp, causal_circuit(b))
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


def test_arm_twist_moves_the_hidden_joints_and_every_press_still_lands(world):
    """arm.twist at the world's limits (+-1.5 rad): the upper arm's and the forearm's roll joints (joint[2],
    joint[4]) take other angles all clip long, the TCP follows the same path, every planned press lands, the lamps
    follow the circuit and the world's checks pass. Without the latent the KUKA's joint[2] and joint[4] spread
    0.014 and 0.018 rad over 24 clips, invisible at 64 px (docs/probe.md, thirteenth round)."""
    from crlgen.scenes.robotics.buttons import RANGES

    batch = _batch(world.spec, 0, 4, world)
    plan = np.stack([batch.latents[f"button[{j}].press"] for j in range(4)], axis=1)
    assert plan.sum() >= 3, "the sample draws too few presses to test anything"
    runs = {}
    for twist in (*RANGES["arm.twist"], 0.0):
        lat = {**batch.latents, "arm.twist": np.full(4, twist)}
        twisted = WorldBatch(batch.index, lat, batch.seeds, ())
        sim = runs[twist] = world.simulate(twisted)
        b = columns(sim, "button", "state")
        np.testing.assert_array_equal(b[:, -1], plan)
        np.testing.assert_array_equal(columns(sim, "lamp", "state"), causal_circuit(b))
        for check in world.checks:
            assert check.run(world, twisted, sim) == [], (twist, check.name)
    lo, hi = runs[RANGES["arm.twist"][0]], runs[RANGES["arm.twist"][1]]
    for k in (2, 4):
        gap = np.abs(columns(hi, "joint", "q", 7)[..., k] - columns(lo, "joint", "q", 7)[..., k]).mean()
        assert gap > 0.2, (k, gap)
    ee = [np.stack([sim.states[:, :, sim.state_names.index(f"ee.{a}")] for a in "xyz"], axis=-1) for sim in (lo, hi)]
    assert np.abs(ee[0] - ee[1]).max() < 0.03


def test_arm_twist_on_the_xarm_is_refused_for_buttons_too():
    spec = load_spec("robotics/buttons_lights").replace(parameters={"arm": 1, "room": 0},
                                                        objects={"button": 4, "lamp": 4, "joint": 6})
    assert check_world(spec) == ["variables.arm.twist: the xarm6 has 6 joints and no redundancy for arm.twist to "
                                 "resolve; it needs a 7-joint arm (parameters.arm 0 kuka_iiwa or 2 franka_panda)"]


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


def worst_case(frames: int) -> "DatasetSpec":
    """The catalogue scene drawn near its slowest press plan: all four buttons pressed at ctrl.speed 0.3 m/s and
    ctrl.height 0.1 m, the buttons within 1 cm of the corners that make the arm's path longest."""
    spec = small(samples=2, frames=frames)
    v = {**spec.variables, "button[i].press": {"type": "boolean", "noise": "bernoulli(1.0)"},
         "ctrl.speed": {"range": [0.1, 0.6], "noise": "uniform(0.3, 0.31)"},
         "ctrl.height": {"range": [0.04, 0.2], "noise": "uniform(0.095, 0.1)"}}
    for j, (x, y) in enumerate([(0.0, -0.3), (0.2, -0.02), (0.0, 0.02), (0.2, 0.3)]):
        v[f"button[{j}].x"] = {"range": [-0.05, 0.25], "noise": f"uniform({x}, {x + 0.01})"}
        v[f"button[{j}].y"] = {"range": [-0.32, 0.32], "noise": f"uniform({y - 0.005}, {y + 0.005})"}
    return spec.replace(variables=v)


def test_a_clip_too_short_for_the_press_plan_is_refused_and_the_shortest_allowed_one_lands_every_press(tmp_path, capsys):
    """The tester's 10- and 40-frame clips rendered and stored lamp[i].on the lamps never showed. A clip shorter than
    the press plan's worst case (every button, the longest path, the slowest speed) is refused by `crlgen check`
    with one line naming video.frames and the least number of frames; at that number every press lands and the
    circuit check passes. The world's own video example passes."""
    msg = check_world(worst_case(10))
    assert len(msg) == 1 and msg[0].startswith("video.frames: robotics/buttons needs at least "), msg
    need = int(msg[0].split("needs at least ")[1].split()[0])
    assert 70 < need < 100 and msg[0].endswith(", got 10")
    path = tmp_path / "short.yaml"
    worst_case(need - 1).dump(path)
    code, out, err = run_cli(capsys, "check", str(path))
    assert code == 2 and not out
    err = err.strip().splitlines()
    assert err == [f"error: {check_world(worst_case(need - 1))[0]}"] and err[0].endswith(f", got {need - 1}")
    spec = worst_case(need)
    assert check_world(spec) == []
    with build_world(spec) as w:
        batch = _batch(spec, 0, 2, w)
        assert all(np.all(batch.latents[f"button[{j}].press"] == 1) for j in range(4))
        out = w.render(batch)
        sim = out.simulation
        np.testing.assert_array_equal(columns(sim, "button", "state")[:, -1], np.ones((2, 4)))
        for check in w.checks:
            assert check.run(w, batch, sim) == [], check.name
    fps, frames = (float(x.split(":")[1]) for x in type(w).VIDEO_EXAMPLE.strip("{}").split(",")[:2])
    assert check_world(load_spec("robotics/buttons_lights").replace(video={"fps": fps, "frames": int(frames)})) == []


def test_bad_button_specs_are_refused():
    """Each problem names its field: more lamps than the panel holds, a lamp without its lamp[i].on, a noisy lamp law, an intervention on a
    lamp (they follow the buttons), a task other than press."""
    spec = load_spec("robotics/buttons_lights").replace(video={"fps": 10, "frames": 120, "substeps": 24})
    assert check_world(spec) == []

    def problems(**changes) -> list[str]:
        return check_world(spec.replace(**changes))

    assert any(p.startswith("objects.lamp:") for p in problems(objects={"button": 4, "lamp": 7, "joint": 7}))
    assert any(p.startswith("variables.lamp[4].on:") for p in problems(objects={"button": 4, "lamp": 5, "joint": 7}))
    noisy = {**spec.variables, "lamp[2].on": {"type": "boolean", "mechanism": "button[2].press or eps",
                                              "noise": "bernoulli(0.1)"}}
    assert any(p.startswith("variables.lamp[2].on:") and "eps" in p for p in problems(variables=noisy))
    assert any(p.startswith("interventions.targets.lamp[1].on:") for p in problems(
        interventions={"regime": "single_node", "fraction": 0.3, "targets": {"lamp[1].on": "do(1)"}}))
    assert any(p.startswith("parameters.task:") for p in problems(parameters={**spec.parameters, "task": 2}))


@pytest.mark.slow
class TestButtonsContract(WorldContract):
    spec = small(samples=6, frames=80, size=32, views=VIEWS)  # long enough for every press: lamp[i].on are end states
    memory_samples = 24
    topdown_extent = 1.2
