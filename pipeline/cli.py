"""The ``crlgen`` command line: check, plan, run, validate, inspect, scenes, schema.

User mistakes (a bad spec, flag, URL or store) print one line per problem and
exit 2 without writing anything; a failed validation exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from schemas import SpecError

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as cx
except ImportError:  # pragma: no cover - older typer uses click itself
    import click.exceptions as cx

app = typer.Typer(add_completion=False, no_args_is_help=True, rich_markup_mode=None,
                  help="crlgen: generate causal-representation-learning datasets from typed scene specs.")
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_USER = 2


class UserError(Exception):
    """Any mistake of the user's: reported in one line per problem, exit 2."""

    def __init__(self, lines: list[str] | str):
        self.lines = [lines] if isinstance(lines, str) else list(lines)
        super().__init__("\n".join(self.lines))


def _load(spec: str, samples: int | None = None, world_check: bool = True):
    from schemas.io import load_spec

    overrides = {"samples": samples} if samples is not None else None
    if samples is not None and samples < 1:
        raise UserError(f"--samples: expected a positive count, got {samples}")
    s = load_spec(spec, overrides=overrides)
    if world_check:
        s.check()
    return s


def _dry_run(spec) -> None:
    """Sample a prefix of the dataset so value-range and NaN problems show up before a run."""
    from pipeline.scm import CompiledSCM

    CompiledSCM(spec).sample(0, min(spec.samples, 4096))


def _location(url: str | None, spec=None):
    from pipeline.urls import resolve

    if url is None:
        url = (spec.output.url if spec is not None and spec.output.url else None) or f"out/{spec.name}.zarr"
    opts = dict(spec.output.storage_options) if spec is not None else {}
    return resolve(url, opts)


def _emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


# ----- commands ------------------------------------------------------------------------------
@app.command()
def check(spec: str = typer.Argument(..., help="spec file (YAML/JSON/.py) or catalogue name"),
          json_out: bool = typer.Option(False, "--json", help="machine-readable result")) -> None:
    """Validate a spec (fields, equations, graph, interventions, world) without running anything.

    Example: crlgen check scenes/catalog/static/spring.yaml
    """
    s = _load(spec)
    _dry_run(s)
    g = s.graph
    info = {"ok": True, "name": s.name, "world": s.world, "latents": len(g.nodes), "states": len(g.states),
            "edges": len(g.edges()), "samples": s.samples, "regime": s.interventions.regime}
    if json_out:
        _emit_json(info)
    else:
        out.print(f"OK {s.name}: {info['latents']} latents, {info['edges']} edges, world {s.world or 'none'}, "
                  f"{s.samples} samples, regime {info['regime']}")


@app.command()
def plan(spec: str = typer.Argument(..., help="spec file or catalogue name"),
         samples: Optional[int] = typer.Option(None, "--samples", help="override the sample count"),
         workers: int = typer.Option(os.cpu_count() or 1, "--workers", help="workers the estimate assumes"),
         calibrate: bool = typer.Option(True, "--calibrate/--no-calibrate", help="time a short render for the estimate"),
         json_out: bool = typer.Option(False, "--json", help="machine-readable plan")) -> None:
    """Print shards, array shapes and bytes, and an estimated run time.

    Example: crlgen plan static/spring --samples 300 --json
    """
    from pipeline.plan import make_plan

    if workers < 1:
        raise UserError(f"--workers: expected at least 1, got {workers}")
    s = _load(spec, samples)
    _dry_run(s)
    p = make_plan(s)
    info = p.describe()
    if calibrate and p.kind != "latents":
        per = _calibrate(s, p)
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
    if "estimated_seconds" in info:
        out.print(f"estimate: {info['calibration_seconds_per_sample']:.3f} s/sample -> ~{info['estimated_seconds']:.0f} s on {workers} workers")


def _calibrate(spec, p) -> float:
    from pipeline.scm import CompiledSCM
    from pipeline.tasks import world_batch
    from scenes.registry import world_class

    model = CompiledSCM(spec)
    n = min(2, spec.samples)
    with world_class(spec.world)(spec, threads=1) as world:
        world.render(world_batch(spec, model, model.sample(0, 1)))  # warm-up
        t = time.perf_counter()
        world.render(world_batch(spec, model, model.sample(0, n)))
        return (time.perf_counter() - t) / n


