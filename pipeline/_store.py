"""The Zarr v3 store and its commit protocol.

Order of writes, so that concurrent writers need no locks and a crash never
leaves a store that claims more than it holds:
1. ``create``: every array the plan lists preallocated (coordinates filled with
   the plan's values), group attributes with the spec hash and ``status: writing``.
2. Per shard (one task owns whole Zarr shards): the data, then the shard's
   marker ``_crlgen/shards/NNNNNN.json`` with SHA-256 checksums of the data and
   the size of every storage object the shard wrote.
3. ``commit``: sidecars, the manifest, consolidated metadata, then
   ``status: complete``.
Everything in the store is a function of the spec, except the run logs under
``_crlgen/runs/`` (timings, hosts), so re-runs and resumes are byte-identical.

Resuming checks committed shards against one listing of the store (object sizes
from the markers); re-reading and re-hashing every shard is ``verify_checksums``'
job (``crlgen validate --full``). An array whose ``zarr.json`` went missing gets it
written again on resume (step 1's metadata, a function of the plan: ``restore_metadata``).
"""

from __future__ import annotations

import enum
import hashlib
import json
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Iterator

import numpy as np

from ._plan import FORMAT_VERSION, Plan
from ._urls import Location, storage_error
from ._version import __version__

GENERATOR_VERSION = f"crlgen {__version__}"

MARKERS = "_crlgen/shards"
RUNS = "_crlgen/runs"
GENERATOR = "crlgen"


def other_dataset(attrs: dict[str, Any], plan: Plan) -> str:
    """What a store of another dataset holds, for messages: its name and either the sampler
    version that drew it (when that is not ``plan``'s: the same spec is another dataset then) or
    its spec hash."""
    sampler = attrs.get("sampler", 1)
    if sampler != plan.sampler:
        return f"{attrs.get('name')}, drawn by sampler {sampler}; this crlgen draws with sampler {plan.sampler}"
    return f"{attrs.get('name')}, spec hash {str(attrs.get('spec_hash'))[:12]}"


@contextmanager
def _sidecars_unrecognised() -> Iterator[None]:
    """Zarr warns about every file beside the arrays it meets while listing a group without
    consolidated metadata (a half-written store): our sidecars and markers; silence just that."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Object at .* is not recognized")
        yield


class StoreError(Exception):
    """A store that cannot be used as asked (user-facing, one line)."""


class Existing(enum.Enum):
    """What a location holds, seen from a plan: the one place this is decided."""

    EMPTY = "empty"  # nothing there (or an empty folder): a new store may be created
    SAME = "same"  # a crlgen store of this very spec: resume it
    OTHER = "other"  # a crlgen store of another spec: replace only with --overwrite
    FOREIGN = "foreign"  # something that is not a crlgen store: never written
    DAMAGED = "damaged"  # crlgen's commit markers beside a root zarr.json that is missing or not JSON: replace only with --overwrite


def checksum(arr: np.ndarray) -> str:
    """SHA-256 (hex) of an array's dtype, shape and bytes (text: NUL-joined UTF-8)."""
    a = np.ascontiguousarray(arr)
    h = hashlib.sha256()
    h.update(str(a.dtype).encode() + str(a.shape).encode())
    h.update(a.tobytes() if a.dtype.kind != "U" else "\x00".join(a.tolist()).encode())
    return h.hexdigest()


