"""An OpenSSH server on 127.0.0.1 standing in for a cluster machine, for ``ray up`` with the local provider.

``sshd`` runs in a PID namespace of its own (``unshare --pid --fork --mount-proc``): whatever the SSH
sessions start there (the Ray head, ``ray stop``) sees and can signal only that namespace's
processes, so Ray's ``ray stop`` — which kills every Ray process of the user on a machine — cannot
touch the Ray clusters of other tests on this machine. The server uses its own host key, an
authorized key made for the test, ``SetEnv HOME=<node home>`` so that the node's ``~`` is a test
folder, and a PID file in the temp dir. ``stop()`` kills the ``unshare`` process group; the
kernel then ends every process left in the namespace.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from .s3server import _parent_death_signal, stop_group

HOST = "127.0.0.1"
TOOLS = ("sshd", "ssh", "ssh-keygen", "rsync", "unshare")


def missing_tools() -> list[str]:
    """The programs this server and ``ray up`` need that are not installed (sshd may live in /usr/sbin)."""
    found = {t: shutil.which(t) or (f"/usr/sbin/{t}" if os.access(f"/usr/sbin/{t}", os.X_OK) else None) for t in TOOLS}
    return [t for t, path in found.items() if path is None]


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class LocalSSHD:
    """sshd on 127.0.0.1:<free port> in its own PID namespace; log in as the current user with ``key``."""

    def __init__(self, root: Path, home: Path, startup_timeout: float = 20.0) -> None:
        self.root = root
        self.home = home
        self.startup_timeout = startup_timeout
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.key = root / "id_ed25519"
        self.user = os.environ.get("USER") or __import__("pwd").getpwuid(os.getuid()).pw_name

    @property
    def proxy_command(self) -> str:
        """The ``auth.ssh_proxy_command`` that reaches this server's port (Ray's schema has no ssh_port)."""
        return (f"ssh -i {self.key} -p {self.port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null "
                f"-o IdentitiesOnly=yes -o LogLevel=ERROR -W {HOST}:{self.port} {self.user}@{HOST}")

    def start(self) -> "LocalSSHD":
        """Generate a host key and a client key, start sshd on 127.0.0.1 in its own PID namespace and wait
        until it listens; returns self. Raises RuntimeError (with the log's tail) if it exits or does not."""
        keygen = _tool("ssh-keygen")
        for name in ("host_key", "id_ed25519"):
            subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / name)], check=True,
                           capture_output=True, timeout=30)
        (self.root / "authorized_keys").write_text((self.root / "id_ed25519.pub").read_text())
        with socket.socket() as s:
            s.bind((HOST, 0))
            self.port = s.getsockname()[1]
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            f"ListenAddress {HOST}", f"Port {self.port}", f"HostKey {self.root / 'host_key'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}", f"PidFile {self.root / 'sshd.pid'}",
            "UsePAM no", "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", f"SetEnv HOME={self.home}",
            "X11Forwarding no", "PrintMotd no", "MaxStartups 50:30:100", "MaxSessions 50", ""]))
        # /run/sshd (privilege separation) on a tmpfs private to the namespace: nothing is created on the host
        inner = f"mount -t tmpfs -o mode=755 tmpfs /run && mkdir /run/sshd && exec {_tool('sshd')} -D -e -f {config}"
        self._log = open(self.root / "sshd.log", "wb")
        self.proc = subprocess.Popen([_tool("unshare"), "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", inner],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_parent_death_signal())
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited with {self.proc.returncode}:\n{self.log_tail()}")
            with socket.socket() as s:
                s.settimeout(1)
                if s.connect_ex((HOST, self.port)) == 0:
                    return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sshd did not listen on {HOST}:{self.port} within {self.startup_timeout:.0f} s")
            time.sleep(0.1)

    def log_tail(self, n: int = 30) -> str:
        """The last ``n`` lines of sshd's log (for failure messages)."""
        path = self.root / "sshd.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""

    def namespace_processes(self) -> list[str]:
        """Command lines of the processes living in the server's PID namespace (sshd and what it started)."""
        if self.proc is None:
            return []
        try:
            ns = os.readlink(f"/proc/{self._inner_pid()}/ns/pid")
        except (OSError, TypeError):
            return []
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                if os.readlink(f"/proc/{pid}/ns/pid") == ns:
                    found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except OSError:
                continue
        return found

    def _inner_pid(self) -> int | None:
        assert self.proc is not None
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            pids = children.read_text().split()
        except OSError:
            return None
        return int(pids[0]) if pids else None

    def stop(self) -> None:
        """Kill the ``unshare`` process group (its child, the namespace's PID 1, goes with it, and with that every
        process of the namespace). Idempotent."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        stop_group(proc)
        self._log.close()

    def __enter__(self) -> "LocalSSHD":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
