"""The Zarr v3 store and its commit protocol.

Order of writes, so that concurrent writers need no locks and a crash never
leaves a store that claims more than it holds:
1. ``create``: every array preallocated from the plan, group attributes with
   the spec hash and ``status: writing``.
2. Per shard (one task owns whole Zarr shards): the data, then the shard's
   marker ``_crlgen/shards/NNNNNN.json`` with SHA-256 checksums of the data.
3. ``commit``: sidecars, the manifest, consolidated metadata, then
   ``status: complete``.
Everything in the store is a function of the spec, except the run logs under
``_crlgen/runs/`` (timings, hosts), so re-runs and resumes are byte-identical.
"""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from .plan import FORMAT_VERSION, Plan
from .urls import Location

MARKERS = "_crlgen/shards"
RUNS = "_crlgen/runs"
GENERATOR = "crlgen"


class StoreError(Exception):
    """A store that cannot be used as asked (user-facing, one line)."""


def checksum(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(str(a.dtype).encode() + str(a.shape).encode())
    h.update(a.tobytes() if a.dtype.kind != "U" else "\x00".join(a.tolist()).encode())
    return h.hexdigest()


def _compressors(spec_dtype: str):
    import zarr.codecs

    return (zarr.codecs.ZstdCodec(level=3),) if spec_dtype != "str" else "auto"


@dataclass
class Store:
    """A crlgen dataset at a location: arrays, markers and sidecars."""

    location: Location

    # ----- files beside the arrays (markers, sidecars) ---------------------------------
    def _fs(self):
        if not hasattr(self, "_fs_cache"):
            self._fs_cache = self.location.fs()
        return self._fs_cache

    def _path(self, rel: str) -> str:
        fs, root = self._fs()
        return f"{root.rstrip('/')}/{rel}"

    def write_text(self, rel: str, text: str | bytes) -> None:
        fs, _ = self._fs()
        data = text.encode() if isinstance(text, str) else text
        path = self._path(rel)
        parent = path.rsplit("/", 1)[0]
        if self.location.is_local:
            fs.makedirs(parent, exist_ok=True)
        _retry(lambda: fs.pipe_file(path, data))

    def read_text(self, rel: str) -> str | None:
        fs, _ = self._fs()
        try:
            return _retry(lambda: fs.cat_file(self._path(rel))).decode()
        except FileNotFoundError:
            return None

    def exists(self, rel: str) -> bool:
        fs, _ = self._fs()
        return fs.exists(self._path(rel))

    def remove(self, rel: str) -> None:
        fs, _ = self._fs()
        if fs.exists(self._path(rel)):
            fs.rm(self._path(rel), recursive=True)

    def list_dir(self, rel: str) -> list[str]:
        fs, _ = self._fs()
        try:
            return sorted(p.rsplit("/", 1)[-1] for p in fs.ls(self._path(rel), detail=False))
        except FileNotFoundError:
            return []

    # ----- the zarr group --------------------------------------------------------------
    def group(self, mode: str = "r"):
        import zarr

        return zarr.open_group(self.location.zarr_store(read_only=mode == "r"), mode=mode)

    def attrs(self) -> dict[str, Any] | None:
        """The crlgen attributes of an existing store, None if there is no zarr group."""
        text = self.read_text("zarr.json")
        if text is None:
            return None
        try:
            meta = json.loads(text)
        except json.JSONDecodeError:
            raise StoreError(f"{self.location.redacted()}: zarr.json is not valid JSON; not a crlgen store") from None
        return meta.get("attributes", {}).get(GENERATOR, {}) if meta.get("node_type") == "group" else {}

    def is_empty(self) -> bool:
        fs, root = self._fs()
        try:
            return not fs.exists(root) or (fs.isdir(root) and not fs.ls(root, detail=False))
        except FileNotFoundError:
            return True

    def create(self, plan: Plan, overwrite: bool = False) -> None:
        """Preallocate every array; wipes an existing crlgen store only with ``overwrite``."""
        import zarr

        if not self.is_empty():
            attrs = self.attrs()
            if not attrs:
                raise StoreError(f"{self.location.redacted()}: exists and is not a crlgen store; refusing to write there")
            if not overwrite:
                raise StoreError(f"{self.location.redacted()}: holds another dataset (spec hash {attrs.get('spec_hash', '?')[:12]}); pass --overwrite to replace it")
            fs, root = self._fs()
            fs.rm(root, recursive=True)
        root = zarr.open_group(self.location.zarr_store(), mode="w", attributes={GENERATOR: self._group_attrs(plan, "writing")})
        for a in plan.arrays:
            arr = root.create_array(
                a.name, shape=a.shape, dtype=str if a.dtype == "str" else a.dtype, chunks=a.chunks, shards=a.shards,
                dimension_names=a.dims, compressors=_compressors(a.dtype), attributes=a.attrs,
                fill_value="" if a.dtype == "str" else None,
            )
            if not a.per_sample:
                arr[:] = np.array(_coordinate(plan, a.name), dtype=object)

    def _group_attrs(self, plan: Plan, status: str) -> dict[str, Any]:
        return {"spec_hash": plan.spec_hash, "format": FORMAT_VERSION, "status": status, "name": plan.spec.name,
                "world": plan.spec.world, "kind": plan.kind, "samples": plan.spec.samples, "shard_size": plan.shard_size}

    def set_status(self, plan: Plan, status: str) -> None:
        g = self.group("r+")
        g.attrs.update({GENERATOR: self._group_attrs(plan, status)})

    # ----- shards ----------------------------------------------------------------------
    def write_shard(self, plan: Plan, shard: int, data: dict[str, np.ndarray]) -> dict[str, str]:
        """Write one task's whole shard for every per-sample array, then its marker."""
        start, stop = plan.shards[shard]
        g = self.group("r+")
        sums = {}
        for a in plan.arrays:
            if not a.per_sample:
                continue
            arr = data[a.name]
            expect = (stop - start, *a.shape[1:])
            if arr.shape != expect or arr.dtype != np.dtype(a.dtype):
                raise ValueError(f"shard {shard}: {a.name} has {arr.dtype}{arr.shape}, expected {a.dtype}{expect}")
            _retry(lambda: g[a.name].__setitem__(slice(start, stop), arr))
            sums[a.name] = checksum(arr)
        marker = {"shard": shard, "start": start, "stop": stop, "spec_hash": plan.spec_hash, "checksums": sums}
        self.write_text(f"{MARKERS}/{shard:06d}.json", json.dumps(marker, sort_keys=True, indent=1))
        return sums

    def marker(self, shard: int) -> dict[str, Any] | None:
        text = self.read_text(f"{MARKERS}/{shard:06d}.json")
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return None

    def read_shard(self, plan: Plan, shard: int, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        start, stop = plan.shards[shard]
        g = self.group("r")
        wanted = set(names) if names is not None else {a.name for a in plan.arrays if a.per_sample}
        return {a.name: np.asarray(g[a.name][start:stop]) for a in plan.arrays if a.per_sample and a.name in wanted}

    def verify_shard(self, plan: Plan, shard: int) -> list[str]:
        """Problems with one shard: missing marker, other spec, checksum or read failures."""
        m = self.marker(shard)
        if m is None:
            return [f"shard {shard}: no commit marker"]
        if m.get("spec_hash") != plan.spec_hash or (m.get("start"), m.get("stop")) != plan.shards[shard]:
            return [f"shard {shard}: marker belongs to another spec or layout"]
        try:
            data = self.read_shard(plan, shard)
        except Exception as e:  # noqa: BLE001 - any decode failure means a damaged shard
            return [f"shard {shard}: cannot read its data ({type(e).__name__}: {e})"]
        out = []
        for name, arr in data.items():
            if m["checksums"].get(name) != checksum(arr):
                out.append(f"shard {shard}: {name} does not match its checksum")
        return out

    def committed_shards(self, plan: Plan, verify: bool = True) -> set[int]:
        names = set(self.list_dir(MARKERS))
        done = {k for k in range(len(plan.shards)) if f"{k:06d}.json" in names}
        if verify:
            done = {k for k in done if not self.verify_shard(plan, k)}
        return done

    # ----- finishing -------------------------------------------------------------------
    def consolidate(self) -> None:
        import zarr

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata")
            warnings.filterwarnings("ignore", message="Object at .* is not recognized")  # our sidecars and markers
            zarr.consolidate_metadata(self.location.zarr_store())

    def write_run_log(self, run_id: str, record: dict[str, Any]) -> None:
        self.write_text(f"{RUNS}/{run_id}.json", json.dumps(record, indent=1, sort_keys=True, default=str))


def _coordinate(plan: Plan, name: str) -> list[str]:
    if name == "latent":
        return list(plan.spec.graph.names)
    if name == "view":
        return list(plan.views)
    if name == "edit":
        from .scm import CompiledSCM

        return [f"{e.name}:{e.target}" for e in CompiledSCM(plan.spec).edits]
    if name == "state":
        from .plan import world_states

        return list(world_states(plan.spec))
    raise KeyError(name)


TRANSIENT = (OSError, TimeoutError, ConnectionError)


def _retry(fn, attempts: int = 5, base: float = 0.2):
    """Retry transient storage errors with exponential backoff; others propagate at once."""
    for i in range(attempts):
        try:
            return fn()
        except FileNotFoundError:
            raise
        except PermissionError:
            raise
        except TRANSIENT:
            if i == attempts - 1:
                raise
            time.sleep(base * 2**i)
