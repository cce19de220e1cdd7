"""`crlgen regenerate`, the nightly job: unchanged datasets skipped, changed ones alone regenerated,
validation failures never published, retention, a killed job resumed, one job per root, and the
same flow on S3 (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from crlgen.pipeline._regenerate import EXIT_LOCKED, engine_versions, regenerate, resolve_sources, version_id
from crlgen.pipeline._rootlock import LOCK_NAME, LockBusy, LockLost, RootLock
from crlgen.pipeline._run import RunOptions
from crlgen.pipeline._urls import resolve
from support.cli import run_cli
from support.stores import kill_session, latent_spring

CLI = [sys.executable, "-m", "crlgen.pipeline"]
INLINE = RunOptions(executor="inline")


def _spec(folder: Path, name: str, samples: int = 200) -> Path:
    """A latents-only spring spec file (shards of 50 samples): generated and validated in ~1 s."""
    p = folder / f"{name}.yaml"
    latent_spring(samples=samples).replace(shard_size=50, name=name).dump(p)
    return p


def _json(path: Path):
    return json.loads(path.read_text())


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under the root with its bytes and modification time (ns): shows what a job rewrote."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _entry(root: Path, name: str, version: str) -> dict:
    return next(e for e in _json(root / name / "index.json")["versions"] if e["version"] == version)


def _damaging(monkeypatch, shard: int, how: str = "edit") -> None:
    """Wrap the shard writer the inline executor calls: after shard ``shard`` is committed, one latent
    column of it is overwritten in the store (``edit``: a writer bug that validation must catch),
    or the shard raises (``raise``: a failed generation)."""
    import zarr

    import crlgen.pipeline._run as run_module

    real = run_module.run_shard

    def wrapped(spec_dict, location, k, threads=0):
        if k == shard and how == "raise":
            raise RuntimeError("injected failure")
        summary = real(spec_dict, location, k, threads)
        if k == shard:
            arr = zarr.open_group(location.url, mode="r+")["latents"]
            arr[k * 50:(k + 1) * 50, 0] = 0.0
        return summary

    monkeypatch.setattr(run_module, "run_shard", wrapped)


# ----- input --------------------------------------------------------------------------------
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    a = _spec(tmp_path, "alpha")
    root = tmp_path / "root"
    (tmp_path / "a_file").write_text("x")
    cases = [
        (["static/nope"], "error: SOURCES: static/nope: no such spec file, catalogue scene or catalogue folder"),
        (["nope/"], "error: SOURCES: nope/: no catalogue scene under this folder"),
        (["physics"], "error: SOURCES: physics: a catalogue folder; write physics/ for every scene under it"),
        ([str(a), "--keep", "0"], "error: --keep: expected a count of versions of at least 1, got 0"),
        ([str(a), "--workers", "0"], "error: --workers: expected at least 1"),
    ]
    for args, line in cases:
        code, out, err = run_cli(capsys, "regenerate", *args, "--root", str(root), "--inline")
        assert code == 2 and err.startswith(line) and err.count("\n") == 1 and "Traceback" not in err, (args, err)
    for bad in ("ftp://host/x", str(tmp_path / "a_file"), "s3://bucket-only"):
        code, out, err = run_cli(capsys, "regenerate", str(a), "--root", bad, "--inline")
        assert code == 2 and err.startswith("error: --root:") and err.count("\n") == 1, err
    code, _, err = run_cli(capsys, "regenerate", "--root", str(root))
    assert code == 2 and "SOURCES" in err
    assert not root.exists()

    b = tmp_path / "other" / "alpha.yaml"  # another spec under the same name
    b.parent.mkdir()
    latent_spring(samples=300).replace(shard_size=50, name="alpha").dump(b)
    code, _, err = run_cli(capsys, "regenerate", str(a), str(b), "--root", str(root), "--inline")
    assert code == 2 and "both name the dataset 'alpha' with different specs" in err and not root.exists()


def test_sources_catalogue_folders_and_versions():
    physics = resolve_sources(["physics/", "physics/falling_simple"])  # a folder, and a name inside it (once)
    assert sorted(d.name for d in physics) == ["physics/collision_complex", "physics/collision_simple",
                                               "physics/falling_complex", "physics/falling_simple",
                                               "physics/projectile_complex", "physics/projectile_simple"]
    falling = next(d for d in physics if d.name == "physics/falling_simple")
    assert {"pybullet", "zarr", "numpy", "ray"} <= set(falling.inputs["engines"])
    assert falling.inputs["generator"].startswith("crlgen ") and len(falling.version) == 16
    spring = resolve_sources(["static/spring"])[0]
    assert "bpy" in spring.inputs["engines"] and "pybullet" not in spring.inputs["engines"]
    # the id is a function of the resolved spec: the same data in other words is the same version
    base = latent_spring(samples=200)
    assert version_id(base)[0] == version_id(base.replace(seed=base.seed))[0] != version_id(base.replace(samples=201))[0]
    assert set(engine_versions(base)) == {"zarr", "numpy", "ray"}


def test_an_outside_worlds_package_version_is_part_of_the_version(toyworld):
    d = resolve_sources(["toy/pendulum"])[0]
    assert d.inputs["engines"]["crlgen-toyworld"] == "0.1.0"


# ----- the nightly cycle ----------------------------------------------------------------------
def test_second_run_does_nothing_and_a_changed_spec_alone_regenerates(tmp_path, capsys):
    a, b = _spec(tmp_path, "alpha"), _spec(tmp_path, "beta", samples=150)
    root = tmp_path / "root"
    code, out, err = run_cli(capsys, "regenerate", str(a), str(b), "--root", str(root), "--inline")
    assert code == 0, err
    va, vb = (_json(root / n / "latest")["version"] for n in ("alpha", "beta"))
    for name, v in (("alpha", va), ("beta", vb)):
        assert f"{name}: published {v}" in out
        entry = _entry(root, name, v)
        assert entry["status"] == "passed" and entry["validation"] == "passed" and entry["shards_skipped"] == 0
        assert entry["bytes"] > 0 and entry["samples"] == {"alpha": 200, "beta": 150}[name]
        assert _json(root / name / v / "validation.json")["passed"]
    assert not (root / LOCK_NAME).exists()

    before = _snapshot(root)
    code, out, err = run_cli(capsys, "regenerate", str(a), str(b), "--root", str(root), "--inline", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["ok"] and [d["action"] for d in result["datasets"]] == ["unchanged", "unchanged"]
    assert _snapshot(root) == before  # not one file written, not even touched

    _spec(tmp_path, "beta", samples=180)
    code, out, err = run_cli(capsys, "regenerate", str(a), str(b), "--root", str(root), "--inline")
    assert code == 0, err
    assert f"alpha: unchanged (version {va})" in out
    vb2 = _json(root / "beta" / "latest")["version"]
    assert vb2 != vb and f"beta: published {vb2}" in out
    after = _snapshot(root)
    assert {k: v for k, v in after.items() if k.startswith("alpha/")} == {k: v for k, v in before.items() if k.startswith("alpha/")}
    assert [e["version"] for e in _json(root / "beta" / "index.json")["versions"]] == [vb2, vb]  # kept, newest first
    assert (root / "beta" / vb).is_dir() and _entry(root, "beta", vb2)["samples"] == 180


def test_failures_leave_latest_and_a_report_and_exit_1(tmp_path, capsys, monkeypatch):
    root = tmp_path / "root"
    a = _spec(tmp_path, "alpha")
    assert run_cli(capsys, "regenerate", str(a), "--root", str(root), "--inline")[0] == 0
    published = (root / "alpha" / "latest").read_bytes()
    v1 = json.loads(published)["version"]

    _spec(tmp_path, "alpha", samples=240)
    with monkeypatch.context() as m:
        _damaging(m, shard=1)
        code, out, err = run_cli(capsys, "regenerate", str(a), "--root", str(root), "--inline")
    assert code == 1
    v2 = version_id(latent_spring(samples=240).replace(shard_size=50, name="alpha"))[0]
    assert f"alpha: FAILED {v2}: validation failed" in out and f"latest stays {v1}" in out
    assert (root / "alpha" / "latest").read_bytes() == published
    report = _json(root / "alpha" / v2 / "validation.json")  # the report stays with the store
    assert report["passed"] is False
    entry = _entry(root, "alpha", v2)
    assert entry["status"] == "invalid" and "mechanisms" in entry["failed_checks"] and entry["problems"]
    assert _json(root / "alpha" / v2 / "zarr.json")["attributes"]["crlgen"]["status"] == "invalid"

    # the next night: the damaged shard no longer matches its marker, so the resume writes it again
    code, out, err = run_cli(capsys, "regenerate", str(a), "--root", str(root), "--inline")
    assert code == 0, out + err
    entry = _entry(root, "alpha", v2)
    assert entry["status"] == "passed" and entry["attempts"] == 2 and (entry["shards_run"], entry["shards_skipped"]) == (1, 4)
    assert _json(root / "alpha" / "latest")["version"] == v2

    # a generation that fails: one line in the index, latest untouched
    published = (root / "alpha" / "latest").read_bytes()
    _spec(tmp_path, "alpha", samples=260)
    with monkeypatch.context() as m:
        _damaging(m, shard=2, how="raise")
        code, out, err = run_cli(capsys, "regenerate", str(a), "--root", str(root), "--inline", "--json")
    assert code == 1
    failed = json.loads(out)["datasets"][0]
    assert failed["action"] == "failed" and failed["error"] == "shard 2: RuntimeError: injected failure"
    assert _entry(root, "alpha", failed["version"])["error"] == failed["error"]
    assert (root / "alpha" / "latest").read_bytes() == published


def test_retention_keeps_k_and_never_deletes_latest(tmp_path, monkeypatch):
    root = tmp_path / "root"
    spec = _spec(tmp_path, "alpha", samples=200)

    def night(samples: int, damage: bool):
        _spec(tmp_path, "alpha", samples)
        with monkeypatch.context() as m:
            if damage:
                _damaging(m, shard=0)
            return regenerate([str(spec)], str(root), keep=2, options=INLINE).outcomes[0]

    v1 = night(200, damage=False).version
    v2, v3 = night(210, True).version, night(220, True).version
    assert _json(root / "alpha" / "latest")["version"] == v1
    assert {p.name for p in (root / "alpha").iterdir() if p.is_dir()} == {v1, v2, v3}  # 2 newest + latest's
    o4 = night(230, True)
    assert o4.action == "invalid" and o4.removed == [v2]
    assert {p.name for p in (root / "alpha").iterdir() if p.is_dir()} == {v1, v3, o4.version}
    assert {e["version"] for e in _json(root / "alpha" / "index.json")["versions"]} == {v1, v3, o4.version}
    o5 = night(240, False)
    assert o5.action == "published" and sorted(o5.removed) == sorted([v1, v3])
    assert {p.name for p in (root / "alpha").iterdir() if p.is_dir()} == {o4.version, o5.version}
    assert _json(root / "alpha" / "latest")["version"] == o5.version


# ----- interruption and locking --------------------------------------------------------------
@pytest.mark.slow
def test_killed_job_resumes_the_next_night(tmp_path):
    """A real `crlgen regenerate` on Ray, killed (SIGKILL, then its whole session) after its 2nd
    committed shard; the next run takes over its stale lock and resumes the same store."""
    spec = _spec(tmp_path, "alpha", samples=300)  # 6 shards
    root = tmp_path / "root"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen([*CLI, "regenerate", str(spec), "--root", str(root), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**env, "CRLGEN_SIGNAL_AFTER_SHARDS": "2:KILL"})
    try:
        proc.communicate(timeout=240)
    finally:
        kill_session(proc.pid)
    assert proc.returncode == -signal.SIGKILL
    version = version_id(latent_spring(samples=300).replace(shard_size=50, name="alpha"))[0]
    store = root / "alpha" / version
    committed = sorted(int(p.stem) for p in (store / "_crlgen" / "shards").glob("*.json"))
    assert 2 <= len(committed) < 6, committed
    assert _entry(root, "alpha", version)["status"] == "generating"
    assert not (root / "alpha" / "latest").exists() and _json(root / LOCK_NAME)["pid"] == proc.pid

    r = subprocess.run([*CLI, "regenerate", str(spec), "--root", str(root), "--workers", "1"],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"took over a stale lock (its process (pid {proc.pid}" in r.stdout and f"alpha: resuming version {version}" in r.stdout
    entry = _entry(root, "alpha", version)
    assert entry["status"] == "passed" and entry["attempts"] == 2
    assert (entry["shards_skipped"], entry["shards_run"]) == (len(committed), 6 - len(committed))
    runs = [_json(p) for p in sorted((store / "_crlgen" / "runs").glob("*.json"))]
    assert len(runs) == 1 and runs[0]["shards_skipped"] == committed  # the killed run never wrote its log
    assert _json(root / "alpha" / "latest")["version"] == version and not (root / LOCK_NAME).exists()


def _stopped(pid: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not stop")


def test_a_second_job_on_the_same_root_refuses_or_waits(tmp_path, capsys):
    """Job A stops itself (SIGSTOP) after its first committed shard, holding the lock: a second job
    refuses with exit 75 and writes nothing; a third with --wait runs once A has finished."""
    spec = _spec(tmp_path, "alpha", samples=200)
    root = tmp_path / "root"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    a = subprocess.Popen([*CLI, "regenerate", str(spec), "--root", str(root), "--inline"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env={**env, "CRLGEN_SIGNAL_AFTER_SHARDS": "1:STOP"})
    c = None
    try:
        _stopped(a.pid)
        before = _snapshot(root)
        code, out, err = run_cli(capsys, "regenerate", str(spec), "--root", str(root), "--inline")
        assert code == EXIT_LOCKED and err.count("\n") == 1
        assert err.startswith(f"error: --root: {root}: another regeneration holds {LOCK_NAME} (host ") and f"pid {a.pid}," in err
        assert _snapshot(root) == before

        c = subprocess.Popen([*CLI, "regenerate", str(spec), "--root", str(root), "--inline", "--wait"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, env=env)
        time.sleep(3)
        assert c.poll() is None  # waiting
        os.kill(a.pid, signal.SIGCONT)
        a_out, a_err = a.communicate(timeout=120)
        assert a.returncode == 0, a_err
        c_out, c_err = c.communicate(timeout=120)
        assert c.returncode == 0, c_err
        assert "another regeneration holds" in c_out and "waiting" in c_out and "alpha: unchanged" in c_out
    finally:
        for p in (a, c):
            if p is not None:
                kill_session(p.pid)


def test_stale_and_live_locks_from_other_hosts(tmp_path):
    root = resolve(str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    lock = tmp_path / "root" / LOCK_NAME
    lock.write_text(json.dumps({"owner": "x", "host": "elsewhere", "pid": 1, "heartbeat": time.time()}))
    with pytest.raises(LockBusy, match="host elsewhere, pid 1"):
        RootLock(root).acquire()
    lock.write_text(json.dumps({"owner": "x", "host": "elsewhere", "pid": 1, "heartbeat": time.time() - 1000}))
    taken = RootLock(root).acquire()
    assert taken.took_over["reason"].startswith("no heartbeat for") and _json(lock)["owner"] == taken.owner
    taken.release()
    assert not lock.exists()


def test_a_dead_pid_on_this_host_is_stale_only_in_this_pid_namespace(tmp_path):
    """A container with host networking shares the host's name but numbers its processes apart: its live
    job's pid means nothing here, so only its heartbeat can make its lock stale."""
    import socket

    from crlgen.pipeline._rootlock import _pid_namespace

    root = resolve(str(tmp_path / "root"))
    (tmp_path / "root").mkdir()
    lock = tmp_path / "root" / LOCK_NAME
    dead = subprocess.Popen(["true"])
    dead.wait()
    record = {"owner": "x", "host": socket.gethostname(), "pid": dead.pid, "heartbeat": time.time()}
    lock.write_text(json.dumps({**record, "pid_ns": "pid:[1]"}))
    with pytest.raises(LockBusy, match=f"pid {dead.pid},"):
        RootLock(root).acquire()
    lock.write_text(json.dumps({**record, "pid_ns": _pid_namespace()}))
    taken = RootLock(root).acquire()
    assert taken.took_over["reason"] == f"its process (pid {dead.pid} on {socket.gethostname()}) is gone"
    taken.release()


