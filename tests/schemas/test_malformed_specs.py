"""A corpus of malformed specs: each must fail with one ``path: message`` line naming its field.

Every case is built from a small valid base spec (or is a YAML text) and states the
field path the problem must be reported at and a fragment of the message. Three
layers are exercised: ``DatasetSpec.from_dict`` (fields and semantics),
``crlgen.schemas._yaml.parse_text`` (YAML-level problems) and ``crlgen.pipeline.check_spec``
(the spec against its world). A few cases then go through ``crlgen check`` as files.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from crlgen.pipeline import check_spec
from crlgen.scenes.registry import catalog_path
from crlgen.schemas import DatasetSpec, SpecError
from crlgen.schemas._yaml import parse_text
from crlgen.schemas.loading import read_mapping

REPO = Path(__file__).resolve().parents[2]

#: A small valid latents-only spec: a bounded root, a child with noise, a categorical root, a parameter.
BASE: dict[str, Any] = {
    "name": "bad",
    "samples": 100,
    "seed": 0,
    "parameters": {"g": 9.81},
    "variables": {
        "a": {"range": [0, 1], "noise": "uniform(0, 1)"},
        "b": {"mechanism": "g * a + eps", "noise": "normal(0, 0.1)"},
        "c": {"type": "categorical", "levels": ["x", "y", "z"], "noise": "categorical(0.2, 0.3, 0.5)"},
    },
}
VIDEO = {"fps": 10, "frames": 20}
DELETE = object()


def merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if v is DELETE:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def spec(**over: Any) -> dict:
    """The base spec with top-level fields deep-merged (``DELETE`` removes a key)."""
    return merge(BASE, over)


def var(**variables: Any) -> dict:
    """The base spec with variables added or replaced (replaced whole, not merged)."""
    d = copy.deepcopy(BASE)
    for name, body in variables.items():
        if body is DELETE:
            d["variables"].pop(name)
        else:
            d["variables"][name] = body
    return d


def single(targets: dict | str, fraction: float = 0.2, **over: Any) -> dict:
    return spec(interventions={"regime": "single_node", "fraction": fraction, "targets": targets}, **over)


def mech(src: str, noise: str | None = None) -> dict:
    """Variable ``b`` with the mechanism ``src``."""
    return var(b={"mechanism": src, **({"noise": noise} if noise else {})})


def edit(**e: Any) -> dict:
    return {"do": "ball[0].vx += 1.5", **e}


def spring() -> dict:
    """The catalogue spring as a mapping (for world-level cases)."""
    return read_mapping("static/spring", catalog_path)


def falling() -> dict:
    """The catalogue falling_simple as a mapping."""
    return read_mapping("physics/falling_simple", catalog_path)


def spring_without_k() -> dict:
    d = spring()
    d["variables"]["stiffness"] = d["variables"].pop("k")
    d["variables"]["l"]["mechanism"] = "max(rest - g * m / stiffness + eps, 0.01)"
    d["interventions"]["targets"].pop("k")
    d["counterfactuals"]["intervention"] = "do(stiffness = 350)"
    return d


@dataclass(frozen=True)
class Case:
    id: str
    data: dict | str  # a mapping for from_dict, or YAML text for parse_text
    path: str
    fragment: str
    world: bool = False  # the problem is between the spec and its world: found by .check()


# fmt: off
CASES: list[Case] = [
    # ----- equations and the graph
    Case("unknown-variable-in-equation", mech("2 * zz + eps", "normal(0, 1)"), "variables.b.mechanism", "unknown variable 'zz'"),
    Case("unknown-indexed-variable", merge(var(**{"ball[i].r": {"noise": "uniform(1, 2)"}, "t": {"mechanism": "ball[5].r"}}), {"objects": 2}),
         "variables.t.mechanism", "unknown variable 'ball[5].r'"),
    Case("cycle", var(p={"mechanism": "q + 1"}, q={"mechanism": "p * 2"}), "variables", "the equations form a cycle: p -> q -> p"),
    Case("cycle-three", var(p={"mechanism": "r + 1"}, q={"mechanism": "p * 2"}, r={"mechanism": "q - a"}),
         "variables", "the equations form a cycle: "),
    Case("self-loop", var(p={"mechanism": "p + 1"}), "variables", "cycle: p -> p"),
    Case("cycle-through-domain-override", spec(domains={"d": {"overrides": {"a": "b * 0 + eps"}}}),
         "domains.d.overrides.a", "reads 'b', which depends on 'a': the equations form a cycle: a -> b -> a"),
    Case("mechanism-uses-time-varying-state", var(x={"time_varying": True}, b={"mechanism": "x + eps", "noise": "normal(0, 1)"}),
         "variables.b.mechanism", "uses the time-varying state 'x'"),
    # ----- interventions
    Case("intervention-unknown-variable", single({"zz": "do(1)"}), "interventions.targets.zz", "intervention on unknown variable 'zz'"),
    Case("intervention-on-state", merge(single({"x": "do(1)"}, video=VIDEO), {"variables": {"x": {"time_varying": True}}}),
         "interventions.targets.x", "'x' is a time-varying state; intervene on it with a temporal edit"),
    Case("explicit-sample-twice", spec(interventions={"regime": "explicit", "assignments": [
            {"samples": [1, 2], "targets": {"a": 0.5}}, {"samples": {"start": 0, "stop": 3}, "targets": {"a": 0.2}}]}),
         "interventions.assignments[1].samples", "sample 1 is intervened twice (also in assignments[0])"),
    Case("explicit-index-beyond-samples", spec(interventions={"regime": "explicit", "assignments": [
            {"samples": [1, 200], "targets": {"a": 0.5}}]}),
         "interventions.assignments[0].samples", "sample index 200 is beyond samples = 100"),
    Case("explicit-range-beyond-samples", spec(interventions={"regime": "explicit", "assignments": [
            {"samples": {"start": 50, "stop": 101}, "targets": {"a": 0.5}}]}),
         "interventions.assignments[0].samples", "sample index 100 is beyond samples = 100"),
    Case("do-value-outside-range", single({"a": "do(2)"}), "interventions.targets.a", "do() value 2 is outside the declared range [0, 1]"),
    Case("do-bare-number-outside-range", single({"a": -0.5}), "interventions.targets.a", "do() value -0.5 is outside the declared range"),
    Case("do-distribution-outside-range", single({"a": "do(uniform(0, 3))"}), "interventions.targets.a",
         "do() distribution uniform ranges over [0, 3], outside the declared range [0, 1]"),
    Case("do-unbounded-distribution-on-bounded", single({"a": "do(normal(0.5, 0.1))"}), "interventions.targets.a",
         "do() distribution normal is unbounded but the variable declares range [0, 1]"),
    Case("shift-leaves-range", single({"a": "shift(+0.5)"}), "interventions.targets.a", "shift(0.5) of 'a' ranges over [0.5, 1.5]"),
    Case("scale-leaves-range", single({"a": "scale(3)"}), "interventions.targets.a", "scale(3) of 'a' ranges over [0, 3]"),
    Case("categorical-do-not-whole", single({"c": "do(1.5)"}), "interventions.targets.c", "must be a whole number for a categorical variable"),
    Case("unknown-intervention-kind", single({"a": "push(1)"}), "interventions.targets.a", "unknown intervention 'push'"),
    Case("regime-fraction-zero", single({"a": "do(0.5)"}, fraction=0), "interventions.fraction", "greater than 0"),
    Case("regime-no-targets", single({}), "interventions.targets", "expected at least one target"),
    # ----- noise
    Case("unknown-noise-shorthand", var(a={"range": [0, 1], "noise": "gauss(0, 1)"}), "variables.a.noise", "unknown noise distribution 'gauss'"),
    Case("unknown-noise-mapping", var(a={"range": [0, 1], "noise": {"dist": "gauss", "mu": 0}}), "variables.a.noise",
         "unknown noise distribution 'gauss'"),
    Case("uniform-low-not-below-high", var(a={"noise": "uniform(1, 1)"}), "variables.a.noise", "uniform needs low < high, got low=1, high=1"),
    Case("normal-std-zero", mech("a + eps", "normal(0, 0)"), "variables.b.noise.std", "greater than 0"),
    Case("normal-std-negative-mapping", mech("a + eps", {"dist": "normal", "std": -1}), "variables.b.noise.std", "greater than 0"),
    Case("beta-a-zero", var(a={"range": [0, 1], "noise": "beta(0, 2)"}), "variables.a.noise.a", "greater than 0"),
    Case("noise-too-many-arguments", var(a={"noise": "uniform(0, 1, 2)"}), "variables.a.noise", "uniform takes at most 2 positional arguments"),
    Case("root-noise-outside-range", var(a={"range": [0, 1], "noise": "uniform(0, 2)"}), "variables.a.noise",
         "noise uniform ranges over [0, 2], outside the declared range [0, 1]"),
    Case("domain-noise-unknown-variable", spec(domains={"d": {"noise": {"zz": "normal(0, 1)"}}}), "domains.d.noise.zz", "unknown variable 'zz'"),
    Case("domain-noise-bad-params", spec(domains={"d": {"noise": {"b": "normal(0, -1)"}}}), "domains.d.noise.b.std", "greater than 0"),
    # ----- top-level numbers
    Case("samples-zero", spec(samples=0), "samples", "greater than or equal to 1"),
    Case("samples-negative", spec(samples=-5), "samples", "greater than or equal to 1"),
    Case("seed-negative", spec(seed=-1), "seed", "greater than or equal to 0"),
    Case("name-with-spaces", spec(name="my spec"), "name", "should match pattern"),
    Case("no-variables", {**BASE, "variables": {}}, "variables", "at least 1 item"),
    Case("missing-samples", spec(samples=DELETE), "samples", "required field is missing"),
    # ----- disallowed expressions beyond the generated DISALLOWED x PLACES cases below
    Case("mechanism-attribute-of-expression", mech("(a + 1).real"), "variables.b.mechanism", "attribute/subscript on a non-variable"),
    Case("mechanism-syntax-error", mech("a +* 2"), "variables.b.mechanism", "syntax error"),
    Case("override-unknown-variable-in-expression", spec(domains={"d": {"overrides": {"b": "zz + eps"}}}), "domains.d.overrides.b",
         "unknown variable 'zz'"),
    Case("soft-shorthand-lambda", single({"b": "soft('lambda: 1')"}), "interventions.targets.b.mechanism", "disallowed syntax (lambda)"),
    Case("soft-unknown-variable", single({"b": {"kind": "soft", "mechanism": "zz * 2"}}), "interventions.targets.b", "unknown variable 'zz'"),
    Case("soft-eps-without-noise", merge(single({"b": {"kind": "soft", "mechanism": "a + eps"}}), {"variables": {"b": {"mechanism": "2 * a", "noise": DELETE}}}),
         "interventions.targets.b", "soft mechanism uses 'eps' but 'b' has no noise"),
    # ----- equations: mechanism / noise / time_varying
    Case("eps-without-noise", mech("a + eps"), "variables.b", "mechanism uses 'eps' but no noise distribution is declared"),
    Case("noise-declared-but-unused", mech("a + 1", "normal(0, 1)"), "variables.b", "noise is declared but the mechanism does not use 'eps'"),
    Case("neither-mechanism-nor-noise", var(b={"unit": "m"}), "variables.b", "expected a mechanism, a noise distribution"),
    Case("time-varying-with-mechanism", var(x={"time_varying": True, "mechanism": "a"}), "variables.x",
         "a time_varying variable is simulated by the world"),
    Case("time-varying-with-noise", var(x={"time_varying": True, "noise": "normal(0, 1)"}), "variables.x", "give it no mechanism or noise"),
    # ----- temporal edits
    Case("edit-beyond-video", spec(video=VIDEO, temporal_edits=[edit(at_frame=30)]), "temporal_edits[0]",
         "at_frame 30 is beyond the video length (20 frames, last frame 19)"),
    Case("edit-at-time-beyond-video", spec(video=VIDEO, temporal_edits=[edit(at_frame=1), edit(at_time=2.5)]), "temporal_edits[1]",
         "at_time 2.5s (frame 25) is beyond the video length"),
    Case("edit-without-video", spec(temporal_edits=[edit(at_frame=3)]), "temporal_edits[0]",
         "temporal edits need a world that simulates video: name a video `world`"),  # (it said: add `video`)
    Case("edit-without-video-in-a-world", spec(world="physics/falling_simple", temporal_edits=[edit(at_frame=3)]),
         "temporal_edits[0]", "temporal edits need a video scene (add `video: {fps, frames}`)"),
    Case("edit-until-not-after-at", spec(video=VIDEO, temporal_edits=[edit(at_frame=5, until_frame=5)]), "temporal_edits[0]",
         "until_frame 5 must be in (5, 20]"),
    Case("edit-until-beyond-video", spec(video=VIDEO, temporal_edits=[edit(at_frame=5, until_frame=21)]), "temporal_edits[0]",
         "until_frame 21 must be in (5, 20]"),
    Case("edit-both-at-frame-and-at-time", spec(video=VIDEO, temporal_edits=[edit(at_frame=5, at_time=0.5)]), "temporal_edits[0]",
         "give exactly one of at_frame or at_time"),
    Case("edit-neither-at-frame-nor-at-time", spec(video=VIDEO, temporal_edits=[edit()]), "temporal_edits[0]",
         "give exactly one of at_frame or at_time"),
    Case("edit-bad-assignment", spec(video=VIDEO, temporal_edits=[{"at_frame": 1, "do": "ball[0].vx ** 2"}]), "temporal_edits[0]",
         "do: expected 'target = value'"),
    # ----- wrong types
    Case("samples-string", spec(samples="many"), "samples", "valid integer"),
    Case("range-string", var(a={"range": "x", "noise": "uniform(0, 1)"}), "variables.a.range", "valid tuple"),
    Case("range-reversed", var(a={"range": [1, 0], "noise": "uniform(0, 1)"}), "variables.a.range", "low < high"),
    Case("views-zero", spec(render={"views": 0}), "render.views", "expected 1..32 views, got 0"),
    Case("views-unknown-preset", spec(render={"views": ["front", "sideways"]}), "render.views", "unknown camera preset 'sideways'"),
    Case("size-three", spec(render={"size": 3}), "render.size", "expected 8..4096 pixels per side, got 3"),
    Case("video-fps-zero", spec(video={"fps": 0, "frames": 10}), "video.fps", "greater than or equal to 1"),
    Case("unknown-variable-type", var(a={"type": "complex", "noise": "uniform(0, 1)"}), "variables.a", "type"),
    # ----- unknown fields
    Case("unknown-top-level-field", spec(sampels=100), "sampels", "unknown field"),
    Case("unknown-field-in-variable", var(a={"range": [0, 1], "noise": "uniform(0, 1)", "mechansim": "1"}), "variables.a.mechansim",
         "unknown field"),
    Case("unknown-field-in-render", spec(render={"resolution": 64}), "render.resolution", "unknown field"),
    # ----- domains
    Case("domain-weight-and-samples", spec(domains={"d": {"weight": 1, "samples": 100}}), "domains.d", "either weight or samples, not both"),
    Case("domain-samples-on-some-only", spec(domains={"d": {"samples": 100}, "e": {"weight": 1}}), "domains",
         "either every domain gives `samples` or none does"),
    Case("domain-counts-do-not-add-up", spec(domains={"d": {"samples": 40}, "e": {"samples": 50}}), "domains",
         "domain sample counts add up to 90, expected samples = 100"),
    Case("domain-parameter-not-declared", spec(domains={"d": {"parameters": {"h": 2}}}), "domains.d.parameters.h", "unknown parameter 'h'"),
    Case("domain-override-unknown-variable", spec(domains={"d": {"overrides": {"zz": "a"}}}), "domains.d.overrides.zz", "unknown variable 'zz'"),
    Case("domain-negative-weight", spec(domains={"d": {"weight": -1}}), "domains.d.weight", "greater than 0"),
    # ----- counterfactuals
    Case("counterfactual-fraction-above-half", spec(counterfactuals={"fraction": 0.6, "intervention": "do(a = 0.5)"}),
         "counterfactuals.fraction", "less than or equal to 0.5"),
    Case("counterfactual-intervention-and-edit", spec(video=VIDEO, counterfactuals={"fraction": 0.2, "intervention": "do(a = 0.5)",
                                                                                      "edit": edit(at_frame=1)}),
         "counterfactuals", "give exactly one of intervention or edit"),
    Case("counterfactual-neither", spec(counterfactuals={"fraction": 0.2}), "counterfactuals", "give exactly one of intervention or edit"),
    Case("counterfactual-outside-range", spec(counterfactuals={"fraction": 0.2, "intervention": "do(a = 5)"}),
         "counterfactuals.intervention.a", "do() value 5 is outside the declared range"),
    Case("counterfactual-unknown-target", spec(counterfactuals={"fraction": 0.2, "intervention": "do(zz = 5)"}),
         "counterfactuals.intervention.zz", "intervention on unknown variable 'zz'"),
    Case("counterfactual-positional", spec(counterfactuals={"fraction": 0.2, "intervention": "do(5)"}),
         "counterfactuals.intervention", "naming each target"),
    Case("counterfactual-one-sample", spec(samples=1, counterfactuals={"fraction": 0.2, "intervention": "do(a = 0.5)"}),
         "counterfactuals", "needs at least 2 samples"),
    # ----- per-object templates
    Case("template-without-objects", var(**{"ball[i].mass": {"noise": "uniform(1, 2)"}}), "variables.ball[i].mass",
         "a per-object name needs `objects: N`"),
    Case("objects-zero", spec(objects=0), "objects", "expected 1..256 objects"),
    Case("objects-too-many", spec(objects={"ball": 300}), "objects", "ball: expected 0..256 objects, got 300"),
    Case("object-index-beyond-count", merge(var(**{"ball[i].r": {"noise": "uniform(1, 2)"}, "ball[3].r": {"noise": "uniform(2, 3)"}}),
                                            {"objects": {"ball": 2}}),
         "objects.ball", "2 objects (ball[0..1]), but variables name ball[3].r; raise the count to 4 or remove those variables"),
    Case("object-index-of-an-absent-kind", merge(var(**{"walker[0].speed": {"noise": "uniform(1, 2)"}}), {"objects": {"walker": 0}}),
         "objects.walker", "0 objects (none), but variables name walker[0].speed"),
    Case("bad-variable-name", var(**{"2fast": {"noise": "uniform(0, 1)"}}), "variables.2fast", "expected a name like"),
    # ----- variable types
    Case("categorical-wrong-probabilities", var(c={"type": "categorical", "levels": ["x", "y", "z"], "noise": "categorical(0.5, 0.5)"}),
         "variables.c", "a categorical root needs categorical noise with 3 probabilities"),
    Case("categorical-duplicate-levels", var(c={"type": "categorical", "levels": ["x", "x"], "noise": "categorical(0.5, 0.5)"}),
         "variables.c.levels", "duplicate levels ['x']"),
    Case("boolean-non-bernoulli", var(f={"type": "boolean", "noise": "uniform(0, 1)"}), "variables.f", "a boolean root needs bernoulli noise"),
    Case("integer-non-integer-bounds", var(n={"type": "integer", "range": [0.5, 3], "noise": "uniform(1, 2)"}), "variables.n.range",
         "an integer variable needs integer bounds, got [0.5, 3]"),
    # ----- names
    Case("reserved-eps", var(eps={"noise": "normal(0, 1)"}), "variables.eps", "'eps' is reserved"),
    Case("reserved-exp", var(exp={"noise": "normal(0, 1)"}), "variables.exp", "'exp' is reserved"),
    Case("variable-also-parameter", var(g={"noise": "normal(0, 1)"}), "variables.g", "'g' is also declared as a parameter"),
    Case("reserved-parameter", spec(parameters={"eps": 1.0}), "parameters.eps", "expected a plain identifier that is not 'eps'"),
    Case("non-finite-parameter", spec(parameters={"g": float("inf")}), "parameters", "parameter 'g' must be finite"),
    # ----- YAML-level (parse_text)
    Case("yaml-duplicate-variable", "name: bad\nsamples: 10\nvariables:\n  a: {noise: 'normal(0, 1)'}\n  a: {noise: 'normal(0, 2)'}\n",
         "line 5", "duplicate key 'a'"),
    Case("yaml-duplicate-top-level-key", "name: bad\nsamples: 10\nsamples: 20\nvariables:\n  a: {noise: 'normal(0, 1)'}\n",
         "line 3", "duplicate key 'samples'"),
    Case("yaml-syntax-error", "name: bad\nvariables: {a: [\n", "<spec>", "not valid YAML/JSON at line"),
    Case("yaml-top-level-list", "- name: bad\n", "<spec>", "expected a mapping at the top level, got list"),
    Case("yaml-unquoted-shorthand-in-flow-mapping", "name: bad\nsamples: 10\nvariables:\n  a: {noise: uniform(0, 1)}\n",
         "variables.a.noise", "cut at a comma?"),
    # ----- world-level (crlgen.pipeline.check_spec)
    Case("unknown-world", merge(BASE, {"world": "static/nope"}), "world", "unknown world 'static/nope'", world=True),
    Case("world-missing-latent", spring_without_k(), "variables", "world static/spring needs the latent 'k'", world=True),
    Case("video-on-image-world", merge(spring(), {"video": VIDEO}), "video", "world static/spring renders still images", world=True),
    Case("unknown-render-engine", merge(spring(), {"render": {"engine": "eevee"}}), "render.engine",
         "'eevee' is not an engine of static/spring", world=True),
    Case("video-without-world", merge(BASE, {"video": VIDEO, "temporal_edits": [edit(at_frame=1)]}), "world",
         "a video spec needs a world", world=True),
    Case("world-state-not-simulated", merge(spring(), {"variables": {"x": {"time_varying": True}}}), "variables.x",
         "does not simulate a state 'x'", world=True),
    # a latent the pixels cannot show: the spring is never drawn shorter than 0.01 m, and the
    # catalogue's l declares that range (the world insists on it), so the spec itself refuses
    Case("do-below-the-worlds-range", merge(spring(), {"interventions": {"targets": {"l": "do(-0.05)"}}}),
         "interventions.targets.l", "do() value -0.05 is outside the declared range [0.01, 0.13]"),
    Case("declared-range-beyond-the-worlds", merge(spring(), {"variables": {"l": {"range": [-1, 1]}}}), "variables.l",
         "world static/spring reads l only in [0.01, 0.13]; the declared range [-1, 1] leaves it", world=True),
    Case("world-latent-without-range", merge(spring(), {"variables": {"m": {"unit": "kg"}, "h": {"range": None}}}),
         "variables.h", "declare `range:` inside [0.005, 0.1]", world=True),
    # a world limit found by `check`, not in the first shard
    Case("too-many-objects", merge(falling(), {"objects": 254}), "objects",
         "world physics/falling simulates at most 253 obj objects, the spec asks for 254", world=True),
    Case("camera-kind-the-world-lacks", merge(spring(), {"render": {"views": [{"kind": "mounted", "name": "w", "mount": "cylinder"}]}}),
         "render.views[0]", "world static/spring has no 'mounted' cameras", world=True),
    Case("unknown-mount", merge(falling(), {"render": {"views": [{"kind": "mounted", "name": "w", "mount": "obj[3]"}]}}),
         "render.views[0].mount", "has no mount 'obj[3]'; expected one of obj[0]", world=True),
    # temporal edits may not push a latent the world reads out of its valid range either
    Case("edit-sets-beyond-the-world", merge(falling(), {"temporal_edits": [{"at_frame": 20, "do": "gravity = 100"}]}),
         "temporal_edits[0].do", "the edit can make gravity 100, outside world physics/falling's valid range [0, 50]", world=True),
    Case("edit-sets-a-negative-mass", merge(falling(), {"temporal_edits": [{"at_frame": 20, "do": "obj[0].mass = -5"}]}),
         "temporal_edits[0].do", "the edit can make obj[0].mass -5", world=True),
    Case("edit-scales-beyond-the-world", merge(falling(), {"temporal_edits": [{"at_frame": 20, "do": "gravity *= 10"}]}),
         "temporal_edits[0].do", "values in [10, 200], outside world physics/falling's valid range [0, 50]", world=True),
    # ... nor kick a velocity (a state) beyond what the world simulates faithfully
    Case("edit-kicks-beyond-the-world", merge(falling(), {"temporal_edits": [{"at_frame": 20, "do": "obj[0].vx += 100"}]}),
         "temporal_edits[0].do", "the edit can change obj[0].vx by 100, outside world physics/falling's valid range [-30, 30]",
         world=True),
    Case("edit-names-a-template", merge(falling(), {"temporal_edits": [{"at_frame": 20, "do": "obj[i].vx += 1"}]}),
         "temporal_edits[0].target", "an edit acts on one object, not on the template obj[i].vx; name the object's index, "
         "e.g. obj[0].vx", world=True),
]
# fmt: on

#: Expressions the grammar refuses, each with a fragment of its message ...
DISALLOWED = {
    "import": ("__import__('os')", "disallowed call '__import__'"),
    "attribute": ("a.__class__", "disallowed attribute '__class__'"),
    "lambda": ("lambda x: x", "disallowed syntax (lambda)"),
    "string": ("'abc' + a", "disallowed constant of type str"),
    "unknown-function": ("open(a)", "disallowed call 'open'"),
    "wrong-arity": ("exp(a, a)", "exp() takes 1 argument, got 2"),
    "power-tower": ("a ** 2 ** 3", "power tower"),
}
#: ... and the three places an expression can be written: (build a spec with it, the path it is reported at).
PLACES = {
    "mechanism": (lambda src: mech(src), "variables.b.mechanism"),
    "domain-override": (lambda src: spec(domains={"d": {"overrides": {"b": src}}}), "domains.d.overrides.b"),
    "soft-intervention": (lambda src: single({"b": {"kind": "soft", "mechanism": src}}), "interventions.targets.b.mechanism"),
}
CASES += [Case(f"{place}-{what}", build(src), path, fragment)
          for place, (build, path) in PLACES.items() for what, (src, fragment) in DISALLOWED.items()]


def _problems(case: Case) -> list[str]:
    """The problem lines the case raises (fails the test if it raises nothing)."""
    with pytest.raises(SpecError) as info:
        data = parse_text(case.data) if isinstance(case.data, str) else case.data
        s = DatasetSpec.from_dict(data)
        if case.world:
            check_spec(s)
    return info.value.problems


def test_corpus_is_large_and_distinct():
    assert len(CASES) >= 45
    assert len({c.id for c in CASES}) == len(CASES)
    texts = [yaml.safe_dump(c.data, sort_keys=True) if isinstance(c.data, dict) else c.data for c in CASES]
    assert len(set(texts)) == len(texts), "two cases are the same spec"


def test_world_cases_are_valid_without_the_world():
    """World-level problems are not schema problems: from_dict accepts those specs."""
    for c in CASES:
        if c.world:
            DatasetSpec.from_dict(c.data)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_malformed_spec_names_its_field(case: Case):
    problems = _problems(case)
    assert problems, "SpecError without problems"
    hits = [p for p in problems if p.startswith(f"{case.path}: ")]
    assert hits, f"no problem at {case.path!r}; got {problems}"
    assert any(case.fragment in p for p in hits), f"no problem at {case.path!r} mentions {case.fragment!r}; got {problems}"
    for line in problems:
        assert ": " in line, f"not a 'path: message' line: {line!r}"
        path, _, message = line.partition(": ")
        assert path and message.strip(), line
        assert "Traceback" not in line and 'File "' not in line, line
        assert "\n" not in line, line
        assert "pydantic" not in line.lower() and "errors.pydantic.dev" not in line, line


@pytest.mark.parametrize("mechanisms", [
    {"p": "q + 1", "q": "p * 2"},
    {"p": "r + 1", "q": "p * 2", "r": "q - a"},
    {"p": "s + a", "q": "p * 2", "r": "q - a", "s": "exp(r)", "t": "p + q"},
])
def test_cycle_is_named_in_the_direction_of_the_equations(mechanisms: dict[str, str]):
    """``x -> y`` in the message means y's equation uses x, as in the graph's edges."""
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(var(**{k: {"mechanism": v} for k, v in mechanisms.items()}))
    (line,) = info.value.problems
    prefix = "variables: the equations form a cycle: "
    assert line.startswith(prefix), line
    names = line[len(prefix):].split(" -> ")
    assert names[0] == names[-1] and len(names) >= 3, line
    for parent, child in zip(names, names[1:]):
        assert parent in mechanisms[child], f"{line}: {child}'s equation {mechanisms[child]!r} does not use {parent}"


def test_problems_are_reported_together():
    """Independent problems in one spec all show up, one line each."""
    d = spec(domains={"d": {"parameters": {"h": 2}}, "e": {"overrides": {"zz": "a"}}},
             interventions={"regime": "single_node", "fraction": 0.2, "targets": {"a": "do(2)", "qq": "do(1)"}})
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(d)
    paths = [p.partition(": ")[0] for p in info.value.problems]
    assert {"domains.d.parameters.h", "domains.e.overrides.zz", "interventions.targets.a", "interventions.targets.qq"} <= set(paths)
    assert str(info.value) == "\n".join(info.value.problems)


# ----- the command line ----------------------------------------------------------------------------
CLI_CASES = [
    "unknown-variable-in-equation", "cycle", "do-value-outside-range", "normal-std-zero", "mechanism-import",
    "edit-beyond-video", "unknown-top-level-field", "domain-counts-do-not-add-up", "yaml-duplicate-variable",
    "yaml-syntax-error", "world-missing-latent", "do-below-the-worlds-range", "too-many-objects", "unknown-mount",
]


def _crlgen(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "crlgen.pipeline", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_cli_check_reports_each_problem_and_exits_2(tmp_path: Path):
    by_id = {c.id: c for c in CASES}
    files = {}
    for cid in CLI_CASES:
        c = by_id[cid]
        p = tmp_path / f"{cid}.yaml"
        p.write_text(c.data if isinstance(c.data, str) else yaml.safe_dump(c.data, sort_keys=False))
        files[cid] = p
    # started together: each interpreter start costs about a second
    procs = {cid: _crlgen("check", str(p)) for cid, p in files.items()}
    procs["catalogue"] = _crlgen("check", "static/spring")
    results = {cid: (p.wait(timeout=120), *p.communicate()) for cid, p in procs.items()}

    rc, stdout, stderr = results.pop("catalogue")
    assert rc == 0, stderr
    assert stdout.startswith("OK spring"), stdout
    assert "Traceback" not in stderr

    for cid, (rc, stdout, stderr) in results.items():
        c = by_id[cid]
        assert rc == 2, f"{cid}: exit {rc}\n{stderr}"
        assert "Traceback" not in stderr, f"{cid}: {stderr}"
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert lines, f"{cid}: nothing on stderr"
        assert all(ln.startswith("error: ") for ln in lines), f"{cid}: {stderr}"
        # a file-level problem names the file instead of <spec>
        path = str(files[cid]) if c.path == "<spec>" else c.path
        assert any(ln.startswith(f"error: {path}: ") and c.fragment in ln for ln in lines), f"{cid}: {stderr}"


@pytest.mark.parametrize("views, path, fragment", [
    ([{"name": "a", "fov": 0}], "render.views[0].fov", "greater than 1"),
    ([{"name": "a", "kind": "bogus"}], "render.views[0]", "Input tag 'bogus'"),
    ([{"name": "a", "kind": "topdown", "extent": -1}], "render.views[0].extent", "greater than 0"),
    ([{"name": "a", "kind": "mounted"}], "render.views[0].mount", "required field is missing"),
    ([{"name": "a", "kind": "fixed", "position": [0, 0, 1], "look_at": [0, 0, 0]}], "render.views[0]",
     "looks along its up direction"),
    (["front", {"name": "b", "size": 0}], "render.views[1].size", "expected 8..4096 pixels"),
    ([{"name": "a", "kind": "orbit", "follow": "pose"}], "render.views[0].follow", "unknown field"),
])
def test_a_bad_camera_is_one_line_at_its_field(views, path, fragment):
    """Cameras are a union (count, preset, four kinds): pydantic tries each; the user sees the one problem."""
    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict(merge(BASE, {"render": {"views": views}}))
    assert len(info.value.problems) == 1, info.value.problems
    assert info.value.problems[0].startswith(f"{path}: ") and fragment in info.value.problems[0], info.value.problems


@pytest.mark.parametrize("text, message", [
    ('{"name": "dup",\n "samples": 5,\n "samples": 50,\n "variables": {"a": {"noise": "uniform(0,1)"}}}\n',
     "line 3: duplicate key 'samples'"),
    ('{"name": "dup", "samples": 5, "variables": {\n  "a": {"noise": "uniform(0,1)"},\n'
     '  "b": {"mechanism": "a", "description": "a: a"},\n  "a": {"noise": "normal(0,1)"}}}\n', "line 4: duplicate key 'a'"),
])
def test_a_json_spec_with_a_duplicate_key_is_refused_like_yaml(tmp_path: Path, text: str, message: str):
    """JSON's last-one-wins dropped the first `samples` (or variable) silently; YAML specs refuse duplicates, so do JSON ones."""
    from crlgen.schemas.loading import load_spec

    p = tmp_path / "dup.json"
    p.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(p)
    assert info.value.problems == [f"{p}: {message}"]
    p.write_text(text.replace('"samples": 50', '"seed": 50').replace('"a": {"noise": "normal(0,1)"}', '"c": {"noise": "normal(0,1)"}'))
    assert load_spec(p).name == "dup"
