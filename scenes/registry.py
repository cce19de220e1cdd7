"""Which worlds exist, what each needs from a spec, how one is built, and the catalogues of ready specs.

Worlds register through the entry-point group ``crlgen.worlds`` (name -> ``module:Class``),
crlgen's own ones the same way (see ``pyproject.toml``), so an outside package adds a world
by declaring an entry point. Catalogues of ready specs register in ``crlgen.catalogs``
(name -> a ``module:ATTR`` holding the folder's ``pathlib.Path``). Importing a world's
module is cheap (engines are imported inside the world), so the registry reads every
world's :class:`~crlgen.scenes.base.WorldInfo` and outputs without Blender or PyBullet.
"""

from __future__ import annotations

import ast
import importlib
import math
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from .base import World, WorldInfo
from .engines.quiet import EngineMissing, engine_available

WORLD_GROUP = "crlgen.worlds"
CATALOG_GROUP = "crlgen.catalogs"

#: crlgen's own folder of ready scene specs (package data): ``<domain>/<name>.yaml``.
CATALOG_DIR = Path(__file__).resolve().parent / "catalog"


def worlds() -> dict[str, str]:
    """Every registered world: name -> ``"module:Class"`` (the first registration of a name wins)."""
    out: dict[str, str] = {}
    for ep in entry_points(group=WORLD_GROUP):
        out.setdefault(ep.name, ep.value)
    return dict(sorted(out.items()))


def world_class(name: str) -> type[World]:
    """The class registered as ``name``; raises KeyError naming the known worlds."""
    target = worlds().get(name)
    if target is None:
        raise KeyError(f"unknown world {name!r}; expected one of {', '.join(worlds())}")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def world_info(name: str) -> WorldInfo:
    """The :class:`WorldInfo` of world ``name`` (no engine is imported)."""
    return world_class(name).info


def missing_engines(spec) -> list[str]:
    """Engine modules the spec's world and render engine need but this environment lacks."""
    info = world_info(spec.world)
    return [m for m in info.modules_for(spec.render.engine) if not engine_available(m)]


def build_world(spec, threads: int = 0) -> World:
    """The world for ``spec`` (a ``DatasetSpec`` with a ``world``), its engine set up.

    ``threads`` caps the engine's CPU threads (0 = engine default). Raises
    :class:`~crlgen.scenes.engines.EngineMissing` (naming the ``crlgen`` extra) when
    an engine is not installed, KeyError for an unknown world. Close the world
    (``with build_world(spec) as w:``) to release its engine.
    """
    missing = missing_engines(spec)
    if missing:
        raise EngineMissing(missing[0], f"world {spec.world}")
    return world_class(spec.world)(spec, threads=threads)


#: The ``video:`` a video world's spec is told to add when the world class gives no ``VIDEO_EXAMPLE`` of its own.
_VIDEO_EXAMPLE = "{fps: 30, frames: 60}"


def _fmt(lo: float, hi: float) -> str:
    return f"[{lo:g}, {hi:g}]"


def _range_problems(spec, info: WorldInfo) -> list[str]:
    """A declared range (or a missing one) that lets a latent the world reads leave the world's valid range."""
    problems = []
    graph = spec.graph
    names = set(graph.names)
    for template in info.latents + info.optional_latents:
        if template not in info.ranges:
            continue
        lo, hi = info.ranges[template]
        for name in spec.expand_all([template]):
            if name not in names:
                continue
            node = graph.node(name)
            vlo, vhi = node.variable.bounds()
            if vlo >= lo and vhi <= hi:
                continue
            if math.isinf(vlo) or math.isinf(vhi):
                what = f"declare `range:` inside {_fmt(lo, hi)} (none is declared, so nothing keeps the values there)"
            else:
                what = f"the declared range {_fmt(vlo, vhi)} leaves it; keep it inside"
            problems.append(f"variables.{node.template}: world {info.name} reads {node.template} only in {_fmt(lo, hi)}; {what}")
    return list(dict.fromkeys(problems))


def _discrete_problems(spec, info: WorldInfo) -> list[str]:
    """A latent the world reads as an index, class or flag that the spec declares real (the world would round it,
    and the store would hold a value it did not render)."""
    problems = []
    graph = spec.graph
    names = set(graph.names)
    for template in info.discrete:
        for name in spec.expand_all([template]):
            if name not in names:
                continue
            node = graph.node(name)
            if node.variable.type not in ("integer", "boolean", "categorical"):
                problems.append(f"variables.{node.template}: world {info.name} reads {node.template} as an index or "
                                f"flag; declare `type: integer` (or boolean, categorical), not {node.variable.type}")
    return list(dict.fromkeys(problems))


