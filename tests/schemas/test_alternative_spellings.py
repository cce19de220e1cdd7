"""Two spellings of one thing in one place are refused, never merged with one silently dropped.

A temporal edit (or a counterfactual ``edit``) is written either as ``do: "target += value"`` or as
``target``/``op``/``value``; ``soft()`` takes its mechanism either first or as ``mechanism='...'``.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml

from crlgen.schemas import DatasetSpec, SpecError
from crlgen.schemas.jsonschema import SCHEMA_PATH
from support.cli import run_cli

BASE: dict[str, Any] = {
    "name": "alternatives", "samples": 10, "video": {"fps": 10, "frames": 20},
    "variables": {"a": {"range": [0, 1], "noise": "uniform(0, 1)"}},
}
BOTH = "give either do or target/op/value, not both"


def spec(**over: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d.update(copy.deepcopy(over))
    return d


@pytest.mark.parametrize("explicit, named", [
    ({"target": "a", "op": "set", "value": 5}, "target/op/value"),
    ({"target": "a"}, "target"),
    ({"op": "scale"}, "op"),
    ({"value": 2}, "value"),
], ids=["all", "target", "op", "value"])
def test_a_temporal_edit_with_do_and_target_op_value_is_refused_at_its_path(explicit: dict, named: str):
    edit = {"at_frame": 5, "do": "a += 0.8", **explicit}
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(spec(temporal_edits=[{"target": "a", "value": 1, "at_frame": 0}, edit]))
    assert info.value.problems == [f"temporal_edits[1]: {BOTH} (got do and {named})"]


def test_a_counterfactual_edit_with_do_and_target_is_refused_at_its_path():
    cf = {"fraction": 0.2, "edit": {"at_frame": 5, "do": "a += 0.8", "target": "a", "op": "set", "value": 5}}
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(spec(counterfactuals=cf))
    assert info.value.problems == [f"counterfactuals.edit: {BOTH} (got do and target/op/value)"]


def test_either_spelling_alone_still_reads_the_same():
    one = DatasetSpec.from_dict(spec(temporal_edits=[{"at_frame": 5, "do": "a -= 0.5"}])).temporal_edits[0]
    other = DatasetSpec.from_dict(spec(temporal_edits=[{"at_frame": 5, "target": "a", "op": "add", "value": -0.5}])).temporal_edits[0]
    assert one == other and (one.target, one.op, one.value) == ("a", "add", -0.5)


@pytest.mark.parametrize("written", ["soft('a * 2 + eps', mechanism='a + eps')", "soft('a + eps', kind='soft')"])
def test_a_soft_mechanism_given_first_and_by_name_is_refused(written: str):
    data = spec(variables={"a": {"range": [0, 1], "noise": "uniform(0, 1)"},
                           "b": {"mechanism": "a + eps", "noise": "normal(0, 0.1)"}},
                interventions={"regime": "single_node", "fraction": 0.5, "targets": {"b": written}})
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(data)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith("interventions.targets.b: soft() got ") and " twice" in info.value.problems[0]


def test_the_json_schema_refuses_do_beside_op():
    import jsonschema

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    good = spec(temporal_edits=[{"at_frame": 5, "do": "a += 0.8"}])
    assert not list(validator.iter_errors(good))
    assert list(validator.iter_errors(spec(temporal_edits=[{"at_frame": 5, "do": "a += 0.8", "op": "set"}])))


def test_crlgen_check_refuses_the_testers_edit_in_one_line(capsys, tmp_path):
    """The tester's u10: both spellings on a catalogue scene's edit; check said OK and kept only the ``do``."""
    path = tmp_path / "u10.yaml"
    path.write_text(yaml.safe_dump({"name": "u10", "extends": "physics/collision_simple", "samples": 4, "temporal_edits": [
        {"target": "obj[0].vx", "op": "set", "value": 5, "at_frame": 10, "do": "obj[1].vy += 0.8", "fraction": 0.3}]}))
    code, out, err = run_cli(capsys, "check", str(path))
    assert (code, out) == (2, "")
    assert err.strip().splitlines() == [f"error: temporal_edits[0]: {BOTH} (got do and target/op/value)"]
