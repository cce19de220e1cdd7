"""``extends``: alternatives replace each other, and a null deletes the base's key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from crlgen.pipeline import check_spec, load_spec
from crlgen.schemas import SpecError
from crlgen.schemas.jsonschema import dataset_json_schema
from crlgen.schemas.loading import resolve_extends

#: The catalogue traffic scene, shortened to a few samples and frames, without its temporal edits.
SHORT_TRAFFIC = "extends: traffic/grid_town\nname: t\nsamples: 4\nvideo: {frames: 10}\ntemporal_edits: []\n"


def _extend(tmp_path: Path, base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    return resolve_extends({"extends": "base.yaml", **over}, tmp_path)


EDIT = {"at_frame": 3, "do": "x += 1"}


# fmt: off
@pytest.mark.parametrize("base, over, merged", [
    ({"counterfactuals": {"fraction": 0.2, "edit": EDIT}}, {"counterfactuals": {"intervention": {"a": "do(1)"}}},
     {"counterfactuals": {"fraction": 0.2, "intervention": {"a": "do(1)"}}}),
    ({"counterfactuals": {"fraction": 0.2, "intervention": {"a": "do(1)"}}}, {"counterfactuals": {"edit": EDIT}},
     {"counterfactuals": {"fraction": 0.2, "edit": EDIT}}),
    ({"counterfactuals": {"fraction": 0.2, "edit": EDIT}}, {"counterfactuals": {"edit": {"at_time": 0.5}}},
     {"counterfactuals": {"fraction": 0.2, "edit": {"at_time": 0.5, "do": "x += 1"}}}),
    ({"counterfactuals": {"fraction": 0.2, "edit": EDIT}}, {"counterfactuals": {"edit": {"target": "y", "value": 2}}},
     {"counterfactuals": {"fraction": 0.2, "edit": {"at_frame": 3, "target": "y", "value": 2}}}),
    ({"domains": {"d": {"weight": 2, "parameters": {"g": 1}}}}, {"domains": {"d": {"samples": 10}}},
     {"domains": {"d": {"samples": 10, "parameters": {"g": 1}}}}),
    ({"video": {"fps": 10, "duration": 2}}, {"video": {"frames": 30}}, {"video": {"fps": 10, "frames": 30}}),
    ({"interventions": {"targets": {"a": {"kind": "do", "value": 1}}}},
     {"interventions": {"targets": {"a": {"dist": {"dist": "uniform", "low": 0, "high": 1}}}}},
     {"interventions": {"targets": {"a": {"kind": "do", "dist": {"dist": "uniform", "low": 0, "high": 1}}}}}),
    ({"counterfactuals": {"fraction": 0.2, "intervention": {"a": {"kind": "do", "value": 1}}}},
     {"counterfactuals": {"intervention": {"a": {"space": True}}}},
     {"counterfactuals": {"fraction": 0.2, "intervention": {"a": {"kind": "do", "space": True}}}}),
], ids=["cf-intervention-over-edit", "cf-edit-over-intervention", "edit-at-time-over-at-frame",
        "edit-explicit-over-shorthand", "domain-samples-over-weight", "video-frames-over-duration",
        "do-dist-over-value", "cf-do-space-over-value"])
# fmt: on
def test_an_alternative_replaces_the_bases_others(tmp_path: Path, base: dict, over: dict, merged: dict):
    assert _extend(tmp_path, base, over) == merged


def test_a_counterfactual_intervention_replaces_grid_towns_edit(tmp_path: Path):
    """The tester's spec without `edit: null`: the base's edit is not merged in beside the intervention."""
    (tmp_path / "fog.yaml").write_text(SHORT_TRAFFIC + "counterfactuals: {fraction: 0.5, intervention: {weather.fog: do(12)}}\n")
    spec = load_spec(tmp_path / "fog.yaml")
    assert spec.counterfactuals.edit is None and set(spec.counterfactuals.intervention) == {"weather.fog"}
    assert spec.counterfactuals.fraction == 0.5
    check_spec(spec)
    # and the other way: an edit replaces an intervention the base gives
    (tmp_path / "edit.yaml").write_text("extends: fog.yaml\ncounterfactuals: {edit: {at_frame: 5, do: 'light[0].state = 0'}}\n")
    spec = load_spec(tmp_path / "edit.yaml")
    assert spec.counterfactuals.intervention is None and spec.counterfactuals.edit.target == "light[0].state"


def test_null_deletes_a_bases_key(tmp_path: Path):
    merged = _extend(tmp_path, {"variables": {"a": {"noise": "normal(0, 1)"}, "b": {"mechanism": "a"}}, "seed": 3},
                     {"variables": {"b": None}, "seed": None})
    assert merged == {"variables": {"a": {"noise": "normal(0, 1)"}}}


def test_a_null_of_a_key_the_base_lacks_is_refused(tmp_path: Path):
    """A typo (`rhoo: null`) deleted nothing silently: each such null is a line naming its field path and the base's keys."""
    (tmp_path / "n1.yaml").write_text("extends: static/spring\nname: n1\nworld: null\n"
                                      "variables: {zzz: null, rhoo: null, h: null}\ndomains: {venus: null}\n")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "n1.yaml")
    keys = "expected one of h, r, rho, m, k, l"
    assert info.value.problems == [
        f"variables.zzz: null deletes a key of the base spec, but the base (static/spring) has no 'zzz'; {keys}",
        f"variables.rhoo: null deletes a key of the base spec, but the base (static/spring) has no 'rhoo'; {keys}",
        "domains.venus: null deletes a key of the base spec, but the base (static/spring) has no 'venus'; expected one of earth, moon"]
    with pytest.raises(SpecError) as info:
        _extend(tmp_path, {"seed": 3}, {"domains": {"d": {"parameters": {"g": None}}}})
    assert info.value.problems == ["domains.d.parameters.g: null deletes a key of the base spec, but the base (base.yaml) "
                                   "has no 'g'; it has no domains.d.parameters at all"]


