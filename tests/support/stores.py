"""Small specs and store helpers shared by the pipeline tests (import as `tests.support.stores`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from crlgen.pipeline import load_spec
from crlgen.schemas import DatasetSpec


def tiny_spring(samples: int = 12, **render) -> DatasetSpec:
    """The catalogue spring at test size: 16 px, 2 views, 4 Cycles samples, small shards."""
    r = {"size": 16, "views": 2, "samples": 4, "engine": "cycles", **render}
    return load_spec("static/spring").replace(samples=samples, shard_size=4, render=r)


def latent_spring(samples: int = 3000, **changes) -> DatasetSpec:
    """The spring's SCM without a renderer: fast stores for validation tests."""
    return load_spec("static/spring").replace(world=None, samples=samples, shard_size=1000, **changes)


def tree_digest(root: Path, skip: tuple[str, ...] = ("_crlgen/runs",)) -> dict[str, str]:
    """SHA-256 of every file under a store, except run logs (timings, hosts)."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and not rel.startswith(skip):
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def rewrite_marker(store_root: Path, plan, shard: int) -> None:
    """Recompute a shard's checksums, as an adversary (or a buggy writer) would, so only semantic checks can notice."""
    from crlgen.pipeline._store import Store, checksum
    from crlgen.pipeline._urls import resolve

    store = Store(resolve(str(store_root)))
    data = store.read_shard(plan, shard)
    marker = store.marker(shard)
    marker["checksums"] = {k: checksum(v) for k, v in data.items()}
    listing = store.listing()
    for obj in marker["objects"].values():
        obj["bytes"] = listing.get(obj["key"])
    store.write_text(f"_crlgen/shards/{shard:06d}.json", json.dumps(marker, sort_keys=True, indent=1))


def edit_array(store_root: Path, name: str, index, value) -> None:
    import zarr

    arr = zarr.open_group(str(store_root), mode="r+")[name]
    arr[index] = value


def check_by_name(report: dict, name: str) -> dict:
    return next(c for c in report["checks"] if c["name"] == name)


__all__ = ["tiny_spring", "latent_spring", "tree_digest", "rewrite_marker", "edit_array", "check_by_name", "np"]


def session_pids(sid: int) -> list[int]:
    """PIDs of every live process in session ``sid`` (a driver started with start_new_session and its Ray children)."""
    import os

    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            out.append(int(entry))
    return out


def kill_session(sid: int, timeout: float = 20.0) -> None:
    """SIGKILL every process of a session, by PID, and wait until none is left."""
    import os
    import signal
    import time

    deadline = time.time() + timeout
    while time.time() < deadline:
        pids = session_pids(sid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"processes of session {sid} survived SIGKILL: {session_pids(sid)}")


def physics_spec(world: str, objects: int = 2, *, size=16, views=2, frames=10, fps=20, substeps=8, engine="tiny",
                 samples: int = 4, annotations=("depth", "segmentation"), states=("x", "y", "z", "qx", "qy", "qz", "qw",
                                                                                     "vx", "vy", "vz", "wx", "wy", "wz")) -> DatasetSpec:
    """A minimal valid spec for a physics world: every latent it reads as a uniform root over the
    world's valid range (tests hand the world their own latents), and the given states declared."""
    from crlgen.scenes import world_class

    info = world_class(world).info
    variables = {}
    for t in info.latents + info.optional_latents:
        lo, hi = info.ranges[t]
        if t == "obj[i].shape":
            variables[t] = {"type": "categorical", "levels": ["sphere", "box", "cylinder"], "noise": "categorical(1, 1, 1)"}
        elif t not in ("wall.x", "wall.height"):
            variables[t] = {"range": [lo, hi], "noise": f"uniform({lo}, {hi})"}
    variables.update({f"obj[i].{s}": {"time_varying": True} for s in states})
    return DatasetSpec.from_dict({
        "name": "physics_test", "world": world, "objects": objects, "samples": samples, "variables": variables,
        "video": {"fps": fps, "frames": frames, "substeps": substeps},
        "render": {"size": size, "views": views, "engine": engine, "samples": 4, "device": "cpu", "annotations": list(annotations)},
    })
