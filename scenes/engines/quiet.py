"""Engine imports: silenced where engines print from C code, and a one-line error naming the extra when missing."""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import importlib.util
import os
import sys
from typing import Iterator

#: Python module -> (crlgen extra that installs it, what it is).
EXTRAS: dict[str, tuple[str, str]] = {
    "bpy": ("blender", "Blender's Python module 'bpy'"),
    "OpenEXR": ("blender", "the OpenEXR package"),
    "pybullet": ("bullet", "PyBullet"),
    "carla": ("carla", "the CARLA client"),
}


class EngineMissing(ImportError):
    """An engine module is not installed; the message names the ``crlgen[extra]`` that installs it."""

    def __init__(self, module: str, needed_by: str | None = None) -> None:
        extra, what = EXTRAS.get(module, (None, module))
        who = f"{needed_by} needs " if needed_by else ""
        hint = f"pip install 'crlgen[{extra}]'" if extra else f"pip install {module}"
        super().__init__(f"{who}{what}, which is not installed: {hint}")
        self.module, self.extra = module, extra


def engine_available(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (False also when the finder refuses)."""
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@contextlib.contextmanager
def quiet_output(fds: tuple[int, ...] = (1, 2)) -> Iterator[None]:
    """Point file descriptors ``fds`` (stdout, stderr) at /dev/null for the block.

    Engines print from C code (pybullet's build banner on import, Cycles' device
    probes), which Python-level redirection cannot catch and which would land in
    the middle of ``--json`` output.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or replaced stream
            pass
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        yield
        return
    saved = []
    try:
        for fd in fds:
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            except OSError:
                pass
        yield
    finally:
        _flush_c_stdio()  # C code's buffered output goes to /dev/null now, not at exit
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def _flush_c_stdio() -> None:
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to flush (not on Linux/macOS)
        pass


def require(module: str, *, quiet: bool = False, needed_by: str | None = None):
    """Import and return an engine module, or raise :class:`EngineMissing` naming its extra.

    ``quiet`` silences what the import prints on stdout and stderr (pybullet's build banner).
    """
    if module in sys.modules and sys.modules[module] is not None:
        return sys.modules[module]
    try:
        if quiet:
            with quiet_output():
                return importlib.import_module(module)
        return importlib.import_module(module)
    except ImportError as exc:
        raise EngineMissing(module, needed_by) from exc