def _compressors(spec_dtype: str):
    import zarr.codecs

    # the content checksum makes a damaged chunk fail to decode instead of reading as other values
    return (zarr.codecs.ZstdCodec(level=3, checksum=True),) if spec_dtype != "str" else "auto"


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
        """Write a file beside the arrays (``rel`` is relative to the store's root)."""
        fs, _ = self._fs()
        data = text.encode() if isinstance(text, str) else text
        path = self._path(rel)
        if self.location.is_local:
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe_file(path, data)

    def read_text(self, rel: str) -> str | None:
        """A file beside the arrays, or None when it does not exist (or is a folder, or not text)."""
        fs, _ = self._fs()
        try:
            return fs.cat_file(self._path(rel)).decode()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError, UnicodeDecodeError):
            return None

    def read_json(self, rel: str) -> Any:
        """A JSON file beside the arrays; None when it is missing or not valid JSON."""
        text = self.read_text(rel)
        if text is None:
            return None
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return None

    def listing(self) -> dict[str, int]:
        """Every object under the store with its size in bytes, keys relative to the root (one listing)."""
        fs, root = self._fs()
        root = root.rstrip("/")
        fs.invalidate_cache(root)
        try:
            found = fs.find(root, detail=True)
        except FileNotFoundError:
            return {}
        return {p[len(root) + 1:]: int(info.get("size") or 0) for p, info in found.items() if p.startswith(root + "/")}

    # ----- the zarr group --------------------------------------------------------------
    def group(self, mode: str = "r"):
        import zarr

        return zarr.open_group(self.location.zarr_store(read_only=mode == "r"), mode=mode)

    def arrays(self) -> dict[str, Any]:
        """Every array of the group by name (read only), without Zarr's warning for each file beside them."""
        with _sidecars_unrecognised():
            return dict(self.group("r").arrays())

    def modified(self, rel: str) -> datetime | None:
        """When a file beside the arrays was last written (UTC where the storage says), or None
        when it is missing or the storage does not say."""
        fs, _ = self._fs()
        try:
            return fs.modified(self._path(rel))
        except (NotImplementedError, OSError, KeyError):
            return None

    def attrs(self) -> dict[str, Any] | None:
        """The crlgen attributes of an existing store; None if there is no zarr.json, {} if it is not a crlgen store.

        A crlgen store is a zarr group whose ``crlgen`` attribute is a mapping with a spec hash and a format.
        """
        if self.read_text("zarr.json") is None and not self.exists("zarr.json"):
            return None
        meta = self.read_json("zarr.json")
        if not isinstance(meta, dict) or meta.get("node_type") != "group" or not isinstance(meta.get("attributes"), dict):
            return {}
        ours = meta["attributes"].get(GENERATOR)
        if not isinstance(ours, dict) or not isinstance(ours.get("spec_hash"), str) or "format" not in ours:
            return {}
        return ours

    def root_damage(self) -> str | None:
        """What is wrong with the root ``zarr.json`` of a store (one phrase, e.g. ``its zarr.json
        is damaged (not valid JSON)``; a missing one where crlgen's commit markers are), or None:
        a folder whose group metadata is damaged is not the same as one that is not a crlgen store."""
        if not self.exists("zarr.json"):
            return "its zarr.json is missing (crlgen's commit markers are there)" if self.exists(MARKERS) else None
        text = self.read_text("zarr.json")
        if text is None:  # a folder of that name is no store's metadata; a file that is not text is damaged
            return None if self._fs()[0].isdir(self._path("zarr.json")) else "its zarr.json is damaged (not a text file)"
        try:
            json.loads(text)
        except json.JSONDecodeError:
            return "its zarr.json is damaged (not valid JSON)"
        return None

    def is_damaged_crlgen(self) -> bool:
        """True for a crlgen store whose root metadata is damaged (:meth:`root_damage`) while
        crlgen's commit markers are there: its spec is unknown, but it is crlgen's to replace."""
        return bool(self.root_damage()) and self.exists(MARKERS)

    def missing_metadata(self, plan: Plan, listing: dict[str, int] | None = None) -> list[str]:
        """Names of the plan's arrays whose own ``zarr.json`` is not in the store (one listing;
        consolidated metadata may still describe them, readers that do not use it cannot)."""
        listing = self.listing() if listing is None else listing
        return [a.name for a in plan.arrays if f"{a.name}/zarr.json" not in listing]

    def restore_metadata(self, plan: Plan) -> list[str]:
        """Write again the ``zarr.json`` of every array of this plan's store that lacks one (and a
        coordinate's values); returns their names. Safe by the commit protocol: an array's
        metadata is step 1's, a function of the plan, so it is written byte for byte as ``create``
        wrote it; shard data and markers are not touched (a shard's objects are still checked
        against its marker before it counts as committed). The consolidated metadata is written
        again too: a commit since the loss left it without those arrays."""
        import zarr

        missing = set(self.missing_metadata(plan))
        for a in plan.arrays:
            if a.name in missing:
                arr = zarr.create_array(self.location.zarr_store(), name=a.name, **self._array_options(a))
                if a.values is not None:
                    arr[...] = a.values
        if missing:
            self.consolidate()
        return [a.name for a in plan.arrays if a.name in missing]

    def exists(self, rel: str) -> bool:
        fs, _ = self._fs()
        return fs.exists(self._path(rel))

    def is_empty(self) -> bool:
        fs, root = self._fs()
        fs.invalidate_cache(root)
        try:
            return not fs.exists(root) or (fs.isdir(root) and not fs.ls(root, detail=False))
        except FileNotFoundError:
            return True

    def root_exists(self) -> bool:
        """Whether the location's root (a directory, a prefix) exists at all."""
        fs, root = self._fs()
        fs.invalidate_cache(root)
        try:
            return bool(fs.exists(root))
        except FileNotFoundError:
            return False

    def discard(self, keep_root: bool) -> None:
        """Remove everything at the location; ``keep_root`` leaves its (now empty) root directory.

        Used when a run that created this store stops on a mistake in its spec, so the location
        is left as the run found it.
        """
        fs, root = self._fs()
        fs.invalidate_cache(root)
        if not fs.exists(root):
            return
        if keep_root:
            for child in fs.ls(root, detail=False):
                fs.rm(child, recursive=True)
        else:
            fs.rm(root, recursive=True)
        fs.invalidate_cache(root)

    def existing(self, spec_hash: str) -> tuple[Existing, dict[str, Any] | None]:
        """What the location holds compared with a plan's ``spec_hash``, and the crlgen attributes if any."""
        if self.is_empty():
            return Existing.EMPTY, None
        attrs = self.attrs()
        if not attrs:
            return (Existing.DAMAGED if self.is_damaged_crlgen() else Existing.FOREIGN), None
        return (Existing.SAME if attrs.get("spec_hash") == spec_hash else Existing.OTHER), attrs

    def create(self, plan: Plan, overwrite: bool = False) -> None:
        """Preallocate every array of the plan; replaces another crlgen store only with ``overwrite``.

        Raises :class:`StoreError` for a foreign location, another spec's store without
        ``overwrite``, and a location that refuses the first write (nothing is written then).
        """
        import zarr

        state, attrs = self.existing(plan.spec_hash)
        if state is Existing.FOREIGN:
            raise StoreError(f"{self.location.arg}: {self.location.redacted()}: "
                             f"{self.root_damage() or 'exists and is not a crlgen store'}; refusing to write there")
        if state is Existing.DAMAGED and not overwrite:
            raise StoreError(f"{self.location.arg}: {self.location.redacted()}: {self.root_damage()}; "
                             "replace it with --overwrite (RunOptions.overwrite=True)")
        if state is Existing.OTHER and not overwrite:
            raise StoreError(f"{self.location.arg}: {self.location.redacted()}: holds another dataset "
                             f"({other_dataset(attrs, plan)}); replace it with --overwrite (RunOptions.overwrite=True)")
        try:
            if state is not Existing.EMPTY:
                fs, root = self._fs()
                fs.rm(root, recursive=True)
            root = zarr.open_group(self.location.zarr_store(), mode="w", attributes={GENERATOR: self._group_attrs(plan, "writing")})
        except OSError as e:
            err = storage_error(self.location, e, "write")
            if err is None:
                raise
            raise StoreError(str(err)) from None
        for a in plan.arrays:
            arr = root.create_array(a.name, **self._array_options(a))
            if a.values is not None:
                arr[...] = a.values

    @staticmethod
    def _array_options(a) -> dict[str, Any]:
        """How ``a`` (an ArraySpec) is created: its metadata, a function of the plan."""
        return dict(shape=a.shape, dtype=str if a.dtype == "str" else a.dtype, chunks=a.chunks, shards=a.shards,
                    dimension_names=a.dims, compressors=_compressors(a.dtype), attributes=a.attrs, fill_value=a.fill)

    def _group_attrs(self, plan: Plan, status: str) -> dict[str, Any]:
        return {"spec_hash": plan.spec_hash, "format": FORMAT_VERSION, "status": status, "name": plan.spec.name,
                "world": plan.spec.world, "kind": plan.kind, "samples": plan.spec.samples, "shard_size": plan.shard_size,
                "generator": GENERATOR_VERSION, "sampler": plan.sampler}

    def set_status(self, plan: Plan, status: str) -> None:
        """Set ``status`` (writing, complete, invalid) in the group attributes."""
        g = self.group("r+")
        g.attrs.update({GENERATOR: self._group_attrs(plan, status)})

    # ----- shards ----------------------------------------------------------------------
    def _object_key(self, g, name: str, shard: int) -> str:
        """Storage key (relative to the root) of the one object shard ``shard`` of array ``name`` lives in."""
        arr = g[name]
        return f"{name}/{arr.metadata.encode_chunk_key((shard,) + (0,) * (arr.ndim - 1))}"

    def write_shard(self, plan: Plan, shard: int, data: dict[str, np.ndarray]) -> dict[str, str]:
        """Write one task's whole shard of every per-sample array, then its marker; returns the checksums.

        Raises ValueError when an array's shape or dtype differs from the plan.
        """
        start, stop = plan.shards[shard]
        g = self.group("r+")
        fs, root = self._fs()
        # a shard is always written whole: objects an earlier (crashed, corrupted) attempt left go first,
        # so nothing of them is read back or merged
        for a in plan.per_sample_arrays:
            old = self._path(self._object_key(g, a.name, shard))
            if fs.exists(old):
                fs.rm(old)
        sums, keys = {}, {}
        for a in plan.per_sample_arrays:
            arr = data[a.name]
            expect = (stop - start, *a.shape[1:])
            if arr.shape != expect or arr.dtype != np.dtype(a.dtype):
                raise ValueError(f"shard {shard}: {a.name} has {arr.dtype}{arr.shape}, expected {a.dtype}{expect}")
            g[a.name][start:stop] = arr
            sums[a.name] = checksum(arr)
            keys[a.name] = self._object_key(g, a.name, shard)
        fs.invalidate_cache(root)  # zarr wrote through its own filesystem instance
        sizes = {}
        for name, key in keys.items():
            try:
                sizes[name] = {"key": key, "bytes": int(fs.size(self._path(key)))}
            except FileNotFoundError:  # every value equals the fill value: zarr writes no object
                sizes[name] = {"key": key, "bytes": None}
        marker = {"shard": shard, "start": start, "stop": stop, "spec_hash": plan.spec_hash, "checksums": sums, "objects": sizes}
        self.write_text(f"{MARKERS}/{shard:06d}.json", json.dumps(marker, sort_keys=True, indent=1))
        return sums

    def marker(self, shard: int) -> dict[str, Any] | None:
        """Shard ``shard``'s commit marker, or None when it is missing, unreadable or not a marker."""
        m = self.read_json(f"{MARKERS}/{shard:06d}.json")
        ok = isinstance(m, dict) and isinstance(m.get("checksums"), dict) and isinstance(m.get("objects"), dict)
        return m if ok else None

    def read_shard(self, plan: Plan, shard: int, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """The per-sample arrays (all, or ``names``) of one shard."""
        start, stop = plan.shards[shard]
        g = self.group("r")
        wanted = set(names) if names is not None else {a.name for a in plan.per_sample_arrays}
        return {a.name: np.asarray(g[a.name][start:stop]) for a in plan.per_sample_arrays if a.name in wanted}

    def _marker_problems(self, plan: Plan, shard: int, m: dict[str, Any] | None) -> list[str]:
        if m is None:
            return [f"shard {shard}: no commit marker (or an unreadable one)"]
        if m.get("spec_hash") != plan.spec_hash or (m.get("start"), m.get("stop")) != plan.shards[shard]:
            return [f"shard {shard}: marker belongs to another spec or layout"]
        return []

    def verify_sizes(self, plan: Plan, shard: int, listing: dict[str, int], m: dict[str, Any] | None = None) -> list[str]:
        """Problems with one shard found from its marker and a listing (no data is read)."""
        m = self.marker(shard) if m is None else m
        out = self._marker_problems(plan, shard, m)
        if out:
            return out
        objects = m.get("objects") or {}
        for a in plan.per_sample_arrays:
            obj = objects.get(a.name)
            if obj is None:
                out.append(f"shard {shard}: marker lists no object for {a.name}")
            elif listing.get(obj["key"]) != obj["bytes"]:
                got, want = listing.get(obj["key"]), obj["bytes"]
                out.append(f"shard {shard}: {a.name} object {obj['key']} has {'no object' if got is None else f'{got} bytes'}, "
                           f"its marker says {'none' if want is None else f'{want} bytes'}")
        return out

    def verify_checksums(self, plan: Plan, shard: int, m: dict[str, Any] | None = None) -> list[str]:
        """Problems with one shard found by re-reading and re-hashing its data (marker problems are
        ``verify_sizes``' to report)."""
        m = self.marker(shard) if m is None else m
        if self._marker_problems(plan, shard, m):
            return []
        try:
            data = self.read_shard(plan, shard)
        except Exception as e:  # noqa: BLE001 - any decode failure means a damaged shard
            return [f"shard {shard}: cannot read its data ({type(e).__name__}: {e})"]
        return [f"shard {shard}: {name} does not match its checksum"
                for name, arr in data.items() if m["checksums"].get(name) != checksum(arr)]

    def committed_shards(self, plan: Plan) -> set[int]:
        """Shards whose marker belongs to this plan and whose objects match the sizes it records.

        One listing of the store; no data is read (``verify_checksums`` re-reads a shard).
        """
        listing = self.listing()
        done = set()
        for k in range(len(plan.shards)):
            if f"{MARKERS}/{k:06d}.json" in listing and not self.verify_sizes(plan, k, listing):
                done.add(k)
        return done

    # ----- finishing -------------------------------------------------------------------
    def consolidate(self) -> None:
        """Write consolidated metadata (one read opens the whole store)."""
        import zarr

        with _sidecars_unrecognised(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata")
            zarr.consolidate_metadata(self.location.zarr_store())

    def write_run_log(self, run_id: str, record: dict[str, Any]) -> None:
        """A run's timings and hosts under ``_crlgen/runs/`` (the one part of a store that is not a function of the spec)."""
        self.write_text(f"{RUNS}/{run_id}.json", json.dumps(record, indent=1, sort_keys=True, default=str))
