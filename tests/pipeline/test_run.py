"""End-to-end runs: Ray workers, resume after a killed driver, refusal to clobber, S3, xarray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from pipeline.run import RunOptions, run
from pipeline.urls import resolve
from tests.support.stores import kill_session, latent_spring, tiny_spring, tree_digest

CLI = [sys.executable, "-m", "pipeline.cli"]


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


def test_killed_driver_resumes_to_an_identical_store(reference_store, spec_file, tmp_path):
    out = tmp_path / "killed.zarr"
    proc = subprocess.Popen([*CLI, "run", str(spec_file), "--out", str(out), "--workers", "1", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list((out / "_crlgen/shards").glob("*.json")):
            time.sleep(0.05)
        assert list((out / "_crlgen/shards").glob("*.json")), "no shard committed before the deadline"
        os.kill(proc.pid, signal.SIGKILL)  # the driver, mid-run
        proc.wait(timeout=30)
    finally:
        kill_session(proc.pid)  # and every Ray process it started
    committed = len(list((out / "_crlgen/shards").glob("*.json")))
    assert 1 <= committed < 6, committed  # really interrupted
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


def test_sidecars_describe_the_graph(reference_store):
    graph = json.loads((reference_store / "causal_graph.json").read_text())
    edges = {(e["source"], e["target"]) for e in graph["edges"]}
    assert {("h", "m"), ("r", "m"), ("m", "l"), ("k", "l")} <= edges
    import networkx as nx

    g = nx.read_graphml(reference_store / "causal_graph.graphml")
    assert set(g.edges()) == edges
    manifest = json.loads((reference_store / "manifest.json").read_text())
    assert manifest["complete"] and len(manifest["shard_list"]) == 6
    assert "xr.open_zarr" in (reference_store / "README.md").read_text()
    assert (reference_store / "preview.png").read_bytes()[:4] == b"\x89PNG"
    spec_text = (reference_store / "spec.yaml").read_text()
    from schemas.io import parse_text
    from schemas import DatasetSpec

    assert DatasetSpec.from_dict(parse_text(spec_text)) == tiny_spring(samples=24)


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
    proc = subprocess.Popen([*CLI, "run", str(spec_file), "--out", str(out), "--workers", "1", "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list((out / "_crlgen/shards").glob("*.json")):
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        kill_session(proc.pid)
    assert len(list((out / "_crlgen/shards").glob("*.json"))) < 6
    assert proc.returncode == 130, stderr
    assert "run the same command again to resume" in stderr
    assert "Traceback" not in stderr and "StackTrace" not in stderr and "Check failed" not in stderr
    assert json.loads((out / "zarr.json").read_text())["attributes"]["crlgen"]["status"] == "writing"
    r = _cli("run", str(spec_file), "--out", str(out), "--workers", "1", "--quiet")
    assert r.returncode == 0, r.stderr
    assert tree_digest(out) == tree_digest(reference_store)


def test_credentials_in_a_spec_never_reach_the_sidecars():
    from pipeline.sidecars import resolved_spec_yaml

    spec = latent_spring(samples=10).replace(output={"url": "s3://b/x.zarr", "storage_options": {
        "key": "AKIA-SECRET-KEY", "secret": "very-secret", "client_kwargs": {"endpoint_url": "http://127.0.0.1:1"}}})
    text = resolved_spec_yaml(spec)
    assert "very-secret" not in text and "AKIA-SECRET-KEY" not in text and "s3://b" not in text
    from pipeline.urls import redact_url

    assert redact_url("s3://user:pw@bucket/x") == "s3://bucket/x"


def test_a_crashed_worker_is_retried_and_the_store_is_unchanged(reference_store, spec_file, tmp_path):
    token = tmp_path / "crash-once"
    token.write_text("x")
    out = tmp_path / "crashed.zarr"
    r = _cli("run", str(spec_file), "--out", str(out), "--workers", "2", "--quiet", env={"CRLGEN_CRASH_ONCE_FILE": str(token)})
    assert r.returncode == 0, r.stderr
    assert not token.exists()  # a worker really died
    assert tree_digest(out) == tree_digest(reference_store)


def test_transient_storage_errors_are_retried_with_backoff(monkeypatch):
    from pipeline import store

    monkeypatch.setattr(store.time, "sleep", lambda s: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("reset by peer")
        return "ok"

    assert store._retry(flaky) == "ok" and len(calls) == 3
    with pytest.raises(PermissionError):  # not transient: no retry
        store._retry(lambda: (_ for _ in ()).throw(PermissionError("denied")))


def test_embedded_ray_talks_over_loopback_only():
    """Ray would pick the machine's interface address; the embedded cluster must use 127.0.0.1."""
    import ray

    from pipeline.run import start_ray

    started, slots = start_ray(RunOptions(workers=1))
    try:
        assert started and slots == 1
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        assert {n["NodeManagerAddress"] for n in ray.nodes()} == {"127.0.0.1"}
    finally:
        ray.shutdown()
