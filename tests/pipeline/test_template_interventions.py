"""Interventions on per-object templates (``ball[i].w``): a soft mechanism's ``[i]`` is the intervened object.

Expected values are recomputed with numpy from the sampled parents; ``check_spec`` answers bad specs with a
SpecError naming the field, never a bare KeyError.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from crlgen.pipeline._scm import CompiledSCM
from crlgen.pipeline._specs import check_spec
from crlgen.schemas import DatasetSpec, SpecError
from support.cli import run_cli

BALLS: dict[str, Any] = {
    "name": "balls", "samples": 200, "objects": 3,
    "variables": {
        "ball[i].m": {"range": [0, 1], "noise": "uniform(0, 1)"},
        "ball[i].w": {"mechanism": "ball[i].m * 2"},
    },
}
SOFT = "soft('ball[i].m * 3')"


def balls(**over: Any) -> DatasetSpec:
    d = copy.deepcopy(BALLS)
    d.update(copy.deepcopy(over))
    return DatasetSpec.from_dict(d)


@pytest.mark.parametrize("over", [
    {"interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"ball[i].w": SOFT}}},
    {"interventions": {"regime": "sets", "fraction": 0.5, "sets": [{"targets": {"ball[i].w": SOFT}}]}},
    {"interventions": {"regime": "explicit", "assignments": [{"samples": {"start": 0, "stop": 100},
                                                              "targets": {"ball[i].w": SOFT}}]}},
    {"counterfactuals": {"fraction": 0.5, "intervention": {"ball[i].w": SOFT}}},
], ids=["single_node", "sets", "explicit", "counterfactual"])
def test_templated_soft_mechanism_reads_the_intervened_object(over):
    s = check_spec(balls(**over))
    b = CompiledSCM(s).sample(0, s.samples)
    for k in range(3):
        m, w = b.column(f"ball[{k}].m"), b.column(f"ball[{k}].w")
        hit = b.intervention_mask[:, b.names.index(f"ball[{k}].w")]
        assert hit.any() and (~hit).any()
        np.testing.assert_allclose(w[hit], 3 * m[hit])
        np.testing.assert_allclose(w[~hit], 2 * m[~hit])


def test_templated_domain_override_reaches_an_object_declared_by_name():
    """``ball[2].w`` has its own equation; the domain's template override gives it ``ball[2].m * 3``."""
    d = copy.deepcopy(BALLS)
    d["variables"]["ball[2].w"] = {"mechanism": "ball[0].w + ball[1].w"}
    d["domains"] = {"a": {"weight": 1}, "b": {"weight": 1, "overrides": {"ball[i].w": "ball[i].m * 3"}}}
    s = check_spec(DatasetSpec.from_dict(d))
    b = CompiledSCM(s).sample(0, s.samples)
    in_b = b.domain == 1
    assert in_b.any() and (~in_b).any()
    for k in range(3):
        np.testing.assert_allclose(b.column(f"ball[{k}].w")[in_b], 3 * b.column(f"ball[{k}].m")[in_b])
    np.testing.assert_allclose(b.column("ball[2].w")[~in_b], (b.column("ball[0].w") + b.column("ball[1].w"))[~in_b])


def test_counterfactual_soft_mechanism_orders_the_variables_it_reads():
    """``a`` is declared before ``c``, which only the counterfactual soft mechanism of ``a`` reads."""
    s = check_spec(DatasetSpec.from_dict({
        "name": "cf", "samples": 100,
        "variables": {"a": {"noise": "uniform(0, 1)"}, "c": {"noise": "uniform(0, 1)"}},
        "counterfactuals": {"fraction": 0.5, "intervention": {"a": "soft('c + 1')"}}}))
    b = CompiledSCM(s).sample(0, s.samples)
    hit = b.intervention_mask[:, b.names.index("a")]
    assert hit.any()
    np.testing.assert_allclose(b.column("a")[hit], b.column("c")[hit] + 1)


@pytest.mark.parametrize("over, path", [
    ({"counterfactuals": {"fraction": 0.5, "intervention": {"ball[i].w": "soft('ball[i].q')"}}},
     "counterfactuals.intervention.ball[i].w"),
    ({"interventions": {"regime": "sets", "fraction": 0.5, "sets": [{"targets": {"ball[i].w": "soft('ball[i].q')"}}]}},
     "interventions.sets[0].targets.ball[i].w"),
])
def test_unknown_name_in_a_soft_mechanism_is_a_spec_error(over, path):
    with pytest.raises(SpecError) as e:
        balls(**over)
    assert str(e.value).startswith(f"{path}: unknown variable 'ball[0].q'")