def _until(condition, timeout: float = 10.0) -> None:
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_the_heartbeat_keeps_the_lock_and_notices_a_takeover(tmp_path):
    lock = RootLock(resolve(str(tmp_path / "root")), heartbeat=0.1).acquire()
    path = tmp_path / "root" / LOCK_NAME
    first = _json(path)["heartbeat"]
    _until(lambda: _json(path)["heartbeat"] > first)
    path.write_text(json.dumps({"owner": "other", "host": "elsewhere", "pid": 1, "heartbeat": time.time()}))
    _until(lambda: lock._lost is not None)
    with pytest.raises(LockLost, match="another job took the lock over"):
        lock.check()
    lock.release()
    assert _json(path)["owner"] == "other"  # a job never removes a lock that is not its own


def test_the_write_then_read_back_lock_of_stores_without_conditional_writes():
    """memory:// (like GCS or Azure here) has no exclusive create: write when absent, read back."""
    root = resolve(f"memory://regen-{uuid.uuid4().hex[:6]}")
    first = RootLock(root).acquire()
    assert not first.conditional
    with pytest.raises(LockBusy):
        RootLock(root).acquire()
    first.release()
    second = RootLock(root).acquire()
    assert second.took_over is None
    second.release()
    assert not second.fs.exists(second.path)


