"""`crlgen submit`: a spec run as a Ray job on a `ray start --head` on 127.0.0.1 with Ray's token
authentication, once per (spec, --out); the run's own one-line reason when it fails.

The head is started by the test on free loopback ports with a private temp dir and token file,
and stopped by its process group (never `ray stop`, which would kill other tests' Ray too).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crlgen.pipeline import validate_store
from crlgen.pipeline._urls import resolve
from support.cli import run_cli
from support.stores import latent_spring


@pytest.fixture(scope="module")
def head():
    from support.rayhead import RayHead

    h = RayHead(num_cpus=2).start()
    yield h
    h.stop()
    assert h.leftovers() == []


@pytest.fixture()
def client_env(head, monkeypatch, tmp_path):
    """This process talks to the head as a user would: its token file named, nothing from the developer's Ray."""
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_MODE", "RAY_ADDRESS", "RAY_API_SERVER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token of the developer's
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(head.token_path))
    return head


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("submit") / "latent.yaml"
    latent_spring(samples=200).replace(shard_size=100).dump(p)
    return p


def _submit(capsys, head, spec: Path, out: Path | str, *flags: str):
    return run_cli(capsys, "submit", str(spec), "--out", str(out), "--address", head.address, "--python",
                   sys.executable, *flags)


def _jobs(head, prefix: str) -> list[str]:
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(head.address, headers={"Authorization": f"Bearer {head.token}"})
    return sorted(j.submission_id for j in client.list_jobs() if (j.submission_id or "").startswith(prefix))


@pytest.mark.slow
def test_a_double_trigger_runs_once_and_the_store_validates(capsys, client_env, spec_file, tmp_path, monkeypatch):
    head = client_env
    out = tmp_path / "job.zarr"
    code, first, err = _submit(capsys, head, spec_file, out)
    assert code == 0, err
    assert first.startswith("submitted: crlgen-spring-"), first
    sid = first.split()[1]
    code, second, err = _submit(capsys, head, spec_file, out)  # the second trigger, while the first is pending/running
    assert code == 0, err
    assert second.startswith(f"already submitted: {sid} (")
    code, third, err = _submit(capsys, head, spec_file, out, "--wait")  # waits for that same job
    assert code == 0, err
    assert third.splitlines()[0].startswith(f"already submitted: {sid} (") and f"succeeded: {sid}" in third
    assert _jobs(head, sid) == [sid]
    code, fourth, _ = _submit(capsys, head, spec_file, out, "--wait")
    assert code == 0 and fourth.strip() == f"already submitted: {sid} (SUCCEEDED) -> {out}"
    code, report, err = run_cli(capsys, "validate", str(out), "--json")
    assert code == 0 and json.loads(report)["passed"], err
    # the race: a trigger that looked before another one submitted; Ray refuses the reused id and
    # the job already there is reported
    from crlgen.pipeline import _submit as submit_module

    monkeypatch.setattr(submit_module, "_attempts", lambda client, base: [])
    code, fifth, err = _submit(capsys, head, spec_file, out)
    assert code == 0 and fifth.strip() == f"already submitted: {sid} (SUCCEEDED) -> {out}", fifth + err
    assert _jobs(head, sid) == [sid]


@pytest.mark.slow
def test_a_failed_job_exits_1_with_the_runs_reason_and_a_new_trigger_retries(capsys, client_env, spec_file, tmp_path):
    head = client_env
    out = tmp_path / "blocked.zarr"
    out.write_text("a file where the store should go")
    code, stdout, err = _submit(capsys, head, spec_file, out, "--wait")
    sid = stdout.split()[1]
    assert code == 1, stdout + err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert lines == [f"error: job {sid} failed: --out: {out}: is a file, not a folder; a Zarr store is a folder"], err
    out.unlink()
    code, stdout, err = _submit(capsys, head, spec_file, out, "--wait")
    assert code == 0, err
    assert stdout.startswith(f"submitted: {sid}-r2 ") and f"succeeded: {sid}-r2" in stdout
    assert _jobs(head, sid) == [sid, f"{sid}-r2"]


@pytest.mark.slow
def test_token_authentication(capsys, client_env, spec_file, tmp_path, monkeypatch):
    from crlgen.pipeline._submit import auth_headers

    head = client_env
    before = _jobs(head, "crlgen-")
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    code, _, err = _submit(capsys, head, spec_file, tmp_path / "x.zarr")
    assert code == 2 and err.strip() == (
        f"error: --address: the Ray cluster at {head.address} requires a token (Ray's token authentication) and none "
        "was found: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or copy the head's ~/.ray/auth_token"), err
    monkeypatch.setenv("RAY_AUTH_TOKEN", "not-the-token")
    code, _, err = _submit(capsys, head, spec_file, tmp_path / "x.zarr")
    assert code == 2 and err.startswith(f"error: --address: the Ray cluster at {head.address} refused the token"), err
    assert "not-the-token" not in err and head.token not in err
    assert _jobs(head, "crlgen-") == before and not (tmp_path / "x.zarr").exists()  # nothing was submitted
    monkeypatch.setenv("RAY_AUTH_TOKEN", head.token)  # Ray's order: the variable, then the file, then ~/.ray/auth_token
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    assert auth_headers() == {"Authorization": f"Bearer {head.token}"}
    monkeypatch.delenv("RAY_AUTH_TOKEN")
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text(head.token + "\n")
    monkeypatch.delenv("RAY_AUTH_TOKEN_PATH")
    assert auth_headers() == {"Authorization": f"Bearer {head.token}"}  # HOME is tmp_path (client_env)


