"""The Ray driver: plan, create or resume the store, run shard tasks in a bounded window, commit, validate.

Retries have one owner each: Ray re-runs a task whose worker crashed or was killed
(``max_retries``; the embedded cluster bounds out-of-memory kills the same way),
object storage retries its own requests (botocore's standard mode, see ``_urls``),
and an exception raised by a task's own code is final: the run stops with it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from ..scenes.base import Resources, World, WorldUnavailable
from ..scenes.registry import world_class
from ..schemas import DatasetSpec, SpecError
from ._faults import signal_after
from ._feasible import InfeasibleError
from ._plan import Plan, make_plan
from ._store import Existing, Store, StoreError
from ._tasks import release_world, run_shard
from ._urls import Location, check_location, resolve


class RunError(Exception):
    """A run that could not finish (its message is one line for the user)."""


class ClusterError(RunError):
    """The Ray cluster can never run this world's tasks (a missing GPU or custom resource): a user mistake."""


@dataclass
class RunOptions:
    """How to run: where (local Ray, a cluster, or inline), how wide, and what to do with an existing store.

    ``workers``: CPUs of the embedded Ray (None = all cores); ``address``: join a
    cluster (``auto`` or ``host:port``; also ``RAY_ADDRESS``); ``overwrite``: replace
    a store of another spec; ``validate``: run the validation stage at the end;
    ``max_retries``: how often Ray re-runs a task whose worker died; ``window``:
    tasks in flight (default 2 x worker slots); ``executor``: ``"ray"`` or
    ``"inline"`` (this process, no Ray); ``resources``: custom resources the embedded
    cluster offers (``{"carla": 1}`` for one CARLA server); ``on_progress``: called with
    each shard's summary. Raises ValueError for values out of their domain.
    """

    workers: int | None = None
    address: str | None = None
    overwrite: bool = False
    validate: bool = True
    max_retries: int = 2
    window: int | None = None
    executor: str = "ray"
    resources: dict[str, float] = field(default_factory=dict)
    on_progress: Callable[[dict[str, Any]], None] | None = None

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers: expected at least 1, got {self.workers}")
        if self.executor not in ("ray", "inline"):
            raise ValueError(f"executor: expected 'ray' or 'inline', got {self.executor!r}")
        if self.max_retries < 0 or (self.window is not None and self.window < 1):
            raise ValueError("max_retries must be >= 0 and window >= 1")
        bad = {k: v for k, v in self.resources.items() if not (isinstance(v, (int, float)) and v > 0)}
        if bad:
            raise ValueError(f"resources: expected positive amounts, got {bad}")


@dataclass
class RunResult:
    """What a run did: shards run and skipped (resumed), seconds, frames rendered, the validation report,
    and the arrays whose missing metadata a resume restored."""

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
    restored: list[str] = field(default_factory=list)  # arrays whose missing zarr.json a resume wrote again


def prepare_store(plan: Plan, store: Store, overwrite: bool) -> tuple[set[int], bool, list[str]]:
    """Create the store, or find the shards an earlier run of the same spec committed.

    Returns (committed shard indices, whether this call created the store, the arrays whose
    missing ``zarr.json`` a resume wrote again: see :meth:`Store.restore_metadata`). Raises
    :class:`StoreError` for a foreign location or another spec's store without ``overwrite``.
    """
    state, _ = store.existing(plan.spec_hash)
    if state is Existing.SAME and not overwrite:
        restored = store.restore_metadata(plan)
        return store.committed_shards(plan), False, restored
    store.create(plan, overwrite=overwrite)
    return set(), True, []


