"""The Ray driver: plan, create or resume the store, run shard tasks in a bounded window, commit, validate.

Retries are the driver's: Ray retries a crashed worker's task (``max_retries``),
the driver resubmits a shard whose worker died or was killed for memory at most
``max_attempts`` times, storage hiccups are retried with backoff inside the task,
and a user error (a bad spec or world input) stops the run at once.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from schemas import DatasetSpec, SpecError

from .plan import Plan, make_plan
from .store import Store, StoreError
from .tasks import run_shard
from .urls import Location


class RunError(Exception):
    """A run that could not finish (its message is one line for the user)."""


@dataclass
class RunOptions:
    workers: int | None = None  # local Ray CPUs; None = all cores
    address: str | None = None  # join an existing cluster (or RAY_ADDRESS)
    overwrite: bool = False
    validate: bool = True
    max_attempts: int = 3
    window: int | None = None  # tasks in flight; default 2 x workers
    executor: str = "ray"  # "ray" or "inline" (one process, for debugging and baselines)
    on_progress: Callable[[dict[str, Any]], None] | None = None


@dataclass
class RunResult:
    url: str
    plan: Plan
    shards_run: int
    shards_skipped: int
    seconds: float
    frames: int
    render_seconds: float
    valid: bool | None
    report: dict[str, Any] | None = None
    summaries: list[dict[str, Any]] = field(default_factory=list)


def prepare_store(plan: Plan, store: Store, overwrite: bool) -> set[int]:
    """Create the store, or find the shards an earlier run of the same spec committed."""
    attrs = None if store.is_empty() else store.attrs()
    if attrs is None and not store.is_empty():
        raise StoreError(f"{store.location.redacted()}: exists and is not a crlgen store; refusing to write there")
    if attrs is not None and attrs.get("spec_hash") == plan.spec_hash and not overwrite:
        return store.committed_shards(plan, verify=True)
    store.create(plan, overwrite=overwrite)
    return set()


def run(spec: DatasetSpec, location: Location, options: RunOptions | None = None) -> RunResult:
    from .sidecars import write_sidecars
    from .validate import validate_store

    options = options or RunOptions()
    t0 = time.perf_counter()
    plan = make_plan(spec)
    store = Store(location)
    done = prepare_store(plan, store, options.overwrite)
    pending = [k for k in range(len(plan.shards)) if k not in done]
    if pending:
        store.set_status(plan, "writing")
    summaries = _execute(plan, location, pending, options) if pending else []
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    store.write_run_log(run_id, {"shards_run": pending, "shards_skipped": sorted(done), "summaries": summaries,
                                 "seconds": time.perf_counter() - t0, "workers": options.workers, "address": bool(options.address)})
    write_sidecars(plan, store)
    store.consolidate()
    valid, report = None, None
    if options.validate:
        report = validate_store(location, plan=plan)
        valid = report["passed"]
        store.write_text("validation.json", json.dumps(report, indent=1, sort_keys=True))
    store.set_status(plan, "complete" if valid is not False else "invalid")
    store.consolidate()
    frames = sum(s["frames"] for s in summaries)
    return RunResult(location.url, plan, len(pending), len(done), time.perf_counter() - t0, frames,
                     sum(s["render_seconds"] for s in summaries), valid, report, summaries)


def _execute(plan: Plan, location: Location, pending: list[int], options: RunOptions) -> list[dict[str, Any]]:
    spec_dict = plan.spec.to_dict()
    spec_dict.pop("output", None)
    if options.executor == "inline" or location.protocol == "memory":  # memory:// lives in this process only
        out = []
        for k in pending:
            out.append(run_shard(spec_dict, location.url, location.storage_options, k, threads=0))
            if options.on_progress:
                options.on_progress(out[-1])
        return out
    return _execute_ray(plan, location, pending, options, spec_dict)


def loopback_only() -> None:
    """Make an embedded (single-machine) Ray use 127.0.0.1 as its node address.

    Ray replaces 127.0.0.1 with the machine's "remotely reachable" interface address unless
    its multi-node mode is off (the switch it uses on macOS and Windows); an embedded cluster
    never has other nodes, so its driver, GCS, raylet and workers should talk over loopback.
    The variable covers processes Ray starts; the constant covers a `ray` already imported.
    """
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False


def start_ray(options: RunOptions) -> tuple[bool, int]:
    """Join a cluster or start an embedded one on loopback; returns (started here, worker slots)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = options.address or os.environ.get("RAY_ADDRESS")
    if not address:
        loopback_only()
    import ray

    if ray.is_initialized():
        return False, int(ray.cluster_resources().get("CPU", 1))
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        return True, int(ray.cluster_resources().get("CPU", 1))
    cpus = options.workers or os.cpu_count() or 1
    # the embedded cluster keeps Ray's default token authentication; only its notice is silenced
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING",
             _system_config={"task_oom_retries": max(0, options.max_attempts - 1)})
    return True, cpus


def _execute_ray(plan: Plan, location: Location, pending: list[int], options: RunOptions, spec_dict: dict) -> list[dict[str, Any]]:
    import ray
    from ray import exceptions as rx

    started, slots = start_ray(options)
    try:
        task = ray.remote(num_cpus=1, max_retries=options.max_attempts - 1, retry_exceptions=False)(run_shard)
        spec_ref = ray.put(spec_dict)
        window = options.window or 2 * slots
        queue: deque[int] = deque(pending)
        inflight: dict[Any, int] = {}
        attempts: dict[int, int] = {}
        out: list[dict[str, Any]] = []
        # On Ctrl-C nothing is cancelled by hand: tasks fate-share with this driver, so leaving
        # (ray.shutdown below) stops them, and ray.cancel racing a task's reply trips an internal
        # Ray check (seen: "Tried to complete task that was not pending"). A shard that still
        # finishes only adds a committed shard the next run skips.
        while queue or inflight:
            while queue and len(inflight) < window:
                k = queue.popleft()
                attempts[k] = attempts.get(k, 0) + 1
                inflight[task.remote(spec_ref, location.url, location.storage_options, k, 1)] = k
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                k = inflight.pop(ref)
                try:
                    summary = ray.get(ref)
                except rx.RayTaskError as e:
                    cause = e.cause
                    if isinstance(cause, (SpecError, ValueError, TypeError, KeyError)):
                        raise RunError(f"shard {k}: {type(cause).__name__}: {cause}") from None
                    if attempts[k] >= options.max_attempts:
                        raise RunError(f"shard {k} failed {attempts[k]} times; last error: {type(cause).__name__}: {cause}") from None
                    time.sleep(min(5.0, 0.5 * 2 ** attempts[k]))
                    queue.append(k)
                    continue
                except (rx.WorkerCrashedError, rx.OutOfMemoryError, rx.NodeDiedError, rx.ObjectLostError) as e:
                    if attempts[k] >= options.max_attempts:
                        raise RunError(f"shard {k} failed {attempts[k]} times: {type(e).__name__}") from None
                    queue.append(k)
                    continue
                out.append(summary)
                if options.on_progress:
                    options.on_progress(summary)
        return out
    finally:
        if started:
            ray.shutdown()