def test_submission_ids_follow_the_spec_and_the_output():
    from crlgen.pipeline._submit import submission_id

    spec = latent_spring(samples=200)
    a = submission_id(spec, resolve("s3://bucket/a.zarr"))
    assert a == submission_id(latent_spring(samples=200), resolve("s3://bucket/a.zarr/"))
    assert a.startswith("crlgen-spring-") and len(a) == len("crlgen-spring-") + 16
    assert a != submission_id(spec, resolve("s3://bucket/b.zarr"))
    assert a != submission_id(latent_spring(samples=201), resolve("s3://bucket/a.zarr"))
    # credentials passed as options never change (or enter) the id
    assert a == submission_id(spec, resolve("s3://bucket/a.zarr", {"key": "K", "secret": "S"}))


@pytest.mark.slow
def test_unreachable_job_server_and_bad_flags(capsys, client_env, spec_file, tmp_path):
    from support.rayhead import free_ports

    port = free_ports(1)[0]
    code, _, err = run_cli(capsys, "submit", str(spec_file), "--out", str(tmp_path / "x.zarr"), "--address",
                           f"http://127.0.0.1:{port}")
    assert code == 2 and err.startswith(f"error: --address: cannot reach a Ray job server at http://127.0.0.1:{port}")
    code, _, err = run_cli(capsys, "submit", str(spec_file), "--out", "s3://b/x.zarr", "--address", "127.0.0.1:8265")
    assert code == 2 and err.startswith("error: --address: expected the job server's HTTP address"), err
    code, _, err = run_cli(capsys, "submit", str(spec_file))
    assert code == 2 and err.startswith("error: --out: crlgen submit needs --out (or output.url in the spec)"), err
    code, _, err = run_cli(capsys, "submit", str(spec_file), "--env", "CRLGEN_NOT_SET_ANYWHERE")
    assert code == 2 and err.strip() == "error: --env: CRLGEN_NOT_SET_ANYWHERE is not set in this environment"


def test_credentials_in_the_job_server_address_are_never_printed(capsys, spec_file, tmp_path, monkeypatch):
    """A job server behind a proxy may be given as http://user:password@host:port: refused or unreachable, the
    one-line error names the address without them."""
    from support.rayhead import free_ports

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    port = free_ports(1)[0]
    code, _, err = run_cli(capsys, "submit", str(spec_file), "--out", str(tmp_path / "x.zarr"), "--address",
                           f"http://ops:S3CR3T@127.0.0.1:{port}")
    assert code == 2 and err.startswith(f"error: --address: cannot reach a Ray job server at http://127.0.0.1:{port};"), err
    code, _, err = run_cli(capsys, "submit", str(spec_file), "--out", str(tmp_path / "x.zarr"), "--address",
                           "ops:S3CR3T@127.0.0.1:8265")
    assert code == 2 and err.startswith("error: --address: expected the job server's HTTP address"), err
    assert "S3CR3T" not in err and len(err.splitlines()) == 1 and not (tmp_path / "x.zarr").exists()


@pytest.mark.slow
def test_a_run_without_an_address_starts_its_own_ray_beside_a_ray_start_cluster(head, spec_file, tmp_path):
    """`ray start` records its cluster in <temp dir>/ray/ray_current_cluster, and a bare ``ray.init()``
    joins it (then refuses num_cpus: a traceback). ``crlgen run`` without --address or RAY_ADDRESS
    starts its embedded cluster on loopback, as a user with the head's temp dir as theirs would run it."""
    recorded = head.tmp / "ray" / "ray_current_cluster"  # written a few seconds after the job server answers
    deadline = time.monotonic() + 60
    while not recorded.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert recorded.read_text().strip().endswith(f":{head.gcs_port}")  # the record a bare ray.init() would follow
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    env.update(TMPDIR=str(head.tmp), RAY_TMPDIR=str(head.tmp), RAY_USAGE_STATS_ENABLED="0")
    out = tmp_path / "embedded.zarr"
    r = subprocess.run([str(Path(sys.executable).parent / "crlgen"), "run", str(spec_file), "--out", str(out),
                        "--workers", "1", "--quiet"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    assert validate_store(str(out))["passed"]