def test_cli_check_of_templated_soft_intervention(tmp_path, capsys):
    p = tmp_path / "ov3.yaml"
    p.write_text("name: ov3\nsamples: 20\nobjects: 3\nvariables:\n"
                 "  ball[i].m: {range: [0, 1], noise: \"uniform(0, 1)\"}\n"
                 "  ball[i].w: {mechanism: \"ball[i].m * 2\"}\n"
                 "interventions: {regime: single_node, fraction: 0.5, targets: {\"ball[i].w\": \"soft('ball[i].m * 3')\"}}\n")
    code, out, err = run_cli(capsys, "check", str(p))
    assert (code, err) == (0, "")
    assert out.startswith("OK ov3:")


TS: dict[str, Any] = {
    "name": "ts", "samples": 400, "objects": 2,
    "variables": {"ball[i].x": {"range": [0, 1], "noise": "uniform(0, 1)"},
                  "ball[1].x": {"range": [0.5, 1], "noise": "uniform(0.5, 1)"}},  # do(0.25) would be out of its range
}


@pytest.mark.parametrize("targets", [{"ball[i].x": "do(0.25)", "ball[1].x": "do(0.75)"},
                                     {"ball[1].x": "do(0.75)", "ball[i].x": "do(0.25)"}], ids=["after", "before"])
def test_single_node_specific_target_wins_over_its_template(targets):
    d = copy.deepcopy(TS)
    d["interventions"] = {"regime": "single_node", "fraction": 0.5, "targets": targets}
    s = check_spec(DatasetSpec.from_dict(d))
    opts = s.intervention_options()
    assert sorted((t, iv.value) for o in opts for t, iv in o.items()) == [("ball[0].x", 0.25), ("ball[1].x", 0.75)]
    b = CompiledSCM(s).sample(0, s.samples)
    for o, opt in enumerate(opts):  # the stored code o means option o
        (t, iv), = opt.items()
        rows = b.intervention == o
        assert 60 < rows.sum() < 140  # each object drawn about as often: 200 intervened samples, 2 options
        np.testing.assert_array_equal(b.column(t)[rows], iv.value)
        np.testing.assert_array_equal(b.intervention_mask[:, b.names.index(t)], rows)  # and only there
        assert CompiledSCM(s)._iv_fields[(o, t)][0] == f"interventions.targets.{'ball[1].x' if t == 'ball[1].x' else 'ball[i].x'}"


@pytest.mark.parametrize("over", [
    {"interventions": {"regime": "sets", "fraction": 0.5,
                       "sets": [{"targets": {"ball[i].x": "do(0.25)", "ball[1].x": "do(0.75)"}}]}},
    {"counterfactuals": {"fraction": 0.5, "intervention": {"ball[i].x": "do(0.25)", "ball[1].x": "do(0.75)"}}},
], ids=["sets", "counterfactual"])
def test_specific_target_wins_in_a_target_map(over):
    d = copy.deepcopy(TS)
    d.update(over)
    s = check_spec(DatasetSpec.from_dict(d))
    b = CompiledSCM(s).sample(0, s.samples)
    for k, v in ((0, 0.25), (1, 0.75)):
        hit = b.intervention_mask[:, b.names.index(f"ball[{k}].x")]
        assert hit.any()
        np.testing.assert_array_equal(b.column(f"ball[{k}].x")[hit], v)


def test_sampling_problems_come_together():
    """A boolean given 2 by an intervention, a boolean mechanism giving 1.5, a non-finite and an out-of-range
    variable: one SpecError, one line each, in the order the variables are evaluated."""
    s = DatasetSpec.from_dict({
        "name": "sb", "samples": 50,
        "variables": {"a": {"range": [0, 1], "noise": "uniform(0, 1)"}, "f": {"type": "boolean", "noise": "bernoulli(0.5)"},
                      "g": {"type": "boolean", "mechanism": "f"}, "h": {"type": "boolean", "mechanism": "a + 0.5"},
                      "k": {"mechanism": "log(a - 2)"}, "m": {"range": [0, 1], "mechanism": "a + 1"}},
        "interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"g": "shift(1)"}}})
    with pytest.raises(SpecError) as e:
        check_spec(s)
    assert [p.split(": ")[0] for p in e.value.problems] == ["interventions.targets.g", "variables.h", "variables.k", "variables.m"]
    assert "a boolean is 0 or 1, its shift intervention gives 2" in e.value.problems[0]
    assert "a boolean is 0 or 1, its mechanism gives" in e.value.problems[1]
