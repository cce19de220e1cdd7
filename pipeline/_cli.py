"""The ``crlgen`` command line: check, plan, run, submit, regenerate, validate, inspect, preview,
evaluate, probe, export, scenes, schema.

Built on click. User mistakes (a bad spec, flag, URL or store) print one
``error: ...`` line per problem and exit 2 without writing anything; a failed
validation or a failed run exits 1; Ctrl-C exits 130 and keeps committed shards.
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..scenes.base import WorldUnavailable
from ..scenes.engines.quiet import EngineMissing
from ..schemas import SpecError
from ._regenerate import DEFAULT_KEEP
from ._run import ClusterError, RunError
from ._store import StoreError
from ._urls import UrlError

out = Console(highlight=False, soft_wrap=True, emoji=False)
err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

EXIT_USER = 2


class UserError(Exception):
    """Any mistake of the user's: reported in one line per problem, exit 2."""


def _load(spec: str, samples: int | None = None):
    """Load, world-check and dry-run a spec (the checks every command makes before it acts)."""
    from ._specs import check_spec, load_spec

    if samples is not None and samples < 1:
        raise UserError(f"--samples: expected a positive count, got {samples}")
    if samples is None:
        return check_spec(load_spec(spec))
    try:
        loaded = load_spec(spec, overrides={"samples": samples})
    except SpecError as e:
        try:
            load_spec(spec)
        except SpecError:
            raise e from None
        # the spec is fine with its own count: the problems are those of the count --samples gave
        raise SpecError([f"{line} (samples = {samples} came from --samples)" for line in e.problems]) from None
    return check_spec(loaded)


def _location(url: str | None, spec):
    from ._urls import resolve

    if url is not None:
        return resolve(url, dict(spec.output.storage_options), arg="--out")
    if spec.output.url:
        return resolve(spec.output.url, dict(spec.output.storage_options), arg="output.url")
    return resolve(f"out/{spec.name}.zarr", dict(spec.output.storage_options), arg="--out")


def _store_location(url: str):
    """A URL argument naming an existing store (validate, inspect)."""
    from ._urls import check_location, resolve

    loc = resolve(url, arg="URL")
    check_location(loc, write=False)
    return loc


def _finished_store(url: str):
    """(location, Store) of a store this crlgen validates: its format, and a finished run. Anything
    else is a user error naming what to do. Damage (shards, metadata, a finished run's missing
    spec.yaml) is validation's to report."""
    from ._reading import FINISHED, UNFINISHED, format_problem, not_a_store
    from ._store import Store

    loc = _store_location(url)
    store = Store(loc)
    attrs = store.attrs()
    if not attrs:
        if store.root_damage():
            return loc, store
        raise UserError(not_a_store(store, f"URL: {loc.redacted()}"))
    problem = format_problem(attrs, "validates")
    if problem:
        raise UserError(f"URL: {loc.redacted()}: {problem}")
    if attrs.get("status") not in FINISHED and store.read_text("spec.yaml") is None:
        raise UserError(f"URL: {loc.redacted()}: {UNFINISHED.format(status=attrs.get('status'))}")
    return loc, store


def _readable_store(url: str):
    """(location, Store, Plan) of a finished store whose shards are all there (every reader's gate,
    see ``_reading``); anything else raises one ``URL: ...`` line."""
    from ._reading import open_readable

    return open_readable(url, arg="URL")


def _refuse_inside_a_store(path: str, arg: str, source: str | None = None, inside_only: bool = False) -> None:
    """Refuse (one ``arg: ...`` line) a local output folder that is, or lies inside, a crlgen store:
    files written there would replace that store's own (its previews) or sit among its arrays.
    ``source``: the local store being read (its line says how to redraw its own previews);
    ``inside_only``: ``path`` itself may be a store (a run's own), only its parents may not."""
    from ._store import Store
    from ._urls import resolve

    p = os.path.abspath(path)
    if inside_only:
        p = os.path.dirname(p.rstrip(os.sep))
    while True:
        if os.path.isfile(os.path.join(p, "zarr.json")) or os.path.isdir(os.path.join(p, "_crlgen")):
            store = Store(resolve(p, arg=arg))
            if store.attrs() or store.root_damage():
                where = "is" if p == os.path.abspath(path) else "lies inside"
                if source is not None and p == os.path.abspath(source).rstrip(os.sep):
                    raise UserError(f"{arg}: {path} {where} the store being read; leave out {arg} to redraw its "
                                    "own previews, or choose a folder outside it")
                raise UserError(f"{arg}: {path} {where} the crlgen store {p}; choose a folder outside any store")
        parent = os.path.dirname(p)
        if parent == p:
            return
        p = parent


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _examples(*lines: str) -> str:
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crlgen", prog_name="crlgen")
def app() -> None:
    """crlgen: generate causal-representation-learning datasets from typed scene specs."""


