"""The dataset spec: one typed document stating every causal fact of a dataset once."""

from __future__ import annotations

import ast
import json
import math
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Mapping

from pydantic import Field, ValidationError, field_validator, model_validator

from ._yaml import dump_yaml
from .base import SpecModel
from .counterfactuals import Counterfactuals
from .domains import Domain
from .errors import SpecError, from_validation_error
from .expression import ALLOWED_FUNCTIONS
from .expression import parse_expression
from .graph import NAME, CausalGraph, Node, expand, find_cycle, mechanism_names, presence_name, template_prefix, topological
from .interventions import Do, Observational, Regime, SingleNode, Soft
from .noise import Uniform
from .render import RenderSettings, VideoSettings
from .splits import Splits
from .temporal import TemporalEdit
from .variables import NOISE_NAME, Variable

MAX_SAMPLES = 1_000_000_000


class OutputSettings(SpecModel):
    """Where a run writes; credentials in ``storage_options`` never reach sidecars or logs."""

    url: str | None = Field(None, min_length=1, description="local path, file://, s3://bucket/prefix, memory://, or any URL of an installed fsspec filesystem (gs://, abfs://)")
    storage_options: dict[str, Any] = Field(default_factory=dict, description="fsspec options (endpoint_url, key, secret...)")


class DatasetSpec(SpecModel):
    """What world, which causal variables and equations, which interventions, how many samples."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    description: str = ""
    world: str | None = Field(None, description="world that renders it, e.g. static/spring; none = latents only")
    objects: int | dict[str, int] | None = Field(None, description="count for per-object variables (name[i].field)")
    parameters: dict[str, float] = Field(default_factory=dict, description="named constants mechanisms may use")
    variables: dict[str, Variable] = Field(min_length=1)
    domains: dict[str, Domain] = Field(default_factory=dict)
    interventions: Regime = Field(default_factory=Observational)
    counterfactuals: Counterfactuals | None = None
    temporal_edits: tuple[TemporalEdit, ...] = ()
    render: RenderSettings = Field(default_factory=RenderSettings)
    video: VideoSettings | None = None
    splits: Splits = Field(default_factory=Splits, description="train/val/test assignment, stored with the data")
    samples: int = Field(ge=1, le=MAX_SAMPLES)
    seed: int = Field(0, ge=0, lt=2**63)
    max_resamples: int = Field(20, ge=0, le=10_000, description="how often a sample the world cannot start from "
                               "(World.feasible: interpenetration...) is redrawn with fresh exogenous noise before the "
                               "run fails; each sample's count is stored in `resampled`")
    shard_size: int | None = Field(None, ge=1, le=1_000_000, description="samples per shard; default chosen by the planner")
    output: OutputSettings = Field(default_factory=OutputSettings)

    @field_validator("objects")
    @classmethod
    def _objects(cls, v):
        counts = {"": v} if isinstance(v, int) else dict(v or {})
        for name, c in counts.items():
            if name and not 0 <= c <= 256:  # a named kind may be absent (a road without pedestrians)
                raise ValueError(f"{name}: expected 0..256 objects, got {c}")
            if not name and not 1 <= c <= 256:
                raise ValueError(f"expected 1..256 objects, got {c}")
        return v

    @field_validator("parameters")
    @classmethod
    def _params(cls, v):
        for k, x in v.items():
            if not math.isfinite(x):
                raise ValueError(f"parameter {k!r} must be finite")
        return v

    @model_validator(mode="wrap")
    @classmethod
    def _rest_checked_too(cls, data: Any, handler):
        """Equations that do not parse leave the rest of the spec checked as well: the problems of the spec
        without them (:func:`_without_bad_equations`) come in the same error, so one run shows them all."""
        try:
            return handler(data)
        except ValidationError as e:
            rest = _without_bad_equations(data, e.errors(include_url=False))
            if rest is None:
                raise
            try:
                cls.model_validate(rest[0])
            except ValidationError as more:
                lines = [*from_validation_error(e).problems,
                         *(p for p in from_validation_error(more).problems if not p.startswith(rest[1]))]
                raise ValueError("\n".join(f"@{p}" for p in lines)) from None
            raise

    @model_validator(mode="after")
    def _semantics(self):
        problems: list[tuple[str, str]] = []
        _check(self, problems)
        if problems:
            raise ValueError("\n".join(f"@{p}: {m}" for p, m in problems))
        return self

    # ----- derived structure -------------------------------------------------
    @cached_property
    def graph(self) -> CausalGraph:
        """Expanded nodes in topological order; computed once per (frozen) spec."""
        return _build_graph(self, [])

    def presence_flag(self, name: str) -> str | None:
        """The latent gating ``name``'s object (``vehicle[3].x`` or the mount ``vehicle[3]`` ->
        ``vehicle[3].present``) when the spec declares it, else None (see :data:`~.graph.PRESENCE`)."""
        flag = presence_name(name)
        return flag if flag is not None and flag in self.graph.names else None

    def always_present(self, flag: str) -> bool:
        """Whether presence flag ``flag`` is 1 in every sample: its mechanism is the constant 1 in every
        domain and no intervention (regime option or counterfactual) sets it to anything but 1."""
        def one(src: str | None) -> bool:
            body = parse_expression(src).tree.body if src else None
            return isinstance(body, ast.Constant) and body.value == 1

        if not one(self.graph.node(flag).mechanism):
            return False
        if not all(one(self.domain_overrides(d)[0].get(flag, "1")) for d in self.domains):
            return False
        cf = self.counterfactuals
        ivs = [o.get(flag) for o in self.intervention_options()]
        ivs.append(self.expand_targets(cf.intervention).get(flag) if cf and cf.intervention else None)
        return all(iv is None or isinstance(iv, Do) and iv.value == 1 for iv in ivs)

    def object_count(self, prefix: str) -> int | None:
        """How many objects the per-object names ``prefix[i].*`` expand to (None: ``objects`` not given)."""
        if self.objects is None:
            return None
        return self.objects if isinstance(self.objects, int) else self.objects.get(prefix)

    def expand_names(self, name: str) -> list[str]:
        """``ball[i].mass`` -> every object's name; a plain name -> itself."""
        prefix = template_prefix(name)
        if prefix is None:
            return [name]
        n = self.object_count(prefix) or 0
        return [expand(name, k) for k in range(n)]

    def expand_keyed(self, items: Iterable[tuple[str, Any]]) -> dict[str, tuple[str, int | None, Any]]:
        """``(key, value)`` pairs whose keys may be templates -> ``{expanded name: (key, object index
        or None, value)}``. Of two keys naming one latent (``obj[i].x``, ``obj[0].x``) the specific one
        wins, in either order; a name keeps the position where it was first named."""
        out: dict[str, tuple[str, int | None, Any]] = {}
        for key, value in items:
            templated = template_prefix(key) is not None
            for k, e in enumerate(self.expand_names(key)):
                if templated and e in out and out[e][1] is None:
                    continue  # a specific key named it already
                out[e] = (key, k if templated else None, value)
        return out

    def domain_overrides(self, domain: str) -> tuple[dict[str, str], dict[str, Any]]:
        """What domain ``domain`` replaces, per latent (expanded names): ``({latent: equation, object
        index filled in}, {latent: Noise})``; of two keys naming one latent (``obj[i].x``, ``obj[0].x``)
        the specific one wins (:meth:`expand_keyed`). A domain with ``space`` draws every root that declares ``spaces`` uniformly in that
        space's range (its noise becomes ``uniform(low, high)``); a non-root keeps its equation (its spaces
        serve ``do(space)``, so the graph stays the spec's).
        Parameter overrides are the domain's ``parameters``."""
        dom = self.domains[domain]
        mechs: dict[str, str] = {}
        noises: dict[str, Any] = {}
        if dom.space is not None:  # roots are drawn uniformly in the space (a non-root's spaces serve do(space))
            for node in self.graph.nodes:
                spaces = getattr(node.variable, "spaces", None)
                if spaces is not None and node.mechanism is None:
                    noises[node.name] = Uniform(low=spaces[dom.space][0], high=spaces[dom.space][1])
        for e, (_, k, src) in self.expand_keyed(dom.overrides.items()).items():
            mechs[e] = expand(src, k) if k is not None else src  # a template's [i]: the object it expanded to
        noises.update({e: nz for e, (_, _, nz) in self.expand_keyed(dom.noise.items()).items()})
        return mechs, noises

    def spaces(self) -> dict[str, dict[str, tuple[float, float]]]:
        """Every latent (expanded names) that declares intervention spaces: ``{latent: {"A": (lo, hi), "B": (lo, hi)}}``."""
        return {n.name: dict(n.variable.spaces) for n in self.graph.nodes if getattr(n.variable, "spaces", None)}

    def domains_in_space(self, space: str) -> tuple[str, ...]:
        """The domains whose ``space`` is ``space`` ("A" or "B"), in declaration order."""
        return tuple(d for d, dom in self.domains.items() if dom.space == space)

    def expand_all(self, names: Iterable[str]) -> list[str]:
        """Many names at once: plain names in their order, then templated ones object-major.

        ``("gravity", "obj[i].x", "obj[i].vx")`` with 2 objects ->
        ``["gravity", "obj[0].x", "obj[0].vx", "obj[1].x", "obj[1].vx"]``: the order
        worlds store per-object states in.
        """
        names = tuple(names)
        out = [n for n in names if template_prefix(n) is None]
        for prefix in dict.fromkeys(template_prefix(n) for n in names if template_prefix(n) is not None):
            group = [n for n in names if template_prefix(n) == prefix]
            for k in range(self.object_count(prefix) or 0):
                out.extend(expand(n, k) for n in group)
        return out

    def expand_targets(self, targets: Mapping[str, Any]) -> dict[str, Any]:
        """An intervention's ``{name: value}`` with templated names expanded per object (a specific name
        wins over its template: :meth:`expand_keyed`); a templated soft mechanism's ``[i]`` becomes
        the object's index (``ball[i].w: soft('ball[i].m * 3')`` -> ``ball[1].w: soft('ball[1].m * 3')``)."""
        return {e: _per_object(v, k) for e, (_, k, v) in self.expand_keyed(targets.items()).items()}

    def intervention_entries(self) -> list[tuple[int | str, str, str, Any]]:
        """Every intervention the spec gives a latent: ``(option index, or "cf" for the counterfactual
        intervention; expanded latent; spec path of its key; intervention)``, options numbered as
        :meth:`intervention_options` numbers them, ``[i]`` of a soft mechanism filled in per object."""
        reg = self.interventions
        out: list[tuple[int | str, str, str, Any]] = []
        if isinstance(reg, SingleNode):
            for o, (e, (key, k, iv)) in enumerate(self.expand_keyed(reg.targets.items()).items()):
                out.append((o, e, f"interventions.targets.{key}", _per_object(iv, k)))
        elif not isinstance(reg, Observational):
            where = "sets" if reg.regime == "sets" else "assignments"
            for o, opt in enumerate(reg.options()):
                for e, (key, k, iv) in self.expand_keyed(opt.items()).items():
                    out.append((o, e, f"interventions.{where}[{o}].targets.{key}", _per_object(iv, k)))
        cf = self.counterfactuals
        if cf is not None and cf.intervention:
            for e, (key, k, iv) in self.expand_keyed(cf.intervention.items()).items():
                out.append(("cf", e, f"counterfactuals.intervention.{key}", _per_object(iv, k)))
        return out

    def intervention_options(self) -> tuple[dict[str, Any], ...]:
        """The regime's options with templated targets expanded (soft mechanisms per object: :meth:`expand_targets`);
        a specific target (``ball[1].x``) wins over its template (``ball[i].x``) for its object, as in every
        target map (:meth:`expand_keyed`). Option ``o`` is what the stored ``intervention`` code ``o`` means.

        Single-node regimes expand one templated target into one option per
        object (each sample still gets a single target), in the order the names are
        first named: ``{ball[i].x: do(0.25), ball[1].x: do(0.75)}`` gives ``ball[0].x: do(0.25)``, ``ball[1].x: do(0.75)``.
        """
        reg = self.interventions
        if isinstance(reg, SingleNode):
            return tuple({e: iv} for o, e, _, iv in self.intervention_entries() if o != "cf")
        return tuple(self.expand_targets(o) for o in reg.options())

    # ----- authoring API -----------------------------------------------------
    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "DatasetSpec":
        """Validate a mapping; raises :class:`SpecError` with one line per problem."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise from_validation_error(e) from None

    def to_dict(self) -> dict[str, Any]:
        """The spec as a plain mapping with defaults left out (what a person would write)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def resolved(self) -> "DatasetSpec":
        """The same dataset with every default written out: explicit cameras (kind, pose, fov,
        size), render size, engine settings, video frames and fps, seeds, regimes.

        A store keeps this form as ``spec.yaml``, so a later crlgen whose defaults changed
        still regenerates the same dataset from it; ``spec_hash`` is computed from it, so
        ``views: 4`` and the four cameras it means are the same dataset.
        """
        data = self.model_dump(mode="json")
        data["render"]["views"] = [c.model_dump(mode="json") for c in self.render.cameras()]
        return type(self).from_dict(data)

    def to_yaml(self) -> str:
        """The spec as YAML, defaults left out (loads back equal)."""
        return dump_yaml(self.to_dict())

    def dump(self, path: str | Path) -> Path:
        """Write YAML (or JSON for a .json suffix) that loads back equal."""
        p = Path(path)
        text = json.dumps(self.to_dict(), indent=2) if p.suffix == ".json" else self.to_yaml()
        p.write_text(text)
        return p

    def replace(self, **changes: Any) -> "DatasetSpec":
        """A re-validated copy with top-level fields changed."""
        return type(self).from_dict({**self.to_dict(), **{k: _plain(v) for k, v in changes.items()}})

    def with_samples(self, n: int) -> "DatasetSpec":
        """A copy with ``n`` samples; raises SpecError for n < 1."""
        return self.replace(samples=n)

    def with_seed(self, seed: int) -> "DatasetSpec":
        """A copy with another seed (0 is a seed like any other)."""
        return self.replace(seed=seed)

    def intervene(self, target: str, *, do: float | str | None = None, shift: float | None = None,
                  scale: float | None = None, soft: str | None = None, fraction: float | None = None) -> "DatasetSpec":
        """Add ``target`` to a single-node regime (creating it if the spec is observational)."""
        given = [(k, v) for k, v in (("do", do), ("shift", shift), ("scale", scale), ("soft", soft)) if v is not None]
        if len(given) != 1:
            raise SpecError([f"interventions.targets.{target}: give exactly one of do, shift, scale or soft"])
        kind, v = given[0]
        iv: Any
        if kind == "do":
            iv = f"do({v})" if isinstance(v, str) else {"kind": "do", "value": v}
        elif kind == "soft":
            iv = {"kind": "soft", "mechanism": v}
        else:
            iv = {"kind": kind, "by": v}
        reg = self.interventions
        if isinstance(reg, SingleNode):
            targets = {k: _plain(x) for k, x in reg.targets.items()}
            frac = fraction if fraction is not None else reg.fraction
        elif isinstance(reg, Observational):
            targets, frac = {}, fraction if fraction is not None else 0.5
        else:
            raise SpecError([f"interventions: intervene() adds to a single_node regime, this spec uses {reg.regime!r}"])
        targets[target] = iv
        return self.replace(interventions={"regime": "single_node", "fraction": frac, "targets": targets})


