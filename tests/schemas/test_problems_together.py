"""Independent problems show up in one run: an equation that does not parse leaves the rest of the spec checked,
without follow-on problems from the equation left out."""

from __future__ import annotations

from typing import Any

import pytest

from crlgen.schemas import DatasetSpec, SpecError

EXPONENT = "constant exponent larger than 64 in 'a ** 1000' at column 1 in 'a ** 1000'"


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as e:
        DatasetSpec.from_dict({"name": "together", "samples": 5, **data})
    return e.value.problems


def test_unparsable_equation_and_unknown_name_in_one_run():
    assert problems({"variables": {"a": {"noise": "uniform(0, 1)"}, "b": {"mechanism": "a.x"},
                                   "c": {"mechanism": "a ** 1000"}, "d": {"mechanism": "c * 2"}}}) == [
        f"variables.c.mechanism: {EXPONENT}",
        "variables.b.mechanism: unknown variable 'a.x'; expected one of the declared variables or parameters"]


def test_unparsable_domain_override_leaves_the_domains_other_overrides_checked():
    assert problems({"variables": {"a": {"noise": "uniform(0, 1)"}, "g": {"mechanism": "a"}},
                     "domains": {"x": {"overrides": {"a": "a ** 1000", "g": "qq"}}, "y": {"parameters": {"nope": 1}}}}) == [
        f"domains.x.overrides.a: {EXPONENT}",
        "domains.x.overrides.g: unknown variable 'qq'; expected one of the declared variables or parameters",
        "domains.y.parameters.nope: unknown parameter 'nope'; declare it under `parameters`"]


def test_the_left_out_variable_itself_gets_no_second_line():
    """``c``'s equation, left out, would not be blamed again (e.g. a boolean's placeholder)."""
    assert problems({"variables": {"a": {"noise": "uniform(0, 1)"}, "c": {"type": "boolean", "mechanism": "a +* 1"}}}) == [
        "variables.c.mechanism: syntax error (invalid syntax) at column 4 in 'a +* 1'"]


def test_other_field_errors_keep_the_rest_unchecked():
    """A broken field other than an equation could make the rest fail (a domain's name, a count): only it is shown."""
    lines = problems({"variables": {"a": {"noise": "uniform(0, 1)"}, "b": {"mechanism": "zz"}}, "objects": -1})
    assert [ln.split(":")[0] for ln in lines] == ["objects"]
