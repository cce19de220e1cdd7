"""End-to-end runs: Ray workers, resume after a killed driver, refusal to clobber, S3, xarray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._urls import resolve
from support.stores import kill_session, latent_spring, tiny_spring, tree_digest

CLI = [sys.executable, "-m", "crlgen.pipeline"]


def _cli(*args: str, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})})


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("spec") / "tiny.yaml"
    tiny_spring(samples=24).dump(p)  # 6 shards of 4: a kill after the first commit leaves work to resume
    return p


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory, spec_file) -> Path:
    """An uninterrupted 2-worker Ray run: the store every other run must equal byte for byte."""
    root = tmp_path_factory.mktemp("ref") / "ref.zarr"
    r = _cli("run", str(spec_file), "--out", str(root), "--workers", "2", "--quiet")
    assert r.returncode == 0, r.stderr + r.stdout
    assert "passed" in r.stdout
    return root


def test_one_and_two_workers_write_identical_stores(reference_store, spec_file, tmp_path):
    one = tmp_path / "one.zarr"
    r = _cli("run", str(spec_file), "--out", str(one), "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert tree_digest(one) == tree_digest(reference_store)


#: Runs the rest of argv as a Python command line with SIGINT at its default first: a process inherits an
#: ignored SIGINT (a shell's background job; seen once in the full suite, set by something before this
#: test) and Python then installs no KeyboardInterrupt handler, so a Ctrl-C test must not depend on it.
_SIGINT_DEFAULT = ["-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                         "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"]


def _sigint_ignored_here() -> bool:
    with open("/proc/self/status") as f:
        mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigIgn"))
    return bool(mask >> (signal.SIGINT - 1) & 1)


def _interrupted_run(spec_file: Path, out: Path, signal_name: str) -> subprocess.CompletedProcess:
    """A CLI run whose driver sends itself SIGNAL right after its 2nd committed shard (a deterministic
    hook, no polling); afterwards every process of its session (Ray's too) is killed by PID."""
    proc = subprocess.Popen([sys.executable, *_SIGINT_DEFAULT, *CLI[1:], "run", str(spec_file), "--out", str(out),
                             "--workers", "1", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "CRLGEN_SIGNAL_AFTER_SHARDS": f"2:{signal_name}"})
    try:
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        kill_session(proc.pid)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def _committed(out: Path) -> int:
    return len(list((out / "_crlgen/shards").glob("*.json")))


def test_killed_driver_resumes_to_an_identical_store(reference_store, spec_file, tmp_path):
    out = tmp_path / "killed.zarr"
    r = _interrupted_run(spec_file, out, "KILL")
    assert r.returncode == -signal.SIGKILL
    committed = _committed(out)
    assert 2 <= committed < 6, committed  # really interrupted, after its 2nd commit
    assert json.loads((out / "zarr.json").read_text())["attributes"]["crlgen"]["status"] == "writing"
    r = _cli("run", str(spec_file), "--out", str(out), "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    skipped = int(r.stdout.split("shards run / skipped (resumed)")[1].split("/")[1].split()[0])
    assert skipped == committed
    assert tree_digest(out) == tree_digest(reference_store)


def test_other_spec_is_refused_without_overwrite(reference_store, tmp_path):
    other = tmp_path / "other.yaml"
    tiny_spring(samples=8).dump(other)
    before = tree_digest(reference_store)
    r = _cli("run", str(other), "--out", str(reference_store), "--quiet")
    assert r.returncode == 2
    assert r.stderr.startswith("error: --out:") and "--overwrite" in r.stderr and "Traceback" not in r.stderr
    assert tree_digest(reference_store) == before


def test_overwrite_replaces_a_store(tmp_path):
    out = tmp_path / "o.zarr"
    run(latent_spring(samples=500), resolve(str(out)), RunOptions(executor="inline"))
    res = run(latent_spring(samples=300), resolve(str(out)), RunOptions(executor="inline", overwrite=True))
    assert res.valid and json.loads((out / "zarr.json").read_text())["attributes"]["crlgen"]["samples"] == 300


def test_foreign_directory_is_never_written(tmp_path, spec_file):
    target = tmp_path / "photos"
    target.mkdir()
    (target / "holiday.jpg").write_bytes(b"x")
    r = _cli("run", str(spec_file), "--out", str(target), "--overwrite", "--quiet")
    assert r.returncode == 2 and "not a crlgen store" in r.stderr
    assert sorted(p.name for p in target.iterdir()) == ["holiday.jpg"]


def test_store_opens_with_xarray_with_named_dims_and_no_warnings(reference_store):
    import xarray as xr

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = xr.open_zarr(str(reference_store))
    assert ds["images"].dims == ("sample", "view", "y", "x", "channel")
    assert ds["latents"].dims == ("sample", "latent")
    assert list(ds["latent"].values) == ["h", "r", "rho", "m", "k", "l"]
    assert ds["depth"].dims == ("sample", "view", "y", "x")
    assert float(ds["latents"].sel(latent="h").max()) <= 0.1


def test_a_store_describes_itself(reference_store):
    """Units per latent where xarray shows them, camera geometry with its convention, the
    segmentation key, and fill values no real value can take."""
    from crlgen.pipeline import open_store
    from crlgen.scenes.cameras import project

    ds = open_store(str(reference_store))
    assert "latent_unit" in ds["latents"].coords  # a coordinate of the latents, not a loose variable
    units = dict(zip(ds["latent"].values, ds["latent_unit"].values))
    assert units["h"] == "m" and units["rho"] == "kg/m^3" and units["k"] == "N/m"
    assert ds["depth"].attrs["units"] == "m" and ds["camera_to_world"].attrs["units"] == "m"
    assert ds["segmentation"].attrs["ids"] == {"0": "background", "1": "ground", "2": "spring (coil and seat)", "3": "cylinder"}
    assert ds["intrinsics"].dims == ("view", "k_row", "k_col") and ds["camera_to_world"].shape == (24, 2, 4, 4)
    assert ds["intrinsics"].attrs["convention"].startswith("opencv") and list(ds["projection"].values) == ["perspective"] * 2
    # the cylinder's centre, from the latents, projects into its mask in every view of a stored sample
    i = 3
    h, l = (float(ds["latents"].sel(latent=n)[i]) for n in ("h", "l"))
    for j in range(2):
        ((u, v),), _ = project([[0.0, 0.0, l + h / 2]], ds["intrinsics"].values[j], ds["camera_to_world"].values[i, j])
        assert int(ds["segmentation"].values[i, j, round(v), round(u)]) == 3
    import zarr

    g = zarr.open_group(str(reference_store), mode="r")
    fills = {name: g[name].fill_value for name in ("pair", "intervention", "domain", "pair_role", "segmentation")}
    assert fills == {"pair": -2, "intervention": -2, "domain": -1, "pair_role": -1, "segmentation": 255}
    assert all(np.isnan(g[name].fill_value) for name in ("latents", "noise", "depth", "camera_to_world"))


def test_sidecars_describe_the_graph(reference_store):
    graph = json.loads((reference_store / "causal_graph.json").read_text())
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert {("h", "m"), ("r", "m"), ("m", "l"), ("k", "l")} <= edges
    import networkx as nx

    g = nx.read_graphml(reference_store / "causal_graph.graphml")
    assert {(a, b) for a, b, kind in g.edges(data="kind") if kind == "mechanism"} == edges
    # the domain is a context node (Joint Causal Inference) with an edge to l, whose mechanism reads g
    assert graph["context_edges"] == [{"source": "domain", "target": "l", "changes": [
        {"kind": "parameter", "name": "g", "values": {"earth": 9.81, "moon": 1.62}}]}]
    assert g.nodes["domain"]["kind"] == "context" and g.edges["domain", "l"]["kind"] == "context"
    manifest = json.loads((reference_store / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shard_list"]) == 6
    assert "open_store" in (reference_store / "README.md").read_text()
    assert (reference_store / "preview.png").read_bytes()[:4] == b"\x89PNG"
    spec_text = (reference_store / "spec.yaml").read_text()
    from crlgen.schemas._yaml import parse_text
    from crlgen.schemas import DatasetSpec

    stored = DatasetSpec.from_dict(parse_text(spec_text))
    assert stored == tiny_spring(samples=24).resolved()  # every default written out
    assert stored.render.views[0].fov == 40.0 and stored.video is None and stored.seed == 0


def test_s3_run_validates_and_keeps_credentials_out(s3, tmp_path):
    url = f"s3://{s3.bucket}/tests/spring.zarr"
    spec = latent_spring(samples=2000)
    path = tmp_path / "s.yaml"
    spec.dump(path)
    env = {**s3.env, "NO_PROXY": "127.0.0.1,localhost"}
    r = _cli("run", str(path), "--out", url, "--workers", "1", "--quiet", env=env)
    assert r.returncode == 0, r.stderr
    v = _cli("validate", url, "--json", env=env)
    assert v.returncode == 0, v.stderr
    assert json.loads(v.stdout)["passed"]
    import fsspec

    fs = fsspec.filesystem("s3", **s3.storage_options)
    blobs = [fs.cat_file(p) for p in fs.find(f"{s3.bucket}/tests/spring.zarr") if not p.endswith((".zarr/c", "/c")) and "/c/" not in p]
    assert blobs and not any(s3.secret.encode() in b or s3.key.encode() in b for b in blobs)
    assert s3.secret not in r.stdout + r.stderr


def test_memory_url_runs_in_process():
    res = run(latent_spring(samples=200), resolve("memory://tests/mem.zarr"), RunOptions(executor="inline"))
    assert res.valid and res.shards_run == 1


def test_ctrl_c_stops_cleanly_and_the_next_run_resumes(reference_store, spec_file, tmp_path):
    out = tmp_path / "interrupted.zarr"
    r = _interrupted_run(spec_file, out, "INT")
    assert r.returncode == 130, (r.returncode, r.stdout[-2000:], r.stderr[-2000:], _committed(out),
                                 f"SIGINT ignored in the test process: {_sigint_ignored_here()}")
    assert 2 <= _committed(out) < 6
    assert "run the same command again to resume" in r.stderr
    assert "Traceback" not in r.stderr and "StackTrace" not in r.stderr and "Check failed" not in r.stderr
    assert json.loads((out / "zarr.json").read_text())["attributes"]["crlgen"]["status"] == "writing"
    r = _cli("run", str(spec_file), "--out", str(out), "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert tree_digest(out) == tree_digest(reference_store)


def test_credentials_in_a_spec_never_reach_the_sidecars():
    from crlgen.pipeline._sidecars import resolved_spec_yaml

    spec = latent_spring(samples=10).replace(output={"url": "s3://b/x.zarr", "storage_options": {
        "key": "AKIA-SECRET-KEY", "secret": "very-secret", "client_kwargs": {"endpoint_url": "http://127.0.0.1:1"}}})
    text = resolved_spec_yaml(spec)
    assert "very-secret" not in text and "AKIA-SECRET-KEY" not in text and "s3://b" not in text
    from crlgen.pipeline._urls import redact_url

    assert redact_url("s3://user:pw@bucket/x") == "s3://bucket/x"


def test_a_crashed_worker_is_retried_and_the_store_is_unchanged(reference_store, spec_file, tmp_path):
    token = tmp_path / "crash-once"
    token.write_text("x")
    out = tmp_path / "crashed.zarr"
    r = _cli("run", str(spec_file), "--out", str(out), "--workers", "2", "--quiet", env={"CRLGEN_CRASH_ONCE_FILE": str(token)})
    assert r.returncode == 0, r.stderr
    assert not token.exists()  # a worker really died
    assert tree_digest(out) == tree_digest(reference_store)


def test_transient_s3_errors_are_retried_by_the_storage_layer(s3):
    """Every 10th request to the endpoint answers 503 SlowDown; botocore's standard retry mode
    (crlgen's one storage retry layer) absorbs them and the store validates."""
    from support.faultproxy import FaultProxy

    with FaultProxy(s3.endpoint_url, fail_every=10) as proxy:
        spec = latent_spring(samples=300).replace(output={"storage_options": {**s3.storage_options, "endpoint_url": proxy.url}})
        res = run(spec, resolve(f"s3://{s3.bucket}/tests/flaky.zarr", spec.output.storage_options), RunOptions(executor="inline"))
    assert res.valid and res.shards_run == 1, [c["problems"] for c in res.report["checks"]]
    assert proxy.failed >= 10 and proxy.failed == proxy.requests // 10


def test_embedded_ray_talks_over_loopback_only():
    """Ray would pick the machine's interface address; crlgen's embedded cluster uses 127.0.0.1.

    Through the path a run takes (``run`` with Ray workers), in a fresh interpreter without the
    suite's own setting, as a user's program would be: the addresses are read while it runs.
    """
    code = textwrap.dedent("""
        import json, sys, tempfile, warnings
        warnings.simplefilter("error")  # also: no warning that ray was imported too early
        sys.path.insert(0, sys.argv[1])
        from support.stores import latent_spring
        from crlgen.pipeline import RunOptions, resolve, run
        seen = []
        def look(summary):
            import ray
            seen.append([ray.get_runtime_context().gcs_address, sorted({n["NodeManagerAddress"] for n in ray.nodes()})])
        with tempfile.TemporaryDirectory() as d:
            res = run(latent_spring(samples=2000), resolve(d + "/l.zarr"), RunOptions(workers=1, on_progress=look))
        print(json.dumps([res.valid, seen]))
    """)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"}
    r = subprocess.run([sys.executable, "-c", code, str(Path(__file__).resolve().parents[1])], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    valid, seen = json.loads(r.stdout.strip().splitlines()[-1])
    assert valid and seen
    for gcs, nodes in seen:
        assert gcs.startswith("127.0.0.1:") and nodes == ["127.0.0.1"]
