"""One regeneration per root at a time: the lock object ``<root>/.crlgen-regenerate.lock``.

Taken by an exclusive create (locally ``O_CREAT | O_EXCL``; on S3 a conditional PUT with
``If-None-Match: *``), kept alive by a heartbeat, given back by its holder only, and taken over
when its holder is gone (its process on this host has exited, or its heartbeat is older than the
stale timeout). See ``docs/regenerate.md`` (Locking).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from ._urls import Location

LOCK_NAME = ".crlgen-regenerate.lock"
#: A lock whose holder has not refreshed it for this long is taken over (its job died).
LOCK_STALE_SECONDS = 900.0
LOCK_HEARTBEAT_SECONDS = 60.0
WAIT_POLL_SECONDS = 5.0

_log = logging.getLogger(__name__)
_HOST = socket.gethostname()


class LockBusy(Exception):
    """Another regeneration holds the root's lock (the message is one line naming its holder)."""


class LockLost(RuntimeError):
    """This job's lock was taken over (its heartbeat stalled past the stale timeout)."""


# ----- small storage helpers ----------------------------------------------------------------
def utc_now() -> str:
    """The time now in UTC, ISO 8601 with microseconds (``2026-11-30T02:00:00.000000Z``): sorts as text."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def read_json(fs, path: str) -> Any:
    """A JSON object at ``path``; None when it is missing or not JSON."""
    try:
        return json.loads(fs.cat_file(path))
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def write_atomic(location: Location, fs, path: str, data: bytes) -> None:
    """Replace the object at ``path`` in one step: locally a temporary file renamed over it
    (``os.replace``); on an object store one PUT, which readers see whole or not at all."""
    if location.is_local:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    else:
        fs.pipe_file(path, data)


def json_bytes(data: Any) -> bytes:
    """``data`` as indented, key-sorted JSON bytes (one trailing newline)."""
    return (json.dumps(data, indent=1, sort_keys=True) + "\n").encode()


# ----- the lock --------------------------------------------------------------------------------
def _precondition_failed(e: BaseException) -> bool:
    """Whether an object store refused a conditional request (HTTP 412, or 409 for a racing one)."""
    if isinstance(e, FileExistsError):
        return True
    resp = getattr(e.__cause__, "response", None) or getattr(e, "response", None) or {}
    code = (resp.get("Error") or {}).get("Code")
    status = (resp.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def _pid_start(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_namespace() -> str | None:
    """This process's PID namespace (``pid:[4026531836]``): containers that share a host name (host
    networking) still number their processes apart."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None