def _without_bad_equations(data: Any, errors: list[dict]) -> tuple[dict[str, Any], tuple[str, ...]] | None:
    """``data`` with every variable's equation that does not parse replaced by ``0`` and every domain override
    that does not parse left out, and the path prefixes of the fields left out; None when anything else failed
    (its problems could make the rest fail too: they are shown first, the rest after they are fixed)."""
    if not isinstance(data, Mapping):
        return None
    out = dict(data)
    skipped: list[str] = []
    for e in errors:
        loc = tuple(e["loc"])
        group = out.get(loc[0]) if loc and loc[0] in ("variables", "domains") else None
        item = group.get(loc[1]) if isinstance(group, Mapping) and len(loc) > 2 else None
        if e["type"] != "value_error" or not isinstance(item, Mapping):
            return None
        if loc[0] == "variables" and loc[-1] == "mechanism" and len(loc) <= 4:  # (variables, name[, type tag], mechanism)
            out["variables"] = {**group, loc[1]: {**item, "mechanism": "0"}}
            skipped.append(f"variables.{loc[1]}")
        elif loc[0] == "domains" and loc[2:] == ("overrides",) and isinstance(item.get("overrides"), Mapping):
            bad = [k for k, src in item["overrides"].items() if not _parses(src)]
            out["domains"] = {**group, loc[1]: {**item, "overrides": {k: v for k, v in item["overrides"].items() if k not in bad}}}
            skipped.extend(f"domains.{loc[1]}.overrides.{k}" for k in bad)
        else:
            return None
    return out, tuple(p + end for p in skipped for end in (".", ":"))


