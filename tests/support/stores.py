"""Small specs and store helpers shared by the pipeline tests (import as `tests.support.stores`)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from schemas import DatasetSpec, load_spec


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
    from pipeline.store import Store, checksum
    from pipeline.urls import resolve

    store = Store(resolve(str(store_root)))
    data = store.read_shard(plan, shard)
    marker = store.marker(shard)
    marker["checksums"] = {k: checksum(v) for k, v in data.items()}
    store.write_text(f"_crlgen/shards/{shard:06d}.json", json.dumps(marker, sort_keys=True, indent=1))


def edit_array(store_root: Path, name: str, index, value) -> None:
    import zarr

    arr = zarr.open_group(str(store_root), mode="r+")[name]
    arr[index] = value


def check_by_name(report: dict, name: str) -> dict:
    return next(c for c in report["checks"] if c["name"] == name)


__all__ = ["tiny_spring", "latent_spring", "tree_digest", "rewrite_marker", "edit_array", "check_by_name", "np"]
