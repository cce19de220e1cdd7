"""The dynamics check's rule for temporal edits: an edit that cannot act (it sets a state to the value the state
holds anyway, e.g. a forced red on a light that is red for the whole clip, or a step-out of a pedestrian already
crossing) is counted as a no-op, not a failure; an edit that should act and leaves every state unchanged is still
a problem. An edit counts as having acted when the states or the pixels change: a moved goal disc shows in the pixels
alone, and a global latent's edit that the clip gives no chance to act (a resting cube made heavier) is listed in
``edits_without_effect``, not a failure. Absent agents' NaN states re-simulate equal (NaN compares equal to NaN)."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from crlgen.pipeline import load_spec
from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._urls import resolve
from crlgen.pipeline._validate import _no_op
from crlgen.scenes.base import BatchEdit, WorldBatch
from crlgen.scenes.traffic.world import TrafficWorld
from support.stores import check_by_name

NAMES = ("light[0].state", "light[1].state")


def _edit(value: float, frame: int = 2, end: int = -1, op: str = "set", target: str = "light[0].state") -> BatchEdit:
    return BatchEdit(target, op, np.array([frame]), np.array([end]), np.array([value]))


def _batch() -> WorldBatch:
    return WorldBatch(np.array([0]), {"light[0].offset": np.array([3.0])}, np.array([0]), ())


def test_setting_a_state_to_the_value_it_holds_is_a_no_op():
    red_then_green = np.zeros((12, 2))
    red_then_green[8:, 0] = 2  # light[0] red until frame 8, then green
    assert _no_op(_edit(0.0, end=8), _batch(), red_then_green, NAMES)  # red while red: the edit's window ends at 8
    assert not _no_op(_edit(0.0), _batch(), red_then_green, NAMES)  # it would keep the light red from frame 8
    assert not _no_op(_edit(2.0), _batch(), red_then_green, NAMES)
    assert _no_op(_edit(2.0, frame=8), _batch(), red_then_green, NAMES)
    assert _no_op(_edit(0.0, op="add"), _batch(), red_then_green, NAMES) and _no_op(_edit(1.0, op="scale"), _batch())
    assert not _no_op(_edit(0.0), _batch())  # without the states simulated without it, a set is never a no-op
    # already there: the state has the value at the edit's frame and the edit changed nothing (a step-out while walking)
    walking = np.zeros((12, 2))
    walking[1:6, 0] = 1  # crossing from frame 1 to 5
    ped = ("pedestrian[0].walking", "pedestrian[0].x")
    step_out = _edit(1.0, target="pedestrian[0].walking")
    assert _no_op(step_out, _batch(), walking, ped, walking.copy())
    assert not _no_op(step_out, _batch(), walking, ped)  # (only when the edited run is known to equal it)
    moved = walking.copy()
    moved[6:, 1] = 2.5
    assert not _no_op(step_out, _batch(), walking, ped, moved)
    late = _edit(1.0, frame=7, target="pedestrian[0].walking")  # standing at frame 7: it should have acted
    assert not _no_op(late, _batch(), walking, ped, walking.copy())
    assert _no_op(_edit(3.0, target="light[0].offset"), _batch()) and not _no_op(_edit(4.0, target="light[0].offset"), _batch())


def _spec(value: int, pairs: bool = False):
    """grid_town at test size: light[0] red for the whole 1.1 s clip (green from 3 s), an edit setting it to
    ``value`` at frame 2 in every sample, and vehicle[2] absent (its float states NaN)."""
    d = load_spec("traffic/grid_town").to_dict()
    v = d["variables"]
    d["objects"] = {**d["objects"], "vehicle": 3, "pedestrian": 1}
    v["vehicle[2].present"] = {"type": "boolean", "mechanism": "0"}
    v["light[0].offset"] = {"range": [0, 24], "unit": "s", "mechanism": "3"}
    d["temporal_edits"] = [{"at_frame": 2, "do": f"light[0].state = {value}", "fraction": 1.0}]
    for key in ("counterfactuals", "interventions"):
        d.pop(key, None)
    if pairs:  # the partner of each pair gets the edit, its factual sample not
        d["temporal_edits"] = []
        d["counterfactuals"] = {"fraction": 0.5, "edit": {"at_frame": 2, "do": f"light[0].state = {value}"}}
    d["video"] = {"fps": 10, "frames": 12, "substeps": 1}
    d["render"] = {**d["render"], "size": 32, "views": [d["render"]["views"][0]]}
    d["samples"] = 2
    return type(load_spec("traffic/grid_town")).from_dict(d)


@pytest.mark.slow
def test_a_forced_red_on_a_red_light_validates_as_a_no_op(tmp_path):
    result = run(_spec(0), resolve(str(tmp_path / "red.zarr")), RunOptions(executor="inline"))
    dyn = check_by_name(result.report, "dynamics")
    assert result.valid and dyn["passed"], dyn["problems"]
    assert dyn["details"]["edits_checked"] >= 1 and len(dyn["details"]["edits_no_op"]) == dyn["details"]["edits_checked"]
    g = zarr.open_group(str(tmp_path / "red.zarr"), mode="r")
    names = [str(s) for s in g["state"][:]]
    states = np.asarray(g["states"][:])
    assert np.isnan(states[:, :, names.index("vehicle[2].x")]).all()  # the absent car: NaN, and still re-simulated equal
    assert (states[:, :, names.index("vehicle[2].lane")] == -1).all() and np.isfinite(states[:, :, names.index("vehicle[0].x")]).all()


@pytest.mark.slow
def test_an_edit_that_should_act_and_does_not_fails(tmp_path, monkeypatch):
    # a world that drops its edits: a forced green on the red light leaves every state as it was
    monkeypatch.setattr(TrafficWorld, "_edits", lambda self, batch: [() for _ in range(len(batch))])
    result = run(_spec(2), resolve(str(tmp_path / "green.zarr")), RunOptions(executor="inline"))
    dyn = check_by_name(result.report, "dynamics")
    assert not dyn["passed"] and dyn["details"]["edits_no_op"] == []
    assert any("(light[0].state set 2) had no effect from frame 2" in p for p in dyn["problems"]), dyn["problems"]


@pytest.mark.slow
def test_a_counterfactual_forced_red_on_a_red_light_is_a_no_op_pair(tmp_path):
    result = run(_spec(0, pairs=True).replace(samples=4), resolve(str(tmp_path / "pairs.zarr")), RunOptions(executor="inline"))
    dyn = check_by_name(result.report, "dynamics")
    assert result.valid and dyn["passed"], dyn["problems"]
    pairs = dyn["details"]["counterfactual_pairs"]
    assert pairs["compared"] >= 1 and pairs["identical_clips"] == []
    assert all("no_op" in f and f["frames_differ_from"] is None for f in pairs["findings"])


@pytest.fixture(scope="module")
def open_space_report(tmp_path_factory) -> dict:
    """robotics open_space at test size (6 frames, the bird's eye view at 32 px, 2 samples), with a goal moved at frame 3
    (the goal is no state: only the pixels show it) and the standing-by cube made 4 times heavier at frame 2 (it rests
    untouched to the clip's end) in every sample; the dynamics check's report."""
    spec = load_spec("robotics/open_space")
    birdseye = next(v for v in spec.to_dict()["render"]["views"] if v["name"] == "birdseye")
    spec = spec.replace(samples=2, interventions={"regime": "observational"}, video={"fps": 10, "frames": 6, "substeps": 24},
                        render={"size": 32, "views": [birdseye], "engine": "tiny"},
                        temporal_edits=({"at_frame": 3, "do": "goal.y = 0.2", "fraction": 1.0},
                                        {"at_frame": 2, "do": "obj[1].mass *= 4", "fraction": 1.0}))
    result = run(spec, resolve(str(tmp_path_factory.mktemp("os") / "os.zarr")), RunOptions(executor="inline"))
    return {"valid": result.valid, "dynamics": check_by_name(result.report, "dynamics")}


@pytest.mark.slow
def test_an_edit_seen_only_in_the_pixels_has_acted(open_space_report):
    dyn = open_space_report["dynamics"]
    assert open_space_report["valid"] and dyn["passed"], dyn["problems"]
    moved = [e for e in dyn["details"]["edits_acted_in_pixels_only"] if "(goal.y set 0.2)" in e]
    assert len(moved) == 2 and all(e.endswith("pixels differ from frame 3") for e in moved), moved
    assert dyn["details"]["edits_acted"] == 2


@pytest.mark.slow
def test_a_global_latent_edit_the_clip_gives_no_chance_to_act_is_listed_not_failed(open_space_report):
    dyn = open_space_report["dynamics"]
    assert open_space_report["valid"] and dyn["passed"], dyn["problems"]
    heavier = dyn["details"]["edits_without_effect"]
    assert len(heavier) == 2 and all("(obj[1].mass scale 4): did not act within the clip" in e for e in heavier), heavier
    assert dyn["details"]["edits_checked"] == 4 and dyn["details"]["edits_no_op"] == []
