"""traffic/embedded through the pipeline: every catalogue scene runs (`crlgen run`) and validates (`crlgen validate`) at
a small size; spec problems are one-line errors."""

from __future__ import annotations

import json

import pytest
import yaml
import zarr

from crlgen.pipeline import load_spec
from crlgen.scenes.registry import catalog
from support.cli import run_cli

pytestmark = pytest.mark.slow

SCENES = ("grid_town", "village", "highway_merge", "downtown", "urban_centre")


def test_the_catalogue_lists_the_five_scenes():
    names = {e.name for e in catalog() if e.world == "traffic/embedded"}
    assert names == {f"traffic/{s}" for s in SCENES}


@pytest.mark.parametrize("name", SCENES)
def test_scene_runs_and_validates(name, tmp_path, capsys):
    spec = load_spec(f"traffic/{name}")
    render = spec.render.model_dump(mode="json")
    render["size"] = 32
    # 3 cars and 2 pedestrians keep the pipeline's per-latent previews (most of a run's time here) small
    spec = spec.replace(samples=6, objects={**spec.objects, "vehicle": 3, "pedestrian": 2},
                        video={"fps": 10, "frames": 32, "substeps": 1}, render=render)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    store = str(tmp_path / f"{name}.zarr")
    code, out, err = run_cli(capsys, "run", str(path), "--out", store, "--inline", "--quiet", "--no-validate")
    assert code == 0, err
    code, out, err = run_cli(capsys, "validate", store, "--json")
    report = json.loads(out)
    failed = [c for c in report["checks"] if not c["passed"]]
    assert code == 0 and not failed, failed


def test_a_town_without_pedestrians_runs_and_validates(tmp_path, capsys):
    """`objects: {pedestrian: 0}` with the pedestrian variables and the step-out edit removed: a road without
    walkers (a kind of object may be absent; a variable naming one that is not there is refused)."""
    d = load_spec("traffic/grid_town").to_dict()
    d["objects"] = {**d["objects"], "vehicle": 3, "pedestrian": 0}
    d["variables"] = {k: v for k, v in d["variables"].items() if not k.startswith("pedestrian")}
    d["temporal_edits"] = [e for e in d["temporal_edits"] if not e["target"].startswith("pedestrian")]
    d.update(samples=4, video={"fps": 10, "frames": 32, "substeps": 1}, render={**d["render"], "size": 32})
    path = tmp_path / "no_walkers.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    store = str(tmp_path / "no_walkers.zarr")
    code, out, err = run_cli(capsys, "run", str(path), "--out", store, "--inline", "--quiet")
    assert code == 0, err
    code, out, err = run_cli(capsys, "inspect", store, "--json")
    assert code == 0 and json.loads(out)["validation"] is True, out
    group = zarr.open_group(store, mode="r")
    names = [*group["latent"][:], *group["state"][:]]
    assert "vehicle[2].x" in names and not any(str(n).startswith("pedestrian") for n in names)


def _check(tmp_path, capsys, change, scene: str = "grid_town") -> tuple[int, str]:
    d = load_spec(f"traffic/{scene}").to_dict()
    change(d)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    code, out, err = run_cli(capsys, "check", str(path))
    return code, out + err


@pytest.mark.parametrize("change, expect", [
    (lambda d: d["parameters"].update(map=7), "parameters.map"),
    (lambda d: d["objects"].update(light=3), "objects.light"),
    (lambda d: d["variables"]["pedestrian[i].crossing"].update(range=[0, 3]), "map village has 3 crosswalks"),
    (lambda d: d["render"].update(engine="raster"), "render.engine"),
    (lambda d: d["temporal_edits"].__setitem__(0, {"at_frame": 30, "do": "light[0].state += 1"}), "temporal_edits[0]"),
])
def test_spec_problems_are_one_line_errors(tmp_path, capsys, change, expect):
    code, text = _check(tmp_path, capsys, change, "village" if "village" in expect else "grid_town")
    assert code == 2 and expect in text and "Traceback" not in text


def _move_top(d, center, extent=None):
    view = d["render"]["views"][0]
    view["center"] = center
    if extent is not None:
        view["extent"] = extent


@pytest.mark.parametrize("center, extent, ok", [
    ([500, 0], None, False),              # far east of the town: the view would film grass only
    ([0, -200], 60, False),
    ([70, 40], 40, True),                 # a corner of the view still holds the town's north-east corner
    ([0, 0], 20, True),                   # zoomed on the centre
])
def test_a_top_down_view_that_misses_the_roads_is_refused(tmp_path, capsys, center, extent, ok):
    code, text = _check(tmp_path, capsys, lambda d: _move_top(d, center, extent))
    if ok:
        assert code == 0, text
    else:
        assert code == 2 and "Traceback" not in text, text
        line = next(l for l in text.splitlines() if "render.views[0].center" in l)
        assert "misses map grid_town's roads (x -54..54 m, y -37..37 m)" in line


@pytest.mark.parametrize("scene, change, expect", [
    ("grid_town", {"objects": {"light": 6}}, "objects.light: map grid_town has 4 signal groups (light[0..3]), the spec asks for 6; set `light: 4`"),
    ("highway_merge", {"objects": {"light": 3}}, "objects.light: map highway_merge has 1 signal group (light[0]), the spec asks for 3"),
    ("grid_town", {"objects": {"vehicle": 40}}, "objects.vehicle: world traffic/embedded simulates 1..32 vehicles (vehicle[0] is the ego car, which the dashcam rides)"),
    ("grid_town", {"parameters": {"map": 9.0}}, "parameters.map: expected a map code 0..4 (0 grid_town"),
])
def test_the_map_and_object_counts_are_checked_first_in_one_line(scene, change, expect):
    from crlgen.scenes.traffic.world import TrafficWorld

    d = load_spec(f"traffic/{scene}").to_dict()
    for key, value in change.items():
        d[key] = {**d[key], **value}
    spec = type(load_spec("traffic/grid_town")).from_dict(d)
    assert len(TrafficWorld.check_objects(spec)) == 1 and TrafficWorld.check(spec) == TrafficWorld.check_objects(spec)
    assert TrafficWorld.check(spec)[0].startswith(expect), TrafficWorld.check(spec)
    assert "got 9.0" not in TrafficWorld.check(spec)[0]


@pytest.mark.parametrize("change, expect", [
    ({"light": 6}, "objects.light: map grid_town has 4 signal groups (light[0..3]), the spec asks for 6"),
    ({"vehicle": 40}, "objects.vehicle: world traffic/embedded simulates at most 32 vehicle objects, the spec asks for 40"),
])
def test_crlgen_check_reports_a_wrong_object_count_alone(change, expect):
    """A count the map or world cannot take is one line, not one per missing light[k] latent."""
    from crlgen.scenes.registry import check_world

    d = load_spec("traffic/grid_town").to_dict()
    d["objects"] = {**d["objects"], **change}
    problems = check_world(type(load_spec("traffic/grid_town")).from_dict(d))
    assert len(problems) == 1 and problems[0].startswith(expect), problems


def test_a_count_below_the_objects_the_spec_names_is_one_line(tmp_path, capsys):
    """light: 3 where grid_town's spec names light[3].offset and light[3].green: the spec itself is refused, in one
    line for the kind (not one per variable), saying which count it needs."""
    code, text = _check(tmp_path, capsys, lambda d: d["objects"].update(light=3))
    lines = [line for line in text.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in text and len(lines) == 1, text
    assert lines[0].startswith("error: objects.light: 3 objects (light[0..2]), but variables name light[3].offset, "
                               "light[3].green; raise the count to 4"), lines
