"""Which worlds exist, what each needs from a spec, and the catalogue of ready specs.

Importing a world's module is cheap (engines are imported inside the world),
so the registry can read every world's :class:`~scenes.base.WorldInfo`
without Blender or PyBullet being loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from schemas.graph import expand, template_prefix

from .base import World, WorldInfo

#: world name -> "module:Class"; a new world is one line here plus its module.
WORLDS: dict[str, str] = {
    "static/spring": "scenes.static.spring:SpringWorld",
    "physics/falling": "scenes.physics.worlds:FallingWorld",
    "physics/projectile": "scenes.physics.worlds:ProjectileWorld",
    "physics/collision": "scenes.physics.worlds:CollisionWorld",
}

CATALOG_DIR = Path(__file__).resolve().parent / "catalog"


def world_class(name: str) -> type[World]:
    try:
        target = WORLDS[name]
    except KeyError:
        raise KeyError(f"unknown world {name!r}; expected one of {', '.join(sorted(WORLDS))}") from None
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)


def world_info(name: str) -> WorldInfo:
    return world_class(name).info


def expand_templates(spec, names: tuple[str, ...]) -> list[str]:
    """Plain names in order, then templated ones object-major (obj[0].x, obj[0].y, obj[1].x...)."""
    out = [n for n in names if template_prefix(n) is None]
    prefixes = list(dict.fromkeys(template_prefix(n) for n in names if template_prefix(n) is not None))
    for prefix in prefixes:
        group = [n for n in names if template_prefix(n) == prefix]
        for k in range(spec.object_count(prefix) or 0):
            out.extend(expand(n, k) for n in group)
    return out


def check_world(spec) -> list[str]:
    """Problems between a spec and its world, one ``"path: message"`` line each."""
    if spec.world is None:
        if spec.video is not None or spec.temporal_edits:
            return ["world: a video spec needs a world that simulates it"]
        return []
    if spec.world not in WORLDS:
        return [f"world: unknown world {spec.world!r}; expected one of {', '.join(sorted(WORLDS))} or none"]
    info = world_info(spec.world)
    problems = []
    graph = spec.graph
    latents = set(graph.names)
    for name in expand_templates(spec, info.latents):
        if name not in latents:
            problems.append(f"variables: world {info.name} needs the latent {name!r}")
    allowed_states = set(expand_templates(spec, info.states))
    for s in graph.states:
        if s not in allowed_states:
            problems.append(f"variables.{s}: world {info.name} does not simulate a state {s!r}; it simulates {', '.join(sorted(allowed_states)) or 'none'}")
    if info.kind == "image" and spec.video is not None:
        problems.append(f"video: world {info.name} renders still images; remove `video`")
    if info.kind == "video" and spec.video is None:
        problems.append(f"video: world {info.name} renders videos; add `video: {{fps: 30, frames: 60}}`")
    if spec.render.engine is not None and spec.render.engine not in info.engines:
        problems.append(f"render.engine: {spec.render.engine!r} is not an engine of {info.name}; expected one of {', '.join(info.engines)}")
    for a in spec.render.annotations:
        if a not in info.annotations:
            problems.append(f"render.annotations: {info.name} cannot produce {a!r}")
    targets = set(expand_templates(spec, info.edit_targets))
    edits = list(spec.temporal_edits) + ([spec.counterfactuals.edit] if spec.counterfactuals and spec.counterfactuals.edit else [])
    for i, e in enumerate(edits):
        if e.target not in targets:
            path = f"temporal_edits[{i}]" if i < len(spec.temporal_edits) else "counterfactuals.edit"
            problems.append(f"{path}.target: {info.name} cannot edit {e.target!r}; expected one of {', '.join(sorted(targets)) or 'none'}")
    return problems


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    path: Path
    world: str | None
    description: str


def catalog() -> list[CatalogEntry]:
    """Every ready spec under ``scenes/catalog``, by name (``static/spring``)."""
    from schemas.io import read_mapping

    out = []
    for p in sorted(CATALOG_DIR.rglob("*.yaml")):
        data = read_mapping(p)
        out.append(CatalogEntry(str(p.relative_to(CATALOG_DIR).with_suffix("")), p, data.get("world"), data.get("description", "")))
    return out
