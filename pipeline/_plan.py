"""From a spec to a plan: shard boundaries, every array's layout, fill value and coordinate values,
before anything runs.

The layout depends only on the spec (never on worker count), so runs with 1 or 20
workers write byte-identical stores. The plan is the one description of a store: the
sampler's arrays (``SAMPLE_FIELDS``) plus the outputs the spec's world declares plus the
coordinates both name. The store creates exactly these arrays, shard tasks fill the
per-sample ones, validation and the sidecars read them back; nothing downstream knows
which world made them.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..scenes.base import Compare, Output
from ..scenes.registry import world_class
from ..schemas import DatasetSpec
from ..schemas.splits import SPLIT_NAMES
from ._scm import BLOCK, SAMPLER_VERSION, edit_columns, sample_fields, world_checks_feasibility

#: Version of the store layout (arrays, markers, attributes); part of every spec hash.
#: 2: markers record each shard's object sizes; arrays come from the world's declared
#: outputs (camera geometry, declared states, units, time, fill values outside each domain).
FORMAT_VERSION = 2
TARGET_SHARD_BYTES = 128 * 1024 * 1024
TARGET_SHARDS = 64
MAX_SHARD_SAMPLES = 4096
#: Per-sample outputs at least this large are sharded (inner chunks of one sample or frame).
SHARD_OUTPUT_BYTES = 16 * 1024
#: A sharded still output's inner chunk holds as many whole samples as fit in this many bytes
#: (a divisor of the shard size): reading a run of neighbouring samples then decodes a few
#: chunks instead of one per sample, 8x faster per sample (docs/performance.md, loaders).
INNER_CHUNK_BYTES = 1024 * 1024

#: Fill values of the sampler's arrays: outside each array's domain (a lost chunk never reads as data).
_SAMPLER_FILL = {"latents": float("nan"), "noise": float("nan"), "domain": -1, "intervention": -2,
                 "intervention_mask": False, "intervention_value": float("nan"), "pair": -2, "pair_role": -1, "split": -1,
                 "edit_frame": -2, "edit_value": float("nan"), "resampled": -1}


@dataclass(frozen=True)
class ArraySpec:
    """One Zarr array: shape, dtype (``"str"`` for text), chunk and shard shapes, named dims, fill value.

    ``source`` says who writes it: ``sampler`` and ``world`` arrays have a leading
    ``sample`` axis filled by shard tasks; ``coordinate`` and ``constant`` arrays are
    written once from ``values`` when the store is created. ``compare`` is how validation
    compares a re-rendered world output with the stored one.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    dims: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    source: str = "sampler"
    values: Any = None
    fill: Any = None
    kind: str = "other"
    compare: Compare | None = None

    @property
    def per_sample(self) -> bool:
        return self.source in ("sampler", "world")

    @property
    def nbytes(self) -> int:
        """Uncompressed size in bytes (text counted at one byte per value)."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype if self.dtype != "str" else "U1").itemsize


@dataclass(frozen=True)
class Plan:
    """What a run writes: the spec, its hash, the shard boundaries ``[start, stop)`` and every array."""

    spec: DatasetSpec
    spec_hash: str
    shard_size: int
    shards: tuple[tuple[int, int], ...]
    arrays: tuple[ArraySpec, ...]
    kind: str  # the world's kind ("image", "video") or "latents": descriptive only
    sampler: int = SAMPLER_VERSION  # the sampler version the samples are (to be) drawn with

    @property
    def bytes_total(self) -> int:
        """Uncompressed bytes of every array."""
        return sum(a.nbytes for a in self.arrays)

    @property
    def sample_arrays(self) -> tuple[ArraySpec, ...]:
        """The per-sample arrays the sampler produces (latents, noise, masks, pairs, edits)."""
        return tuple(a for a in self.arrays if a.source == "sampler")

    @property
    def world_arrays(self) -> tuple[ArraySpec, ...]:
        """The per-sample outputs the world writes."""
        return tuple(a for a in self.arrays if a.source == "world")

    @property
    def per_sample_arrays(self) -> tuple[ArraySpec, ...]:
        """Every array a shard task writes."""
        return tuple(a for a in self.arrays if a.per_sample)

    def array(self, name: str) -> ArraySpec:
        return next(a for a in self.arrays if a.name == name)

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.arrays)

    def images_per_sample(self) -> int:
        """Rendered colour images per sample (views x frames over every RGB output)."""
        return sum(int(np.prod(a.shape[1:-3])) for a in self.world_arrays if a.kind == "rgb")

    def shard_of(self, sample: int) -> int:
        return sample // self.shard_size

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``crlgen plan --json`` prints)."""
        return {
            "name": self.spec.name, "world": self.spec.world, "kind": self.kind, "samples": self.spec.samples,
            "shard_size": self.shard_size, "shards": len(self.shards), "spec_hash": self.spec_hash,
            "bytes_uncompressed": self.bytes_total,
            "arrays": [{"name": a.name, "shape": list(a.shape), "dtype": a.dtype, "dims": list(a.dims),
                        "chunks": list(a.chunks), "shards": list(a.shards) if a.shards else None, "bytes": a.nbytes,
                        "units": a.attrs.get("units")}
                       for a in self.arrays],
        }


