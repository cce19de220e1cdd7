"""A cycle only a domain override or a soft intervention closes is blamed on that field, not on `variables`."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from crlgen.schemas import DatasetSpec, SpecError

AB: dict[str, Any] = {
    "name": "cyc", "samples": 20,
    "variables": {"a": {"range": [0, 1], "noise": "uniform(0, 1)"}, "b": {"mechanism": "2 * a"}},
}


def problems(**over: Any) -> list[str]:
    d = copy.deepcopy(AB)
    d.update(copy.deepcopy(over))
    with pytest.raises(SpecError) as e:
        DatasetSpec.from_dict(d)
    return str(e.value).splitlines()


CYCLE = "reads 'b', which depends on 'a': the equations form a cycle: a -> b -> a"


@pytest.mark.parametrize("over, path", [
    ({"interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"a": "soft('b')"}}},
     "interventions.targets.a"),
    ({"interventions": {"regime": "sets", "fraction": 0.5, "sets": [{"targets": {"b": "do(1)"}}, {"targets": {"a": "soft('b')"}}]}},
     "interventions.sets[1].targets.a"),
    ({"interventions": {"regime": "explicit", "assignments": [{"samples": [0], "targets": {"a": "soft('b')"}}]}},
     "interventions.assignments[0].targets.a"),
    ({"counterfactuals": {"fraction": 0.5, "intervention": {"a": "soft('b')"}}}, "counterfactuals.intervention.a"),
    ({"domains": {"x": {"weight": 1}, "y": {"weight": 1, "overrides": {"a": "b / 2"}}}}, "domains.y.overrides.a"),
], ids=["single_node", "sets", "explicit", "counterfactual", "domain"])
def test_cycle_closed_by_one_field_is_blamed_on_it(over, path):
    assert problems(**over) == [f"{path}: {CYCLE}"]


def test_every_field_closing_a_cycle_gets_a_line():
    assert problems(domains={"x": {"weight": 1, "overrides": {"a": "b"}}, "y": {"weight": 1, "overrides": {"a": "b / 2"}}}) == [
        f"domains.x.overrides.a: {CYCLE}", f"domains.y.overrides.a: {CYCLE}"]


def test_cycle_of_two_fields_names_both():
    lines = problems(variables={"a": {"noise": "uniform(0, 1)"}, "b": {"noise": "uniform(0, 1)"}},
                     domains={"x": {"weight": 1, "overrides": {"a": "b"}}, "y": {"weight": 1, "overrides": {"b": "a"}}})
    assert len(lines) == 1
    assert lines[0].startswith("domains.")
    assert "together with domains." in lines[0] and "the equations form a cycle:" in lines[0]


def test_cycle_of_the_variables_themselves_is_blamed_on_variables():
    assert problems(variables={"a": {"mechanism": "b"}, "b": {"mechanism": "a"}}) == [
        "variables: the equations form a cycle: a -> b -> a"]