def _parses(src: Any) -> bool:
    """Whether ``src`` is an equation the grammar accepts."""
    try:
        parse_expression(src)
    except (ValueError, TypeError):  # ExpressionError is a ValueError; the field's own validation says what it is
        return False
    return True


def _per_object(iv: Any, k: int | None) -> Any:
    """``iv`` for object ``k`` of a templated target: a soft mechanism's ``[i]`` filled in (None: as written)."""
    if k is None or not isinstance(iv, Soft):
        return iv
    return iv.model_copy(update={"mechanism": expand(iv.mechanism, k)})


def _plain(v: Any) -> Any:
    if isinstance(v, SpecModel):
        return v.model_dump(mode="json", exclude_defaults=True)
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


# ----- semantic checks (one problem per line, each with its field path) -------------
def _build_graph(spec: DatasetSpec, problems: list[tuple[str, str]]) -> CausalGraph:
    for tname in spec.variables:
        prefix = template_prefix(tname)
        if prefix is not None and spec.object_count(prefix) is None:
            problems.append((f"variables.{tname}", f"a per-object name needs `objects: N` (or objects: {{{prefix}: N}})"))
    # (name, template, index, variable); a specific declaration (vehicle[0].present) overrides its
    # template's (vehicle[i].present) whichever comes first
    declared: list[tuple[str, str, int | None, Any]] = [
        (name, tname, k, var) for name, (tname, k, var) in spec.expand_keyed(spec.variables.items()).items()]

    # object-major (obj[0].x, obj[0].vx, obj[1].x, ...), in declaration order within an object:
    # the order the store's `states` columns use
    states = (tuple(spec.expand_all(t for t, v in spec.variables.items() if v.time_varying)) if not problems
              else tuple(name for name, _, _, v in declared if v.time_varying))
    static = [(name, t, k, v) for name, t, k, v in declared if not v.time_varying]
    known = {name for name, *_ in static}
    params = set(spec.parameters)
    state_set = set(states)

    def names_in(src: str, k: int | None, path: str) -> tuple[list[str], list[str]]:
        src = expand(src, k) if k is not None else src
        parents, used_params = [], []
        for nm in sorted(mechanism_names(src)):
            if nm == NOISE_NAME:
                continue
            if nm in params:
                used_params.append(nm)
            elif nm in known:
                parents.append(nm)
            elif nm in state_set:
                problems.append((path, f"uses the time-varying state {nm!r}; mechanisms relate static latents only"))
            elif "[i]" in nm:  # left over: the equation is not a per-object variable's (or its target's)
                problems.append((path, f"{nm!r}: `[i]` only works in the equation of a per-object variable (name[i].field), "
                                 f"where it is that object's index; a non-object variable must name an index, e.g. {expand(nm, 0)!r}"))
            else:
                problems.append((path, f"unknown variable {nm!r}{_unknown_hint(spec, nm)}; expected one of the declared variables or parameters"))
        return parents, used_params

    nodes: dict[str, Node] = {}
    for name, tname, k, var in static:
        mech = expand(var.mechanism, k) if (var.mechanism and k is not None) else var.mechanism
        parents, used = names_in(var.mechanism, k, f"variables.{tname}.mechanism") if var.mechanism else ([], [])
        nodes[name] = Node(name, tname, k, var, mech, tuple(parents), tuple(used))

    extra: list[tuple[str, str, str]] = []
    added: dict[tuple[str, str], list[str]] = {}  # (parent, child) -> the spec fields whose equations add the edge

    def add(parents: list[str], child: str, where: str, path: str) -> None:
        for p in parents:
            if p not in nodes[child].parents:
                extra.append((p, child, where))
                added.setdefault((p, child), []).append(path)

    for dname, dom in spec.domains.items():
        for e, (target, k, src) in spec.expand_keyed(dom.overrides.items()).items():
            if e in nodes:
                path = f"domains.{dname}.overrides.{target}"
                parents, _ = names_in(src, k, path)
                add(parents, e, f"domain {dname}", path)
    for _, target, path, iv in spec.intervention_entries() if not problems else ():
        if isinstance(iv, Soft) and target in nodes:  # (the mechanism's [i] is filled in already)
            parents, _ = names_in(iv.mechanism, None, path)
            if target in parents:
                problems.append((path, f"a soft mechanism for {target!r} cannot use "
                                 f"{target!r} itself; write it in terms of its parents and 'eps'"))
                parents = [p for p in parents if p != target]
            add(parents, target, "soft intervention", path)

    base = [(p, n.name) for n in nodes.values() for p in n.parents]
    cycle = find_cycle(base, nodes)
    if cycle:
        problems.append(("variables", f"the equations form a cycle: {' -> '.join(cycle)}"))
    if cycle or _blame_cycles(base, added, nodes, problems):
        order = list(nodes)
    else:
        order = topological(list(nodes), base + list(added))
    return CausalGraph(tuple(nodes[n] for n in order), states, tuple(extra))


