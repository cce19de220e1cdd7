"""What one Ray task does: sample a shard's latents, render them, write the shard.

Runs inside Ray workers (and in-process for tests and benchmarks). The world
and the compiled SCM are cached per worker process and reused across shards,
so an engine is set up once, not once per task. Tasks return small summaries,
never pixels.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

import numpy as np

from schemas import DatasetSpec

from .plan import Plan, make_plan
from .scm import CompiledSCM, SampleBatch
from .store import Store
from .urls import Location

_CACHE: dict[str, Any] = {}


def _cached(key: str, build):
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def plan_for(spec_dict: dict[str, Any]) -> tuple[DatasetSpec, Plan, CompiledSCM]:
    import json

    key = "spec:" + json.dumps(spec_dict, sort_keys=True)

    def build():
        spec = DatasetSpec.from_dict(spec_dict)
        return spec, make_plan(spec), CompiledSCM(spec)

    return _cached(key, build)


def world_for(spec: DatasetSpec, threads: int):
    """The process's world for this spec's world and render settings; an older one is closed."""
    from scenes.registry import world_class

    key = f"{spec.world}|{spec.render.model_dump_json()}|{spec.video.model_dump_json() if spec.video else ''}|{threads}"
    cur = _CACHE.get("world")
    if cur is not None and cur[0] == key:
        return cur[1]
    if cur is not None:
        cur[1].close()
    if threads == 1 and os.environ.get("CRLGEN_PIN_CPU", "1") != "0":
        from .affinity import claim_cpu

        claim_cpu()  # before the engine starts its threads, so they inherit the pin
    world = world_class(spec.world)(spec, threads=threads)
    _CACHE["world"] = (key, world)
    return world


def world_batch(spec: DatasetSpec, model: CompiledSCM, batch: SampleBatch):
    from scenes.base import BatchEdit, WorldBatch

    latents = {name: np.ascontiguousarray(batch.latents[:, j]) for j, name in enumerate(batch.names)}
    edits = tuple(
        BatchEdit(e.target, e.op, batch.edit_frame[:, c].astype(np.int64),
                  np.where(batch.edit_frame[:, c] >= 0, e.end, -1).astype(np.int64), batch.edit_value[:, c])
        for c, e in enumerate(model.edits)
    )
    return WorldBatch(np.arange(batch.start, batch.stop), latents, batch.seeds, edits)


def shard_arrays(spec: DatasetSpec, plan: Plan, model: CompiledSCM, start: int, stop: int, threads: int = 0) -> tuple[dict[str, np.ndarray], float]:
    """Every per-sample array of samples ``start..stop-1``, and the seconds spent rendering."""
    batch = model.sample(start, stop)
    data = {
        "latents": batch.latents, "noise": batch.noise, "domain": batch.domain, "intervention": batch.intervention,
        "intervention_mask": batch.intervention_mask, "intervention_value": batch.intervention_value,
        "pair": batch.pair, "pair_role": batch.pair_role,
    }
    if model.edits:
        data["edit_frame"], data["edit_value"] = batch.edit_frame, batch.edit_value
    render_s = 0.0
    if plan.kind != "latents":
        world = world_for(spec, threads)
        t = time.perf_counter()
        out = world.render(world_batch(spec, model, batch))
        render_s = time.perf_counter() - t
        data[plan.pixel_array] = out.pixels
        if "depth" in spec.render.annotations:
            data["depth"] = out.depth
        if "segmentation" in spec.render.annotations:
            data["segmentation"] = out.segmentation
        if plan.kind == "video":
            data["states"] = out.states
    return {k: np.ascontiguousarray(v) for k, v in data.items()}, render_s


#: Fault injection for tests and chaos drills: if this variable names an existing file,
#: the first task to see it deletes it and kills its worker process (a crash, not an exception).
CRASH_ONCE_ENV = "CRLGEN_CRASH_ONCE_FILE"


def _maybe_crash() -> None:
    token = os.environ.get(CRASH_ONCE_ENV)
    if token:
        try:
            os.unlink(token)
        except FileNotFoundError:
            return
        os._exit(17)


def run_shard(spec_dict: dict[str, Any], url: str, storage_options: dict[str, Any], shard: int, threads: int = 0) -> dict[str, Any]:
    """Sample, render and commit one shard; returns a summary for the driver."""
    t0 = time.perf_counter()
    _maybe_crash()
    spec, plan, model = plan_for(spec_dict)
    start, stop = plan.shards[shard]
    data, render_s = shard_arrays(spec, plan, model, start, stop, threads)
    Store(Location(url, storage_options)).write_shard(plan, shard, data)
    return {"shard": shard, "samples": stop - start, "frames": (stop - start) * plan.frames * len(plan.views) if plan.kind != "latents" else 0,
            "seconds": time.perf_counter() - t0, "render_seconds": render_s, "pid": os.getpid(), "host": socket.gethostname()}
