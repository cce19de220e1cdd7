"""The nightly regeneration job: content-addressed versions of many datasets under one root, each
validated before an atomic ``latest`` pointer publishes it, old versions pruned, one job at a time.

Layout under the root (a local folder or a store URL such as ``s3://bucket/datasets``)::

    <root>/.crlgen-regenerate.lock   while a job runs: who holds the root (owner, host, pid, heartbeat)
    <root>/<name>/latest             JSON: the published version (replaced in one atomic write)
    <root>/<name>/index.json         every kept version: date, status, validation, counts, sizes
    <root>/<name>/<version>/         that version's Zarr store (``crlgen run``'s; validation.json inside)

``<name>`` is the catalogue name (``physics/falling_simple``) or, for a spec file, the spec's
``name``. A version id is the first 16 hex digits of the SHA-256 of the spec's hash (the plan's
``spec_hash``: its resolved form, the sampler and the store format), crlgen's version and the
versions of the packages that produce the data (zarr, numpy, ray, the world's engines and the
world's own package); the same inputs give the same id, so an unchanged dataset is skipped and an
interrupted one resumes in its own store (``run``'s resume). See ``docs/regenerate.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from ..schemas import DatasetSpec, SpecError
from ._rootlock import LOCK_NAME, LockBusy, LockLost, RootLock, json_bytes, read_json, utc_now, write_atomic
from ._run import RunOptions
from ._urls import Location, check_location, resolve

__all__ = ["DEFAULT_KEEP", "EXIT_LOCKED", "LOCK_NAME", "Dataset", "LockBusy", "LockLost", "Outcome", "RegenerateResult",
           "engine_versions", "regenerate", "resolve_sources", "version_id"]

#: Exit code of a job that found the root locked by another (EX_TEMPFAIL: try again later).
EXIT_LOCKED = 75
DEFAULT_KEEP = 3
VERSION_CHARS = 16
INDEX_FORMAT = 1
#: Distributions whose versions every dataset's id includes (they write, sample and run the data).
CORE_PACKAGES = ("zarr", "numpy", "ray")

_log = logging.getLogger(__name__)


# ----- what to regenerate ----------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """One dataset of a regeneration: its name under the root, the source that named it, the
    checked spec, its version id and what the id was computed from."""

    name: str
    source: str
    spec: DatasetSpec
    version: str
    inputs: dict[str, Any]


def _dist_version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def engine_versions(spec: DatasetSpec) -> dict[str, str]:
    """``{distribution: version}`` of what produces the spec's data: zarr, numpy and ray, the modules
    its world and render engine need (bpy, pybullet, OpenEXR, ...) and the package that registers
    its world when that is not crlgen. Nothing is imported."""
    from importlib.metadata import entry_points, packages_distributions

    out = {d: v for d in CORE_PACKAGES if (v := _dist_version(d))}
    if spec.world is None:
        return out
    from ..scenes.registry import WORLD_GROUP, world_info

    owners = packages_distributions()
    for module in world_info(spec.world).modules_for(spec.render.engine):
        for dist in owners.get(module.split(".")[0], [module]):
            if (v := _dist_version(dist)):
                out[dist] = v
    ep = next((e for e in entry_points(group=WORLD_GROUP) if e.name == spec.world), None)
    if ep is not None and ep.dist is not None and ep.dist.name != "crlgen":
        out[ep.dist.name] = ep.dist.version
    return dict(sorted(out.items()))


def version_id(spec: DatasetSpec) -> tuple[str, dict[str, Any]]:
    """(version id, the inputs it hashes): the spec's ``spec_hash``, crlgen's version as the store
    records it (``generator``) and :func:`engine_versions`, as canonical JSON."""
    from ._plan import spec_hash
    from ._store import GENERATOR_VERSION

    inputs = {"spec_hash": spec_hash(spec), "generator": GENERATOR_VERSION, "engines": engine_versions(spec)}
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return digest[:VERSION_CHARS], inputs


def resolve_sources(sources: Sequence[str]) -> list[Dataset]:
    """The datasets SOURCES name: catalogue names (``static/spring``), catalogue folders
    (``physics/``: every catalogue spec under it) and spec files, each loaded and checked as
    ``crlgen run`` does. Raises :class:`~crlgen.schemas.SpecError` (one ``SOURCES: ...`` line per
    problem) for a source that names nothing, a spec that does not check, or two different specs
    under one name; nothing is written."""
    from ..scenes.registry import catalog, catalog_path
    from ._specs import check_spec, load_spec

    if not sources:
        raise SpecError(["SOURCES: expected catalogue names, catalogue folders (physics/) or spec files"])
    named: list[tuple[str, str]] = []  # (name under the root, what load_spec reads)
    problems: list[str] = []
    for src in sources:
        if src.endswith("/") and not Path(src).is_file():
            found = [e.name for e in catalog() if e.name.startswith(src)]
            if not found:
                what = "is a local folder; pass its spec files (folder/*.yaml)" if Path(src).is_dir() else \
                    "no catalogue scene under this folder (see `crlgen scenes`)"
                problems.append(f"SOURCES: {src}: {what}")
            named += [(n, n) for n in found]
        elif Path(src).is_file():
            named.append(("", src))  # named by the spec itself
        elif catalog_path(src) is not None:
            named.append((src, src))
        elif any(e.name.startswith(f"{src}/") for e in catalog()):
            problems.append(f"SOURCES: {src}: a catalogue folder; write {src}/ for every scene under it")
        else:
            problems.append(f"SOURCES: {src}: no such spec file, catalogue scene or catalogue folder (a folder ends "
                            f"with '/'; see `crlgen scenes`)")
    out: dict[str, Dataset] = {}
    for name, src in named:
        try:
            spec = check_spec(load_spec(src))
        except SpecError as e:
            problems += [f"SOURCES: {p}" if p.startswith(src) else f"SOURCES: {src}: {p}" for p in e.problems]
            continue
        name = name or spec.name
        version, inputs = version_id(spec)
        other = out.get(name)
        if other is not None and other.version != version:
            problems.append(f"SOURCES: {other.source} and {src} both name the dataset {name!r} with different specs; "
                            f"give one another `name:`")
        elif other is None:
            out[name] = Dataset(name, src, spec, version, inputs)
    if problems:
        raise SpecError(problems)
    return list(out.values())


# ----- the job ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    """What happened to one dataset: ``action`` is ``unchanged`` (its version is already
    published), ``published``, ``invalid`` (validation failed) or ``failed`` (generation failed);
    ``latest`` is the version ``latest`` points to afterwards."""

    name: str
    version: str
    action: str
    url: str
    latest: str | None
    error: str | None = None
    entry: dict[str, Any] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)


@dataclass
class RegenerateResult:
    """Every dataset's :class:`Outcome`; ``ok`` when none failed."""

    root: str
    outcomes: list[Outcome]
    took_over: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        """True when every dataset is unchanged or was published."""
        return all(o.action in ("unchanged", "published") for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data."""
        return {"ok": self.ok, "root": self.root, "took_over_stale_lock": self.took_over,
                "datasets": [dataclasses.asdict(o) for o in self.outcomes]}


def _entry_for(index: dict[str, Any], ds: Dataset) -> dict[str, Any]:
    for e in index["versions"]:
        if e.get("version") == ds.version:
            return e
    e = {"version": ds.version, "path": ds.version, "created": utc_now(), "attempts": 0, **ds.inputs}
    index["versions"].append(e)
    return e


def _read_index(fs, base: str, name: str) -> dict[str, Any]:
    index = read_json(fs, f"{base}/index.json")
    if not isinstance(index, dict) or not isinstance(index.get("versions"), list):
        return {"name": name, "format": INDEX_FORMAT, "versions": []}
    index["versions"] = [e for e in index["versions"] if isinstance(e, dict) and isinstance(e.get("version"), str)]
    return index


def _retain(fs, base: str, index: dict[str, Any], keep: int, latest: str | None) -> list[str]:
    """Delete the stores of versions outside the ``keep`` most recently attempted ones, never
    ``latest``'s; drops them from ``index`` and returns their ids. Only versions the index lists
    are ever deleted."""
    ordered = sorted(index["versions"], key=lambda e: str(e.get("date") or e.get("created") or ""), reverse=True)
    kept = {e["version"] for e in ordered[:keep]} | ({latest} if latest else set())
    removed = []
    for e in ordered:
        if e["version"] not in kept:
            path = f"{base}/{e['version']}"
            if fs.exists(path):
                fs.rm(path, recursive=True)
            removed.append(e["version"])
    index["versions"] = [e for e in ordered if e["version"] in kept]
    return removed


def _expected(e: BaseException) -> bool:
    """Whether an exception is one of the ways a run reports a failure in one line (no traceback)."""
    from ..scenes.engines.quiet import EngineMissing
    from ._run import RunError
    from ._store import StoreError
    from ._urls import UrlError

    return isinstance(e, (RunError, StoreError, UrlError, SpecError, EngineMissing))


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text if _expected(e) else f"{type(e).__name__}: {text}"


def regenerate(sources: Sequence[str], root: str | Location, *, keep: int = DEFAULT_KEEP,
               options: RunOptions | None = None, wait: bool = False,
               log: Callable[[str], None] | None = None) -> RegenerateResult:
    """Bring every dataset SOURCES name up to date under ``root``.

    A dataset whose version (:func:`version_id`) ``latest`` already points to, with a complete
    store, is skipped. Otherwise its store ``<root>/<name>/<version>/`` is generated (resumed, if an
    earlier job was interrupted) and validated by :func:`~crlgen.pipeline.run` with ``options``
    (``validate`` and ``overwrite`` are forced on and off), the index records the attempt, and
    only a store that passed is published by replacing ``latest``. Then the ``keep`` most
    recently attempted versions (and ``latest``'s) are kept. ``log`` receives one line per step.

    Raises :class:`~crlgen.schemas.SpecError` (bad sources), :class:`~crlgen.pipeline.UrlError`
    (a root that cannot be written), ValueError (``keep`` < 1), :class:`LockBusy` (another job
    holds the root; not with ``wait``) and :class:`~crlgen.pipeline._run.ClusterError` (a Ray
    cluster that cannot run a world's tasks), all before anything is written. Failures of single
    datasets are not raised: they are in the result (``ok`` False) and in their index.
    """
    if not isinstance(keep, int) or keep < 1:
        raise ValueError(f"--keep: expected a count of versions of at least 1, got {keep!r}")
    root = resolve(root, arg="--root")
    root = dataclasses.replace(root, arg="--root")
    check_location(root, write=True)
    datasets = resolve_sources(sources)
    options = dataclasses.replace(options or RunOptions(), validate=True, overwrite=False)
    say = log or (lambda line: None)
    lock = RootLock(root).acquire(wait=wait, on_wait=say)
    try:
        if lock.took_over:
            say(f"took over a stale lock ({lock.took_over['reason']})")
        return RegenerateResult(root.redacted(), _regenerate_all(datasets, root, keep, options, lock, say), lock.took_over)
    finally:
        lock.release()


def _regenerate_all(datasets: list[Dataset], root: Location, keep: int, options: RunOptions, lock: RootLock,
                    say: Callable[[str], None]) -> list[Outcome]:
    from ._store import Store

    fs, base_root = root.fs()
    state = []
    for ds in datasets:
        base = f"{base_root.rstrip('/')}/{ds.name}"
        loc = dataclasses.replace(root, url=f"{root.url}/{ds.name}/{ds.version}")
        latest = read_json(fs, f"{base}/latest")
        latest_version = latest.get("version") if isinstance(latest, dict) else None
        fresh = latest_version == ds.version and (Store(loc).attrs() or {}).get("status") == "complete"
        state.append((ds, base, loc, latest_version, fresh))
    started = _start_ray([ds for ds, *_, fresh in state if not fresh], root, options)
    try:
        return [_one(ds, base, loc, latest_version, fresh, fs, root, keep, options, lock, say)
                for ds, base, loc, latest_version, fresh in state]
    finally:
        if started:
            import ray

            ray.shutdown()


def _start_ray(to_run: list[Dataset], root: Location, options: RunOptions) -> bool:
    """Start (or join) Ray once for the whole job, when something must be generated, and refuse a
    cluster that can never run a world's tasks before anything is written; True when started here."""
    if not to_run or options.executor != "ray" or root.protocol == "memory":
        return False
    from ..scenes.base import Resources
    from ..scenes.registry import world_class
    from ._run import _check_cluster_offers, start_ray

    started, _ = start_ray(options)
    import ray

    arg = "--address" if (options.address or os.environ.get("RAY_ADDRESS")) else "--resource"
    try:
        for ds in to_run:
            res = world_class(ds.spec.world).resources(ds.spec) if ds.spec.world else Resources()
            _check_cluster_offers(ray.cluster_resources(), res.ray_options(), arg)
    except BaseException:
        if started:
            ray.shutdown()
        raise
    return started


def _one(ds: Dataset, base: str, loc: Location, latest: str | None, fresh: bool, fs, root: Location, keep: int,
         options: RunOptions, lock: RootLock, say: Callable[[str], None]) -> Outcome:
    """Generate, validate, publish and prune one dataset."""
    from ._run import run
    from ._store import Store

    index = _read_index(fs, base, ds.name)
    if fresh:
        out = Outcome(ds.name, ds.version, "unchanged", loc.redacted(), latest,
                      entry=next((e for e in index["versions"] if e["version"] == ds.version), {}))
        say(f"{ds.name}: unchanged (version {ds.version})")
    else:
        entry = _entry_for(index, ds)
        resumed = entry.get("status") == "generating" or entry.get("attempts", 0) > 0
        entry.update(status="generating", date=utc_now(), attempts=entry.get("attempts", 0) + 1, error=None)
        lock.check()
        write_atomic(root, fs, f"{base}/index.json", json_bytes(index))
        say(f"{ds.name}: {'resuming' if resumed else 'generating'} version {ds.version} -> {loc.redacted()}")
        error = None
        try:
            res = run(ds.spec, loc, options)
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - one dataset's failure is recorded; the job goes on
            error = _one_line(e)
            if not _expected(e):
                _log.error("%s: generation raised", ds.name, exc_info=True)
            entry.update(status="failed", validation="not run", error=error)
        else:
            listing = Store(loc).listing()
            failed = [c for c in res.report["checks"] if not c["passed"]] if res.report else []
            entry.update(status="passed" if res.valid else "invalid", validation="passed" if res.valid else "failed",
                         failed_checks=[c["name"] for c in failed],
                         problems=[p for c in failed for p in c["problems"]][:10],
                         samples=ds.spec.samples, shards=len(res.plan.shards), shards_run=res.shards_run,
                         shards_skipped=res.shards_skipped, seconds=round(res.seconds, 2),
                         bytes=sum(listing.values()), objects=len(listing), bytes_uncompressed=res.plan.bytes_total)
            if not res.valid:
                error = (f"validation failed ({', '.join(entry['failed_checks'])}); report: "
                         f"{loc.redacted()}/validation.json")
        entry["date"] = utc_now()
        if entry["status"] == "passed":
            entry["published"] = entry["date"]
            lock.check()
            write_atomic(root, fs, f"{base}/index.json", json_bytes(index))
            doc = {"name": ds.name, "version": ds.version, "path": ds.version, "published": entry["date"],
                   **{k: entry[k] for k in ("spec_hash", "generator", "engines", "samples", "shards", "bytes")}}
            write_atomic(root, fs, f"{base}/latest", json_bytes(doc))
            latest = ds.version
            say(f"{ds.name}: published {ds.version} ({entry['samples']} samples, {entry['shards']} shards: "
                f"{entry['shards_run']} run, {entry['shards_skipped']} reused; {entry['bytes'] / 1e6:.1f} MB)")
            out = Outcome(ds.name, ds.version, "published", loc.redacted(), latest, entry=entry)
        else:
            action = "invalid" if entry["status"] == "invalid" else "failed"
            say(f"{ds.name}: FAILED {ds.version}: {error}; latest stays {latest or '(none)'}")
            out = Outcome(ds.name, ds.version, action, loc.redacted(), latest, error, entry=entry)
    lock.check()
    out.removed = _retain(fs, base, index, keep, latest)
    if out.removed or not fresh:
        write_atomic(root, fs, f"{base}/index.json", json_bytes(index))
    if out.removed:
        say(f"{ds.name}: removed {len(out.removed)} old version(s) (keep {keep}): {', '.join(out.removed)}")
    return out