def _unknown_hint(spec: DatasetSpec, name: str) -> str:
    """Why per-object name ``name`` is unknown, when it is: an index beyond the object count, or no index at all."""
    indexed = _INDEXED.match(name)
    count = spec.object_count(indexed.group(1)) if indexed else None
    if count is not None and int(indexed.group(2)) >= count:
        kind = indexed.group(1)
        return f" ({count} {kind} objects: {kind}[0] to {kind}[{count - 1}])" if count else f" (no {kind} objects)"
    if "[" not in name and any(re.sub(r"\[i\]", "", t) == name for t in spec.variables):
        return " (per-object names need `[i]` or an index)"
    return ""


def _blame_cycles(base: list[tuple[str, str]], added: dict[tuple[str, str], list[str]], nodes: Iterable[str],
                  problems: list[tuple[str, str]]) -> bool:
    """Find the cycles that edges only a domain override or a soft intervention adds (``added``: edge -> the fields
    adding it) close in the acyclic ``base`` graph, one problem line per field closing one (one order of evaluation
    serves every domain and intervention, so the union of their equations must be acyclic); whether any exists."""
    left = dict(added)
    found = False
    while left:
        cycle = find_cycle(base + list(left), nodes)
        if cycle is None:
            break
        found = True
        steps = [s for s in zip(cycle, cycle[1:]) if s in left]
        (p, c), others = steps[0], [left[s][0] for s in steps[1:]]
        with_ = f" together with {', '.join(others)}" if others else ""
        for path in left[(p, c)]:
            problems.append((path, f"reads {p!r}, which depends on {c!r}{with_}: the equations form a cycle: {' -> '.join(cycle)}"))
        for s in steps:
            del left[s]
    return found


