"""A Ray head started with ``ray start --head --block`` on 127.0.0.1, for tests of Ray Jobs.

Every port is picked free on 127.0.0.1, the session lives in a private ``--temp-dir``, token
authentication is on (``RAY_AUTH_MODE=token`` with a token file of the test's own), and the
head is stopped by its process group (never ``ray stop``, which kills every Ray process of
the user on the machine, other tests' included). ``leftovers()`` lists any process still
holding the head's temp dir in its command line, so a test can check nothing survived.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .s3server import _parent_death_signal, stop_group

HOST = "127.0.0.1"


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now (sockets held together, so no duplicates)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _worker_port_range(width: int = 40) -> tuple[int, int]:
    """A run of ``width`` free ports in 20000-30000 (below Linux's ephemeral range) for Ray's workers."""
    for start in range(20000 + secrets.randbelow(9000), 30000, width):
        ok = True
        for p in range(start, start + width):
            with socket.socket() as s:
                try:
                    s.bind((HOST, p))
                except OSError:
                    ok = False
                    break
        if ok:
            return start, start + width - 1
    raise RuntimeError("no free run of ports for Ray's workers")


class RayHead:
    """``ray start --head`` with the dashboard (Ray Jobs), on loopback, token auth, private temp dir."""

    def __init__(self, num_cpus: int = 2, startup_timeout: float = 90.0) -> None:
        self.num_cpus = num_cpus
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmp: Path | None = None
        self.token = secrets.token_hex(32)
        self.gcs_port = self.dashboard_port = 0

    @property
    def address(self) -> str:
        """The job server's HTTP address."""
        return f"http://{HOST}:{self.dashboard_port}"

    @property
    def token_path(self) -> Path:
        """The file holding the head's auth token (what RAY_AUTH_TOKEN_PATH names for a client)."""
        assert self.tmp is not None
        return self.tmp / "auth_token"

    @property
    def env(self) -> dict[str, str]:
        """What a client of this head needs: the token file, token mode, no usage stats, loopback."""
        return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(self.token_path), "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

    def start(self) -> "RayHead":
        """Start ``ray start --head --block`` with token auth on free loopback ports in a private temp dir and
        wait until its job server answers; returns self. Raises RuntimeError if it exits or does not answer in time."""
        # a short path: Ray's unix sockets live under it (107 bytes at most)
        self.tmp = Path(tempfile.mkdtemp(prefix="crlray-", dir="/tmp"))
        self.token_path.write_text(self.token)
        self.token_path.chmod(0o600)
        (self.gcs_port, self.dashboard_port, agent_listen, agent_grpc, node_manager, object_manager, metrics,
         runtime_env_agent, client_server) = free_ports(9)
        low, high = _worker_port_range()
        args = [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
                f"--node-ip-address={HOST}", f"--port={self.gcs_port}", "--include-dashboard=true",
                f"--dashboard-host={HOST}", f"--dashboard-port={self.dashboard_port}",
                f"--dashboard-agent-listen-port={agent_listen}", f"--dashboard-agent-grpc-port={agent_grpc}",
                f"--node-manager-port={node_manager}", f"--object-manager-port={object_manager}",
                f"--metrics-export-port={metrics}", f"--runtime-env-agent-port={runtime_env_agent}",
                f"--ray-client-server-port={client_server}", f"--min-worker-port={low}", f"--max-worker-port={high}",
                f"--num-cpus={self.num_cpus}", f"--temp-dir={self.tmp / 'ray'}", "--disable-usage-stats"]
        env = {**os.environ, **self.env, "HOME": str(self.tmp), "TMPDIR": str(self.tmp), "RAY_TMPDIR": str(self.tmp)}
        env.pop("RAY_ADDRESS", None)
        self._log = open(self.tmp / "ray-start.log", "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                     cwd=self.tmp, start_new_session=True, preexec_fn=_parent_death_signal())
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + self.startup_timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:  # the job API answers (authenticated) once the dashboard's job module is up
                req = urllib.request.Request(f"{self.address}/api/jobs/", headers={"Authorization": f"Bearer {self.token}"})
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Ray head's job server did not answer within {self.startup_timeout:.0f} s")
            time.sleep(0.5)

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of ``ray start``'s output (for failure messages)."""
        if self.tmp is None or not (self.tmp / "ray-start.log").exists():
            return ""
        return "\n".join((self.tmp / "ray-start.log").read_text(errors="replace").splitlines()[-n:])

    def leftovers(self) -> list[str]:
        """Command lines of live processes that mention this head's temp dir."""
        if self.tmp is None:
            return []
        return _processes_mentioning(str(self.tmp))

    def stop(self) -> None:
        """SIGTERM the head's process group (``ray start --block`` stops its processes), SIGKILL what is left,
        then any process that still names the temp dir (a worker that left the group). Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc)
            self._log.close()
        if self.tmp is not None:
            kill_processes_mentioning(str(self.tmp))
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def __enter__(self) -> "RayHead":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            cmd = (Path("/proc") / pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmd:
            found.append(f"{pid}: {cmd.strip()}")
    return found


def kill_processes_mentioning(text: str, timeout: float = 10.0) -> None:
    """SIGKILL every process whose command line contains ``text`` (a test's private temp dir), by PID."""
    deadline = time.monotonic() + timeout
    while True:
        pids = [int(line.split(":", 1)[0]) for line in _processes_mentioning(text)]
        if not pids or time.monotonic() > deadline:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        time.sleep(0.2)
