"""Which worlds exist, what each needs from a spec, how one is built, and the catalogue of ready specs.

Importing a world's module is cheap (engines are imported inside the world),
so the registry reads every world's :class:`~crlgen.scenes.base.WorldInfo`
without Blender or PyBullet being loaded.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .base import World, WorldInfo
from .engines.quiet import EngineMissing, engine_available

#: world name -> "module:Class"; a new world is one line here plus its module.
WORLDS: dict[str, str] = {
    "static/spring": "crlgen.scenes.static.spring:SpringWorld",
    "physics/falling": "crlgen.scenes.physics.worlds:FallingWorld",
    "physics/projectile": "crlgen.scenes.physics.worlds:ProjectileWorld",
    "physics/collision": "crlgen.scenes.physics.worlds:CollisionWorld",
}

#: The folder of ready scene specs (package data): ``<domain>/<name>.yaml``.
CATALOG_DIR = Path(__file__).resolve().parent / "catalog"


def world_class(name: str) -> type[World]:
    """The class registered as ``name``; raises KeyError naming the known worlds."""
    try:
        target = WORLDS[name]
    except KeyError:
        raise KeyError(f"unknown world {name!r}; expected one of {', '.join(sorted(WORLDS))}") from None
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


def check_world(spec) -> list[str]:
    """Problems between a spec and its world, one ``"path: message"`` line each."""
    if spec.world is None:
        if spec.video is not None or spec.temporal_edits:
            return ["world: a video spec needs a world that simulates it"]
        return []
    if spec.world not in WORLDS:
        return [f"world: unknown world {spec.world!r}; expected one of {', '.join(sorted(WORLDS))} or none"]
    info = world_info(spec.world)
    problems = [f"world: {EngineMissing(m, f'world {info.name}')}" for m in missing_engines(spec)]
    graph = spec.graph
    latents = set(graph.names)
    for name in spec.expand_all(info.latents):
        if name not in latents:
            problems.append(f"variables: world {info.name} needs the latent {name!r}")
    allowed_states = set(spec.expand_all(info.states))
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
    targets = set(spec.expand_all(info.edit_targets))
    edits = list(spec.temporal_edits) + ([spec.counterfactuals.edit] if spec.counterfactuals and spec.counterfactuals.edit else [])
    for i, e in enumerate(edits):
        if e.target not in targets:
            path = f"temporal_edits[{i}]" if i < len(spec.temporal_edits) else "counterfactuals.edit"
            problems.append(f"{path}.target: {info.name} cannot edit {e.target!r}; expected one of {', '.join(sorted(targets)) or 'none'}")
    return problems


# ----- the catalogue ------------------------------------------------------------------------
def catalog_path(name: str) -> Path | None:
    """``static/spring`` -> the catalogue's spec file, or None (also for names that climb out of it)."""
    if not name or ".." in Path(name).parts or Path(name).is_absolute():
        return None
    p = CATALOG_DIR / f"{name}.yaml"
    return p if p.is_file() else None


@dataclass(frozen=True)
class CatalogEntry:
    """One ready spec: its name (``static/spring``), file, world and description."""

    name: str
    path: Path
    world: str | None
    description: str


def catalog() -> list[CatalogEntry]:
    """Every ready spec under the catalogue folder, sorted by name."""
    from ..schemas.loading import read_mapping

    out = []
    for p in sorted(CATALOG_DIR.rglob("*.yaml")):
        data = read_mapping(p, catalog_path)
        out.append(CatalogEntry(str(p.relative_to(CATALOG_DIR).with_suffix("")), p, data.get("world"), data.get("description", "")))
    return out