# ----- commands ------------------------------------------------------------------------------
@app.command(epilog=_examples("crlgen check static/spring", "crlgen check my_spec.yaml --json"))
@click.argument("spec")
@click.option("--json", "json_out", is_flag=True, help="machine-readable result")
def check(spec: str, json_out: bool) -> None:
    """Validate a spec (fields, equations, graph, interventions, world) without running anything.

    SPEC is a spec file (YAML/JSON/.py) or a catalogue name.
    """
    s = _load(spec)
    g = s.graph
    info = {"ok": True, "name": s.name, "world": s.world, "latents": len(g.nodes), "states": len(g.states),
            "edges": len(g.edges()), "samples": s.samples, "regime": s.interventions.regime}
    from ._scm import world_checks_feasibility

    if world_checks_feasibility(s):
        info["max_resamples"] = s.max_resamples
    spaces = s.spaces()
    if spaces:
        info["spaces"] = {name: {k: list(r) for k, r in sp.items()} for name, sp in spaces.items()}
        info["domain_spaces"] = {d: dom.space for d, dom in s.domains.items() if dom.space}
        info["test_space"] = s.splits.test_space
    from ._pairs import unchanged_pairs

    unchanged = unchanged_pairs(s)
    if unchanged is not None:
        info["counterfactual_pairs"] = {"drawn": unchanged.pairs, "unchanged": unchanged.unchanged}
    notes = []
    if s.world is None and s.render != type(s.render)():
        notes.append("no world, so no pixels: the `render` settings are unused (latents only); name a `world` "
                     "to render (see `crlgen scenes`)")
    if s.world is None and g.states:
        notes.append(_unsimulated_states_note(g.states))
    info["notes"] = notes
    if json_out:
        _emit_json(info)
    else:
        out.print(f"OK {s.name}: {info['latents']} latents, {info['edges']} edges, world {s.world or 'none'}, "
                  f"{s.samples} samples, regime {info['regime']}", markup=False)
        for note in notes:
            out.print(f"note: {note}", markup=False)
        if "max_resamples" in info:
            out.print(f"feasibility: world {s.world} refuses starts it cannot take; such samples are redrawn, at most "
                      f"{s.max_resamples} times (max_resamples), and counted in `resampled`", markup=False)
        if spaces:
            ranges = "; ".join(f"{name} A [{sp['A'][0]:g}, {sp['A'][1]:g}] B [{sp['B'][0]:g}, {sp['B'][1]:g}]"
                               for name, sp in spaces.items())
            doms = ", ".join(f"{d} {sp}" for d, sp in info["domain_spaces"].items()) or "none"
            held = f"; test split: space {s.splits.test_space}" if s.splits.test_space else ""
            out.print(f"spaces: {ranges}; domains: {doms}{held}", markup=False)
        if unchanged is not None and unchanged.note():
            out.print(unchanged.note(), markup=False)


def _unsimulated_states_note(states: tuple[str, ...]) -> str:
    """The note for a spec without a world that declares time-varying states: only a world simulates them."""
    shown = ", ".join(states[:4]) + (f", ... ({len(states)} in all)" if len(states) > 4 else "")
    return (f"no world, so the time-varying states ({shown}) are not simulated: the store holds the static "
            "latents only; name a `world` that simulates them (see `crlgen scenes`)")


def _not_an_array(path: str, e: Exception) -> str:
    """Why ``np.load`` could not read ``path`` as a numeric array, in words (numpy speaks of pickles)."""
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as oe:
        return f"cannot read {path}: {oe.strerror or oe}"
    if head != b"\x93NUMPY":
        return f"cannot read {path}: it is not a .npy array (no .npy header)"
    if "pickle" in str(e).lower() or "object arrays" in str(e).lower():
        return f"cannot read {path}: it holds Python objects, not numbers"
    return f"cannot read {path} as a .npy array ({' '.join(str(e).split())})"


@app.command(epilog=_examples("crlgen plan static/spring --samples 300 --json"))
@click.argument("spec")
@click.option("--samples", type=int, default=None, help="override the sample count")
@click.option("--workers", type=int, default=os.cpu_count() or 1, show_default=True, help="workers the estimate assumes")
@click.option("--calibrate/--no-calibrate", default=True, help="time a short render for the estimate")
@click.option("--json", "json_out", is_flag=True, help="machine-readable plan")
def plan(spec: str, samples: int | None, workers: int, calibrate: bool, json_out: bool) -> None:
    """Print shards, array shapes and bytes, and an estimated run time."""
    from ._plan import make_plan

    if workers < 1:
        raise UserError(f"--workers: expected at least 1, got {workers}")
    s = _load(spec, samples)
    p = make_plan(s)
    info = p.describe()
    if s.world is not None:
        from ..scenes.registry import world_class

        info["task_resources"] = world_class(s.world).resources(s).ray_options()
    if calibrate and p.kind != "latents":
        if not json_out:
            err.print("calibrating: timing renders of 3 samples for the estimate (--no-calibrate skips it)", markup=False)
        from ..scenes.base import WorldUnavailable

        try:
            per = _calibrate(s)
        except WorldUnavailable as e:  # the plan itself needs no engine: print it without an estimate
            info["calibration_skipped"] = str(e)
            if not json_out:
                err.print(f"calibration skipped: {e}", markup=False)
        else:
            info["calibration_seconds_per_sample"] = per
            info["estimated_seconds"] = per * s.samples / workers
            info["estimate_workers"] = workers
    if json_out:
        _emit_json(info)
        return
    t = Table(title=f"{s.name}: {s.samples} samples in {len(p.shards)} shards of {p.shard_size}")
    for col in ("array", "dims", "shape", "dtype", "MB"):
        t.add_column(col)
    for a in p.arrays:
        t.add_row(a.name, ",".join(a.dims), "x".join(map(str, a.shape)), a.dtype, f"{a.nbytes / 1e6:.2f}")
    out.print(t)
    out.print(f"total {p.bytes_total / 1e6:.1f} MB uncompressed; spec hash {p.spec_hash[:16]}")
    if "task_resources" in info:
        out.print("each task takes: " + ", ".join(f"{k.removeprefix('num_')}={v}" for k, v in info["task_resources"].items()))
    if "estimated_seconds" in info:
        out.print(f"estimate: {info['calibration_seconds_per_sample']:.3f} s/sample -> ~{info['estimated_seconds']:.0f} s on {workers} workers")