def test_sigterm_stops_the_job_and_gives_the_lock_back(tmp_path):
    """What Kubernetes sends a pod it stops: exit 130, the lock removed, the version left to resume."""
    spec = _spec(tmp_path, "alpha", samples=200)
    root = tmp_path / "root"
    r = subprocess.run([*CLI, "regenerate", str(spec), "--root", str(root), "--inline"], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "CRLGEN_SIGNAL_AFTER_SHARDS": "1:TERM"})
    assert r.returncode == 130 and "stopped: committed shards are kept" in r.stderr, r.stderr
    assert not (root / LOCK_NAME).exists() and not (root / "alpha" / "latest").exists()
    assert _json(root / "alpha" / "index.json")["versions"][0]["status"] == "generating"


# ----- S3 -------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_whole_flow_on_s3(s3, tmp_path, capsys, monkeypatch):
    """Publish, skip, regenerate and prune on S3 (each generation on this SeaweedFS takes ~10 s, so one
    small dataset), then the lock object: refused while held, taken over when its job died elsewhere."""
    import fsspec

    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    prefix = f"nightly-{uuid.uuid4().hex[:6]}"
    url, base = f"s3://{s3.bucket}/{prefix}", f"{s3.bucket}/{prefix}"
    a = _spec(tmp_path, "alpha", samples=100)

    def listing() -> dict[str, str]:
        fs.invalidate_cache()
        return {p: i["ETag"] for p, i in fs.find(base, detail=True).items()}

    code, out, err = run_cli(capsys, "regenerate", str(a), "--root", url, "--inline", "--keep", "1")
    assert code == 0, err
    v1 = json.loads(fs.cat_file(f"{base}/alpha/latest"))["version"]
    assert json.loads(fs.cat_file(f"{base}/alpha/{v1}/validation.json"))["passed"]
    assert json.loads(fs.cat_file(f"{base}/alpha/index.json"))["versions"][0]["status"] == "passed"
    before = listing()
    assert not any(LOCK_NAME in p for p in before)
    assert not any(s3.secret.encode() in fs.cat_file(p) for p in before if p.endswith(("latest", ".json")))

    code, out, err = run_cli(capsys, "regenerate", str(a), "--root", url, "--inline", "--keep", "1")
    assert code == 0 and f"alpha: unchanged (version {v1})" in out and listing() == before

    _spec(tmp_path, "alpha", samples=90)
    code, out, err = run_cli(capsys, "regenerate", str(a), "--root", url, "--inline", "--keep", "1")
    assert code == 0, err
    v2 = json.loads(fs.cat_file(f"{base}/alpha/latest"))["version"]
    assert v2 != v1 and f"alpha: removed 1 old version(s) (keep 1): {v1}" in out
    fs.invalidate_cache()
    assert not [p for p, i in fs.find(f"{base}/alpha/{v1}", detail=True).items() if i["type"] == "file"]
    assert fs.exists(f"{base}/alpha/{v2}/zarr.json")
    assert [e["version"] for e in json.loads(fs.cat_file(f"{base}/alpha/index.json"))["versions"]] == [v2]

    # the lock: a conditional put (If-None-Match) that SeaweedFS honours; a second job refuses
    held = RootLock(resolve(url), heartbeat=0.2).acquire()
    try:
        assert held.conditional  # the endpoint refused the second exclusive create
        code, out, err = run_cli(capsys, "regenerate", str(a), "--root", url, "--inline")
        assert code == EXIT_LOCKED and err.startswith(f"error: --root: {url}: another regeneration holds")
        first = json.loads(fs.cat_file(f"{base}/{LOCK_NAME}"))["heartbeat"]
        _until(lambda: json.loads(fs.cat_file(f"{base}/{LOCK_NAME}"))["heartbeat"] > first)  # If-Match on its ETag
        fs.pipe_file(f"{base}/{LOCK_NAME}", json.dumps({"owner": "other", "heartbeat": time.time()}).encode())
        _until(lambda: held._lost is not None)  # its next conditional refresh was refused
    finally:
        held.release()
    assert json.loads(fs.cat_file(f"{base}/{LOCK_NAME}"))["owner"] == "other"  # If-Match kept the delete off it
    fs.rm(f"{base}/{LOCK_NAME}")
    # an endpoint that ignored If-None-Match (simulated: the condition is dropped before it is sent)
    ignoring = RootLock(resolve(url), settle=0.2)
    put = ignoring.fs.pipe_file
    ignoring.fs.pipe_file = lambda path, data, mode="overwrite", **kw: put(path, data, **kw)
    ignoring.acquire()
    try:
        assert not ignoring.conditional  # noticed: a second exclusive create went through
        with pytest.raises(LockBusy):
            RootLock(resolve(url)).acquire()
    finally:
        ignoring.release()
    fs.invalidate_cache()
    assert not fs.exists(f"{base}/{LOCK_NAME}")
    # a lock whose job died elsewhere (no heartbeat for long) is taken over
    fs.pipe_file(f"{base}/{LOCK_NAME}", json.dumps({"owner": "gone", "host": "pod-1", "pid": 7,
                                                    "heartbeat": time.time() - 5000}).encode())
    code, out, err = run_cli(capsys, "regenerate", str(a), "--root", url, "--inline")
    assert code == 0 and "took over a stale lock (no heartbeat for" in out and "alpha: unchanged" in out
    fs.invalidate_cache()
    assert not fs.exists(f"{base}/{LOCK_NAME}")
