"""``check_world``'s one-line problems for edits and presence flags (scenes/registry.py).

An edit of a state (a velocity kick) is bounded by the world's ``edit_ranges`` (for a robot's kick, at the spec's own
simulation step); an explicitly indexed edit,
mount or do-target on an object an intervention can remove names that intervention (the flag's mechanism is
fine); a templated edit target is told to name one object; a video world's spec without ``video`` is shown the
world's own example.
"""

from __future__ import annotations

import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import check_world
from crlgen.scenes.registry import world_class, world_info
from crlgen.schemas import DatasetSpec


def _spec(name: str, **changes) -> dict:
    data = load_spec(name).to_dict()
    data.update(changes)
    return data


def _problems(data: dict) -> list[str]:
    return check_world(DatasetSpec.from_dict(data))


# ----- state edits have a range ------------------------------------------------------------------------------
@pytest.mark.parametrize("name,do,line", [
    # the tester's os_vy: a 100 m/s kick tunnelled the cube through the table (y = 69 m)
    ("robotics/open_space", "obj[0].vy += 100",
     "the edit can change obj[0].vy by 100, outside world robotics/arm's valid range [-2.88, 2.88] for an edit of it"),
    ("robotics/open_space", "obj[0].vz = -5",
     "the edit can make obj[0].vz -5, outside world robotics/arm's valid range [-2.88, 2.88] for an edit of it"),
    ("robotics/open_space", "obj[0].vx *= 3",
     "the edit can make obj[0].vx values in [-8.64, 8.64] (a value in [-2.88, 2.88] scaled), outside"),
    ("robotics/mobile", "obj[0].vx += uniform(0, 40)",
     "the edit can change obj[0].vx by values in [0, 40], outside world robotics/mobile's valid range [-19.2, 19.2]"),
    ("physics/collision_simple", "obj[1].vy -= 31",
     "the edit can change obj[1].vy by -31, outside world physics/collision's valid range [-30, 30]"),
    ("traffic/grid_town", "light[0].state = 3",
     "the edit can make light[0].state 3, outside world traffic/embedded's valid range [0, 2]"),
])
def test_check_refuses_a_state_edit_beyond_the_world_s_range(name, do, line):
    data = _spec(name, temporal_edits=[{"at_frame": 3, "do": do}], counterfactuals=None)
    problems = _problems(data)
    assert problems and problems[0].startswith(f"temporal_edits[0].do: {line}"), problems
    assert len(problems) == 1 and "\n" not in problems[0]


@pytest.mark.parametrize("name,do", [
    ("robotics/open_space", "obj[0].vy += 0.4"), ("robotics/open_space", "obj[0].vx *= 0.5"),
    ("robotics/mobile", "obj[0].vy += 1.0"), ("physics/collision_simple", "obj[1].vy += 0.8"),
    ("traffic/grid_town", "light[0].state = 2"),
])
def test_check_accepts_a_state_edit_inside_the_world_s_range(name, do):
    assert _problems(_spec(name, temporal_edits=[{"at_frame": 3, "do": do}], counterfactuals=None)) == []


@pytest.mark.parametrize("name,video,do,line", [
    # 6 substeps at 10 fps: a 1/60 s step, in which 1 m/s carries a cube 17 mm, past the smallest half side (12 mm)
    ("robotics/open_space", {"fps": 10, "frames": 70, "substeps": 6}, "obj[0].vy += 1",
     "the edit can change obj[0].vy by 1, outside world robotics/arm's valid range [-0.72, 0.72] for an edit of it (a kick "
     "may move a body at most 0.012 m, the smallest half side, per simulation step of 1/60 s (video.fps x video.substeps))"),
    ("robotics/mobile", {"fps": 5, "frames": 45, "substeps": 24}, "obj[0].vx = 12",
     "the edit can make obj[0].vx 12, outside world robotics/mobile's valid range [-9.6, 9.6] for an edit of it (a kick"),
])
def test_a_velocity_edit_is_bounded_at_the_spec_s_own_simulation_step(name, video, do, line):
    data = _spec(name, temporal_edits=[{"at_frame": 3, "do": do}], counterfactuals=None)
    assert _problems(data) == [], "the catalogue's 1/240 s step follows this kick"
    problems = _problems({**data, "video": video})
    assert len(problems) == 1 and problems[0].startswith(f"temporal_edits[0].do: {line}"), problems


def test_a_finer_step_follows_a_larger_kick():
    data = _spec("robotics/open_space", temporal_edits=[{"at_frame": 3, "do": "obj[0].vy += 4"}], counterfactuals=None)
    assert _problems(data)[0].startswith("temporal_edits[0].do: the edit can change obj[0].vy by 4, outside")
    assert _problems({**data, "video": {"fps": 10, "frames": 70, "substeps": 48}}) == []  # 1/480 s: up to 5.76 m/s


@pytest.mark.parametrize("name", ["robotics/arm", "robotics/mobile", "physics/falling", "physics/collision",
                                  "physics/projectile", "traffic/embedded"])
def test_every_state_edit_target_has_a_range(name):
    info = world_info(name)
    states = [t for t in info.edit_targets if t in info.states]
    assert states and all(t in info.edit_ranges for t in states), (states, dict(info.edit_ranges))


def test_a_counterfactual_edit_is_bounded_too():
    data = _spec("physics/falling_simple", counterfactuals={"fraction": 0.1, "edit": {"at_frame": 10, "do": "obj[0].vx += 50"}})
    assert _problems(data) == ["counterfactuals.edit.do: the edit can change obj[0].vx by 50, outside world "
                               "physics/falling's valid range [-30, 30] for an edit of it"]


