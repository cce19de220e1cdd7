"""A boolean latent is 0 or 1: a mechanism, noise or intervention that gives it another value is a spec error
naming the variable, never a silent coercion (``lamp.on = b + 0.5`` was read as "always on": 0.5 is true).

Where every input of a boolean's mechanism has a small finite support the mechanism is evaluated on all of
them when the model is compiled (so ``crlgen check`` refuses it whatever the sample count); otherwise the
sampler checks the values it draws.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from support.cli import run_cli

from crlgen.pipeline._scm import CompiledSCM
from crlgen.schemas import DatasetSpec, SpecError


def _spec(mechanism: str, regime: dict | None = None, samples: int = 200) -> DatasetSpec:
    data = {
        "name": "truth", "samples": samples,
        "variables": {
            "a": {"type": "boolean", "noise": "bernoulli(0.5)"},
            "b": {"type": "boolean", "noise": "bernoulli(0.5)"},
            "n": {"type": "integer", "range": [0, 3], "noise": "categorical(0.25, 0.25, 0.25, 0.25)"},
            "x": {"range": [0, 1], "noise": "uniform(0, 1)"},
            "on": {"type": "boolean", "mechanism": mechanism},
        },
    }
    if regime:
        data["interventions"] = regime
    return DatasetSpec.from_dict(data)


@pytest.mark.parametrize("mechanism", ["a + b - a * b", "1 - a", "a * b", "n == 2", "where(x > 0.5, 1, 0)", "x > 0.3 and not a",
                                       "n % 2", "1"])
def test_truth_valued_mechanisms_are_accepted(mechanism):
    batch = CompiledSCM(_spec(mechanism)).sample(0, 200)
    assert set(np.unique(batch.column("on"))) <= {0.0, 1.0}


@pytest.mark.parametrize("mechanism,line", [
    ("a + 0.5", "its mechanism 'a + 0.5' gives 0.5 at a = 0"),
    ("a + b", "its mechanism 'a + b' gives 2 at a = 1, b = 1"),
    ("n", "its mechanism 'n' gives 2 at n = 2"),
    ("a * 1.5", "its mechanism 'a * 1.5' gives 1.5 at a = 1"),
])
def test_a_mechanism_with_discrete_inputs_is_refused_before_sampling(mechanism, line):
    with pytest.raises(SpecError) as e:
        CompiledSCM(_spec(mechanism, samples=1))  # a single sample might never show it: no sampling needed
    assert str(e.value).startswith(f"variables.on: a boolean is 0 or 1, {line}; write a truth value")


@pytest.mark.parametrize("mechanism,value", [("x + a", None), ("2 * x", None), ("log(x - 2)", "nan")])
def test_a_mechanism_with_a_real_input_is_checked_on_the_values_drawn(mechanism, value):
    model = CompiledSCM(_spec(mechanism))  # not decidable from finite supports: compiles
    with pytest.raises(SpecError, match=r"variables\.on: a boolean is 0 or 1, its mechanism gives " + (value or "")):
        model.sample(0, 200, check=False)  # not skipped by check=False: there is no right value to store


def test_a_domain_s_mechanism_that_gives_a_boolean_another_value_is_blamed_on_the_domain():
    data = _spec("x > 0.5").to_dict()
    data["domains"] = {"calm": {"weight": 1}, "storm": {"weight": 1, "overrides": {"on": "x + a"}}}
    with pytest.raises(SpecError, match=r"^domains\.storm\.overrides\.on: a boolean is 0 or 1, its mechanism gives"):
        CompiledSCM(DatasetSpec.from_dict(data)).sample(0, 200, check=False)
    data["domains"]["storm"]["overrides"] = {"on": "x < 0.5"}  # a truth value in both: drawn as usual
    batch = CompiledSCM(DatasetSpec.from_dict(data)).sample(0, 200)
    assert set(np.unique(batch.column("on"))) == {0.0, 1.0}


def test_an_intervention_that_gives_a_boolean_another_value_is_refused():
    with pytest.raises(SpecError, match=r"interventions\.targets\.a: do\(\) value 0\.5 must be a whole number"):
        _spec("a", {"regime": "single_node", "fraction": 0.5, "targets": {"a": "do(0.5)"}})  # the spec itself
    with pytest.raises(SpecError, match=r"interventions\.targets\.a: shift\(1\) of 'a' ranges over \[1, 2\]"):
        _spec("a", {"regime": "single_node", "fraction": 0.5, "targets": {"a": "shift(1)"}})
    model = CompiledSCM(_spec("a", {"regime": "single_node", "fraction": 0.5, "targets": {"a": "soft('b + 0.5')"}}))
    with pytest.raises(SpecError, match=r"interventions\.targets\.a: a boolean is 0 or 1, its soft intervention gives (0\.5|1\.5)"):
        model.sample(0, 200)


def test_crlgen_check_refuses_the_lamp_that_is_always_on(capsys, tmp_path):
    """The tester's circuit: ``lamp[2].on = button[0].press + 0.5`` (a typo of ``or``)."""
    from crlgen.pipeline import load_spec

    data = load_spec("robotics/buttons_lights").to_dict()
    data["variables"]["lamp[2].on"] = {"type": "boolean", "mechanism": "button[0].press + 0.5"}
    data["samples"] = 4
    path = Path(tmp_path, "lamp.yaml")
    DatasetSpec.from_dict(data).dump(path)
    code, out, err = run_cli(capsys, "check", str(path))
    assert code == 2 and not out
    assert err.strip().splitlines() == ["error: variables.lamp[2].on: a boolean is 0 or 1, its mechanism "
                                        "'button[0].press + 0.5' gives 0.5 at button[0].press = 0; write a truth "
                                        "value (a comparison, and, or, not, where(c, 1, 0))"]


