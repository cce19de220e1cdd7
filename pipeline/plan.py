"""From a spec to a plan: shard boundaries, array layout and bytes, before anything runs.

The layout depends only on the spec (never on worker count), so runs with
1 or 20 workers write byte-identical stores.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schemas import DatasetSpec

from .scm import BLOCK, SAMPLER_VERSION

FORMAT_VERSION = 1
TARGET_SHARD_BYTES = 128 * 1024 * 1024
TARGET_SHARDS = 64
MAX_SHARD_SAMPLES = 4096


@dataclass(frozen=True)
class ArraySpec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    chunks: tuple[int, ...]
    shards: tuple[int, ...] | None
    dims: tuple[str, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    per_sample: bool = True  # leading axis is `sample` and is written by shard tasks

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype if self.dtype != "str" else "U1").itemsize


@dataclass(frozen=True)
class Plan:
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
        return sum(a.nbytes for a in self.arrays)

    @property
    def pixel_array(self) -> str | None:
        return {"image": "images", "video": "frames"}.get(self.kind)

    def array(self, name: str) -> ArraySpec:
        return next(a for a in self.arrays if a.name == name)

    def shard_of(self, sample: int) -> int:
        return sample // self.shard_size

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name, "world": self.spec.world, "kind": self.kind, "samples": self.spec.samples,
            "shard_size": self.shard_size, "shards": len(self.shards), "spec_hash": self.spec_hash,
            "bytes_uncompressed": self.bytes_total,
            "arrays": [{"name": a.name, "shape": list(a.shape), "dtype": a.dtype, "dims": list(a.dims),
                        "chunks": list(a.chunks), "shards": list(a.shards) if a.shards else None, "bytes": a.nbytes}
                       for a in self.arrays],
        }


def spec_hash(spec: DatasetSpec) -> str:
    """Identity of the data a spec produces: everything but where it is written."""
    data = spec.to_dict()
    data.pop("output", None)
    payload = {"spec": data, "sampler": SAMPLER_VERSION, "block": BLOCK, "format": FORMAT_VERSION}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _kind(spec: DatasetSpec) -> str:
    if spec.world is None:
        return "latents"
    from scenes.registry import world_info

    return world_info(spec.world).kind


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


def make_plan(spec: DatasetSpec) -> Plan:
    kind = _kind(spec)
    g = spec.graph
    L = len(g.nodes)
    n = spec.samples
    E = len(spec.temporal_edits) + (1 if spec.counterfactuals and spec.counterfactuals.edit else 0)
    cams = spec.render.cameras()
    V, H, W = len(cams), spec.render.height, spec.render.width
    T = spec.video.n_frames if spec.video else 1
    ann = set(spec.render.annotations)

    pix_per_sample = {"image": V * H * W * 3, "video": T * V * H * W * 3}.get(kind, 0)
    extra = (V * H * W * T * (4 * ("depth" in ann) + ("segmentation" in ann))) if kind != "latents" else 0
    per_sample = pix_per_sample + extra + L * 8 * 3 + 64
    S = default_shard_size(spec, per_sample)
    shards = tuple((a, min(a + S, n)) for a in range(0, n, S))

    def small(name, dtype, tail=(), dims=(), attrs=None):
        return ArraySpec(name, (n, *tail), dtype, (S, *tail), None, ("sample", *dims), attrs or {})

    arrays = [
        small("latents", "float64", (L,), ("latent",)),
        small("noise", "float64", (L,), ("latent",)),
        small("domain", "int16", attrs={"labels": list(spec.domains) or ["default"]}),
        small("intervention", "int32"),
        small("intervention_mask", "bool", (L,), ("latent",)),
        small("intervention_value", "float64", (L,), ("latent",)),
        small("pair", "int64"),
        small("pair_role", "int8", attrs={"labels": ["none", "factual", "counterfactual"]}),
        ArraySpec("latent", (L,), "str", (L,), None, ("latent",), per_sample=False),
    ]
    if E:
        arrays += [small("edit_frame", "int32", (E,), ("edit",)), small("edit_value", "float64", (E,), ("edit",)),
                   ArraySpec("edit", (E,), "str", (E,), None, ("edit",), per_sample=False)]
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
        arrays.append(ArraySpec("view", (V,), "str", (V,), None, ("view",), per_sample=False))
    if kind == "video":
        n_states = len(world_states(spec))
        arrays.append(ArraySpec("states", (n, T, n_states), "float64", (S, T, n_states), None, ("sample", "time", "state")))
        arrays.append(ArraySpec("state", (n_states,), "str", (n_states,), None, ("state",), per_sample=False))
    return Plan(spec, spec_hash(spec), S, shards, tuple(arrays), kind, tuple(c.name for c in cams), T)


def world_states(spec: DatasetSpec) -> tuple[str, ...]:
    """State names a video world records for this spec (templates expanded)."""
    from scenes.registry import expand_templates, world_info

    return tuple(expand_templates(spec, world_info(spec.world).states))
