"""A bad item of a nested list or mapping is one line, at the item's path as the YAML writes it.

Pydantic's locations carry discriminator tags (``regime: sets`` puts a ``sets`` tag before the
``sets`` field) and count a list's items after dropping the bad ones (so a one-item list is also
"too short"): neither may reach the user.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from crlgen.schemas import DatasetSpec, SpecError

BASE: dict[str, Any] = {
    "name": "paths",
    "samples": 100,
    "variables": {
        "a": {"range": [0, 1], "noise": "uniform(0, 1)"},
        "c": {"type": "categorical", "levels": ["x", "y"], "noise": "categorical(0.5, 0.5)"},
    },
}
VIDEO = {"fps": 10, "frames": 20}
LAPLACE_BAD = {"dist": "laplace", "loc": 0, "scale": -1}


def spec(**over: Any) -> dict[str, Any]:
    d = copy.deepcopy(BASE)
    d.update(copy.deepcopy(over))
    return d


def noise(a: Any) -> dict[str, Any]:
    d = spec()
    d["variables"]["a"] = {"noise": a}
    return d


def sets(*items: dict) -> dict[str, Any]:
    return spec(interventions={"regime": "sets", "fraction": 0.5, "sets": list(items)})


OK_SET = {"targets": {"a": "do(0.5)"}}


# fmt: off
@pytest.mark.parametrize("data, line", [
    # the tester's case: the only set of a `sets` regime has a bad weight
    (sets({**OK_SET, "weight": -1}), "interventions.sets[0].weight: Input should be greater than 0"),
    (sets(OK_SET, {**OK_SET, "weight": -1}), "interventions.sets[1].weight: Input should be greater than 0"),
    (spec(interventions={"regime": "explicit", "assignments": [{"samples": [-1], "targets": {"a": "do(0.5)"}}]}),
     "interventions.assignments[0].samples: sample indices must be >= 0"),
    (spec(interventions={"regime": "explicit", "assignments": [{"samples": {"start": 3, "stop": 1}, "targets": {"a": "do(0.5)"}}]}),
     "interventions.assignments[0].samples: expected start < stop, got 3..1"),
    (spec(domains={"d": {"weight": -1}}), "domains.d.weight: Input should be greater than 0"),
    (spec(counterfactuals={"fraction": 0.2, "intervention": {"a": {"kind": "do", "dist": LAPLACE_BAD}}}),
     "counterfactuals.intervention.a.dist.scale: Input should be greater than 0"),
    (spec(video=VIDEO, temporal_edits=[{"target": "a", "value": 1, "at_frame": 0},
                                       {"target": "a", "value": 1, "at_frame": 0, "fraction": 2}]),
     "temporal_edits[1].fraction: Input should be less than or equal to 1"),
    (spec(render={"views": ["front", {"name": "b", "fov": 0}]}), "render.views[1].fov: Input should be greater than 1"),
    # a noise field named like an intervention kind (laplace's `scale`) is a field, not a tag
    (noise(LAPLACE_BAD), "variables.a.noise.scale: Input should be greater than 0"),
    (noise("laplace(0, -1)"), "variables.a.noise.scale: Input should be greater than 0"),
    (noise({"dist": "mixture", "components": ["normal(0, 1)", LAPLACE_BAD]}),
     "variables.a.noise.components[1].scale: Input should be greater than 0"),
    (spec(interventions={"regime": "single_node", "fraction": 0.5, "targets": {"a": "soft(mechanism='eps', noise=laplace(0, -1))"}}),
     "interventions.targets.a.noise.scale: Input should be greater than 0"),
], ids=["sets-one", "sets-second", "assignments-index", "assignments-range", "domains", "counterfactual-intervention",
        "temporal-edits", "views", "noise-field-named-scale", "noise-shorthand", "mixture-components", "soft-noise"])
# fmt: on
def test_a_bad_nested_item_is_one_line_at_its_path(data: dict, line: str):
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(data)
    assert info.value.problems == [line]


def test_a_list_short_even_counting_its_bad_items_says_so_in_its_own_terms():
    """A mixture of one (bad) component is too short as written: both problems, with the written count."""
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(noise({"dist": "mixture", "components": [LAPLACE_BAD]}))
    assert info.value.problems == ["variables.a.noise.components[0].scale: Input should be greater than 0",
                                   "variables.a.noise.components: expected at least 2 items, got 1"]
    d = spec()
    d["variables"]["c"]["levels"] = ["x"]
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(d)
    assert "variables.c.levels: expected at least 2 items, got 1" in info.value.problems