def _calibrate(spec) -> float:
    """Seconds per sample of this machine's render, from a warm-up and a timed batch of 2."""
    from ..scenes.registry import build_world
    from ._scm import CompiledSCM
    from ._tasks import world_batch

    model = CompiledSCM(spec)
    n = min(2, spec.samples)
    with build_world(spec, threads=1) as world:
        world.render(world_batch(model, model.sample(0, 1)))  # warm-up
        t = time.perf_counter()
        world.render(world_batch(model, model.sample(0, n)))
        return (time.perf_counter() - t) / n


@app.command(epilog=_examples(
    "crlgen run static/spring --samples 300 --out out/spring.zarr",
    "crlgen run my.yaml --out s3://bucket/my.zarr        # AWS_* credentials from the environment",
    "crlgen run my.yaml --address auto                    # join a running Ray cluster"))
@click.argument("spec")
@click.option("--out", "out_url", default=None, help="store URL: path, file://, s3://bucket/x.zarr, gs://, abfs:// (any installed fsspec protocol), memory://x")
@click.option("--samples", type=int, default=None, help="override the sample count")
@click.option("--workers", type=int, default=None, help="local Ray CPUs (default: all cores)")
@click.option("--address", default=None, help="join a Ray cluster (or set RAY_ADDRESS)")
@click.option("--overwrite", is_flag=True, help="replace a store that holds another spec")
@click.option("--validate/--no-validate", "validate_", default=True, help="run the validation stage at the end")
@click.option("--inline", is_flag=True, help="no Ray: render in this process (debugging)")
@click.option("--resource", "resources", multiple=True, metavar="NAME=N",
              help="a custom resource the embedded Ray offers, e.g. carla=1 (repeatable)")