def test_a_null_of_a_top_level_field_resets_it_whether_or_not_the_base_gives_it(tmp_path: Path):
    """`render: null` resets a block the base has to its default; a field the base leaves out is at its default already."""
    assert _extend(tmp_path, {"seed": 3, "render": {"size": 8}}, {"render": None}) == {"seed": 3}
    assert _extend(tmp_path, {"seed": 3}, {"render": None, "world": None, "counterfactuals": None}) == {"seed": 3}


def test_a_spec_without_extends_gets_no_deletion_message_for_its_nulls(tmp_path: Path):
    """Without `extends` a null is a value like any other: the field's own check answers."""
    (tmp_path / "n3.yaml").write_text("name: n3\nsamples: 5\nvariables: {a: {noise: 'uniform(0,1)'}, b: null}\n")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "n3.yaml")
    assert len(info.value.problems) == 1 and info.value.problems[0].startswith("variables.b: ")
    assert "deletes" not in info.value.problems[0]


def test_a_road_without_pedestrians_extends_grid_town(tmp_path: Path):
    """`pedestrian: 0`: the templates expand to nothing; the base's pedestrian[0].* variables are removed with null."""
    ped0 = SHORT_TRAFFIC + "counterfactuals: null\nobjects: {vehicle: 8, pedestrian: 0, light: 4}\n"
    (tmp_path / "kept.yaml").write_text(ped0)
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "kept.yaml")
    assert info.value.problems == [
        "objects.pedestrian: 0 objects (none), but variables name pedestrian[0].present, pedestrian[0].start_time; raise "
        "the count to 1 or remove those variables (a spec that extends another removes one with `NAME: null`)"]
    (tmp_path / "removed.yaml").write_text(ped0 + "variables: {'pedestrian[0].present': null, 'pedestrian[0].start_time': null}\n")
    spec = load_spec(tmp_path / "removed.yaml")
    assert "pedestrian[0].present" not in spec.variables and "pedestrian[i].present" in spec.variables
    assert spec.object_count("pedestrian") == 0
    assert not any(n.startswith("pedestrian[") for n in spec.graph.names)
    check_spec(spec)


def test_the_json_schema_takes_a_null_only_with_extends():
    import jsonschema

    validator = jsonschema.Draft202012Validator(dataset_json_schema())
    assert validator.is_valid({"extends": "traffic/grid_town", "variables": {"pedestrian[0].present": None}})
    assert not validator.is_valid({"name": "x", "samples": 3, "variables": {"a": None, "b": {"noise": "normal(0, 1)"}}})
