"""Pin a one-CPU worker to a core of its own.

Blender's Cycles (5.0) runs a yielding wait thread beside its render thread even with
``threads = 1``: on an idle core it spins at 100 %, so two single-thread workers on two
cores fight over both. Measured here: a render pinned to one core is as fast as an
unpinned one (0.29 s/sample) while using half the CPU, and two unpinned workers reach
only 1.3-1.7x one. Each worker therefore claims a distinct core with an exclusive file
lock (held for the process's life, released by the OS when it exits) and pins itself to it.
"""

from __future__ import annotations

import fcntl
import os
import tempfile

_HELD: dict[str, object] = {}


def claim_cpu(lock_dir: str | None = None) -> int | None:
    """Pin this process to a core no other crlgen worker on this machine holds; None if all are taken."""
    if "cpu" in _HELD:
        return _HELD["cpu"]  # type: ignore[return-value]
    if not hasattr(os, "sched_setaffinity"):
        return None
    lock_dir = lock_dir or os.path.join(tempfile.gettempdir(), "crlgen-cpus")
    os.makedirs(lock_dir, exist_ok=True)
    for cpu in sorted(os.sched_getaffinity(0)):
        f = open(os.path.join(lock_dir, f"cpu{cpu}.lock"), "a")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        os.sched_setaffinity(0, {cpu})
        _HELD["cpu"], _HELD["file"] = cpu, f
        return cpu
    return None
