"""From a spec to a plan: shard boundaries, every array's layout and coordinate values, before anything runs.

The layout depends only on the spec (never on worker count), so runs with
1 or 20 workers write byte-identical stores. The plan is the one description
of a store: the store creates exactly the arrays it lists (with the coordinate
values it carries), shard tasks fill them, validation reads them back.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..scenes.registry import world_info
from ..schemas import DatasetSpec
from ._scm import BLOCK, SAMPLER_VERSION, edit_columns, sample_fields

#: Version of the store layout (arrays, markers, attributes); part of every spec hash.
#: 2: markers record each shard's object sizes; coordinates come from the plan.
FORMAT_VERSION = 2
TARGET_SHARD_BYTES = 128 * 1024 * 1024
TARGET_SHARDS = 64
MAX_SHARD_SAMPLES = 4096


@dataclass(frozen=True)
class ArraySpec:
    """One Zarr array: shape, dtype (``"str"`` for text), chunk and shard shapes, named dims.

    ``per_sample`` arrays have a leading ``sample`` axis written by shard tasks;
    the others are coordinates whose ``values`` the plan carries.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    dims: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    per_sample: bool = True
    values: tuple[str, ...] | None = None

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
    kind: str  # "image", "video" or "latents"
    views: tuple[str, ...]
    frames: int

    @property
    def bytes_total(self) -> int:
        """Uncompressed bytes of every array."""
        return sum(a.nbytes for a in self.arrays)

    @property
    def pixel_array(self) -> str | None:
        return {"image": "images", "video": "frames"}.get(self.kind)

    @property
    def sample_arrays(self) -> tuple[ArraySpec, ...]:
        """The per-sample arrays the sampler produces (latents, noise, masks, pairs, edits)."""
        names = {f.name for f in sample_fields(True)}
        return tuple(a for a in self.arrays if a.name in names)

    @property
    def per_sample_arrays(self) -> tuple[ArraySpec, ...]:
        """Every array a shard task writes."""
        return tuple(a for a in self.arrays if a.per_sample)

    def array(self, name: str) -> ArraySpec:
        return next(a for a in self.arrays if a.name == name)

    def has(self, name: str) -> bool:
        return any(a.name == name for a in self.arrays)

    def shard_of(self, sample: int) -> int:
        return sample // self.shard_size

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``crlgen plan --json`` prints)."""
        return {
            "name": self.spec.name, "world": self.spec.world, "kind": self.kind, "samples": self.spec.samples,
            "shard_size": self.shard_size, "shards": len(self.shards), "spec_hash": self.spec_hash,
            "bytes_uncompressed": self.bytes_total,
            "arrays": [{"name": a.name, "shape": list(a.shape), "dtype": a.dtype, "dims": list(a.dims),
                        "chunks": list(a.chunks), "shards": list(a.shards) if a.shards else None, "bytes": a.nbytes}
                       for a in self.arrays],
        }


def spec_hash(spec: DatasetSpec) -> str:
    """Identity of the data a spec produces (SHA-256 hex): everything but where it is written."""
    data = spec.to_dict()
    data.pop("output", None)
    payload = {"spec": data, "sampler": SAMPLER_VERSION, "block": BLOCK, "format": FORMAT_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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


def world_states(spec: DatasetSpec) -> tuple[str, ...]:
    """State names a video world records for this spec (templates expanded, object-major)."""
    return tuple(spec.expand_all(world_info(spec.world).states))


def make_plan(spec: DatasetSpec) -> Plan:
    """The plan of a (valid) spec: shards and every array. Pure: reads nothing, writes nothing.

    Raises KeyError for a world the registry does not know (``check_spec`` reports
    that as a spec error first).
    """
    kind = "latents" if spec.world is None else world_info(spec.world).kind
    names = spec.graph.names
    L = len(names)
    n = spec.samples
    edits = edit_columns(spec)
    E = len(edits)
    cams = spec.render.cameras()
    V, H, W = len(cams), spec.render.height, spec.render.width
    T = spec.video.n_frames if spec.video else 1
    ann = set(spec.render.annotations)

    pix_per_sample = {"image": V * H * W * 3, "video": T * V * H * W * 3}.get(kind, 0)
    extra = (V * H * W * T * (4 * ("depth" in ann) + ("segmentation" in ann))) if kind != "latents" else 0
    per_sample = pix_per_sample + extra + L * 8 * 3 + 64
    S = default_shard_size(spec, per_sample)
    shards = tuple((a, min(a + S, n)) for a in range(0, n, S))

    def coordinate(name: str, values) -> ArraySpec:
        values = tuple(values)
        return ArraySpec(name, (len(values),), "str", (len(values),), None, (name,), per_sample=False, values=values)

    trailing = {"latent": L, "edit": E}
    arrays = []
    for f in sample_fields(E > 0):
        tail = (trailing[f.dim],) if f.dim else ()
        attrs = {"description": f.description}
        if f.name == "domain":
            attrs["labels"] = list(spec.domains) or ["default"]
        if f.name == "pair_role":
            attrs["labels"] = ["none", "factual", "counterfactual"]
        arrays.append(ArraySpec(f.name, (n, *tail), f.dtype, (S, *tail), None, ("sample", *((f.dim,) if f.dim else ())), attrs))
    arrays.append(coordinate("latent", names))
    if E:
        arrays.append(coordinate("edit", (f"{e.name}:{e.target}" for e in edits)))
    if kind == "image":
        lead, ldims = (V, H, W), ("view", "y", "x")
    elif kind == "video":
        lead, ldims = (T, V, H, W), ("time", "view", "y", "x")
    if kind != "latents":
        one = (1,) * (len(lead) - 3) if kind == "video" else ()
        # inner chunk: one sample (one frame of it for videos); shard: the task's samples
        inner = (1, *one, V, H, W) if kind == "video" else (1, V, H, W)
        pix = "images" if kind == "image" else "frames"
        arrays.append(ArraySpec(pix, (n, *lead, 3), "uint8", (*inner, 3), (S, *lead, 3), ("sample", *ldims, "channel")))
        if "depth" in ann:
            arrays.append(ArraySpec("depth", (n, *lead), "float32", inner, (S, *lead), ("sample", *ldims), {"units": "m", "background": 0.0}))
        if "segmentation" in ann:
            arrays.append(ArraySpec("segmentation", (n, *lead), "uint8", inner, (S, *lead), ("sample", *ldims), {"background": 0}))
        arrays.append(coordinate("view", (c.name for c in cams)))
    if kind == "video":
        states = world_states(spec)
        arrays.append(ArraySpec("states", (n, T, len(states)), "float64", (S, T, len(states)), None, ("sample", "time", "state")))
        arrays.append(coordinate("state", states))
    return Plan(spec, spec_hash(spec), S, shards, tuple(arrays), kind, tuple(c.name for c in cams), T)