def _presence_problems(spec) -> list[str]:
    """An explicitly indexed do-target, temporal edit, counterfactual target or camera mount on an object whose
    ``present`` flag is not constant 1 (:data:`~crlgen.schemas.graph.PRESENCE`): in the samples where the object
    is absent the intervention or edit would be labelled applied though nothing can change, and a camera would
    ride a phantom pose. Templated targets (``vehicle[i].x``) are fine: the sampler applies them to present
    objects only."""
    from ..schemas.interventions import Explicit, Sets, SingleNode

    found: list[tuple[str, str, str]] = []  # (field path, name, what it is)
    reg = spec.interventions
    if isinstance(reg, SingleNode):
        found += [(f"interventions.targets.{t}", t, "a do-target") for t in reg.targets]
    elif isinstance(reg, Sets):
        found += [(f"interventions.sets[{j}].targets.{t}", t, "a do-target") for j, s in enumerate(reg.sets) for t in s.targets]
    elif isinstance(reg, Explicit):
        found += [(f"interventions.assignments[{j}].targets.{t}", t, "a do-target")
                  for j, a in enumerate(reg.assignments) for t in a.targets]
    cf = spec.counterfactuals
    if cf is not None and cf.intervention:
        found += [(f"counterfactuals.intervention.{t}", t, "a counterfactual target") for t in cf.intervention]
    found += [(f"temporal_edits[{j}].target", e.target, "an edit target") for j, e in enumerate(spec.temporal_edits)]
    if cf is not None and cf.edit is not None:
        found.append(("counterfactuals.edit.target", cf.edit.target, "an edit target"))
    if not isinstance(spec.render.views, int):
        found += [(f"render.views[{j}].mount", c.mount, "a camera mount") for j, c in enumerate(spec.render.views)
                  if getattr(c, "mount", None)]
    problems = []
    for path, name, what in found:
        flag = spec.presence_flag(name)
        if flag is None or spec.always_present(flag):
            continue
        obj = flag.rsplit(".", 1)[0]
        kind = obj.split("[", 1)[0]
        template = f"use the template {kind}[i]{name[len(obj):]} (applied to present objects only)"
        cause = _absence_cause(spec, flag)
        if cause is None:
            fix = (f"give {flag} the mechanism \"1\"" if what in ("a camera mount", "an edit target") else
                   f"give {flag} the mechanism \"1\" or {template}")
            problems.append(f"{path}: {name} is {what} on {obj}, which is absent where {flag} is 0 (it is not constant 1); {fix}")
        else:
            fix = f"drop it or let it set {flag} only to 1"
            if what not in ("a camera mount", "an edit target"):
                fix += f", or {template}"
            problems.append(f"{path}: {what} ({name}) needs {obj} present in every sample, but {cause} can make {flag} "
                            f"other than 1 ({obj} absent); {fix}")
    return problems


def _absence_cause(spec, flag: str) -> str | None:
    """The field path of the domain override, intervention or counterfactual intervention that can make presence
    flag ``flag`` other than 1 (``interventions.targets.vehicle[i].present``) while its mechanism is the constant 1;
    None when the mechanism itself is not (the flag's equation is the cause)."""
    from ..schemas.expression import parse_expression
    from ..schemas.interventions import Do, Explicit, Sets, SingleNode

    def one(src: str | None) -> bool:
        body = parse_expression(src).tree.body if src else None
        return isinstance(body, ast.Constant) and body.value == 1

    if not one(spec.graph.node(flag).mechanism):
        return None
    causes: list[tuple[str, dict]] = [(f"the domain override domains.{d}.overrides", dict(spec.domains[d].overrides))
                                      for d in spec.domains]
    reg = spec.interventions
    if isinstance(reg, SingleNode):
        causes.append(("the intervention interventions.targets", dict(reg.targets)))
    elif isinstance(reg, Sets):
        causes += [(f"the intervention interventions.sets[{j}].targets", dict(s.targets)) for j, s in enumerate(reg.sets)]
    elif isinstance(reg, Explicit):
        causes += [(f"the intervention interventions.assignments[{j}].targets", dict(a.targets))
                   for j, a in enumerate(reg.assignments)]
    cf = spec.counterfactuals
    if cf is not None and cf.intervention:
        causes.append(("the counterfactual intervention counterfactuals.intervention", dict(cf.intervention)))
    for where, targets in causes:
        hit = spec.expand_keyed(targets.items()).get(flag)
        if hit is None:
            continue
        key, _, value = hit
        if where.startswith("the domain") and one(value) or isinstance(value, Do) and value.value == 1:
            continue
        return f"{where}.{key}"
    return None