def _fmt(x: float) -> str:
    return f"{x:g}"


def _check_value(var, value: float, path: str, problems: list[tuple[str, str]], what: str) -> None:
    lo, hi = var.bounds()
    if not lo <= value <= hi:
        problems.append((path, f"{what} {_fmt(value)} is outside the declared range [{_fmt(lo)}, {_fmt(hi)}]"))
    elif var.type in ("integer", "categorical", "boolean") and value != int(value):
        problems.append((path, f"{what} {_fmt(value)} must be a whole number for a {var.type} variable"))


def _check_support(var, support: tuple[float, float], path: str, problems, what: str) -> None:
    lo, hi = var.bounds()
    if support[0] < lo or support[1] > hi:
        if math.isinf(support[0]) or math.isinf(support[1]):
            problems.append((path, f"{what} is unbounded but the variable declares range [{_fmt(lo)}, {_fmt(hi)}]; use a bounded distribution (uniform, beta) or drop the range"))
        else:
            problems.append((path, f"{what} ranges over [{_fmt(support[0])}, {_fmt(support[1])}], outside the declared range [{_fmt(lo)}, {_fmt(hi)}]"))


def _own_targets(spec: DatasetSpec, targets: Mapping[str, Any], key: str) -> list[str]:
    """The latents target ``key`` of ``targets`` intervenes on: its expansion less the objects a specific key
    names (:meth:`DatasetSpec.expand_keyed`); an unknown name or a template without objects stays itself."""
    names = spec.expand_names(key)
    if not names:
        return [key]
    keyed = spec.expand_keyed(targets.items())
    return [e for e in names if keyed[e][0] == key]


