"""Ray Jobs: hand a crlgen run to a Ray cluster's job server, once per (spec, output location).

The job runs ``python -m crlgen.pipeline run spec.yaml --out URL --address auto`` on the
cluster: the same code path as ``crlgen run --address auto`` on the head, with the resolved spec
uploaded beside it (Ray's ``working_dir``). Its submission id is derived from the spec's hash and
the output URL, so a second trigger of the same dataset finds the first job instead of starting
another: a job that is pending, running or succeeded is reported as it is; after a failed or
stopped one, the next attempt gets the next id (``<id>-r2``, ...) and resumes the store.

Ray's token authentication (on by default in Ray 2.60) is honoured: the token is read from
``RAY_AUTH_TOKEN``, the file ``RAY_AUTH_TOKEN_PATH`` names, or ``~/.ray/auth_token``, in that
order (Ray's own order), and sent as a bearer token.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..schemas import DatasetSpec
from ._urls import Location, redact_url

#: what a job's status means for a new trigger of the same dataset
ACTIVE = ("PENDING", "RUNNING")
DONE = "SUCCEEDED"
_ATTEMPT = re.compile(r"-r(\d+)$")
_CLI_ERROR = re.compile(r"^error: (.+)$", re.M)


class SubmitError(Exception):
    """The job server cannot be used as asked: unreachable, no token, a refused token (one line, a user mistake)."""


class JobFailed(Exception):
    """A submitted job ended without success; the message is one line with the run's own reason."""


@dataclass(frozen=True)
class Submission:
    """A crlgen job on a Ray cluster: its submission id, its last seen status, whether it was already
    there (``existing``: nothing new was submitted) and, for a finished job, Ray's message."""

    submission_id: str
    status: str
    existing: bool
    message: str | None = None


def submission_id(spec: DatasetSpec, location: Location) -> str:
    """``crlgen-<name>-<16 hex>``: a hash of the spec's content hash (the store's identity) and the
    output URL (credentials left out), so the same dataset at the same place maps to one job."""
    from ._plan import make_plan

    digest = hashlib.sha256(f"{make_plan(spec).spec_hash}\n{location.redacted()}".encode()).hexdigest()[:16]
    name = re.sub(r"[^a-z0-9]+", "-", spec.name.lower()).strip("-")[:40] or "dataset"
    return f"crlgen-{name}-{digest}"


def auth_headers() -> dict[str, str]:
    """The bearer token for Ray's token authentication, from Ray's own sources; {} when there is none
    or ``RAY_AUTH_MODE=disabled``. Raises :class:`SubmitError` for a token file that cannot be read."""
    if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN", "").strip()
    if not token:
        named = os.environ.get("RAY_AUTH_TOKEN_PATH")
        path = Path(named) if named else Path.home() / ".ray" / "auth_token"
        try:
            token = path.read_text().strip() if (named or path.is_file()) else ""
        except OSError as e:
            raise SubmitError(f"RAY_AUTH_TOKEN_PATH: cannot read the token file {path}: {e.strerror or e}") from None
    return {"Authorization": f"Bearer {token}"} if token else {}


def _client(address: str):
    import logging

    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    for name in ("ray.dashboard.modules.dashboard_sdk", "ray._private.runtime_env.packaging"):
        logging.getLogger(name).setLevel(logging.WARNING)  # "Uploading package ..." on every submit

    shown = redact_url(address)  # a job server behind a proxy may take user:password@ in its URL
    if not re.match(r"^https?://[^/\s]+", address):
        shown = re.sub(r"^[^/]*@", "***@", shown)  # no scheme: a user:password@ part is not recognised as one
        raise SubmitError(f"--address: expected the job server's HTTP address, e.g. http://127.0.0.1:8265, got {shown!r}")
    headers = auth_headers()
    try:
        return JobSubmissionClient(address, headers=headers or None)
    except AuthenticationError:
        if headers:
            raise SubmitError(f"--address: the Ray cluster at {shown} refused the token; use the head's token "
                              "(RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token)") from None
        raise SubmitError(f"--address: the Ray cluster at {shown} requires a token (Ray's token authentication) and "
                          "none was found: set RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH, or copy the head's "
                          "~/.ray/auth_token") from None
    except ConnectionError:
        raise SubmitError(f"--address: cannot reach a Ray job server at {shown}; check the address (the head's "
                          "dashboard port, 8265 by default) and that the cluster runs ray[default]") from None
    except RuntimeError as e:
        raise SubmitError(f"--address: {shown} is not a usable Ray job server ({_one_line(e, address)})") from None


def _one_line(e: BaseException, address: str) -> str:
    """Ray's error text on one line, with the address's credentials left out wherever it quotes it."""
    return " ".join(str(e).replace(address, redact_url(address)).split())