def _pid_gone(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return start is not None and _pid_start(pid) not in (None, start)  # the pid was reused


class RootLock:
    """The lock object ``<root>/.crlgen-regenerate.lock``: one regeneration per root at a time.

    Created exclusively: locally with ``O_CREAT | O_EXCL``; on S3 with a conditional PUT
    (``If-None-Match: *``), refreshed with ``If-Match`` on its ETag and deleted with ``If-Match``,
    so a lock is never overwritten or removed by anyone but its holder; on other stores (or an S3
    endpoint found to ignore conditions) written, then read back after ``settle`` seconds to see
    who won. The holder rewrites its heartbeat every ``heartbeat`` seconds; a lock whose heartbeat
    is older than ``stale_after``, or whose process on this host is gone, is taken over.
    """

    def __init__(self, root: Location, *, stale_after: float = LOCK_STALE_SECONDS,
                 heartbeat: float = LOCK_HEARTBEAT_SECONDS, settle: float | None = None) -> None:
        self.root = root
        self.fs, base = root.fs()
        self.path = f"{base.rstrip('/')}/{LOCK_NAME}"
        self.owner = uuid.uuid4().hex
        self.stale_after, self.heartbeat = stale_after, heartbeat
        self.settle = (0.0 if root.protocol in ("file", "memory") else 2.0) if settle is None else settle
        self.conditional = root.protocol in ("s3", "s3a")
        #: the stale lock this one replaced (its record and why it was stale), if any
        self.took_over: dict[str, Any] | None = None
        self._etag: str | None = None
        self._started = utc_now()
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # the lock's record -----------------------------------------------------------------
    def _record(self) -> bytes:
        return json_bytes({"owner": self.owner, "host": _HOST, "pid": os.getpid(), "pid_start": _pid_start(os.getpid()),
                           "pid_ns": _pid_namespace(), "started": self._started, "heartbeat": time.time()})

    def _s3(self, op: str, **kw):
        bucket, key, _ = self.fs.split_path(self.path)
        return self.fs.call_s3(op, Bucket=bucket, Key=key, **kw)

    def _read(self) -> tuple[dict[str, Any] | None, str | None, float | None]:
        """(record, ETag, modification time) of the lock object; record None when there is none,
        {} when it cannot be parsed (being written, or damaged)."""
        if self.conditional:
            from fsspec.asyn import sync

            bucket, key, _ = self.fs.split_path(self.path)

            async def get():
                resp = await self.fs._call_s3("get_object", Bucket=bucket, Key=key)
                try:
                    return await resp["Body"].read(), resp.get("ETag"), resp.get("LastModified")
                finally:
                    resp["Body"].close()

            try:
                data, tag, modified = sync(self.fs.loop, get)
            except FileNotFoundError:
                return None, None, None
            mtime = modified.timestamp() if modified is not None else None
        else:
            try:
                data = self.fs.cat_file(self.path)
                mtime = self.fs.modified(self.path).timestamp() if self.root.is_local else None
            except FileNotFoundError:
                return None, None, None
            tag = None
        try:
            record = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        return (record if isinstance(record, dict) else {}), tag, mtime

    def _create(self) -> bool:
        """Create the lock object if there is none; True when this call created it."""
        data = self._record()
        if self.root.is_local:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            return True
        if self._read()[0] is not None:
            return False
        if self.conditional:
            try:
                self._etag = self.fs.pipe_file(self.path, data, mode="create").get("ETag")
            except OSError as e:
                if _precondition_failed(e):
                    return False
                raise
            try:  # an endpoint that ignores If-None-Match would accept this second create
                self.fs.pipe_file(self.path, data, mode="create")
            except OSError as e:
                if not _precondition_failed(e):
                    raise
                return True
            _log.warning("%s: the object store ignores conditional writes (If-None-Match); the lock falls back to "
                         "write, wait %.0f s, read back", self.root.redacted(), self.settle)
            self.conditional = False
        else:
            self.fs.pipe_file(self.path, data)
        time.sleep(self.settle)  # a job that wrote at the same moment has written by now: the last writer holds it
        record = self._read()[0]
        return record is not None and record.get("owner") == self.owner

    def _stale(self, record: dict[str, Any], mtime: float | None) -> str | None:
        """Why a lock is stale, or None while its holder may be alive."""
        now = time.time()
        if not record:  # being written right now, or damaged: only its age can tell
            return f"unreadable and {now - mtime:.0f} s old" if mtime is not None and now - mtime > self.stale_after else None
        same_pids = record.get("host") == _HOST and record.get("pid_ns") == _pid_namespace()  # its pid means a process here
        if same_pids and isinstance(record.get("pid"), int) and _pid_gone(record["pid"], record.get("pid_start")):
            return f"its process (pid {record['pid']} on {_HOST}) is gone"
        beat = record.get("heartbeat")
        if not isinstance(beat, (int, float)) or now - beat > self.stale_after:
            return f"no heartbeat for {now - beat:.0f} s" if isinstance(beat, (int, float)) else "no heartbeat"
        return None

    def _remove_stale(self, record: dict[str, Any], tag: str | None) -> bool:
        """Remove the lock object if it still is ``record``; True when it is gone."""
        if self.root.is_local:
            aside = f"{self.path}.stale-{uuid.uuid4().hex[:8]}"
            try:
                os.rename(self.path, aside)
            except FileNotFoundError:
                return True
            try:
                with open(aside, "rb") as f:
                    moved = json.loads(f.read() or b"{}")
            except (OSError, json.JSONDecodeError, UnicodeDecodeError):
                moved = {}
            if moved.get("owner") != record.get("owner"):  # a fresh lock was moved: put it back
                try:
                    os.link(aside, self.path)
                except FileExistsError:
                    pass
                os.unlink(aside)
                return False
            os.unlink(aside)
            return True
        if self.conditional:
            try:
                self._s3("delete_object", IfMatch=tag)
            except FileNotFoundError:
                return True
            except OSError as e:
                if _precondition_failed(e):
                    return False
                raise
            return True
        self.fs.rm(self.path)
        return True

    # taking, keeping and giving back -----------------------------------------------------
    def _try(self) -> dict[str, Any] | None:
        """Take the lock; None when taken, else the holder's record."""
        for _ in range(3):
            if self._create():
                return None
            record, tag, mtime = self._read()
            if record is None:
                continue  # released between our attempt and our read
            reason = self._stale(record, mtime)
            if reason is None:
                return record
            if self._remove_stale(record, tag) and self._create():
                self.took_over = {**record, "reason": reason}
                _log.warning("%s: took over a stale lock (%s)", self.root.redacted(), reason)
                return None
        return self._read()[0] or {}

    def _holder(self, record: dict[str, Any]) -> str:
        who = (f"host {record.get('host')}, pid {record.get('pid')}, started {record.get('started')}"
               if record else "a lock being written")
        return f"--root: {self.root.redacted()}: another regeneration holds {LOCK_NAME} ({who})"

    def acquire(self, wait: bool = False, poll: float = WAIT_POLL_SECONDS,
                on_wait: Callable[[str], None] | None = None) -> "RootLock":
        """Take the lock and start its heartbeat; returns self. Raises :class:`LockBusy` (one line
        naming the holder) while another job holds it; with ``wait``, polls every ``poll`` seconds
        instead until it is free or stale, telling ``on_wait`` once."""
        told = False
        while True:
            holder = self._try()
            if holder is None:
                break
            if not wait:
                raise LockBusy(f"{self._holder(holder)}; wait for it (--wait) or retry later")
            if on_wait and not told:
                on_wait(f"{self._holder(holder)}; waiting for it")
                told = True
            time.sleep(poll)
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="crlgen-regenerate-lock", daemon=True)
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self._refresh()
            except LockLost as e:
                self._lost = str(e)
                return
            except Exception as e:  # noqa: BLE001 - a transient storage error: try again next beat
                _log.warning("%s: could not refresh the lock (%s)", self.root.redacted(), e)

    def _refresh(self) -> None:
        data = self._record()
        if self.conditional:
            try:
                self._etag = self._s3("put_object", Body=data, IfMatch=self._etag).get("ETag")
            except OSError as e:
                if _precondition_failed(e) or isinstance(e, FileNotFoundError):  # replaced, or removed to be replaced
                    raise LockLost("another job took the lock over") from None
                raise
            return
        record = self._read()[0]
        if not record or record.get("owner") != self.owner:
            raise LockLost("another job took the lock over")
        write_atomic(self.root, self.fs, self.path, data)

    def check(self) -> None:
        """Raise :class:`LockLost` when another job has taken this lock over."""
        if self._lost:
            raise LockLost(f"--root: {self.root.redacted()}: {self._lost} while this job ran (its heartbeat stalled "
                           f"past {self.stale_after:.0f} s); nothing more is published")

    def release(self) -> None:
        """Stop the heartbeat and remove the lock object if it is still this job's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._lost:
            return
        if self.conditional:
            try:
                self._s3("delete_object", IfMatch=self._etag)
            except OSError as e:
                if not (_precondition_failed(e) or isinstance(e, FileNotFoundError)):
                    raise
            return
        record = self._read()[0]
        if record and record.get("owner") == self.owner:
            self.fs.rm(self.path)

    def __enter__(self) -> "RootLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