@pytest.mark.parametrize("mechanism,sampled", [("where(n > 1, k, 0)", False), ("where(x > 0.5, k, 0)", True)],
                         ids=["discrete-inputs", "real-input"])
def test_a_domain_s_parameter_that_gives_a_boolean_another_value_is_blamed_on_that_parameter(mechanism, sampled):
    """A domain that sets parameter k = 2 read by a boolean's own mechanism: the line names the domain's
    parameter, not the variable (whose mechanism is a truth value with the spec's k = 1)."""
    data = _spec("a").to_dict()
    data["parameters"] = {"k": 1.0}
    data["variables"]["on"]["mechanism"] = mechanism
    data["domains"] = {"calm": {"weight": 1}, "storm": {"weight": 1, "parameters": {"k": 2.0}}}
    spec = DatasetSpec.from_dict(data)
    with pytest.raises(SpecError) as e:
        CompiledSCM(spec).sample(0, 200) if sampled else CompiledSCM(spec)
    assert e.value.problems[0].startswith("domains.storm.parameters.k: a boolean is 0 or 1, its mechanism "), e.value.problems
    assert len(e.value.problems) == 1
    data["domains"]["storm"]["parameters"] = {"k": 1.0}  # the spec's own value: a truth value in both domains
    batch = CompiledSCM(DatasetSpec.from_dict(data)).sample(0, 200)
    assert set(np.unique(batch.column("on"))) == {0.0, 1.0}


def test_the_spec_s_own_mechanism_failing_is_blamed_once_on_the_variable():
    data = _spec("n").to_dict()
    data["parameters"] = {"k": 1.0}
    data["domains"] = {"calm": {"weight": 1}, "storm": {"weight": 1, "noise": {"n": "categorical(0.5, 0.5)"}}}
    with pytest.raises(SpecError) as e:
        CompiledSCM(DatasetSpec.from_dict(data))
    assert [p.split(":")[0] for p in e.value.problems] == ["variables.on"]