def _check_intervention(spec: DatasetSpec, nodes: dict[str, Node], states: set[str], target: str, iv, path: str, problems) -> None:
    if target in states:
        problems.append((path, f"{target!r} is a time-varying state; intervene on it with a temporal edit"))
        return
    if target not in nodes:
        problems.append((path, f"intervention on unknown variable {target!r}; expected one of {', '.join(sorted(nodes)) or 'none'}"))
        return
    var = nodes[target].variable
    if isinstance(iv, Do) and iv.space:
        if getattr(var, "spaces", None) is None:
            problems.append((path, f"do(space) draws {target!r} in its intervention space, but {target!r} declares no `spaces`"))
        else:
            bare = [d for d, dom in spec.domains.items() if dom.space is None] if spec.domains else ["default"]
            if bare:
                problems.append((path, f"do(space) draws in the space of the sample's domain, but domain(s) {', '.join(bare)} "
                                       "select none; give every domain `space: A` or `space: B`"))
    elif isinstance(iv, Do):
        if iv.value is not None:
            _check_value(var, iv.value, path, problems, "do() value")
        else:
            _check_support(var, iv.dist.support(), path, problems, f"do() distribution {iv.dist.dist}")
    elif iv.kind in ("shift", "scale") and nodes[target].mechanism is None and var.noise is not None:
        lo, hi = var.noise.support()
        moved = (lo + iv.by, hi + iv.by) if iv.kind == "shift" else tuple(sorted((lo * iv.by, hi * iv.by)))
        if all(math.isfinite(x) for x in moved):
            _check_support(var, moved, path, problems, f"{iv.kind}({_fmt(iv.by)}) of {target!r}")
    elif isinstance(iv, Soft):
        uses_eps = NOISE_NAME in mechanism_names(iv.mechanism)
        has_noise = iv.noise is not None or var.noise is not None
        if uses_eps and not has_noise:
            problems.append((path, f"soft mechanism uses '{NOISE_NAME}' but {target!r} has no noise; give soft(..., noise=...)"))


#: An object-indexed name: ``pedestrian[3].speed`` -> ("pedestrian", "3").
_INDEXED = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)\[(\d+)\]")