@app.command()
def run(spec: str = typer.Argument(..., help="spec file or catalogue name"),
        out_url: Optional[str] = typer.Option(None, "--out", help="store URL: path, file://, s3://bucket/x.zarr, memory://x"),
        samples: Optional[int] = typer.Option(None, "--samples", help="override the sample count"),
        workers: Optional[int] = typer.Option(None, "--workers", help="local Ray CPUs (default: all cores)"),
        address: Optional[str] = typer.Option(None, "--address", help="join a Ray cluster (or set RAY_ADDRESS)"),
        overwrite: bool = typer.Option(False, "--overwrite", help="replace a store that holds another spec"),
        validate_: bool = typer.Option(True, "--validate/--no-validate", help="run the validation stage at the end"),
        inline: bool = typer.Option(False, "--inline", help="no Ray: render in this process (debugging)"),
        quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
    """Sample, render and write a dataset with Ray, then validate it. Re-running resumes.

    \b
    Examples:
      crlgen run static/spring --samples 300 --out out/spring.zarr
      crlgen run my.yaml --out s3://bucket/my.zarr        # AWS_* credentials from the environment
      crlgen run my.yaml --address auto                    # join a running Ray cluster
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from pipeline.run import RunOptions
    from pipeline.run import run as run_dataset
    from pipeline.validate import summary_lines

    if workers is not None and workers < 1:
        raise UserError(f"--workers: expected at least 1, got {workers}")
    s = _load(spec, samples)
    _dry_run(s)
    loc = _location(out_url, s)
    from pipeline.plan import make_plan

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
    with progress:
        result = run_dataset(s, loc, RunOptions(workers=workers, address=address, overwrite=overwrite, validate=validate_,
                                               executor="inline" if inline else "ray", on_progress=on_progress))
    t = Table(title="summary", show_header=False)
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold")
    t.add_row("store", loc.redacted())
    t.add_row("shards run / skipped (resumed)", f"{result.shards_run} / {result.shards_skipped}")
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
            err.print(line)
        raise typer.Exit(1)


def _preflight(p, loc, overwrite: bool) -> None:
    """Refuse, before anything is written, to touch a store that holds something else."""
    from pipeline.store import Store

    store = Store(loc)
    if store.is_empty():
        return
    attrs = store.attrs()
    if attrs is None or not attrs:
        raise UserError(f"--out: {loc.redacted()} exists and is not a crlgen store; choose another location")
    if attrs.get("spec_hash") != p.spec_hash and not overwrite:
        raise UserError(f"--out: {loc.redacted()} holds a different dataset ({attrs.get('name')}, spec hash "
                        f"{str(attrs.get('spec_hash'))[:12]}); pass --overwrite to replace it or choose another --out")


@app.command()
def validate(url: str = typer.Argument(..., help="store URL"),
             json_out: bool = typer.Option(False, "--json", help="print the report as JSON"),
             write: bool = typer.Option(False, "--write", help="also store the report as validation.json")) -> None:
    """Run the six checks on a store; exit 1 if any fails.

    Example: crlgen validate out/spring.zarr --json
    """
    from pipeline.store import Store
    from pipeline.urls import resolve
    from pipeline.validate import summary_lines, validate_store

    loc = resolve(url)
    if Store(loc).is_empty():
        raise UserError(f"URL: {loc.redacted()} does not exist or is empty")
    report = validate_store(loc)
    if write:
        Store(loc).write_text("validation.json", json.dumps(report, indent=1, sort_keys=True))
    if json_out:
        _emit_json(report)
    else:
        for line in summary_lines(report):
            out.print(line)
        out.print("passed" if report["passed"] else "FAILED")
    if not report["passed"]:
        raise typer.Exit(1)


@app.command()
def inspect(url: str = typer.Argument(..., help="store URL"),
            json_out: bool = typer.Option(False, "--json", help="machine-readable summary")) -> None:
    """Summarise a store: status, arrays, variables, graph, validation.

    Example: crlgen inspect out/spring.zarr
    """
    from pipeline.store import Store
    from pipeline.urls import resolve

    loc = resolve(url)
    store = Store(loc)
    attrs = None if store.is_empty() else store.attrs()
    if not attrs:
        raise UserError(f"URL: {loc.redacted()} is not a crlgen store")
    g = store.group("r")
    graph = json.loads(store.read_text("causal_graph.json") or "{}")
    val = json.loads(store.read_text("validation.json") or "null")
    info = {**attrs, "arrays": {k: {"shape": list(a.shape), "dtype": str(a.dtype)} for k, a in g.arrays()},
            "edges": [f"{e['source']} -> {e['target']}" for e in graph.get("edges", [])],
            "validation": None if val is None else val.get("passed")}
    if json_out:
        _emit_json(info)
        return
    t = Table(title=f"{attrs.get('name')} ({attrs.get('status')})")
    t.add_column("array")
    t.add_column("shape")
    t.add_column("dtype")
    for k, a in sorted(info["arrays"].items()):
        t.add_row(k, "x".join(map(str, a["shape"])), a["dtype"])
    out.print(t)
    out.print(f"world {attrs.get('world')}, {attrs.get('samples')} samples, spec hash {str(attrs.get('spec_hash'))[:16]}")
    out.print("graph: " + (", ".join(info["edges"]) or "no edges"))
    out.print(f"validation: {({True: 'passed', False: 'FAILED', None: 'not run'})[info['validation']]}")


@app.command()
def scenes(json_out: bool = typer.Option(False, "--json", help="machine-readable list")) -> None:
    """List the catalogue of ready scene specs.

    Example: crlgen scenes --json
    """
    from scenes.registry import catalog

    entries = [{"name": e.name, "world": e.world, "path": str(e.path), "description": " ".join(e.description.split())} for e in catalog()]
    if json_out:
        _emit_json(entries)
        return
    t = Table(title="catalogue")
    for col in ("name", "world", "description"):
        t.add_column(col)
    for e in entries:
        t.add_row(e["name"], e["world"] or "", e["description"][:90])
    out.print(t)


@app.command()
def schema(write: bool = typer.Option(False, "--write", help="regenerate schemas/json/dataset.schema.json")) -> None:
    """Print the JSON Schema of specs (for editors).

    Example: crlgen schema > dataset.schema.json
    """
    from schemas.jsonschema import render_schema, write_schema

    if write:
        out.print(f"wrote {write_schema()}")
    else:
        sys.stdout.write(render_schema())


def main(argv: list[str] | None = None) -> int:
    """Entry point: user mistakes become one line each on stderr and exit code 2."""
    from pipeline.run import RunError
    from pipeline.store import StoreError
    from pipeline.urls import UrlError

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    cmd = typer.main.get_command(app)
    try:
        rv = cmd.main(args=argv if argv is not None else sys.argv[1:], prog_name="crlgen", standalone_mode=False)
        if rv == 130:  # typer turns Ctrl-C into a silent exit code
            raise KeyboardInterrupt
        return rv if isinstance(rv, int) else 0
    except SpecError as e:
        for line in e.problems:
            err.print(f"error: {line}", markup=False)
        return EXIT_USER
    except (UserError, UrlError, StoreError) as e:
        for line in str(e).splitlines():
            err.print(f"error: {line}", markup=False)
        return EXIT_USER
    except cx.NoArgsIsHelpError as e:
        err.print(e.ctx.get_help() if e.ctx else str(e), markup=False)
        return EXIT_USER
    except cx.UsageError as e:
        hint = f" (see `{e.ctx.command_path} --help`)" if e.ctx else ""
        err.print(f"error: {e.format_message()}{hint}", markup=False)
        return EXIT_USER
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err.print("stopped", markup=False)
        return 130
    except KeyboardInterrupt:
        err.print("stopped: committed shards are kept; run the same command again to resume", markup=False)
        return 130
    except RunError as e:
        err.print(f"error: {e}", markup=False)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())


def entry() -> None:
    """Console-script wrapper: exits with main()'s code."""
    raise SystemExit(main())
