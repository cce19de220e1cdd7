"""Fault injection for tests and chaos drills, switched on by environment variables only.

- ``CRLGEN_CRASH_ONCE_FILE=PATH``: if PATH exists, the first shard task to see it
  deletes it and kills its worker process (a crash, not an exception), so Ray's
  task retry is exercised.
- ``CRLGEN_SIGNAL_AFTER_SHARDS=K:SIGNAL`` (SIGNAL one of ``KILL``, ``INT``, ``TERM``):
  the driver sends itself SIGNAL right after its K-th shard commit was reported,
  so kill and Ctrl-C tests interrupt a run at a known point instead of polling.
"""

from __future__ import annotations

import os
import signal

CRASH_ONCE_ENV = "CRLGEN_CRASH_ONCE_FILE"
SIGNAL_AFTER_ENV = "CRLGEN_SIGNAL_AFTER_SHARDS"


def maybe_crash() -> None:
    """Kill this process once if ``CRLGEN_CRASH_ONCE_FILE`` names an existing file."""
    token = os.environ.get(CRASH_ONCE_ENV)
    if token:
        try:
            os.unlink(token)
        except FileNotFoundError:
            return
        os._exit(17)


def signal_after(committed: int) -> None:
    """Send this process the configured signal once ``committed`` shards were reported."""
    value = os.environ.get(SIGNAL_AFTER_ENV)
    if not value:
        return
    count, _, name = value.partition(":")
    if committed == int(count):
        # raise_signal delivers to this (the driver's main) thread and runs Python's handler before it
        # returns, so Ctrl-C lands here and now, whatever Ray's threads are doing
        signal.raise_signal(getattr(signal, f"SIG{name or 'KILL'}"))