def run(spec: DatasetSpec, location: Location | str, options: RunOptions | None = None) -> RunResult:
    """Generate the dataset ``spec`` describes at ``location`` (a :class:`Location` or a URL):
    sample, render, write, commit, validate.

    A store of the same spec is resumed (committed shards are skipped; an array whose
    ``zarr.json`` went missing gets it written again); the result is byte-identical to an
    uninterrupted run whatever the worker count. Raises
    :class:`~crlgen.pipeline.UrlError` for an unusable location, :class:`StoreError`
    for a store it must not touch, :class:`RunError` when a shard fails, and
    :class:`~crlgen.scenes.base.WorldUnavailable` before anything is written when the world cannot run here
    (its server does not answer), :class:`~crlgen.schemas.SpecError` for values the spec's ranges forbid (its subclass
    ``InfeasibleError`` for a sample the world cannot start from after ``max_resamples``
    redraws). On a ``SpecError`` a store this run created is removed again (a resumed store is kept).
    """
    from ._sidecars import write_sidecars
    from ._validate import validate_store

    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"run: expected a DatasetSpec (load one with load_spec), got {type(spec).__name__}")
    location = resolve(location, spec.output.storage_options, arg="location")
    options = options or RunOptions()
    t0 = time.perf_counter()
    check_location(location, write=True)
    plan = make_plan(spec)
    store = Store(location)
    resources = world_class(spec.world).resources(spec) if spec.world else Resources()
    use_ray = options.executor == "ray" and location.protocol != "memory"  # memory:// lives in this process only
    started, slots = start_ray(options) if use_ray else (False, 0)
    try:
        if use_ray:  # before anything is written: a cluster that can never run a task is refused
            import ray

            _check_cluster_offers(ray.cluster_resources(), resources.ray_options(),
                                  "--address" if (options.address or os.environ.get("RAY_ADDRESS")) else "--resource")
        _preflight_world(spec, resources, use_ray)  # still before anything is written
        root_existed = store.root_exists()
        done, created, restored = prepare_store(plan, store, options.overwrite)
        pending = [k for k in range(len(plan.shards)) if k not in done]
        if pending:
            store.set_status(plan, "writing")
        try:
            summaries = (_execute_ray(location, pending, options, plan, resources, slots) if use_ray
                         else _execute_inline(location, pending, options, plan)) if pending else []
        except SpecError:
            # A mistake in the spec (a sample its world cannot start from, a value out of range) is
            # deterministic: resuming would stop at the same sample, so a store this run created is
            # removed again and the location is left as it was found (nothing written).
            if created:
                store.discard(keep_root=root_existed)
            raise
    finally:
        if started:
            import ray

            ray.shutdown()
    run_id = time.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    store.write_run_log(run_id, {"shards_run": pending, "shards_skipped": sorted(done), "restored": restored, "summaries": summaries,
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
                     sum(s["render_seconds"] for s in summaries), valid, report, summaries, restored)


def _preflight_world(spec: DatasetSpec, resources: Resources, use_ray: bool) -> None:
    """Ask the world whether it can run here at all (:meth:`World.preflight`, e.g. a simulator server that must
    answer) where its render tasks would run: in a Ray task taking the world's resources, else in this process.
    Raises :class:`WorldUnavailable` with the world's one line."""
    if not spec.world:
        return
    cls = world_class(spec.world)
    if getattr(cls.preflight, "__func__", None) is World.preflight.__func__:
        return
    if not use_ray:
        cls.preflight(spec)
        return
    import ray

    task = ray.remote(max_retries=0, **resources.ray_options())(_preflight_message)
    message = ray.get(task.remote(spec.to_dict()))
    if message:
        raise WorldUnavailable(message)


def _preflight_message(spec_dict: dict[str, Any]) -> str | None:
    """Inside a Ray task: the world's :meth:`World.preflight` line, or None when it can run."""
    spec = DatasetSpec.from_dict(spec_dict)
    try:
        world_class(spec.world).preflight(spec)
    except WorldUnavailable as e:
        return str(e)
    return None


def _spec_payload(plan: Plan) -> dict[str, Any]:
    data = plan.spec.to_dict()
    data.pop("output", None)
    return data


def _report(out: list[dict[str, Any]], summary: dict[str, Any], options: RunOptions) -> None:
    out.append(summary)
    if options.on_progress:
        options.on_progress(summary)
    signal_after(len(out))


def _execute_inline(location: Location, pending: list[int], options: RunOptions, plan: Plan) -> list[dict[str, Any]]:
    spec_dict = _spec_payload(plan)
    out: list[dict[str, Any]] = []
    try:
        for k in pending:
            try:
                summary = run_shard(spec_dict, location, k, threads=0)
            except (KeyboardInterrupt, MemoryError):
                raise
            except InfeasibleError as e:  # the spec asks for what its world cannot start from: a user's mistake
                raise InfeasibleError(e.problems) from None
            except Exception as e:  # noqa: BLE001 - the same one line a Ray run gives
                raise RunError(_task_failure(k, e)) from None
            _report(out, summary, options)
    finally:
        release_world()  # the engine does not outlive the run
    return out


def _task_failure(shard: int, cause: BaseException) -> str:
    """One line for an exception a shard task raised."""
    if isinstance(cause, SpecError):
        return f"shard {shard}: " + "; ".join(cause.problems)
    return " ".join(f"shard {shard}: {type(cause).__name__}: {cause}".split())


#: Ray's documented switch for single-machine clusters: "0" keeps every Ray address on 127.0.0.1
#: (on Linux Ray otherwise swaps loopback for the machine's interface address). Ray reads it once,
#: when it is imported.
RAY_LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def _import_ray(embedded: bool):
    """Import ray; for an embedded cluster, with its addresses on loopback when ray was not imported yet."""
    if embedded and "ray" not in sys.modules:
        os.environ.setdefault(RAY_LOOPBACK_ENV, "0")
    elif embedded and os.environ.get(RAY_LOOPBACK_ENV) != "0":
        warnings.warn(f"ray was imported before crlgen started its embedded cluster, so the cluster may listen on "
                      f"this machine's interface address; set {RAY_LOOPBACK_ENV}=0 before importing ray to keep it "
                      f"on 127.0.0.1", RuntimeWarning, stacklevel=3)
    import ray

    return ray


def start_ray(options: RunOptions) -> tuple[bool, int]:
    """Join a cluster or start an embedded one on loopback; returns (started here, worker slots).

    A cluster is joined only when ``options.address`` or ``RAY_ADDRESS`` names it; otherwise the
    run starts its own, even where ``ray start`` left a cluster running on this machine.

    The embedded cluster's addresses are 127.0.0.1 (see ``RAY_LOOPBACK_ENV``), it has
    no dashboard, keeps Ray's default token authentication (only its notice is
    silenced), and bounds out-of-memory retries by ``max_retries``.
    """
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    address = options.address or os.environ.get("RAY_ADDRESS")
    ray = _import_ray(embedded=not address)

    if ray.is_initialized():
        return False, int(ray.cluster_resources().get("CPU", 1))
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
        return True, int(ray.cluster_resources().get("CPU", 1))
    cpus = options.workers or os.cpu_count() or 1
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    # address="local": without it Ray joins the cluster the machine's last `ray start` recorded
    # (/tmp/ray/ray_current_cluster) and then refuses num_cpus; no address means embedded here
    ray.init(address="local", num_cpus=cpus, resources=dict(options.resources) or None, include_dashboard=False,
             log_to_driver=False, logging_level="WARNING", _system_config={"task_oom_retries": max(0, options.max_retries)})
    return True, cpus


def _check_cluster_offers(cluster: dict[str, float], opts: dict[str, Any], arg: str) -> None:
    """Raise ClusterError (naming ``arg``) when no node could ever run a task that needs ``opts``."""
    need = {"CPU": opts.get("num_cpus", 0), "GPU": opts.get("num_gpus", 0), **opts.get("resources", {})}
    for name, amount in need.items():
        if amount and cluster.get(name, 0) < amount:
            hint = ("start the cluster with GPUs" if name == "GPU" else
                    f"start Ray with --resources '{{\"{name}\": N}}' or pass --resource {name}=N")
            raise ClusterError(f"{arg}: the Ray cluster offers {cluster.get(name, 0):g} {name!r}, but each task of this world "
                               f"needs {amount:g}; {hint}")


def _execute_ray(location: Location, pending: list[int], options: RunOptions, plan: Plan, resources: Resources,
                 slots: int) -> list[dict[str, Any]]:
    import ray
    from ray import exceptions as rx

    # one task per shard, taking what the world declares (CPUs, GPUs, custom resources such as a
    # CARLA server slot); each worker process keeps one world (_tasks.world_for) until Ray ends it
    opts = resources.ray_options()
    task = ray.remote(max_retries=options.max_retries, retry_exceptions=False, **opts)(run_shard)
    threads = max(1, int(opts["num_cpus"]))
    spec_ref = ray.put(_spec_payload(plan))
    window = options.window or 2 * slots
    queue: deque[int] = deque(pending)
    inflight: dict[Any, int] = {}
    out: list[dict[str, Any]] = []
    # On Ctrl-C nothing is cancelled by hand: tasks fate-share with this driver, so leaving
    # (ray.shutdown in run) stops them, and ray.cancel racing a task's reply trips an internal
    # Ray check (seen: "Tried to complete task that was not pending"). A shard that still
    # finishes only adds a committed shard the next run skips.
    while queue or inflight:
        while queue and len(inflight) < window:
            k = queue.popleft()
            inflight[task.remote(spec_ref, location, k, threads)] = k
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            k = inflight.pop(ref)
            try:
                summary = ray.get(ref)
            except rx.RayTaskError as e:
                if isinstance(e.cause, InfeasibleError):
                    # the run removes a store it created: let the shards still in flight finish
                    # writing first (their results no longer matter)
                    ray.wait(list(inflight), num_returns=len(inflight))
                    raise InfeasibleError(e.cause.problems) from None
                raise RunError(_task_failure(k, e.cause)) from None
            except (rx.WorkerCrashedError, rx.OutOfMemoryError, rx.NodeDiedError, rx.ObjectLostError) as e:
                raise RunError(f"shard {k}: its worker died {options.max_retries + 1} times "
                               f"({type(e).__name__}); committed shards are kept, re-run to resume") from None
            _report(out, summary, options)
    return out
