"""What `crlgen check` says about a per-object name it cannot resolve: `[i]` outside a per-object equation, an
index beyond the object count, a per-object name written without an index."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from crlgen.schemas import DatasetSpec, SpecError

BALLS: dict[str, Any] = {
    "name": "balls", "samples": 20, "objects": {"ball": 3, "cube": 2},
    "variables": {"ball[i].x": {"noise": "uniform(0, 1)"}, "cube[i].x": {"noise": "uniform(0, 1)"},
                  "c": {"noise": "uniform(0, 1)"}},
}
I_ONLY = ("'ball[i].x': `[i]` only works in the equation of a per-object variable (name[i].field), where it is that "
          "object's index; a non-object variable must name an index, e.g. 'ball[0].x'")


def problems(variables: dict[str, Any] | None = None, **over: Any) -> list[str]:
    d = copy.deepcopy(BALLS)
    d["variables"].update(variables or {})
    d.update(copy.deepcopy(over))
    with pytest.raises(SpecError) as e:
        DatasetSpec.from_dict(d)
    return str(e.value).splitlines()


@pytest.mark.parametrize("over, path", [
    ({"variables": {"d": {"mechanism": "ball[i].x * 2"}}}, "variables.d.mechanism"),
    ({"domains": {"a": {"overrides": {"c": "ball[i].x"}}}}, "domains.a.overrides.c"),
    ({"interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"c": "soft('ball[i].x')"}}},
     "interventions.targets.c"),
    ({"counterfactuals": {"fraction": 0.5, "intervention": {"c": "soft('ball[i].x')"}}}, "counterfactuals.intervention.c"),
], ids=["variable", "domain", "soft", "counterfactual"])
def test_template_index_outside_a_per_object_equation(over, path):
    assert problems(**over) == [f"{path}: {I_ONLY}"]


def test_index_beyond_the_count_says_the_count():
    assert problems({"ball[i].y": {"mechanism": "cube[i].x"}}) == [
        "variables.ball[i].y.mechanism: unknown variable 'cube[2].x' (2 cube objects: cube[0] to cube[1]); "
        "expected one of the declared variables or parameters"]


def test_per_object_name_without_an_index():
    assert problems({"d": {"mechanism": "ball.x"}}) == [
        "variables.d.mechanism: unknown variable 'ball.x' (per-object names need `[i]` or an index); "
        "expected one of the declared variables or parameters"]


def test_unknown_field_of_an_object_gets_no_index_hint():
    assert problems({"d": {"mechanism": "ball[0].q"}}) == [
        "variables.d.mechanism: unknown variable 'ball[0].q'; expected one of the declared variables or parameters"]
