"""Intervention spaces A and B (CausalWorld's space_a / space_b): per-variable disjoint ranges,
selected by domains (`space`), splits (`test_space`) and interventions (`do(space)`); every
mistake is one line naming its field."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from crlgen.schemas import DatasetSpec, SpecError
from crlgen.schemas.interventions import Do
from crlgen.schemas.jsonschema import dataset_json_schema

REPO = Path(__file__).resolve().parents[2]

BASE: dict[str, Any] = {
    "name": "spaces",
    "samples": 50,
    "variables": {
        "mass": {"range": [0.1, 1.0], "unit": "kg", "noise": "uniform(0.1, 1.0)", "spaces": {"A": [0.1, 0.5], "B": [0.5, 1.0]}},
        "n": {"type": "integer", "range": [0, 10], "noise": "uniform(0, 10)", "spaces": {"A": [0, 4], "B": [5, 10]}},
        "speed": {"mechanism": "mass * n + eps", "noise": "normal(0, 0.1)"},
    },
    "domains": {"train": {"space": "A"}, "test": {"space": "B"}},
    "splits": {"test_space": "B"},
}


def spec(**changes) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    for path, value in changes.items():
        *head, last = path.split("__")
        cur = d
        for k in head:
            cur = cur.setdefault(k, {})
        if value is None:
            cur.pop(last, None)
        else:
            cur[last] = value
    return d


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as e:
        DatasetSpec.from_dict(data)
    return e.value.problems


def test_a_valid_spec_loads_and_writes_back_what_was_written():
    s = DatasetSpec.from_dict(spec(interventions={"regime": "single_node", "fraction": 0.3, "targets": {"mass": "do(space)"}}))
    assert s.variables["mass"].spaces == {"A": (0.1, 0.5), "B": (0.5, 1.0)}
    assert s.domains["test"].space == "B" and s.splits.test_space == "B"
    iv = s.interventions.targets["mass"]
    assert isinstance(iv, Do) and iv.space and iv.value is None and iv.dist is None
    assert s.to_dict()["interventions"]["targets"] == {"mass": "do(space)"}
    assert DatasetSpec.from_dict(s.to_dict()) == s
    assert DatasetSpec.from_dict(spec(interventions={"regime": "single_node", "fraction": 0.3,
                                                     "targets": {"mass": {"kind": "do", "space": True}}})) == s
    assert s.spaces() == {"mass": {"A": (0.1, 0.5), "B": (0.5, 1.0)}, "n": {"A": (0, 4), "B": (5, 10)}}
    assert s.domains_in_space("B") == ("test",)


def test_a_space_domain_draws_the_roots_uniformly_in_the_space():
    s = DatasetSpec.from_dict(spec())
    mechs, noises = s.domain_overrides("test")
    assert mechs == {} and noises["mass"].shorthand() == "uniform(0.5, 1.0)" and noises["n"].shorthand() == "uniform(5.0, 10.0)"
    assert "speed" not in noises  # no spaces: the spec's own noise


@pytest.mark.parametrize("changes, path, fragment", [
    ({"variables__mass__spaces": {"A": [0.1, 0.6], "B": [0.5, 1.0]}}, "variables.mass.spaces",
     "spaces A [0.1, 0.6] and B [0.5, 1] overlap; they must be disjoint (they may share an end point)"),
    ({"variables__n__spaces": {"A": [0, 5], "B": [5, 10]}}, "variables.n.spaces",
     "spaces A [0, 5] and B [5, 10] overlap; they must be disjoint"),
    ({"variables__n__spaces": {"A": [0, 4.5], "B": [5, 10]}}, "variables.n.spaces",
     "space A: an integer variable needs integer bounds"),
    ({"variables__mass__spaces": {"A": [0.1, 0.5]}}, "variables.mass.spaces", "expected both spaces A and B, missing B"),
    ({"variables__mass__spaces": {"A": [0.1, 0.5], "C": [0.6, 0.9]}}, "variables.mass.spaces.C", "Input should be 'A' or 'B'"),
    ({"variables__mass__spaces": {"A": [0.5, 0.1], "B": [0.6, 1.0]}}, "variables.mass.spaces",
     "space A: expected a finite [low, high] with low < high"),
    ({"variables__mass__spaces": {"A": [0.1, 0.5], "B": [0.5, 1.5]}}, "variables.mass.spaces",
     "space B [0.5, 1.5] lies outside the declared range [0.1, 1]"),
    ({"variables__c": {"type": "categorical", "levels": ["x", "y"], "noise": "categorical(0.5, 0.5)",
                       "spaces": {"A": [0, 0], "B": [1, 1]}}}, "variables.c.spaces", "unknown field"),
    ({"domains__test__space": "C"}, "domains.test.space", "Input should be 'A' or 'B'"),
    ({"domains__test__noise": {"mass": "uniform(0.5, 0.9)"}}, "domains.test.noise.mass",
     "the domain's space B already draws 'mass'; drop one of them"),
    ({"splits__test_space": None, "domains": {"a": {"space": "A"}, "b": {"space": "A"}}, "splits": {"test_space": "B"}},
     "splits.test_space", "no domain selects space B; give a domain `space: B`"),
    ({"domains": {"b1": {"space": "B"}, "b2": {"space": "B"}}}, "splits.test_space",
     "every domain is held out (space B and test_domains)"),
    ({"splits": {"few_shot": 0.1}}, "splits", "give test_domains too (or test_space)"),
    ({"variables__mass__spaces": None, "variables__n__spaces": None, "splits": {}}, "domains.train.space",
     "selects space A, but no root variable declares `spaces`"),
    ({"interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"speed": "do(space)"}}},
     "interventions.targets.speed", "do(space) draws 'speed' in its intervention space, but 'speed' declares no `spaces`"),
    ({"domains": {"train": {"space": "A"}, "plain": {}, "test": {"space": "B"}},
      "interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"mass": "do(space)"}}},
     "interventions.targets.mass", "domain(s) plain select none; give every domain `space: A` or `space: B`"),
    ({"domains": None, "splits": {},
      "interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"mass": "do(space)"}}},
     "interventions.targets.mass", "domain(s) default select none"),
    ({"variables__speed": {"range": [0, 20], "mechanism": "mass * n + eps", "noise": "uniform(0, 0.1)",
                           "spaces": {"A": [0, 5], "B": [5, 20]}}}, "variables.speed.spaces",
     "'speed' has an equation, so a domain's space leaves it alone; its spaces are drawn only by do(space)"),
])
def test_mistakes_are_one_line_naming_the_field(changes, path, fragment):
    lines = problems(spec(**changes))
    hit = [p for p in lines if p.startswith(f"{path}: ")]
    assert hit and fragment in hit[0], lines
    assert all("\n" not in p for p in lines)


def test_a_non_root_with_spaces_is_fine_when_do_space_draws_it():
    s = DatasetSpec.from_dict(spec(
        variables__speed={"range": [0, 20], "mechanism": "mass * n + eps", "noise": "uniform(0, 0.1)",
                          "spaces": {"A": [0, 5], "B": [5, 20]}},
        counterfactuals={"fraction": 0.2, "intervention": {"speed": "do(space)"}}))
    assert s.domain_overrides("train")[0] == {}  # its equation stays


def test_the_json_schema_on_disk_states_spaces():
    fresh = dataset_json_schema()
    on_disk = json.loads((REPO / "schemas/json/dataset.schema.json").read_text())
    assert on_disk == fresh  # regenerated with `crlgen schema --write`
    text = json.dumps(on_disk)
    assert "test_space" in text and "space_a" in text and '"space"' in text