@click.option("--quiet", is_flag=True, help="no progress bar")
def run(spec: str, out_url: str | None, samples: int | None, workers: int | None, address: str | None,
        overwrite: bool, validate_: bool, inline: bool, resources: tuple[str, ...], quiet: bool) -> None:
    """Sample, render and write a dataset with Ray, then validate it. Re-running resumes."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ..scenes.registry import world_info
    from ._plan import make_plan
    from ._run import RunOptions
    from ._run import run as run_dataset
    from ._validate import summary_lines

    if workers is not None and workers < 1:
        raise UserError(f"--workers: expected at least 1, got {workers}")
    custom = _resources(resources)
    s = _load(spec, samples)
    loc = _location(out_url, s)
    p = make_plan(s)
    _preflight(p, loc, overwrite)
    total = s.samples
    done = {"samples": 0, "frames": 0, "t0": time.perf_counter()}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("samples"),
                        TextColumn("{task.fields[fps]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=err, disable=quiet, transient=False)
    task = progress.add_task(s.name, total=total, fps="")

    def on_progress(summary: dict[str, Any]) -> None:
        done["samples"] += summary["samples"]
        done["frames"] += summary["frames"]
        rate = done["frames"] / max(1e-9, time.perf_counter() - done["t0"])
        progress.update(task, advance=summary["samples"], fps=f"{rate:.1f} frames/s" if done["frames"] else "")

    out.print(f"run {s.name}: {total} samples, {len(p.shards)} shards -> {loc.redacted()}")
    if loc.protocol == "memory":
        err.print("note: a memory:// store lives in this process only: it is gone when crlgen exits (use it from "
                  "Python, crlgen.pipeline.run; here it is written, validated and dropped)", markup=False)
    if s.world and s.render.engine in world_info(s.world).preview_engines:
        err.print(f"note: render.engine {s.render.engine!r} is a preview engine, lower fidelity than the world's default "
                  "(the dataset card says so)", markup=False)
    with progress:
        result = run_dataset(s, loc, RunOptions(workers=workers, address=address, overwrite=overwrite, validate=validate_,
                                               executor="inline" if inline else "ray", resources=custom,
                                               on_progress=on_progress))
    t = Table(title="summary", show_header=False)
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold")
    t.add_row("store", loc.redacted())
    t.add_row("shards run / skipped (resumed)", f"{result.shards_run} / {result.shards_skipped}")
    if result.restored:
        t.add_row("restored", f"the metadata (zarr.json) of {', '.join(result.restored)}, which was missing")
    t.add_row("samples", str(total))
    t.add_row("seconds", f"{result.seconds:.1f}")
    if result.frames:
        t.add_row("frames rendered", f"{result.frames} ({result.frames / max(result.seconds, 1e-9):.1f} frames/s)")
    if p.kind != "latents":
        t.add_row("preview", f"{loc.redacted().rstrip('/')}/preview.png")
    t.add_row("validation", {True: "passed", False: "FAILED", None: "not run"}[result.valid])
    out.print(t)
    if result.report is not None and not result.valid:
        for line in summary_lines(result.report):
            err.print(line, markup=False)
        raise SystemExit(1)


def _resources(items: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for item in items:
        name, _, amount = item.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not name.strip() or value <= 0:
            raise UserError(f"--resource: expected NAME=N with N > 0 (e.g. carla=1), got {item!r}")
        out[name.strip()] = value
    return out


def _preflight(p, loc, overwrite: bool) -> None:
    """Refuse, before anything is written, a location that cannot be written or holds something else."""
    from ._store import Existing, Store, other_dataset
    from ._urls import check_location

    check_location(loc, write=True)
    if loc.is_local:  # a store among another store's arrays would be read as part of it
        _refuse_inside_a_store(loc.fs()[1], loc.arg, inside_only=True)
    store = Store(loc)
    state, attrs = store.existing(p.spec_hash)
    if state is Existing.FOREIGN:
        damage = store.root_damage()
        if damage:
            raise UserError(f"{loc.arg}: {loc.redacted()}: {damage}, so it is not written: remove it or choose another location")
        raise UserError(f"{loc.arg}: {loc.redacted()} exists and is not a crlgen store; choose another location")
    if state is Existing.DAMAGED and not overwrite:
        raise UserError(f"{loc.arg}: {loc.redacted()}: {store.root_damage()}, so it cannot be resumed; "
                        "pass --overwrite to replace it or choose another --out")
    if state is Existing.OTHER and not overwrite:
        raise UserError(f"{loc.arg}: {loc.redacted()} holds a different dataset ({other_dataset(attrs, p)}); "
                        "pass --overwrite to replace it or choose another --out")


@app.command(epilog=_examples(
    "crlgen submit my.yaml --out s3://bucket/my.zarr --address http://head:8265 --wait",
    "crlgen submit static/spring --out gs://bucket/spring.zarr --env STORAGE_EMULATOR_HOST"))
@click.argument("spec")
@click.option("--out", "out_url", default=None, help="store URL the cluster writes (an object store, or a path on the head)")
@click.option("--address", default=None, help="Ray job server [default: RAY_API_SERVER_ADDRESS, else http://127.0.0.1:8265]")
@click.option("--samples", type=int, default=None, help="override the sample count")
@click.option("--wait", "wait_", is_flag=True, help="wait for the job; exit 1 with the run's reason if it fails")
@click.option("--python", "python", default="python", show_default=True, help="the cluster's interpreter that has crlgen")
@click.option("--env", "env_names", multiple=True, metavar="NAME", help="pass this environment variable to the job (repeatable)")
def submit(spec: str, out_url: str | None, address: str | None, samples: int | None, wait_: bool, python: str,
           env_names: tuple[str, ...]) -> None:
    """Run a spec as a Ray job on a cluster (`crlgen run --address auto` on the head); once per spec and --out.

    A second submit of the same spec and --out reports the job already there instead of starting another.
    """
    from ._submit import JobFailed, SubmitError, submit as submit_job, wait

    missing = [n for n in env_names if n not in os.environ]
    if missing:
        raise UserError(f"--env: {missing[0]} is not set in this environment")
    s = _load(spec, samples)
    if out_url is None and not s.output.url:
        raise UserError("--out: crlgen submit needs --out (or output.url in the spec): the store the cluster writes, "
                        "e.g. s3://bucket/name.zarr")
    loc = _location(out_url, s)
    address = address or os.environ.get("RAY_API_SERVER_ADDRESS") or "http://127.0.0.1:8265"
    try:
        job = submit_job(s, loc, address, python=python, env={n: os.environ[n] for n in env_names})
        out.print(f"{'already submitted' if job.existing else 'submitted'}: {job.submission_id} ({job.status}) -> "
                  f"{loc.redacted()}", markup=False)
        if wait_ and not (job.existing and job.status == "SUCCEEDED"):
            wait(address, job.submission_id, on_status=lambda st: err.print(f"{job.submission_id}: {st}", markup=False))
            out.print(f"succeeded: {job.submission_id}", markup=False)
    except SubmitError as e:
        raise UserError(str(e)) from None
    except JobFailed as e:
        err.print(f"error: {e}", markup=False)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        err.print("stopped waiting; the job goes on on the cluster (submit again with --wait to wait for it)", markup=False)
        raise SystemExit(130) from None


@app.command(epilog=_examples("crlgen validate out/spring.zarr --json", "crlgen validate s3://bucket/spring.zarr --full"))
@click.argument("url")
@click.option("--json", "json_out", is_flag=True, help="print the report as JSON")
@click.option("--write", is_flag=True, help="also store the report as validation.json")
@click.option("--full", is_flag=True, help="re-read and re-hash every shard (default: sizes of all, checksums of a few)")
def validate(url: str, json_out: bool, write: bool, full: bool) -> None:
    """Run the validation checks on a store; exit 1 if any fails."""
    from ._store import Store
    from ._validate import summary_lines, validate_store

    loc, _ = _finished_store(url)
    try:
        report = validate_store(loc, full=full)
    except EngineMissing as e:
        raise UserError(f"URL: {loc.redacted()}: {e}") from None
    if write:
        Store(loc).write_text("validation.json", json.dumps(report, indent=1, sort_keys=True))
    if json_out:
        _emit_json(report)
    else:
        for line in summary_lines(report):
            out.print(line, markup=False)
        out.print("passed" if report["passed"] else "FAILED")
    if not report["passed"]:
        raise SystemExit(1)


@app.command(epilog=_examples("crlgen inspect out/spring.zarr"))
@click.argument("url")
@click.option("--json", "json_out", is_flag=True, help="machine-readable summary")
def inspect(url: str, json_out: bool) -> None:
    """Summarise a store: status, arrays, variables, graph, validation.

    Cheap: of a finished store it checks its metadata (the group's and every array's zarr.json,
    spec.yaml) and every shard's objects against the sizes its commit marker records (one
    listing, no data read), and exits 1 naming the first problem; `crlgen validate` checks
    everything, `--full` re-hashes the data.
    """
    from ._reading import FINISHED, format_problem, load_plan, not_a_store, shard_problems, unfinished
    from ._store import Store

    loc = _store_location(url)
    store = Store(loc)
    attrs = store.attrs()
    if not attrs:
        line = not_a_store(store, f"URL: {loc.redacted()}")
        if not store.root_damage():
            raise UserError(line)
        if json_out:
            _emit_json({"problems": [line]})
        else:
            out.print(f"damaged: {line}", markup=False)
        raise SystemExit(1)
    arrays = store.arrays()
    graph = store.read_json("causal_graph.json")
    val = store.read_json("validation.json")
    written = store.modified("validation.json") if isinstance(val, dict) else None
    finished = attrs.get("status") in FINISHED
    problems: list[str] | None = None  # None: not checked (an unfinished run, another format)
    if finished and format_problem(attrs) is None:
        missing_spec = unfinished(store, attrs)
        try:
            problems = [missing_spec] if missing_spec else shard_problems(store, load_plan(store))
        except SpecError as e:
            problems = [" ".join(str(e).split())]
    edges = graph.get("edges") if isinstance(graph, dict) else None
    info = {**attrs, "arrays": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in arrays.items()},
            "edges": [f"{e.get('source')} -> {e.get('target')}" for e in edges if isinstance(e, dict)] if isinstance(edges, list) else None,
            "validation": val.get("passed") if isinstance(val, dict) else None,
            "validation_written": written.isoformat(timespec="seconds") if written else None, "problems": problems}
    if json_out:
        _emit_json(info)
        if problems:
            raise SystemExit(1)
        return
    t = Table(title=f"{attrs.get('name')} ({attrs.get('status')}{', damaged' if problems else ''})")
    t.add_column("array")
    t.add_column("shape")
    t.add_column("dtype")
    for k, a in sorted(info["arrays"].items()):
        t.add_row(k, "x".join(map(str, a["shape"])), a["dtype"])
    out.print(t)
    out.print(f"world {attrs.get('world')}, {attrs.get('samples')} samples, spec hash {str(attrs.get('spec_hash'))[:16]}")
    out.print("graph: " + ("causal_graph.json is missing or unreadable" if info["edges"] is None else ", ".join(info["edges"]) or "no edges"))
    when = f", written {written.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if written else ""
    out.print(f"last validation (validation.json{when}): " + {True: "passed", False: "FAILED", None: "none stored"}[info["validation"]]
              + "; `crlgen validate` checks the store as it is now", markup=False)
    if not finished:
        out.print("the run writing this store has not finished: `crlgen run` on the same spec finishes it", markup=False)
    elif problems:
        out.print(f"damaged: {len(problems)} problem(s) with its shards or metadata, first: {problems[0]}; "
                  "`crlgen validate` reports them all", markup=False)
        raise SystemExit(1)
    elif problems is not None:
        out.print("shards: every object at the size its commit marker records (no data read; "
                  "`crlgen validate --full` re-hashes them)", markup=False)


@app.command(epilog=_examples("crlgen preview out/spring.zarr", "crlgen preview s3://bucket/spring.zarr --out previews/"))
@click.argument("url")
@click.option("--out", "out_dir", default=None, help="write into this local folder instead of the store")
@click.option("--samples", type=int, default=12, show_default=True, help="samples on the contact sheet")
@click.option("--videos", type=int, default=4, show_default=True, help="video samples animated one by one (0: none)")
def preview(url: str, out_dir: str | None, samples: int, videos: int) -> None:
    """Draw a store: contact sheet, videos, causal graph, latent distributions per domain and regime."""
    from pathlib import Path

    from ._preview import previews
    from ._sidecars import causal_graph, write_previews

    if samples < 1:
        raise UserError(f"--samples: expected a positive count, got {samples}")
    if videos < 0:
        raise UserError(f"--videos: expected a count >= 0 (0: no per-sample animations), got {videos}")
    from ._urls import check_local_folder

    loc, store, plan = _readable_store(url)
    if out_dir is not None:  # before drawing: a refused folder costs nothing
        _refuse_inside_a_store(out_dir, "--out", source=loc.url if loc.is_local else None)
    graph = causal_graph(plan)
    files = previews(plan, store, graph, samples=samples, videos=videos)
    if out_dir is not None:
        check_local_folder(out_dir, "--out", empty=False, files=tuple(files.files))
    if out_dir is None:
        write_previews(plan, store, graph, files)
        where = loc.redacted().rstrip("/")
    else:
        for name, data in files.files.items():
            path = Path(out_dir) / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        where = out_dir.rstrip("/")
    for name in files.names():
        out.print(f"{where}/{name}", markup=False)


@app.command(epilog=_examples("crlgen evaluate out/spring.zarr z_hat.npy", "crlgen evaluate out/spring.zarr z_hat.npy --split val --json"))
@click.argument("url")
@click.argument("representations")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default="test", show_default=True,
              help="rows scored (R^2 models are fitted on the train rows)")
@click.option("--json", "json_out", is_flag=True, help="machine-readable result")
def evaluate(url: str, representations: str, split: str, json_out: bool) -> None:
    """Score a learned representation against the true latents: MCC (Pearson, Spearman) and held-out R^2.

    REPRESENTATIONS is a .npy file of shape (samples, K): row i is sample i's representation.
    """
    import numpy as np

    from ._evaluate import evaluate_representation

    loc, store, _ = _readable_store(url)
    try:
        z_hat = np.load(representations, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UserError(f"REPRESENTATIONS: {_not_an_array(representations, e)}; expected a .npy file of numbers "
                        "(samples, K), as np.save writes") from None
    if not isinstance(z_hat, np.ndarray):
        raise UserError(f"REPRESENTATIONS: {representations} is an .npz archive; expected one .npy array (samples, K)")
    result = evaluate_representation(store, z_hat, split=split)
    if json_out:
        _emit_json(result)
        return
    t = Table(title=f"{store.attrs().get('name')}: {result['rows']} {split} rows, representation dim {result['dims']}")
    for col in ("latent", "MCC pearson", "matched dim", "MCC spearman", "R² linear", "R² kernel"):
        t.add_column(col, justify="left" if col == "latent" else "right", overflow="fold")

    def f(v):
        return "-" if v is None else f"{v:.3f}"

    for r in result["latents"]:
        t.add_row(r["name"] + (" (constant)" if r["constant"] else ""), f(r["mcc_pearson"]), str(r["matched_dim"] if r["matched_dim"] is not None else "-"),
                  f(r["mcc_spearman"]), f(r["r2_linear"]), f(r["r2_kernel"]))
    t.add_row("mean", f(result["mcc_pearson"]), "", f(result["mcc_spearman"]), f(result["r2_linear"]), f(result["r2_kernel"]))
    out.print(t)
    for note in result["notes"]:
        out.print(f"note: {note}", markup=False)


@app.command(epilog=_examples("crlgen probe out/spring.zarr", "crlgen probe out/falling.zarr --epochs 40 --json"))
@click.argument("url")
@click.option("--epochs", type=int, default=30, show_default=True, help="passes over the train split")
@click.option("--size", type=int, default=64, show_default=True, help="pixels the images are resized to")
@click.option("--frames", type=int, default=16, show_default=True,
              help="frames of each clip used, evenly spread (video stores: one frame encoder shared by all, then "
                   "temporal convolutions; states also see the frames beside them)")
@click.option("--max-train", type=int, default=None, help="use at most this many training samples")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--output", default=None, help="colour array to read (default: the main one, images or frames)")
@click.option("--json", "json_out", is_flag=True, help="machine-readable result")
def probe(url: str, epochs: int, size: int, frames: int, max_train: int | None, seed: int, output: str | None,
          json_out: bool) -> None:
    """Train a small CNN from pixels to every latent on the train split; report held-out scores per latent.

    Needs PyTorch (pip install 'crlgen[torch]'). R^2 for real and integer latents, accuracy for
    categorical ones, a circular score for periodic ones (angles, hues).
    """
    for flag, v in (("--epochs", epochs), ("--frames", frames)):
        if v < 1:
            raise UserError(f"{flag}: expected a positive count, got {v}")
    if not 16 <= size <= 512:
        raise UserError(f"--size: expected 16..512 pixels, got {size}")
    if max_train is not None and max_train < 8:
        raise UserError(f"--max-train: expected at least 8, got {max_train}")
    from ._probe import ProbeDataError, ProbeOptions, probe_store

    loc, _, _ = _readable_store(url)
    try:
        result = probe_store(loc, ProbeOptions(epochs=epochs, size=size, frames=frames, max_train=max_train, seed=seed,
                                                output=output))
    except ImportError as e:
        raise UserError(str(e)) from None
    except ProbeDataError as e:
        raise UserError(f"--{e.arg}: {e}" if e.arg else f"URL: {loc.redacted()}: {e}") from None
    if json_out:
        _emit_json(result)
        return
    t = Table(title=f"probe: {result['train']} train / {result['test']} test samples, {epochs} epochs at {size} px")
    for col in ("target", "name", "metric", "score"):
        t.add_column(col, justify="right" if col == "score" else "left", overflow="fold")
    for r in result["rows"]:
        if not r["unidentifiable"]:
            t.add_row(r["target"], r["name"], r["metric"], "-" if r["score"] is None else f"{r['score']:.3f}")
    out.print(t)
    apart = [r for r in result["rows"] if r["unidentifiable"]]
    if apart:
        u = Table(title="declared unidentifiable by the spec (scored apart)")
        for col in ("name", "metric", "score", "why"):
            u.add_column(col, justify="right" if col == "score" else "left", overflow="fold")
        for r in apart:
            u.add_row(r["name"], r["metric"], "-" if r["score"] is None else f"{r['score']:.3f}", r["unidentifiable"])
        out.print(u)
    summary = result["summary"]
    for kind, counts in (("latents", summary["latents"]), ("states", summary["states"])):
        if counts["identifiable"]:
            below = f"; below: {', '.join(counts['below'])}" if counts["below"] else ""
            out.print(f"{kind}: {counts['reached']} of {counts['identifiable']} identifiable reach "
                      f"{summary['target_score']}{below}", markup=False)
    for note in result["notes"]:
        out.print(f"note: {note}", markup=False)


@app.command(epilog=_examples("crlgen export out/spring.zarr --format parquet hub/spring",
                              "crlgen export out/falling.zarr --format webdataset shards/ --split train"))
@click.argument("url")
@click.argument("dest")
@click.option("--format", "fmt", type=click.Choice(["parquet", "webdataset"]), required=True, help="layout written")
@click.option("--split", type=click.Choice(["train", "val", "test"]), default=None, help="only this split (default: all)")
def export(url: str, dest: str, fmt: str, split: str | None) -> None:
    """Write a store as Parquet (PNG images, latents as columns, loadable by Hugging Face `datasets`)
    or WebDataset tar shards, with the causal graph and spec beside. Needs crlgen[export]."""
    from pathlib import Path

    from ._urls import check_local_folder

    loc, store, plan = _readable_store(url)
    check_local_folder(dest, "DEST", empty=True, not_inside=loc.url if loc.is_local else None)
    _refuse_inside_a_store(dest, "DEST")
    try:
        if fmt == "parquet":
            import pyarrow  # noqa: F401
        else:
            import webdataset  # noqa: F401
    except ImportError:
        raise UserError(f"--format {fmt}: needs {'pyarrow' if fmt == 'parquet' else 'webdataset'}: pip install 'crlgen[export]'") from None
    from ._export import ExportError, export_parquet, export_webdataset

    existed = Path(dest).is_dir()  # and empty: check_local_folder said so
    try:
        result = (export_parquet if fmt == "parquet" else export_webdataset)(store, plan, Path(dest), split=split)
    except ExportError as e:
        raise UserError(str(e)) from None
    except BaseException:  # a damaged chunk found while reading, Ctrl-C: leave DEST as it was
        import shutil

        if existed:
            for child in Path(dest).iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        else:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    out.print(f"exported {', '.join(f'{s} {n}' for s, n in result.rows.items()) or 'no'} samples to {dest} "
              f"({len(result.files)} files)", markup=False)


@app.command(epilog=_examples("crlgen scenes --json"))
@click.option("--json", "json_out", is_flag=True, help="machine-readable list")
def scenes(json_out: bool) -> None:
    """List the catalogue of ready scene specs."""
    from ..scenes.registry import catalog

    import textwrap

    entries = [{"name": e.name, "world": e.world, "path": str(e.path), "description": " ".join(e.description.split())} for e in catalog()]
    if json_out:
        _emit_json(entries)
        return
    t = Table(title="catalogue")
    for col in ("name", "world", "description"):
        t.add_column(col)
    for e in entries:
        t.add_row(e["name"], e["world"] or "", textwrap.shorten(e["description"], 90, placeholder=" ..."))
    out.print(t)


@app.command(epilog=_examples("crlgen schema > dataset.schema.json"))
@click.option("--write", is_flag=True, help="regenerate schemas/json/dataset.schema.json in the source tree")
def schema(write: bool) -> None:
    """Print the JSON Schema of specs (for editors)."""
    from ..schemas.jsonschema import render_schema, write_schema

    if write:
        from ..schemas.jsonschema import SCHEMA_PATH

        if not (SCHEMA_PATH.parents[2] / "pyproject.toml").is_file():
            raise UserError("--write: rewrites schemas/json/dataset.schema.json in a source checkout; this crlgen is "
                            "installed, so print the schema instead: crlgen schema > dataset.schema.json")
        out.print(f"wrote {write_schema()}")
    else:
        sys.stdout.write(render_schema())


@app.command(epilog=_examples(
    "crlgen regenerate physics/ static/spring --root s3://bucket/datasets   # nightly: only what changed",
    "crlgen regenerate specs/*.yaml --root /data/crlgen --keep 5 --wait"))
@click.argument("sources", nargs=-1, required=True)
@click.option("--root", required=True, help="where every dataset lives: path, file://, s3://bucket/prefix (or gs://, abfs://)")
@click.option("--keep", type=int, default=DEFAULT_KEEP, show_default=True, help="versions kept per dataset (latest's always)")
@click.option("--workers", type=int, default=None, help="local Ray CPUs (default: all cores)")
@click.option("--address", default=None, help="join a Ray cluster (or set RAY_ADDRESS)")
@click.option("--resource", "resources", multiple=True, metavar="NAME=N", help="a custom resource the embedded Ray offers")
@click.option("--inline", is_flag=True, help="no Ray: generate in this process (debugging)")
@click.option("--wait", is_flag=True, help="wait for another regeneration of this root instead of refusing")
@click.option("--json", "json_out", is_flag=True, help="machine-readable result")
def regenerate(sources: tuple[str, ...], root: str, keep: int, workers: int | None, address: str | None,
               resources: tuple[str, ...], inline: bool, wait: bool, json_out: bool) -> None:
    """Regenerate datasets whose spec, crlgen or engines changed; validate, then publish each by its
    `latest` pointer (docs/regenerate.md). SOURCES: catalogue names, catalogue folders (physics/),
    spec files. Exit 1 if any dataset failed, 75 if another regeneration holds the root."""
    import signal

    from ._regenerate import EXIT_LOCKED, LockBusy, LockLost
    from ._regenerate import regenerate as regenerate_all
    from ._run import RunOptions

    if keep < 1:
        raise UserError(f"--keep: expected a count of versions of at least 1, got {keep}")
    if workers is not None and workers < 1:
        raise UserError(f"--workers: expected at least 1, got {workers}")
    opts = RunOptions(workers=workers, address=address, executor="inline" if inline else "ray", resources=_resources(resources))
    say = (err if json_out else out).print
    term = signal.signal(signal.SIGTERM, signal.default_int_handler)  # a stopped pod releases its lock (exit 130)
    try:
        result = regenerate_all(list(sources), root, keep=keep, options=opts, wait=wait, log=lambda s: say(s, markup=False))
    except (LockBusy, LockLost) as e:
        err.print(f"error: {e}", markup=False)
        if json_out:
            _emit_json({"ok": False, "errors": [str(e)]})
        raise SystemExit(EXIT_LOCKED if isinstance(e, LockBusy) else 1) from None
    finally:
        signal.signal(signal.SIGTERM, term)
    if json_out:
        _emit_json(result.to_dict())
    counts = {a: sum(o.action == a for o in result.outcomes) for a in ("unchanged", "published", "invalid", "failed")}
    say(", ".join(f"{n} {a}" for a, n in counts.items()), markup=False)
    if not result.ok:
        raise SystemExit(1)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI with ``argv``; returns the exit code (user mistakes: one line each on stderr, 2)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    args = list(argv if argv is not None else sys.argv[1:])
    try:
        app.main(args=args, prog_name="crlgen", standalone_mode=False)
        return 0
    except SpecError as e:
        return _user_errors(e.problems, "--json" in args)
    except (UserError, UrlError, StoreError, EngineMissing, ClusterError, WorldUnavailable) as e:
        return _user_errors([str(e)], "--json" in args)
    except click.exceptions.NoArgsIsHelpError as e:
        err.print(e.ctx.get_help() if e.ctx else str(e), markup=False)
        return EXIT_USER
    except click.exceptions.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
        return _user_errors([f"{e.format_message()}{hint}"], "--json" in args)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.exceptions.Abort:
        err.print("stopped: committed shards are kept; run the same command again to resume", markup=False)
        return 130
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except KeyboardInterrupt:
        err.print("stopped: committed shards are kept; run the same command again to resume", markup=False)
        return 130
    except RunError as e:
        err.print(f"error: {e}", markup=False)
        return 1


def _user_errors(problems: list[str], as_json: bool) -> int:
    """Each problem as one ``error:`` line on stderr (newlines inside a problem folded), exit 2;
    with ``--json`` also ``{"ok": false, "errors": [...]}`` on stdout."""
    lines = [" ".join(str(p).split()) for p in problems]
    for line in lines:
        err.print(f"error: {line}", markup=False)
    if as_json:
        _emit_json({"ok": False, "errors": lines})
    return EXIT_USER


def entry() -> None:
    """Console-script wrapper: exits with main()'s code."""
    raise SystemExit(main())
