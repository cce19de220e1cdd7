"""The one seam every world plugs into.

A world turns a batch of sampled latents into pixels (and, for dynamic scenes,
simulated state series). It is built once per worker process and reused for
many shards, so engines are set up in ``__init__`` and torn down in ``close``.
Worlds never draw randomness of their own: anything random they need comes from
the per-sample seeds in :class:`WorldBatch`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import ClassVar, Literal, Mapping

import numpy as np


@dataclass(frozen=True)
class WorldInfo:
    """What a world needs from a spec and what it produces (pure data, no engine)."""

    name: str
    kind: Literal["image", "video"]
    engine: str
    description: str
    latents: tuple[str, ...]
    """Latent names the world reads; a spec must define each (templated names use ``[i]``)."""
    optional_latents: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    """Per-frame state names the world simulates (video worlds), ``[i]`` per object."""
    edit_targets: tuple[str, ...] = ()
    """Names a temporal edit may target."""
    annotations: tuple[str, ...] = ("depth", "segmentation")
    engines: tuple[str, ...] = ()
    """Render engines the world accepts in ``render.engine``; the first is the default."""
    requires: tuple[str, ...] = ()
    """Python modules the world always needs (``bpy``, ``pybullet``); each maps to a ``crlgen`` extra."""
    engine_requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Extra modules per render engine, e.g. ``(("cycles", ("bpy", "OpenEXR")),)``."""

    def modules_for(self, engine: str | None) -> tuple[str, ...]:
        """Every Python module a spec with ``render.engine = engine`` needs."""
        extra = dict(self.engine_requires).get(engine or (self.engines[0] if self.engines else ""), ())
        return tuple(dict.fromkeys(self.requires + extra))


@dataclass(frozen=True)
class WorldBatch:
    """Latents of consecutive samples handed to a world.

    ``latents`` maps each latent name to a float64 array of shape (n,).
    ``seeds`` holds one uint64 per sample for any world-internal randomness.
    ``edits`` lists, per temporal edit, its description and per-sample frame
    (-1 when not applied) and value.
    """

    index: np.ndarray
    latents: Mapping[str, np.ndarray]
    seeds: np.ndarray
    edits: tuple["BatchEdit", ...] = ()

    def __len__(self) -> int:
        return int(self.index.shape[0])


@dataclass(frozen=True)
class BatchEdit:
    target: str
    op: Literal["set", "add", "scale"]
    frame: np.ndarray  # (n,) int64, -1 where not applied
    end_frame: np.ndarray  # (n,) int64, -1 for "until the end"
    value: np.ndarray  # (n,) float64


@dataclass
class RenderOutput:
    """Arrays for one batch; leading dims are (sample, [time,] view)."""

    pixels: np.ndarray  # uint8 (n, [t,] v, y, x, 3)
    depth: np.ndarray | None = None  # float32 metres, (n, [t,] v, y, x)
    segmentation: np.ndarray | None = None  # uint8 instance ids, 0 = background
    states: np.ndarray | None = None  # float64 (n, t, state)
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class World(abc.ABC):
    """Base class of every world; subclasses set ``info`` and implement ``render``."""

    info: ClassVar[WorldInfo]

    def __init__(self, spec, threads: int = 0) -> None:
        """Build the engine's scene once; ``spec`` is a ``schemas.DatasetSpec``.

        ``threads`` caps the engine's CPU threads (0 = engine default); the
        pipeline passes the CPUs Ray granted the worker.
        """
        self.spec = spec
        self.threads = threads

    @abc.abstractmethod
    def render(self, batch: WorldBatch) -> RenderOutput:
        """Render every sample of ``batch``; deterministic in its inputs."""

    def close(self) -> None:
        """Release engine resources (connections, scenes)."""

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