# ----- presence flags an intervention can clear --------------------------------------------------------------
def _grid(**changes) -> dict:
    return _spec("traffic/grid_town", **{"counterfactuals": None, "temporal_edits": [], **changes})


@pytest.mark.parametrize("key", ["vehicle[0].present", "vehicle[i].present"])
def test_a_mount_on_a_car_an_intervention_removes_names_the_intervention(key):
    # the tester's ti_present0 / ti_shiftpresent: grid_town's dashcam rides vehicle[0], whose mechanism is "1"
    data = _grid(interventions={"regime": "single_node", "fraction": 0.5, "targets": {key: "do(0)"}})
    assert _problems(data) == [
        f"render.views[1].mount: a camera mount (vehicle[0]) needs vehicle[0] present in every sample, but the "
        f"intervention interventions.targets.{key} can make vehicle[0].present other than 1 (vehicle[0] absent); "
        f"drop it or let it set vehicle[0].present only to 1"]


def test_an_edit_on_a_pedestrian_an_intervention_removes_names_the_intervention():
    # the tester's ti_pe, with pedestrian[0] made always present by its mechanism
    data = _grid(interventions={"regime": "sets", "fraction": 0.5, "sets": [{"targets": {"pedestrian[0].present": "do(0)"}}]},
                 temporal_edits=[{"at_frame": 3, "do": "pedestrian[0].walking = 1"}])
    data["variables"]["pedestrian[0].present"] = {"type": "boolean", "mechanism": "1"}
    problems = _problems(data)
    assert problems == [
        "temporal_edits[0].target: an edit target (pedestrian[0].walking) needs pedestrian[0] present in every sample, "
        "but the intervention interventions.sets[0].targets.pedestrian[0].present can make pedestrian[0].present other "
        "than 1 (pedestrian[0] absent); drop it or let it set pedestrian[0].present only to 1"], problems


def test_a_do_target_on_a_car_a_counterfactual_removes_names_the_counterfactual():
    data = _grid(interventions={"regime": "single_node", "fraction": 0.3, "targets": {"vehicle[0].reaction_time": "do(1.5)"}},
                 counterfactuals={"fraction": 0.1, "intervention": {"vehicle[0].present": "do(0)"}})
    problems = _problems(data)
    cause = "but the counterfactual intervention counterfactuals.intervention.vehicle[0].present can make"
    assert [p.split(":", 1)[0] for p in problems] == ["interventions.targets.vehicle[0].reaction_time",
                                                      "render.views[1].mount"], problems  # grid_town's dashcam too
    assert all(cause in p for p in problems), problems
    assert problems[0].startswith("interventions.targets.vehicle[0].reaction_time: a do-target (vehicle[0].reaction_time) "
                                  "needs vehicle[0] present in every sample")
    assert problems[0].endswith("or use the template vehicle[i].reaction_time (applied to present objects only)")


def test_a_mount_on_a_car_a_domain_removes_names_the_domain_override():
    data = _grid(domains={"empty": {"overrides": {"vehicle[0].present": "0"}}})
    problems = _problems(data)
    assert any(p.startswith("render.views[1].mount: a camera mount (vehicle[0]) needs vehicle[0] present in every "
                            "sample, but the domain override domains.empty.overrides.vehicle[0].present can make")
               for p in problems), problems


def test_a_flag_whose_mechanism_is_not_1_still_gets_the_mechanism_advice():
    data = _grid(temporal_edits=[{"at_frame": 3, "do": "pedestrian[1].walking = 1"}])
    assert _problems(data) == ["temporal_edits[0].target: pedestrian[1].walking is an edit target on pedestrian[1], "
                               "which is absent where pedestrian[1].present is 0 (it is not constant 1); give "
                               "pedestrian[1].present the mechanism \"1\""]


# ----- templated edit targets ----------------------------------------------------------------------------------
def test_a_templated_edit_target_is_told_to_name_one_object():
    # the tester's gt_edit as first written
    data = _grid()
    data["temporal_edits"] = [{"at_frame": 3, "do": "vehicle[i].desired_speed = 5"}]
    assert _problems(data) == ["temporal_edits[0].target: an edit acts on one object, not on the template "
                               "vehicle[i].desired_speed; name the object's index, e.g. vehicle[0].desired_speed "
                               "(one of vehicle[0] .. vehicle[7])"]
    data["temporal_edits"] = [{"at_frame": 3, "do": "vehicle[0].desired_speed = 5"}]
    assert _problems(data) == []


def test_an_unknown_edit_target_explains_the_index():
    data = _grid()
    data["temporal_edits"] = [{"at_frame": 3, "do": "vehicle[0].hue = 0.5"}]
    problems = _problems(data)
    assert problems == ["temporal_edits[0].target: traffic/embedded cannot edit 'vehicle[0].hue'; expected one of "
                        "light[i].state, pedestrian[i].walking, vehicle[i].desired_speed, vehicle[i].time_headway, with i "
                        "the index of one object the spec has (light[i].state -> light[0].state)"], problems


# ----- a video world's example ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name,world", [("robotics/open_space", "robotics/arm"), ("robotics/mobile", "robotics/mobile"),
                                        ("physics/falling_simple", "physics/falling")])
def test_a_spec_without_video_is_shown_the_world_s_own_example(name, world):
    data = _spec(name, video=None, temporal_edits=[], counterfactuals=None)
    example = getattr(world_class(world), "VIDEO_EXAMPLE", "{fps: 30, frames: 60}")
    problems = _problems(data)
    assert f"video: world {world} renders videos; add `video: {example}`" in problems, problems
    if world.startswith("robotics/"):
        assert "fps: 30" not in example