def _edit_reach(op: str, a: float, b: float, lo: float, hi: float) -> tuple[float, float]:
    """The values an edit with a value in [a, b] can give a quantity in [lo, hi]: ``set`` -> [a, b], ``add`` ->
    [lo + a, hi + b], ``scale`` -> the hull of the four products."""
    if op == "set":
        return a, b
    if op == "add":
        return lo + a, hi + b
    corners = [lo * a, lo * b, hi * a, hi * b]
    return min(corners), max(corners)


def _edit_range_problems(spec, cls: type[World], edit, path: str) -> list[str]:
    """An edit of a latent whose result can leave the world's valid range for it (e.g. ``gravity = 100``,
    ``obj[0].mass = -5``, ``gravity *= 10`` over a declared range of [1, 20]), or an edit of a state that can leave
    the world's :meth:`~World.edit_ranges` for the spec (``obj[0].vy += 100``: a kick the simulation steps cannot
    follow; an ``add`` of a state is bounded as a change, since the state's value before it is not known)."""
    import re

    info = cls.info
    template = re.sub(r"\[\d+\]", "[i]", edit.target, count=1)
    a, b = (edit.value, edit.value) if isinstance(edit.value, float) else edit.value.support()
    state_ranges, why = cls.edit_ranges(spec)
    if template in state_ranges:
        lo, hi = state_ranges[template]
        res = _edit_reach(edit.op, a, b, *((0.0, 0.0) if edit.op == "add" else (lo, hi)))
        whose = f"valid range {_fmt(lo, hi)} for an edit of it{f' ({why})' if why else ''}"
    elif template in info.ranges and edit.target in set(spec.graph.names):
        lo, hi = info.ranges[template]
        res = _edit_reach(edit.op, a, b, *spec.graph.node(edit.target).variable.bounds())
        whose = f"valid range {_fmt(lo, hi)} for it"
    else:
        return []  # a name the world does not bound
    if not (math.isnan(res[0]) or math.isnan(res[1]) or res[0] < lo or res[1] > hi):
        return []
    reach = f"{res[0]:g}" if res[0] == res[1] else f"values in {_fmt(*res)}"
    how = f"make {edit.target} {reach}"
    if template in state_ranges and edit.op == "add":
        how = f"change {edit.target} by {reach}"
    elif template in state_ranges and edit.op == "scale":
        how += f" (a value in {_fmt(lo, hi)} scaled)"
    return [f"{path}.do: the edit can {how}, outside world {info.name}'s {whose}"]


def _edit_target_problem(spec, info: WorldInfo, target: str) -> str:
    """Why ``target`` is no edit target of the world: a template (an edit acts on one object) or an unknown name."""
    from ..schemas.graph import template_prefix

    prefix = template_prefix(target)
    if prefix is not None and target in info.edit_targets:
        n = spec.object_count(prefix) or 0
        which = f"{prefix}[0] .. {prefix}[{n - 1}]" if n else f"a {prefix} the spec has"
        return (f"an edit acts on one object, not on the template {target}; name the object's index, e.g. "
                f"{target.replace('[i]', '[0]', 1)} (one of {which})")
    example = next((t for t in info.edit_targets if "[i]" in t), None)
    fill = f", with i the index of one object the spec has ({example} -> {example.replace('[i]', '[0]', 1)})" if example else ""
    return f"{info.name} cannot edit {target!r}; expected one of {', '.join(info.edit_targets) or 'none'}{fill}"