def spec_hash(spec: DatasetSpec, sampler: int = SAMPLER_VERSION) -> str:
    """Identity of the data a spec produces (SHA-256 hex): its resolved form (``DatasetSpec.resolved``:
    cameras and lengths written out, so ``views: 4`` and its four cameras are one dataset) without
    where it is written, plus the sampler version (``sampler``: this crlgen's, or the one a store
    records) and the store format. Fields still at their defaults are left out, so a later crlgen
    that adds a field (at a default that changes nothing) still recognises the stores an earlier
    one wrote."""
    data = spec.resolved().model_dump(mode="json", exclude_defaults=True)
    data.pop("output", None)
    payload = {"spec": data, "sampler": int(sampler), "block": BLOCK, "format": FORMAT_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _samples_per_chunk(shard_size: int, sample_bytes: int) -> int:
    """The largest divisor of ``shard_size`` whose samples fit in INNER_CHUNK_BYTES (at least 1)."""
    fit = max(1, INNER_CHUNK_BYTES // max(1, sample_bytes))
    return max(k for k in range(1, min(fit, shard_size) + 1) if shard_size % k == 0)


def default_shard_size(spec: DatasetSpec, bytes_per_sample: int) -> int:
    """About TARGET_SHARDS shards, capped so one shard stays near TARGET_SHARD_BYTES.

    Many small shards keep the run's tail short (the last worker to finish holds at
    most one small shard while the others idle); the cost is ~50 ms of fixed work per shard.
    """
    if spec.shard_size:
        return min(spec.shard_size, spec.samples)
    by_bytes = max(1, TARGET_SHARD_BYTES // max(1, bytes_per_sample))
    s = max(1, math.ceil(spec.samples / TARGET_SHARDS))
    s = -(-s // 8) * 8 if s > 8 else s  # round up to a multiple of 8
    if bytes_per_sample < 1024:  # latents only: large shards, sampling is cheap
        s = max(s, min(spec.samples, 65536))
    return int(min(s, by_bytes, MAX_SHARD_SAMPLES if bytes_per_sample >= 1024 else 1_000_000, spec.samples))


def world_outputs(spec: DatasetSpec) -> tuple[Output, ...]:
    """The outputs the spec's world declares for it (none for a latents-only spec)."""
    return () if spec.world is None else tuple(world_class(spec.world).outputs(spec))


#: Attributes of coordinates whose meaning needs saying.
_COORD_ATTRS = {"time": {"units": "s", "description": "seconds since the first frame"},
                "latent_unit": {"description": "unit of each latent"}, "state_unit": {"description": "unit of each state"}}


def _coordinate(name: str, dim: str, values: tuple) -> ArraySpec:
    text = any(isinstance(v, str) for v in values)
    arr = np.array(values, dtype=object if text else np.float64)
    return ArraySpec(name, (len(values),), "str" if text else "float64", (max(1, len(values)),), None, (dim,),
                     dict(_COORD_ATTRS.get(name, {})), source="coordinate", values=arr, fill="" if text else float("nan"))


def make_plan(spec: DatasetSpec, sampler: int = SAMPLER_VERSION) -> Plan:
    """The plan of a (valid) spec: shards and every array. Pure: reads nothing, writes nothing.

    ``sampler``: the sampler version of the samples (default this crlgen's; a reader passes the
    version a store records, so a store an older sampler drew stays readable).

    Raises KeyError for a world the registry does not know and ValueError for a world whose
    outputs contradict each other (two different values for one coordinate).
    """
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"make_plan: expected a DatasetSpec (load one with load_spec), got {type(spec).__name__}")
    kind = "latents" if spec.world is None else world_class(spec.world).info.kind
    graph = spec.graph
    names = graph.names
    L, n = len(names), spec.samples
    edits = edit_columns(spec)
    E = len(edits)
    outputs = world_outputs(spec)
    per_sample = sum(int(np.prod(o.shape)) * np.dtype(o.dtype).itemsize for o in outputs if o.per_sample) + L * 8 * 3 + 64
    S = default_shard_size(spec, per_sample)
    shards = tuple((a, min(a + S, n)) for a in range(0, n, S))

    coords: dict[str, tuple[str, tuple]] = {"latent": ("latent", names),
                                            "latent_unit": ("latent", tuple(graph.node(x).variable.unit or "" for x in names))}
    if E:
        coords["edit"] = ("edit", tuple(f"{e.name}:{e.target}" for e in edits))
    trailing = {"latent": L, "edit": E}
    arrays = []
    for f in sample_fields(E > 0, world_checks_feasibility(spec)):
        tail = (trailing[f.dim],) if f.dim else ()
        attrs: dict[str, Any] = {"description": f.description}
        if f.name == "domain":
            attrs["labels"] = list(spec.domains) or ["default"]
        if f.name == "pair_role":
            attrs["labels"] = ["none", "factual", "counterfactual"]
        if f.name == "split":
            attrs["labels"] = list(SPLIT_NAMES)
            attrs["rules"] = spec.splits.model_dump(mode="json")
        if f.name == "resampled":
            attrs.update(units="redraws", max_resamples=spec.max_resamples,
                         seeding="a redrawn sample's exogenous noise, distributional intervention values and world seed "
                                 "come from SeedSequence(seed, spawn_key=(sample, 6, count)); a counterfactual partner "
                                 "uses its factual sample's index (pairs are redrawn together)")
        arrays.append(ArraySpec(f.name, (n, *tail), f.dtype, (S, *tail), None, ("sample", *((f.dim,) if f.dim else ())), attrs,
                                fill=_SAMPLER_FILL[f.name]))
    for o in outputs:
        for cname, (dim, values) in o.coords.items():
            if cname in coords and coords[cname] != (dim, tuple(values)):
                raise ValueError(f"world {spec.world}: outputs disagree on the coordinate {cname!r}")
            coords[cname] = (dim, tuple(values))
        attrs = {"description": o.description, **({"units": o.units} if o.units else {}), **dict(o.attrs)}
        if not o.per_sample:
            value = np.asarray(o.value, dtype=o.dtype)
            if value.shape != o.shape:
                raise ValueError(f"world {spec.world}: constant output {o.name} has shape {value.shape}, declared {o.shape}")
            arrays.append(ArraySpec(o.name, o.shape, o.dtype, o.shape, None, o.dims, attrs, source="constant", values=value,
                                    fill=o.fill, kind=o.kind))
            continue
        attrs["compare"] = o.compare.describe()
        nbytes = int(np.prod(o.shape)) * np.dtype(o.dtype).itemsize
        if nbytes >= SHARD_OUTPUT_BYTES:  # inner chunk: whole samples (or one frame of one); shard: the task's samples
            inner = tuple(o.chunk or o.shape)
            chunks, shard = (_samples_per_chunk(S, nbytes) if inner == tuple(o.shape) else 1, *inner), (S, *o.shape)
        else:
            chunks, shard = (S, *o.shape), None
        arrays.append(ArraySpec(o.name, (n, *o.shape), o.dtype, chunks, shard, ("sample", *o.dims), attrs, source="world",
                                fill=o.fill, kind=o.kind, compare=o.compare))
    aux = {c: dim for c, (dim, _) in coords.items() if c != dim}
    arrays = [_with_coordinates(a, aux) for a in arrays]
    arrays += [_coordinate(c, dim, values) for c, (dim, values) in coords.items()]
    return Plan(spec, spec_hash(spec, sampler), S, shards, tuple(arrays), kind, int(sampler))


def _with_coordinates(a: ArraySpec, aux: dict[str, str]) -> ArraySpec:
    """Name the array's non-index coordinates (units, projections) in its ``coordinates`` attribute (CF, read by xarray)."""
    mine = [c for c, dim in aux.items() if dim in a.dims]
    if not mine:
        return a
    return ArraySpec(a.name, a.shape, a.dtype, a.chunks, a.shards, a.dims, {**a.attrs, "coordinates": " ".join(mine)},
                     a.source, a.values, a.fill, a.kind, a.compare)