def _attempts(client, base: str) -> list[Any]:
    """This dataset's earlier jobs (``base``, ``base-r2``, ...), oldest attempt first."""
    def number(sid: str) -> int:
        m = _ATTEMPT.search(sid[len(base):])
        return int(m.group(1)) if m else 1

    mine = [j for j in client.list_jobs() if j.submission_id == base
            or (j.submission_id and j.submission_id.startswith(base) and _ATTEMPT.fullmatch(j.submission_id[len(base):]))]
    return sorted(mine, key=lambda j: number(j.submission_id))


def _status(job) -> str:
    return str(getattr(job.status, "value", job.status))


def submit(spec: DatasetSpec, location: Location, address: str, *, python: str = "python",
           env: dict[str, str] | None = None) -> Submission:
    """Submit ``crlgen run`` of ``spec`` to ``location`` as a Ray job at ``address`` (``http://head:8265``),
    unless the same dataset's job is already pending, running or succeeded (then that job is returned,
    ``existing=True``). ``python``: the interpreter on the cluster that has crlgen; ``env``: variables
    set for the job (e.g. an object store's endpoint). Raises :class:`SubmitError`."""
    client = _client(address)
    base = submission_id(spec, location)
    try:
        jobs = _attempts(client, base)
    except (OSError, RuntimeError) as e:
        raise SubmitError(f"--address: the job server at {redact_url(address)} did not list its jobs "
                          f"({_one_line(e, address)})") from None
    if jobs and (_status(jobs[-1]) in ACTIVE or _status(jobs[-1]) == DONE):
        return Submission(jobs[-1].submission_id, _status(jobs[-1]), True, jobs[-1].message)
    sid = base if not jobs else f"{base}-r{len(jobs) + 1}"
    entrypoint = " ".join([shlex.quote(python), "-m", "crlgen.pipeline", "run", "spec.yaml", "--out",
                           shlex.quote(location.url), "--address", "auto", "--quiet"])
    with tempfile.TemporaryDirectory(prefix="crlgen-job-") as folder:
        spec.dump(Path(folder) / "spec.yaml")
        runtime_env: dict[str, Any] = {"working_dir": folder}
        if env:
            runtime_env["env_vars"] = dict(env)
        try:
            client.submit_job(entrypoint=entrypoint, submission_id=sid, runtime_env=runtime_env,
                              metadata={"crlgen_dataset": spec.name, "crlgen_out": location.redacted()})
        except RuntimeError as e:
            if f"submission_id {sid} already exists" not in str(e):
                raise SubmitError(f"--address: the job server refused the job ({_one_line(e, address)})") from None
            job = client.get_job_info(sid)  # another trigger submitted it between our look and our submit
            return Submission(sid, _status(job), True, job.message)
    return Submission(sid, "PENDING", False)


def wait(address: str, sid: str, *, poll: float = 1.0, timeout: float | None = None,
         on_status: Callable[[str], None] | None = None) -> Submission:
    """Wait for job ``sid`` to end; returns it when it succeeded. Raises :class:`JobFailed` with the run's
    one-line reason (its last ``error:`` line, else Ray's message) when it failed or was stopped, and
    :class:`SubmitError` when ``timeout`` seconds pass first."""
    client = _client(address)
    t0 = time.monotonic()
    last = None
    while True:
        try:
            job = client.get_job_info(sid)
        except (OSError, RuntimeError) as e:  # requests' connection errors are OSErrors; Ray's HTTP errors RuntimeErrors
            raise SubmitError(f"--wait: lost the job server at {redact_url(address)} while waiting for job {sid} "
                              f"({_one_line(e, address)}); the job may still run: submit again to see it") from None
        status = _status(job)
        if status != last and on_status is not None:
            on_status(status)
        last = status
        if status == DONE:
            return Submission(sid, status, False, job.message)
        if status in ("FAILED", "STOPPED"):
            raise JobFailed(f"job {sid} {status.lower()}: {_reason(client, sid, job)}")
        if timeout is not None and time.monotonic() - t0 > timeout:
            raise SubmitError(f"--wait: job {sid} is still {status.lower()} after {timeout:g} s")
        time.sleep(poll)


def _reason(client, sid: str, job) -> str:
    """The run's own one-line reason: the last ``error:`` line crlgen printed, else Ray's message."""
    try:
        logs = client.get_job_logs(sid)
    except Exception:  # noqa: BLE001 - the logs are a courtesy; Ray's message stays
        logs = ""
    found = _CLI_ERROR.findall(logs or "")
    if found:
        return found[-1].strip()
    return " ".join(str(job.message or "no message from Ray").split())
