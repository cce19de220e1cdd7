"""The Python authoring API, the shorthands, derived structure and the JSON Schema of specs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

import crlgen.schemas as S
from crlgen.pipeline import check_spec, load_spec
from crlgen.scenes.registry import CATALOG_DIR as CATALOG
from crlgen.schemas import Dataset, DatasetSpec, SpecError
from crlgen.schemas.jsonschema import SCHEMA_PATH, dataset_json_schema, render_schema
from crlgen.schemas.noise import Noise

SPRING_FILE = CATALOG / "static" / "spring.yaml"
CATALOG_FILES = sorted(CATALOG.rglob("*.yaml"))


def small() -> DatasetSpec:
    """A spec written with the model classes, in a few lines."""
    return Dataset(
        name="api", samples=50, parameters={"g": 9.81},
        variables={
            "a": S.Continuous(range=(0, 1), noise=S.Uniform(low=0, high=1)),
            "b": S.Continuous(mechanism="g * a + eps", noise=S.Normal(std=0.1)),
            "c": S.CategoricalVariable(levels=("x", "y"), noise=S.Categorical(probs=(0.5, 0.5))),
        },
        domains={"earth": S.Domain(weight=1), "moon": S.Domain(weight=1, parameters={"g": 1.62}, overrides={"b": "g * a + c + eps"})},
        interventions=S.SingleNode(fraction=0.2, targets={"a": S.Do(value=0.5), "b": S.Shift(by=1.0)}),
        counterfactuals=S.Counterfactuals(fraction=0.1, intervention={"a": S.Do(value=0.9)}),
    )


# ----- building and loading -------------------------------------------------------------------
def test_model_classes_and_mapping_build_the_same_spec():
    spec = small()
    same = DatasetSpec.from_dict({
        "name": "api", "samples": 50, "parameters": {"g": 9.81},
        "variables": {"a": {"range": [0, 1], "noise": "uniform(0, 1)"},
                      "b": {"mechanism": "g * a + eps", "noise": "normal(0, 0.1)"},
                      "c": {"type": "categorical", "levels": ["x", "y"], "noise": "categorical(0.5, 0.5)"}},
        "domains": {"earth": {"weight": 1}, "moon": {"weight": 1, "parameters": {"g": 1.62}, "overrides": {"b": "g * a + c + eps"}}},
        "interventions": {"regime": "single_node", "fraction": 0.2, "targets": {"a": "do(0.5)", "b": "shift(+1)"}},
        "counterfactuals": {"fraction": 0.1, "intervention": "do(a = 0.9)"},
    })
    assert spec == same
    assert check_spec(spec) is spec  # latents only: no world to disagree with
    assert Dataset is DatasetSpec


def test_specs_are_frozen():
    from pydantic import ValidationError

    spec = small()
    with pytest.raises(ValidationError, match="frozen"):
        spec.samples = 3  # type: ignore[misc]


def test_load_catalogue_name_and_file_path():
    by_name = load_spec("static/spring")
    assert by_name == load_spec(SPRING_FILE) == load_spec(str(SPRING_FILE)) == S.load_spec(SPRING_FILE)
    assert by_name.name == "spring" and by_name.world == "static/spring"
    assert check_spec(by_name) is by_name


def test_load_unknown_name_is_a_spec_error():
    with pytest.raises(SpecError) as info:
        load_spec("static/nope")
    assert info.value.problems[0].startswith("static/nope: ")


def test_with_samples_and_intervene_then_check():
    base = load_spec("static/spring")
    spec = base.with_samples(200).intervene("k", do=350.0, fraction=0.2)
    assert check_spec(spec) is spec
    assert spec.samples == 200
    reg = spec.interventions
    assert reg.regime == "single_node" and reg.fraction == 0.2
    assert reg.targets["k"] == S.Do(value=350.0)
    assert reg.targets["rho"] == S.Shift(by=2000.0) and reg.targets["h"] == S.Do(value=0.09)  # the rest is kept
    assert base.samples == 2000 and base.interventions.targets["k"].dist is not None  # the original is unchanged
    assert spec.with_seed(5).seed == 5


def test_intervene_on_observational_spec_and_its_errors():
    spec = small().replace(interventions={"regime": "observational"})
    iv = spec.intervene("b", scale=2.0).interventions
    assert iv.regime == "single_node" and iv.fraction == 0.5 and iv.targets == {"b": S.Scale(by=2.0)}
    soft = spec.intervene("b", soft="3 * a").interventions.targets["b"]
    assert soft == S.Soft(mechanism="3 * a")
    assert spec.intervene("a", do="uniform(0.2, 0.4)").interventions.targets["a"] == S.Do(dist=S.Uniform(low=0.2, high=0.4))
    with pytest.raises(SpecError) as info:
        spec.intervene("b", do=1.0, shift=2.0)
    assert info.value.problems == ["interventions.targets.b: give exactly one of do, shift, scale or soft"]
    with pytest.raises(SpecError) as info:
        spec.intervene("zz", do=1.0)
    assert any(p.startswith("interventions.targets.zz: intervention on unknown variable") for p in info.value.problems)
    with pytest.raises(SpecError) as info:
        spec.intervene("a", do=5.0)
    assert any("outside the declared range" in p for p in info.value.problems)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_dump_and_load_back_equal(tmp_path: Path, suffix: str):
    spec = load_spec("static/spring").with_samples(200).intervene("k", do=350.0, fraction=0.2)
    path = spec.dump(tmp_path / f"x{suffix}")
    assert path.exists()
    assert load_spec(path) == spec
    text = path.read_text()
    if suffix == ".json":
        assert json.loads(text)["samples"] == 200
    else:
        assert "noise: uniform(0.02, 0.1)" in text  # written the way authors write it
        assert yaml.safe_load(text)["interventions"]["targets"]["k"] == "do(350.0)"


def test_round_trip_keeps_every_variable_type(tmp_path: Path):
    """Integer, categorical and boolean variables keep their type through to_dict, YAML and JSON."""
    spec = DatasetSpec.from_dict({
        "name": "types", "samples": 10,
        "variables": {"x": {"noise": "normal(0, 1)"},
                      "n": {"type": "integer", "range": [0, 5], "noise": "uniform(0, 5)"},
                      "c": {"type": "categorical", "levels": ["lo", "hi"], "noise": "categorical(0.3, 0.7)"},
                      "f": {"type": "boolean", "noise": "bernoulli(0.2)"},
                      "m": {"type": "integer", "mechanism": "n + c + f"}},
    })
    d = spec.to_dict()
    assert "type" not in d["variables"]["x"]  # continuous is the default and stays implicit
    assert [d["variables"][k]["type"] for k in "ncfm"] == ["integer", "categorical", "boolean", "integer"]
    assert DatasetSpec.from_dict(d) == spec
    assert load_spec(spec.dump(tmp_path / "t.yaml")) == spec
    assert load_spec(spec.dump(tmp_path / "t.json")) == spec
    assert spec.replace(seed=1).variables["c"].type == "categorical"


def test_extends_catalogue_scene_merges(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text(
        "extends: static/spring\n"
        "name: my_spring\n"
        "samples: 50\n"
        "variables:\n"
        "  k: {range: [60, 400], noise: 'uniform(60, 380)'}\n"
        "domains:\n"
        "  moon: {parameters: {g: 3.0}}\n"
    )
    spec = load_spec(tmp_path / "mine.yaml")
    base = load_spec("static/spring")
    assert spec.name == "my_spring" and spec.samples == 50
    assert spec.variables["k"].range == (60.0, 400.0) and spec.variables["k"].noise == S.Uniform(low=60, high=380)
    assert spec.variables["k"].unit == "N/m"  # merged into the base variable, not replacing it
    assert spec.variables["h"] == base.variables["h"]
    assert spec.domains["moon"].parameters == {"g": 3.0} and spec.domains["moon"].weight == 0.5
    assert spec.interventions == base.interventions and spec.world == base.world
    check_spec(spec)


def test_extends_replaces_a_union_member_it_switches(tmp_path: Path):
    """A mapping that names another regime, type, kind or distribution replaces the base's whole,
    instead of inheriting fields the new member does not have."""
    (tmp_path / "obs.yaml").write_text(
        "extends: static/spring\n"
        "interventions: {regime: observational}\n"
        "render: {views: [{kind: fixed, name: side, position: [0.4, 0, 0.2]}]}\n"
    )
    spec = load_spec(tmp_path / "obs.yaml")
    assert spec.interventions.regime == "observational"  # single_node's fraction and targets are not kept
    assert spec.render.engine == "cycles" and spec.render.size == 64  # render itself still merges
    check_spec(spec)
    from crlgen.schemas._yaml import deep_merge

    base = {"noise": {"dist": "uniform", "low": 0, "high": 1}, "cam": {"kind": "orbit", "fov": 40}}
    assert deep_merge(base, {"noise": {"dist": "uniform", "high": 2}})["noise"] == {"dist": "uniform", "low": 0, "high": 2}
    assert deep_merge(base, {"noise": {"dist": "normal", "std": 2}})["noise"] == {"dist": "normal", "std": 2}
    assert deep_merge(base, {"cam": {"kind": "fixed"}})["cam"] == {"kind": "fixed"}


def test_extends_a_relative_file_and_unknown_base(tmp_path: Path):
    load_spec("static/spring").with_samples(30).dump(tmp_path / "base.yaml")
    (tmp_path / "child.yaml").write_text("extends: base.yaml\nseed: 7\n")
    child = load_spec(tmp_path / "child.yaml")
    assert child.samples == 30 and child.seed == 7
    (tmp_path / "bad.yaml").write_text("extends: static/nothing\n")
    with pytest.raises(SpecError) as info:
        load_spec(tmp_path / "bad.yaml")
    assert info.value.problems[0].startswith("extends: no catalogue scene or file named 'static/nothing'")


# ----- shorthands ---------------------------------------------------------------------------------
NOISE = TypeAdapter(Noise)
NOISE_FORMS = [
    ("normal(0, 2)", {"dist": "normal", "mean": 0, "std": 2}),
    ("normal(mean=1, std=0.5)", {"dist": "normal", "mean": 1, "std": 0.5}),
    ("uniform(-1, 3)", {"dist": "uniform", "low": -1, "high": 3}),
    ("laplace(1, 0.5)", {"dist": "laplace", "loc": 1, "scale": 0.5}),
    ("beta(2, 3)", {"dist": "beta", "a": 2, "b": 3}),
    ("beta(2, 3, 10, 20)", {"dist": "beta", "a": 2, "b": 3, "low": 10, "high": 20}),
    ("exponential(2)", {"dist": "exponential", "scale": 2}),
    ("lognormal(0, 0.5)", {"dist": "lognormal", "mean": 0, "sigma": 0.5}),
    ("categorical(0.2, 0.3, 0.5)", {"dist": "categorical", "probs": [0.2, 0.3, 0.5]}),
    ("categorical([0.2, 0.8])", {"dist": "categorical", "probs": [0.2, 0.8]}),
    ("bernoulli(0.3)", {"dist": "bernoulli", "p": 0.3}),
    ("mixture(normal(0, 1), uniform(2, 3))",
     {"dist": "mixture", "components": [{"dist": "normal", "mean": 0, "std": 1}, {"dist": "uniform", "low": 2, "high": 3}]}),
    ("mixture(normal(0, 1), laplace(5, 1), weights=[1, 3])",
     {"dist": "mixture", "components": ["normal(0, 1)", {"dist": "laplace", "loc": 5, "scale": 1}], "weights": [1, 3]}),
]


def test_every_distribution_has_a_shorthand():
    from crlgen.schemas.noise import DISTRIBUTIONS

    assert {m["dist"] for _, m in NOISE_FORMS} == set(DISTRIBUTIONS)


@pytest.mark.parametrize(("short", "mapping"), NOISE_FORMS, ids=[s for s, _ in NOISE_FORMS])
def test_noise_shorthand_equals_mapping_and_round_trips(short: str, mapping: dict):
    model = NOISE.validate_python(short)
    assert model == NOISE.validate_python(mapping)
    assert NOISE.validate_python(model.shorthand()) == model
    assert NOISE.dump_python(model) == model.shorthand()  # written back as the shorthand
    # and inside a spec, as a variable's noise
    v = DatasetSpec.from_dict({"name": "n", "samples": 2, "variables": {"x": {"noise": short}}}).variables["x"]
    assert v.noise == model


def test_intervention_shorthands():
    spec = DatasetSpec.from_dict({
        "name": "iv", "samples": 10,
        "variables": {"a": {"range": [0, 10], "noise": "uniform(0, 5)"}, "b": {"mechanism": "a + eps", "noise": "normal(0, 1)"}},
        "interventions": {"regime": "sets", "fraction": 0.5, "sets": [
            {"targets": {"a": "do(3)", "b": "shift(+2)"}},
            {"targets": {"a": 4.5, "b": "scale(-1)"}},
            {"targets": {"a": "do(uniform(1, 2))", "b": "soft('2 * a + eps', noise=normal(0, 3))"}},
            {"targets": "do(a = 1, b = 2)"},
        ]},
    })
    sets = [s.targets for s in spec.interventions.sets]
    assert sets[0] == {"a": S.Do(value=3), "b": S.Shift(by=2)}
    assert sets[1] == {"a": S.Do(value=4.5), "b": S.Scale(by=-1)}
    assert sets[2] == {"a": S.Do(dist=S.Uniform(low=1, high=2)), "b": S.Soft(mechanism="2 * a + eps", noise=S.Normal(std=3))}
    assert sets[3] == {"a": S.Do(value=1), "b": S.Do(value=2)}
    assert DatasetSpec.from_dict(spec.to_dict()) == spec


def test_counterfactual_do_shorthand():
    cf = S.Counterfactuals(fraction=0.1, intervention="do(k = 350)")
    assert cf.intervention == {"k": S.Do(value=350.0)}
    two = S.Counterfactuals(fraction=0.1, intervention="do(k = 350, h = uniform(0.02, 0.05))")
    assert two.intervention == {"k": S.Do(value=350.0), "h": S.Do(dist=S.Uniform(low=0.02, high=0.05))}
    spring = load_spec("static/spring")
    assert spring.counterfactuals.intervention == {"k": S.Do(value=350.0)}
    assert spring.to_dict()["counterfactuals"]["intervention"] == {"k": "do(350.0)"}


def _video(edits: list[dict]) -> DatasetSpec:
    return DatasetSpec.from_dict({"name": "vid", "samples": 10, "world": None, "video": {"fps": 10, "frames": 20},
                                  "variables": {"a": {"noise": "normal(0, 1)"}}, "temporal_edits": edits})


def test_temporal_edit_shorthand():
    spec = _video([
        {"at_frame": 5, "do": "ball[0].vx += 1.5", "fraction": 0.5},
        {"at_time": 0.5, "do": "ball[1].vx -= 2"},
        {"at_frame": 2, "until_frame": 8, "do": "wind *= 3"},
        {"at_frame": 1, "do": "wind = 0"},
        {"at_frame": 1, "do": "wind ~ uniform(0, 2)"},
    ])
    e = spec.temporal_edits
    assert (e[0].target, e[0].op, e[0].value, e[0].at_frame, e[0].fraction) == ("ball[0].vx", "add", 1.5, 5, 0.5)
    assert (e[1].target, e[1].op, e[1].value, e[1].start_frame(10)) == ("ball[1].vx", "add", -2.0, 5)
    assert (e[2].op, e[2].value, e[2].end_frame()) == ("scale", 3.0, 8)
    assert (e[3].op, e[3].value, e[3].end_frame()) == ("set", 0.0, -1)
    assert (e[4].op, e[4].value) == ("set", S.Uniform(low=0, high=2))
    assert e[0] == S.TemporalEdit(target="ball[0].vx", op="add", value=1.5, at_frame=5, fraction=0.5)
    assert DatasetSpec.from_dict(spec.to_dict()) == spec


def test_yaml_reads_on_off_yes_no_as_the_text_written(tmp_path: Path):
    """YAML 1.1 reads plain ``on``/``off``/``yes``/``no`` as True/False: a variable named ``on`` became the key
    True ("variables[1]: Input should be a valid string"). Specs are read as YAML 1.2: only true/false are booleans."""
    path = tmp_path / "switches.yaml"
    path.write_text("name: switches\nsamples: 4\nvariables:\n"
                    "  on: {type: boolean, noise: bernoulli(0.5)}\n"
                    "  off: {type: boolean, mechanism: not on}\n"
                    "  answer: {type: categorical, levels: [no, yes, On, OFF], noise: 'categorical(1, 1, 1, 1)'}\n"
                    "  s: {time_varying: false, noise: 'uniform(0, 1)'}\n")
    spec = load_spec(path)
    assert list(spec.variables) == ["on", "off", "answer", "s"]
    assert spec.variables["answer"].levels == ("no", "yes", "On", "OFF")
    assert spec.variables["s"].time_varying is False  # true/false stay booleans
    out = tmp_path / "again.yaml"
    spec.dump(out)
    assert load_spec(out) == spec


def test_temporal_edits_without_a_world_pass_the_schema_but_not_check():
    spec = _video([{"at_frame": 3, "do": "ball[0].vx += 1.5"}])
    assert spec.world is None and spec.video.n_frames == 20
    with pytest.raises(SpecError) as info:
        check_spec(spec)
    assert info.value.problems == ["world: a video spec needs a world that simulates it"]


# ----- derived structure ----------------------------------------------------------------------------
def test_per_object_templates_expand():
    spec = DatasetSpec.from_dict({
        "name": "balls", "samples": 10, "objects": 3,
        "variables": {
            "ball[i].radius": {"range": [0.03, 0.08], "noise": "uniform(0.03, 0.08)"},
            "ball[i].mass": {"mechanism": "7800 * 4.18879 * ball[i].radius**3"},
            "total": {"mechanism": "ball[0].mass + ball[1].mass + ball[2].mass"},
            "ball[i].x": {"time_varying": True},
        },
    })
    g = spec.graph
    assert set(g.names) == {*(f"ball[{k}].{f}" for k in range(3) for f in ("radius", "mass")), "total"}
    for k in range(3):
        node = g.node(f"ball[{k}].mass")
        assert node.parents == (f"ball[{k}].radius",)
        assert node.template == "ball[i].mass" and node.object_index == k
        assert node.mechanism == f"7800 * 4.18879 * ball[{k}].radius**3"
    assert set(g.node("total").parents) == {"ball[0].mass", "ball[1].mass", "ball[2].mass"}
    assert g.states == ("ball[0].x", "ball[1].x", "ball[2].x")
    order = list(g.names)
    assert all(order.index(p) < order.index(n.name) for n in g.nodes for p in n.parents)  # topological
    assert spec.expand_names("ball[i].mass") == ["ball[0].mass", "ball[1].mass", "ball[2].mass"]
    # objects per prefix
    two = spec.replace(objects={"ball": 2}, variables={k: v for k, v in spec.to_dict()["variables"].items() if k != "total"})
    assert two.expand_names("ball[i].radius") == ["ball[0].radius", "ball[1].radius"]


def test_templated_intervention_targets_expand():
    spec = DatasetSpec.from_dict({
        "name": "balls", "samples": 10, "objects": 2,
        "variables": {"ball[i].r": {"range": [0, 1], "noise": "uniform(0, 1)"}},
        "interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"ball[i].r": "do(0.5)"}},
    })
    assert spec.intervention_options() == ({"ball[0].r": S.Do(value=0.5)}, {"ball[1].r": S.Do(value=0.5)})


def test_graph_edges_come_from_the_expressions():
    spring = load_spec("static/spring")
    g = spring.graph
    assert set(g.edges()) == {("h", "m"), ("r", "m"), ("rho", "m"), ("m", "l"), ("k", "l")}
    assert g.node("l").parameters == ("g", "rest")  # parameters are constants, not graph nodes
    assert "g" not in g.names
    assert g.descendants("h") == {"m", "l"} and g.descendants("l") == set()
    assert g.extra_edges == ()


def test_parameters_and_domain_overrides():
    spec = small()
    assert spec.parameters == {"g": 9.81}
    assert spec.domains["moon"].parameters == {"g": 1.62}
    assert spec.graph.edges() == [("a", "b")]
    assert spec.graph.extra_edges == (("c", "b", "domain moon"),)  # an edge only in one domain
    soft = spec.replace(interventions={"regime": "single_node", "fraction": 0.1, "targets": {"a": "soft('c * 0.5')"}})
    assert ("c", "a", "soft intervention") in soft.graph.extra_edges


# ----- JSON Schema ----------------------------------------------------------------------------------
def test_committed_json_schema_is_current():
    assert SCHEMA_PATH.read_text() == render_schema(), (
        f"{SCHEMA_PATH} is stale: run `crlgen schema --write` (python -m crlgen.pipeline schema --write) and commit it")


@pytest.fixture(scope="module")
def validator():
    import jsonschema
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_catalogue_exists():
    assert SPRING_FILE in CATALOG_FILES


@pytest.mark.parametrize("path", CATALOG_FILES, ids=[p.relative_to(CATALOG).as_posix() for p in CATALOG_FILES])
def test_catalogue_validates_against_json_schema(validator, path: Path):
    data = yaml.safe_load(path.read_text())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, "\n".join(errors)


def test_written_specs_validate_against_json_schema(validator):
    specs = [small(), load_spec("static/spring").intervene("k", do=350.0),
             _video([{"at_frame": 3, "do": "ball[0].vx += 1.5"}]),
             DatasetSpec.from_dict({"name": "types", "samples": 10,
                                    "variables": {"n": {"type": "integer", "range": [0, 5], "noise": "uniform(0, 5)"},
                                                  "c": {"type": "categorical", "levels": ["lo", "hi"], "noise": "categorical(0.3, 0.7)"},
                                                  "f": {"type": "boolean", "noise": "bernoulli(0.2)"}}})]
    for spec in specs:
        errors = [e.message for e in validator.iter_errors(spec.to_dict())]
        assert not errors, f"{spec.name}: {errors}"


def test_json_schema_rejects_malformed_specs(validator):
    assert not validator.is_valid({"name": "x", "samples": "many", "variables": {"a": {"noise": "normal(0, 1)"}}})
    assert not validator.is_valid({"name": "x", "samples": 3, "variables": {"a": {"noise": "normal(0, 1)", "mechansim": "1"}}})
    assert not validator.is_valid({"name": "x", "samples": 3, "sampels": 3, "variables": {"a": {"noise": "normal(0, 1)"}}})
    assert not validator.is_valid({"name": "x", "samples": 3, "variables": {}})
    assert dataset_json_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_readme_yaml_examples_validate_against_json_schema(validator):
    """What the README tells editors to validate with: its YAML examples (extends included) pass, and a
    spec without extends must still give the required fields."""
    import re

    readme = (CATALOG.parents[1] / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert blocks
    for text in blocks:
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(text))]
        assert not errors, "\n".join(errors)
    assert not validator.is_valid({"samples": 3})  # no extends: name and variables are required
    assert validator.is_valid({"extends": "static/spring", "samples": 3})


def test_resolved_specs_write_every_default_and_hash_the_same():
    from crlgen.pipeline import make_plan

    for path in CATALOG_FILES:
        spec = load_spec(path)
        full = spec.resolved()
        assert full.resolved() == full
        assert DatasetSpec.from_dict(full.model_dump(mode="json")) == full
        assert isinstance(full.render.views, tuple) and all(not isinstance(c, str) for c in full.render.views)
        assert make_plan(full).spec_hash == make_plan(spec).spec_hash  # views: 4 and the four cameras are one dataset


@pytest.mark.parametrize("specific_first", [True, False])
def test_a_specific_name_overrides_its_template_in_either_order(specific_first):
    """``vehicle[0].present: 1`` with ``vehicle[i].present ~ bernoulli`` makes the ego car always present,
    declared before or after the template (declared before, the template used to win silently); the same
    for domain overrides and intervention targets."""
    from crlgen.pipeline import load_spec

    d = load_spec("traffic/grid_town").to_dict()
    ego = {"type": "boolean", "mechanism": "1"}
    rest = {k: v for k, v in d["variables"].items() if k != "vehicle[0].present"}
    d["variables"] = {"vehicle[0].present": ego, **rest} if specific_first else {**rest, "vehicle[0].present": ego}
    pairs = [("vehicle[0].reaction_time", "do(0.3)"), ("vehicle[i].reaction_time", "do(1.5)")]
    d["interventions"] = {"regime": "sets", "fraction": 0.3,
                          "sets": [{"targets": dict(pairs if specific_first else pairs[::-1])}]}
    spec = type(load_spec("traffic/grid_town")).from_dict(d)
    assert spec.graph.node("vehicle[0].present").mechanism == "1"
    assert spec.graph.node("vehicle[1].present").mechanism is None
    (option,) = spec.intervention_options()
    assert option["vehicle[0].reaction_time"].value == 0.3 and option["vehicle[3].reaction_time"].value == 1.5