def _check(spec: DatasetSpec, problems: list[tuple[str, str]]) -> None:
    reserved = {NOISE_NAME, *ALLOWED_FUNCTIONS}
    beyond: dict[str, list[tuple[int, str]]] = {}  # object kind -> (index, variable) beyond its count
    for name in spec.variables:
        if not NAME.match(name):
            problems.append((f"variables.{name}", "expected a name like 'mass', 'ball[i].mass' or 'ball[0].mass'"))
        elif name in reserved:
            problems.append((f"variables.{name}", f"{name!r} is reserved (noise term or function name)"))
        elif name in spec.parameters:
            problems.append((f"variables.{name}", f"{name!r} is also declared as a parameter"))
        else:
            indexed = _INDEXED.match(name)
            count = spec.object_count(indexed.group(1)) if indexed else None
            if count is not None and int(indexed.group(2)) >= count:
                beyond.setdefault(indexed.group(1), []).append((int(indexed.group(2)), name))
    for kind, named in beyond.items():  # one line per kind: a count one too low is one mistake, not one per variable
        count = spec.object_count(kind)
        have = f"{kind}[0..{count - 1}]" if count else "none"
        problems.append((f"objects.{kind}", f"{count} objects ({have}), but variables name "
                         f"{', '.join(n for _, n in named)}; raise the count to {max(k for k, _ in named) + 1} "
                         f"or remove those variables (a spec that extends another removes one with `NAME: null`)"))
    for name in spec.parameters:
        if not NAME.match(name) or "[" in name or name in reserved:
            problems.append((f"parameters.{name}", "expected a plain identifier that is not 'eps' or a function name"))
    if problems:
        return
    graph = _build_graph(spec, problems)
    nodes = {n.name: n for n in graph.nodes}
    states = set(graph.states)

    # roots: the noise must fit the declared range
    for n in graph.nodes:
        v = n.variable
        if n.mechanism is None and v.noise is not None:
            _check_support(v, v.noise.support(), f"variables.{n.template}.noise", problems, f"noise {v.noise.dist}")

    # domains
    if spec.domains:
        counts = [d.samples for d in spec.domains.values()]
        if any(c is not None for c in counts):
            if any(c is None for c in counts):
                problems.append(("domains", "either every domain gives `samples` or none does"))
            elif sum(counts) != spec.samples:
                problems.append(("domains", f"domain sample counts add up to {sum(counts)}, expected samples = {spec.samples}"))
    for dname, dom in spec.domains.items():
        if not NAME.match(dname) or "[" in dname:
            problems.append((f"domains.{dname}", "expected a plain identifier as domain name"))
        for p in dom.parameters:
            if p not in spec.parameters:
                problems.append((f"domains.{dname}.parameters.{p}", f"unknown parameter {p!r}; declare it under `parameters`"))
        if dom.space is not None and not any(getattr(n.variable, "spaces", None) and n.mechanism is None for n in graph.nodes):
            problems.append((f"domains.{dname}.space", f"selects space {dom.space}, but no root variable declares `spaces`"))
        for field in ("overrides", "noise"):
            for target, val in getattr(dom, field).items():
                path = f"domains.{dname}.{field}.{target}"
                if dom.space is not None and any(getattr(nodes[e].variable, "spaces", None) and nodes[e].mechanism is None
                                                 for e in spec.expand_names(target) if e in nodes):
                    problems.append((path, f"the domain's space {dom.space} already draws {target!r}; drop one of them"))
                    continue
                expanded = spec.expand_names(target)
                if not expanded or any(e not in nodes for e in expanded):
                    problems.append((path, f"unknown variable {target!r}" + (" (time-varying states cannot be overridden)" if target in states else "")))
                    continue
                var = nodes[expanded[0]].variable
                if field == "noise":
                    if var.noise is None:
                        problems.append((path, f"{target!r} has no noise term to override"))
                    elif var.mechanism is None:
                        _check_support(var, val.support(), path, problems, f"noise {val.dist}")
                elif NOISE_NAME in mechanism_names(val) and var.noise is None and target not in dom.noise:
                    problems.append((path, f"mechanism uses '{NOISE_NAME}' but {target!r} has no noise"))

    # interventions
    reg = spec.interventions
    if not isinstance(reg, Observational):
        for i, opt in enumerate([reg.targets] if isinstance(reg, SingleNode) else reg.options()):
            for target, iv in opt.items():
                where = {"single_node": f"interventions.targets.{target}", "sets": f"interventions.sets[{i}].targets.{target}",
                         "explicit": f"interventions.assignments[{i}].targets.{target}"}[reg.regime]
                for e in _own_targets(spec, opt, target):
                    _check_intervention(spec, nodes, states, e, iv, where, problems)
        if reg.regime == "explicit":
            seen: dict[int, int] = {}
            for i, a in enumerate(reg.assignments):
                idx = a.indices()
                if max(idx) >= spec.samples:
                    problems.append((f"interventions.assignments[{i}].samples", f"sample index {max(idx)} is beyond samples = {spec.samples}"))
                for s in idx:
                    if s in seen:
                        problems.append((f"interventions.assignments[{i}].samples", f"sample {s} is intervened twice (also in assignments[{seen[s]}])"))
                        break
                    seen[s] = i

    # spaces of a non-root are drawn by do(space) only (a domain's space draws roots): one no do(space) targets is unused
    space_targets = {t for opt in (spec.intervention_options() if not isinstance(reg, Observational) else ())
                     for t, iv in opt.items() if isinstance(iv, Do) and iv.space}
    if spec.counterfactuals is not None and spec.counterfactuals.intervention:
        space_targets |= {t for t, iv in spec.expand_targets(spec.counterfactuals.intervention).items()
                          if isinstance(iv, Do) and iv.space}
    for n in graph.nodes:
        if getattr(n.variable, "spaces", None) and n.mechanism is not None and n.name not in space_targets:
            problems.append((f"variables.{n.template}.spaces", f"{n.name!r} has an equation, so a domain's space leaves it "
                             "alone; its spaces are drawn only by do(space), which no intervention uses on it: intervene "
                             f"with {{{n.template}: do(space)}} or drop its spaces"))

    # counterfactuals
    cf = spec.counterfactuals
    if cf is not None:
        if cf.intervention is not None:
            for target, iv in cf.intervention.items():
                for e in _own_targets(spec, cf.intervention, target):
                    _check_intervention(spec, nodes, states, e, iv, f"counterfactuals.intervention.{target}", problems)
        if cf.edit is not None:
            _check_edit(spec, cf.edit, "counterfactuals.edit", problems)
        if spec.samples < 2:
            problems.append(("counterfactuals", "needs at least 2 samples"))
        if spec.domains and any(d.samples is not None for d in spec.domains.values()):
            problems.append(("counterfactuals", "cannot combine with exact domain `samples` counts: a partner shares its "
                             "factual sample's domain, so the counts could not hold; give domains `weight` instead"))
        if spec.interventions.regime == "explicit":
            problems.append(("counterfactuals", "cannot combine with an explicit regime: a partner copies its factual "
                             "sample's interventions, so listed samples could be overridden; use sets or single_node"))

    for i, e in enumerate(spec.temporal_edits):
        _check_edit(spec, e, f"temporal_edits[{i}]", problems)

    # splits
    for d in spec.splits.test_domains:
        if d not in spec.domains:
            problems.append(("splits.test_domains", f"unknown domain {d!r}; expected one of {', '.join(spec.domains) or 'none (no domains)'}"))
    if spec.domains and set(spec.splits.test_domains) >= set(spec.domains):
        problems.append(("splits.test_domains", "holds out every domain, so nothing is left to train on; keep at least one"))
    ts = spec.splits.test_space
    if ts is not None:
        held = spec.domains_in_space(ts)
        if not held:
            problems.append(("splits.test_space", f"no domain selects space {ts}; give a domain `space: {ts}`"))
        elif set(held) | set(spec.splits.test_domains) >= set(spec.domains):
            problems.append(("splits.test_space", f"every domain is held out (space {ts} and test_domains), so nothing is "
                                                  "left to train on; keep at least one domain in the other space"))
    tr = spec.splits.test_range
    if tr is not None and tr.latent not in nodes:
        problems.append(("splits.test_range.latent", f"unknown latent {tr.latent!r}; expected one of {', '.join(nodes)}"))
    elif tr is not None:
        lo, hi = nodes[tr.latent].variable.bounds()
        if tr.high < lo or tr.low > hi:
            problems.append(("splits.test_range", f"[{_fmt(tr.low)}, {_fmt(tr.high)}] lies outside {tr.latent}'s declared range "
                                                  f"[{_fmt(lo)}, {_fmt(hi)}]: no sample would be held out"))
        elif tr.low <= lo and tr.high >= hi:
            problems.append(("splits.test_range", f"[{_fmt(tr.low)}, {_fmt(tr.high)}] covers {tr.latent}'s whole declared range "
                                                  f"[{_fmt(lo)}, {_fmt(hi)}]: every sample would be held out"))


def _check_edit(spec: DatasetSpec, e: TemporalEdit, path: str, problems) -> None:
    if spec.video is None:
        problems.append((path, "temporal edits need a video scene (add `video: {fps, frames}`)" if spec.world else
                         "temporal edits need a world that simulates video: name a video `world` (see `crlgen scenes`) "
                         "and add `video: {fps, frames}`"))
        return
    n = spec.video.n_frames
    start = e.start_frame(spec.video.fps)
    if start >= n:
        what = f"at_frame {e.at_frame}" if e.at_frame is not None else f"at_time {e.at_time:g}s (frame {start})"
        problems.append((path, f"{what} is beyond the video length ({n} frames, last frame {n - 1})"))
    if e.until_frame is not None and not start < e.until_frame <= n:
        problems.append((path, f"until_frame {e.until_frame} must be in ({start}, {n}]"))
