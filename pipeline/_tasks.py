"""What one Ray task does: sample a shard's latents, render them, write the shard.

Runs inside Ray workers (and in-process for tests and benchmarks). The world
and the compiled SCM are cached per worker process and reused across shards,
so an engine is set up once, not once per task. Tasks return small summaries,
never pixels.
"""

from __future__ import annotations

import json
import os
import socket
import time
from typing import Any

import numpy as np

from ..scenes.registry import build_world
from ..schemas import DatasetSpec
from ._faults import maybe_crash
from ._feasible import sample_feasible, world_batch
from ._plan import Plan, make_plan
from ._scm import CompiledSCM
from ._store import Store
from ._urls import Location

_CACHE: dict[str, Any] = {}


def plan_for(spec_dict: dict[str, Any]) -> tuple[DatasetSpec, Plan, CompiledSCM]:
    """The (cached) spec, plan and compiled SCM of a spec mapping."""
    key = "spec:" + json.dumps(spec_dict, sort_keys=True)
    if key not in _CACHE:
        spec = DatasetSpec.from_dict(spec_dict)
        _CACHE[key] = (spec, make_plan(spec), CompiledSCM(spec))
    return _CACHE[key]


def world_for(spec: DatasetSpec, threads: int):
    """This process's world for the spec; an older one is closed first.

    Keyed on the whole spec but where it is written: a world may build from any of it (a room or an
    arm chosen by ``parameters``, the object counts), so two specs never share one, even where they
    differ only there."""
    key = f"{spec.model_dump_json(exclude={'output'})}|{threads}"
    cur = _CACHE.get("world")
    if cur is not None and cur[0] == key:
        return cur[1]
    if cur is not None:
        cur[1].close()
        del _CACHE["world"]
    if threads == 1 and os.environ.get("CRLGEN_PIN_CPU", "1") != "0":
        from ._affinity import claim_cpu

        claim_cpu()  # before the engine starts its threads, so they inherit the pin
    world = build_world(spec, threads=threads)
    _CACHE["world"] = (key, world)
    return world


def release_world() -> None:
    """Close this process's cached world (the end of an in-process run)."""
    cur = _CACHE.pop("world", None)
    if cur is not None:
        cur[1].close()


def shard_arrays(spec: DatasetSpec, plan: Plan, model: CompiledSCM, start: int, stop: int, threads: int = 0) -> tuple[dict[str, np.ndarray], float]:
    """Every per-sample array of samples ``start..stop-1`` (by name), and the seconds spent rendering.

    A world that checks feasibility gets only samples it can start from (``_feasible.sample_feasible``:
    infeasible ones are redrawn and counted in ``resampled``). Raises ValueError when the world returns
    other outputs than it declared and :class:`~crlgen.pipeline._feasible.InfeasibleError` when a sample
    stays infeasible after ``max_resamples`` redraws.
    """
    world = world_for(spec, threads) if plan.world_arrays or model.resamples else None
    batch = sample_feasible(model, world, start, stop)
    data = batch.arrays()
    render_s = 0.0
    if plan.world_arrays:
        t = time.perf_counter()
        out = world.render(world_batch(model, batch)).outputs
        render_s = time.perf_counter() - t
        declared = {a.name for a in plan.world_arrays}
        if set(out) != declared:
            raise ValueError(f"world {spec.world} returned outputs {sorted(out)}, but declared {sorted(declared)}")
        data.update(out)
    return {k: np.ascontiguousarray(v) for k, v in data.items()}, render_s


def run_shard(spec_dict: dict[str, Any], location: Location, shard: int, threads: int = 0) -> dict[str, Any]:
    """Sample, render and commit one shard; returns a small summary for the driver (never pixels)."""
    t0 = time.perf_counter()
    maybe_crash()
    spec, plan, model = plan_for(spec_dict)
    start, stop = plan.shards[shard]
    data, render_s = shard_arrays(spec, plan, model, start, stop, threads)
    Store(location).write_shard(plan, shard, data)
    return {"shard": shard, "samples": stop - start, "frames": (stop - start) * plan.images_per_sample(),
            "seconds": time.perf_counter() - t0, "render_seconds": render_s, "pid": os.getpid(), "host": socket.gethostname()}