def check_world(spec) -> list[str]:
    """Problems between a spec and its world, one ``"path: message"`` line each."""
    if spec.world is None:
        if spec.video is not None or spec.temporal_edits:
            return ["world: a video spec needs a world that simulates it"]
        return _presence_problems(spec)
    known = worlds()
    if spec.world not in known:
        return [f"world: unknown world {spec.world!r}; expected one of {', '.join(known)} or none"]
    cls = world_class(spec.world)
    info = cls.info
    problems = [f"world: {EngineMissing(m, f'world {info.name}')}" for m in missing_engines(spec)]
    for prefix, limit in info.max_objects.items():
        n = spec.object_count(prefix) or 0
        if n > limit:
            field = "objects" if isinstance(spec.objects, int) else f"objects.{prefix}"
            problems.append(f"{field}: world {info.name} simulates at most {limit} {prefix} objects, the spec asks for {n}")
    if not any(p.startswith("objects") for p in problems):
        problems += cls.check_objects(spec)
    if problems and any(p.startswith(("objects", "parameters.")) for p in problems):
        return problems  # the rest would expand hundreds of names for nothing
    graph = spec.graph
    latents = set(graph.names)
    for name in spec.expand_all(info.latents):
        if name not in latents:
            problems.append(f"variables: world {info.name} needs the latent {name!r}")
    problems += _range_problems(spec, info)
    problems += _discrete_problems(spec, info)
    problems += _presence_problems(spec)
    allowed_states = set(spec.expand_all(info.states))
    for s in graph.states:
        if s not in allowed_states:
            problems.append(f"variables.{s}: world {info.name} does not simulate a state {s!r}; it simulates {', '.join(sorted(allowed_states)) or 'none'}")
    if info.kind == "image" and spec.video is not None:
        problems.append(f"video: world {info.name} renders still images; remove `video`")
    if info.kind == "video" and spec.video is None:
        problems.append(f"video: world {info.name} renders videos; add `video: {getattr(cls, 'VIDEO_EXAMPLE', _VIDEO_EXAMPLE)}`")
    if spec.render.engine is not None and spec.render.engine not in info.engines:
        problems.append(f"render.engine: {spec.render.engine!r} is not an engine of {info.name}; expected one of {', '.join(info.engines)}")
    for a in spec.render.annotations:
        if a not in info.annotations:
            problems.append(f"render.annotations: {info.name} cannot produce {a!r}")
    mounts = spec.expand_all(info.mounts)
    for j, cam in enumerate(spec.render.cameras()):
        where = f"render.views[{j}]" if not isinstance(spec.render.views, int) else "render.views"
        if cam.kind not in info.camera_kinds:
            problems.append(f"{where}: world {info.name} has no {cam.kind!r} cameras; expected one of {', '.join(info.camera_kinds)}")
        elif cam.kind == "mounted" and cam.mount not in mounts:
            problems.append(f"{where}.mount: world {info.name} has no mount {cam.mount!r}; expected one of {', '.join(mounts) or 'none'}")
    targets = set(spec.expand_all(info.edit_targets))
    edits = list(spec.temporal_edits) + ([spec.counterfactuals.edit] if spec.counterfactuals and spec.counterfactuals.edit else [])
    for i, e in enumerate(edits):
        path = f"temporal_edits[{i}]" if i < len(spec.temporal_edits) else "counterfactuals.edit"
        if e.target not in targets:
            problems.append(f"{path}.target: {_edit_target_problem(spec, info, e.target)}")
        else:
            problems += _edit_range_problems(spec, cls, e, path)
    if not problems:
        problems += cls.check(spec)
    return problems


# ----- the catalogues -----------------------------------------------------------------------
def catalog_dirs() -> list[Path]:
    """Every registered catalogue folder (crlgen's own first)."""
    dirs: list[Path] = []
    for ep in sorted(entry_points(group=CATALOG_GROUP), key=lambda e: (e.name != "crlgen", e.name)):
        path = Path(ep.load())
        if path.is_dir() and path not in dirs:
            dirs.append(path)
    if CATALOG_DIR not in dirs:
        dirs.insert(0, CATALOG_DIR)
    return dirs


def catalog_path(name: str) -> Path | None:
    """``static/spring`` -> the catalogue's spec file, or None (also for names that climb out of it)."""
    if not name or ".." in Path(name).parts or Path(name).is_absolute():
        return None
    for d in catalog_dirs():
        p = d / f"{name}.yaml"
        try:
            if p.is_file():
                return p
        except (OSError, ValueError):  # a name too long for the filesystem
            return None
    return None


@dataclass(frozen=True)
class CatalogEntry:
    """One ready spec: its name (``static/spring``), file, world and description."""

    name: str
    path: Path
    world: str | None
    description: str


def catalog() -> list[CatalogEntry]:
    """Every ready spec of every registered catalogue, sorted by name (the first of a name wins)."""
    from ..schemas.loading import read_mapping

    seen: dict[str, CatalogEntry] = {}
    for d in catalog_dirs():
        for p in sorted(d.rglob("*.yaml")):
            name = str(p.relative_to(d).with_suffix(""))
            if name not in seen:
                data = read_mapping(p, catalog_path)
                seen[name] = CatalogEntry(name, p, data.get("world"), data.get("description", ""))
    return [seen[k] for k in sorted(seen)]
