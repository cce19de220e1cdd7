"""The one seam every world plugs into.

A world turns a batch of sampled latents into the outputs it declares (pixels, depth,
segmentation, camera geometry, simulated states, per-frame inputs, anything of its own).
It is built once per worker process and reused for many shards, so engines are set up in
``__init__`` and torn down in ``close``. Worlds never draw randomness of their own:
anything random comes from the per-sample seeds in :class:`WorldBatch`.

What a world states, all without its engine:

- :class:`WorldInfo`: the latents it reads with their valid ranges, the states it
  simulates, the per-frame inputs it records, edit targets, engines, camera kinds and
  mount points, limits (object counts), Python modules it needs, and the Ray resources
  one render task takes;
- :meth:`World.outputs`: every array it writes for a spec, as :class:`Output` (name,
  dims, per-sample shape, dtype, units, how a re-render is compared, attributes,
  coordinate values) - the planner, the shard task, validation, sidecars and
  ``inspect`` read only these;
- :meth:`World.check`: spec problems only this world knows of;
- ``checks``: plausibility rules (:class:`WorldCheck`) validation runs by name;
- optionally :meth:`World.simulate` (re-simulate a batch to states) for dynamic worlds;
- optionally :meth:`World.feasible` (and :meth:`World.explain_infeasible`): which sampled latents the
  world can start from (no initial interpenetration, a reachable goal). The shard task redraws an
  infeasible sample's exogenous noise deterministically, from a seed derived from (spec seed, sample
  index, attempt), keeping its index, domain, intervention, counterfactual pairing and split (a
  ``test_range`` split rule is applied to the redrawn latents), until the
  world accepts it or ``max_resamples`` redraws are spent (then the run fails naming the sample); the
  store records per sample how many redraws it took (``resampled``), and validation re-derives the
  stored latents from that count bit for bit. A counterfactual pair is redrawn together: both of its
  samples share their exogenous noise, so both must be feasible at the same attempt.
"""

from __future__ import annotations

import abc
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Literal, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class Compare:
    """How a re-rendered output is compared with the stored one.

    ``exact``: bitwise equal. Otherwise values may differ by ``atol + rtol * |stored|``
    in at most ``max_fraction`` of the elements (engines that are not bit-exact).
    """

    exact: bool = True
    atol: float = 0.0
    rtol: float = 0.0
    max_fraction: float = 0.0

    def problems(self, name: str, stored: np.ndarray, fresh: np.ndarray) -> list[str]:
        """Problem lines (empty when the arrays agree under this rule)."""
        if stored.shape != fresh.shape:
            return [f"{name}: shape {fresh.shape} differs from the stored {stored.shape}"]
        if self.exact:
            if np.array_equal(stored, fresh, equal_nan=stored.dtype.kind == "f"):
                return []
            share = float(np.mean(stored != fresh))
            return [f"{name} differs from the stored one ({share:.1%} of values; compared bit for bit)"]
        a, b = stored.astype(np.float64), fresh.astype(np.float64)
        bad = np.abs(a - b) > self.atol + self.rtol * np.abs(a)
        share = float(np.mean(bad))
        if share > self.max_fraction:
            return [f"{name} differs from the stored one in {share:.2%} of values (allowed {self.max_fraction:.2%} "
                    f"beyond atol {self.atol:g}, rtol {self.rtol:g})"]
        return []

    def describe(self) -> str:
        return "bit-exact" if self.exact else f"atol {self.atol:g}, rtol {self.rtol:g}, at most {self.max_fraction:.2%} of values"


EXACT = Compare()

OutputKind = Literal["rgb", "depth", "segmentation", "camera", "states", "inputs", "other"]


@dataclass(frozen=True)
class Output:
    """One array a world writes.

    ``dims`` and ``shape`` are per sample (the store adds a leading ``sample`` axis) unless
    ``per_sample`` is False: then the array is fixed by the spec, ``value`` holds it and it
    is written once when the store is created (camera intrinsics, say). ``chunk`` is the
    per-sample inner chunk (default: the whole sample). ``fill`` is the value a missing
    chunk reads as: chosen outside the output's domain where one exists. ``coords`` gives
    the values of named dims (view names, state names, times in seconds); the store writes
    each as a coordinate array.
    """

    name: str
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    dtype: str
    kind: OutputKind = "other"
    units: str | None = None
    description: str = ""
    compare: Compare = EXACT
    chunk: tuple[int, ...] | None = None
    fill: Any = None
    attrs: Mapping[str, Any] = field(default_factory=dict)
    coords: Mapping[str, tuple] = field(default_factory=dict)
    per_sample: bool = True
    value: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.dims) != len(self.shape):
            raise ValueError(f"output {self.name}: {len(self.dims)} dims for a {len(self.shape)}-d shape")
        if not self.per_sample and self.value is None:
            raise ValueError(f"output {self.name}: a constant output needs its value")


class WorldUnavailable(RuntimeError):
    """A world cannot run here at all (its simulator server does not answer, say); the message is one line
    naming where it looked and what to start. Raised by :meth:`World.preflight` before a run writes anything."""


@dataclass(frozen=True)
class Resources:
    """What one render task of a world takes from Ray: CPUs, GPUs and custom resources (``{"carla": 1}``)."""

    cpus: float = 1.0
    gpus: float = 0.0
    custom: Mapping[str, float] = field(default_factory=dict)

    def ray_options(self) -> dict[str, Any]:
        """Keyword arguments for ``ray.remote`` / ``.options``."""
        out: dict[str, Any] = {"num_cpus": self.cpus, "num_gpus": self.gpus}
        if self.custom:
            out["resources"] = dict(self.custom)
        return out


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
    ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Valid range of each latent the world reads (by template name); a spec's declared range must lie inside."""
    discrete: tuple[str, ...] = ()
    """Latents the world reads as an index, class or flag (a route, a shape class, present or not; template names):
    a spec must declare each ``type: integer``, ``boolean`` or ``categorical``, never a real that the world would
    have to round."""
    states: tuple[str, ...] = ()
    """Per-frame state names the world simulates (video worlds), ``[i]`` per object."""
    state_units: Mapping[str, str] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    """Per-frame inputs decided inside the simulation (controller actions, light phases), recorded by name."""
    edit_targets: tuple[str, ...] = ()
    """Names a temporal edit may target."""
    edit_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    """Valid range of each *state* in ``edit_targets`` (template names; a latent's is in ``ranges``): a ``set`` must
    leave the state inside it, an ``add`` may change the state by no more than it (a velocity kick), a ``scale``
    must keep a state inside it there. ``crlgen check`` refuses an edit that can leave it."""
    annotations: tuple[str, ...] = ("depth", "segmentation")
    engines: tuple[str, ...] = ()
    """Render engines the world accepts in ``render.engine``; the first is the default."""
    preview_engines: tuple[str, ...] = ()
    """Engines of ``engines`` that render at lower fidelity (fast previews); datasets made with one say so."""
    camera_kinds: tuple[str, ...] = ("orbit", "fixed")
    mounts: tuple[str, ...] = ()
    """Bodies or links a ``mounted`` camera may ride on (``obj[i]`` per object)."""
    max_objects: Mapping[str, int] = field(default_factory=dict)
    """Most objects per template prefix (``{"obj": 253}``)."""
    requires: tuple[str, ...] = ()
    """Python modules the world always needs (``bpy``, ``pybullet``); each maps to a ``crlgen`` extra."""
    engine_requires: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Extra modules per render engine, e.g. ``(("cycles", ("bpy", "OpenEXR")),)``."""
    resources: Resources = field(default_factory=Resources)
    exact: bool = True
    """Whether re-rendering reproduces outputs bit for bit (else outputs state their tolerance)."""

    def modules_for(self, engine: str | None) -> tuple[str, ...]:
        """Every Python module a spec with ``render.engine = engine`` needs."""
        extra = dict(self.engine_requires).get(engine or (self.engines[0] if self.engines else ""), ())
        return tuple(dict.fromkeys(self.requires + extra))


@dataclass(frozen=True)
class WorldBatch:
    """Latents of consecutive samples handed to a world.

    ``latents`` maps each latent name to a float64 array of shape (n,).
    ``seeds`` holds one uint64 per sample for any world-internal randomness.
    ``edits`` lists, per temporal edit, its target and per-sample frame
    (-1 when not applied), end frame and value.
    """

    index: np.ndarray
    latents: Mapping[str, np.ndarray]
    seeds: np.ndarray
    edits: tuple["BatchEdit", ...] = ()

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def take(self, rows) -> "WorldBatch":
        """The samples at ``rows`` (an index array or slice) as a batch of their own."""
        return WorldBatch(self.index[rows], {k: v[rows] for k, v in self.latents.items()}, self.seeds[rows],
                          tuple(BatchEdit(e.target, e.op, e.frame[rows], e.end_frame[rows], e.value[rows]) for e in self.edits))


@dataclass(frozen=True)
class BatchEdit:
    """One temporal edit column: ``target op value`` from ``frame`` (-1: not applied) to ``end_frame`` (-1: the end)."""

    target: str
    op: Literal["set", "add", "scale"]
    frame: np.ndarray  # (n,) int64, -1 where not applied
    end_frame: np.ndarray  # (n,) int64, -1 for "until the end"
    value: np.ndarray  # (n,) float64


@dataclass
class Simulation:
    """A dynamic world's simulated series for a batch.

    ``states`` (n, T, S) float64 with ``state_names`` (every state the world tracks, a
    superset of what a spec stores); ``inputs`` (n, T, I) float64 in the order of the world's
    ``WorldInfo.inputs``;
    ``extras``: world-specific series its checks read (energy, penetration...).
    """

    states: np.ndarray
    state_names: tuple[str, ...]
    inputs: np.ndarray | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class WorldCheck:
    """A plausibility rule a world owns: ``run(world, batch, simulation) -> problem lines``; reported by ``name``.

    Validation runs it on every re-simulated sample of a world that simulates, and on every stored
    sample's latents (``simulation`` None) of a world that does not (a still image's derived latents
    against what the world draws)."""

    name: str
    description: str
    run: Callable[["World", WorldBatch, "Simulation | None"], list[str]]


@dataclass
class Rendered:
    """What ``render`` returns: every declared per-sample output by name (leading axis n).

    For camera-geometry checks (not stored): ``landmarks``, the centres of known objects per
    sample and frame, (n, T, K, 3) float64 in metres (T = 1 for still images);
    ``landmark_ids`` (K,), the segmentation id of each object; ``landmark_radius`` (n, K, 2),
    per object the radius (m) of a ball around its centre that lies inside it and of one that
    holds it. ``simulation``: the simulated series behind a video, for worlds that simulate.
    """

    outputs: dict[str, np.ndarray]
    landmarks: np.ndarray | None = None
    landmark_ids: np.ndarray | None = None
    landmark_radius: np.ndarray | None = None
    simulation: Simulation | None = None


def _template_of(name: str) -> str:
    """``obj[3].mass`` -> ``obj[i].mass``; a plain name stays."""
    return re.sub(r"\[\d+\]", "[i]", name, count=1)


def check_latent_values(info: WorldInfo, latents: Mapping[str, np.ndarray]) -> None:
    """Raise ValueError if a latent the world reads is non-finite or outside its valid range.

    Worlds call this instead of clamping: a value the pixels cannot show is an error, never a
    silently different picture. (``crlgen check`` refuses specs that could produce one.)
    """
    read = set(info.latents) | set(info.optional_latents)
    for key, arr in latents.items():
        template = _template_of(key)
        if template not in read:
            continue
        a = np.asarray(arr, dtype=np.float64)
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"latent {key!r} has non-finite values (batch rows {np.flatnonzero(bad)[:5].tolist()})")
        if template in info.ranges:
            lo, hi = info.ranges[template]
            bad = (a < lo) | (a > hi)
            if bad.any():
                idx = np.flatnonzero(bad)
                raise ValueError(f"latent {key!r} has values outside {info.name}'s valid range [{lo:g}, {hi:g}]: "
                                 f"{a[idx[:3]].tolist()} (batch rows {idx[:5].tolist()})")


def read_latents(info: WorldInfo, latents: Mapping[str, np.ndarray], n: int, need: Sequence[str],
                 defaults: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
    """A batch's latents as float64 ``(n,)`` arrays, checked, with a world's defaults filled in.

    ``need`` lists the concrete latent names (``vehicle[3].route``) the world requires; ``defaults``
    maps concrete names to the value used when the spec does not declare them.
    Raises KeyError naming up to six missing latents, ValueError for a wrong shape, a non-finite value
    or one outside ``info.ranges`` (:func:`check_latent_values`).
    """
    lat = {k: np.asarray(v, dtype=np.float64) for k, v in latents.items()}
    missing = [k for k in need if k not in lat]
    if missing:
        raise KeyError(f"{info.name} needs latents {missing[:6]}")
    for key, arr in lat.items():
        if arr.shape != (n,):
            raise ValueError(f"latent {key!r} has shape {arr.shape}, expected ({n},)")
    check_latent_values(info, lat)
    for name, default in (defaults or {}).items():
        lat.setdefault(name, np.full(n, default, dtype=np.float64))
    return lat


class World(abc.ABC):
    """Base class of every world; subclasses set ``info`` and implement ``outputs`` and ``render``."""

    info: ClassVar[WorldInfo]
    checks: ClassVar[tuple[WorldCheck, ...]] = ()

    def __init__(self, spec, threads: int = 0) -> None:
        """Build the engine's scene once; ``spec`` is a ``crlgen.schemas.DatasetSpec``.

        ``threads`` caps the engine's CPU threads (0 = engine default); the
        pipeline passes the CPUs Ray granted the worker.
        """
        self.spec = spec
        self.threads = threads

    @classmethod
    @abc.abstractmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        """Every array this world writes for ``spec``, declared without building the engine."""

    @classmethod
    def check_objects(cls, spec) -> list[str]:
        """Problems with ``spec``'s object counts (``objects.<kind>``) and the parameters that fix them (a map),
        one line each. ``crlgen check`` asks this first and stops at its problems, before it looks for the
        per-object latents a wrong count would report by the dozen. Default: none (``info.max_objects``
        is checked for every world)."""
        return []

    @classmethod
    def check(cls, spec) -> list[str]:
        """Spec problems only this world knows of, one ``"path: message"`` line each."""
        return []

    @classmethod
    def optional_latents_for(cls, spec) -> tuple[str, ...]:
        """The optional latents (templates) this world reads for ``spec``: a spec may declare them, and the
        world uses its default where it does not. Default: ``info.optional_latents``, whatever the spec; a world
        whose layout parameters rule one out (an arm without the joint a latent sets) overrides this, and its
        ``check`` refuses a spec that declares such a latent."""
        return cls.info.optional_latents

    @classmethod
    def edit_ranges(cls, spec) -> tuple[Mapping[str, tuple[float, float]], str]:
        """The valid range of each edited *state* for ``spec`` (template name -> (low, high), in the state's unit),
        and a short reason a refusal can name (``""`` for none). ``crlgen check`` holds each temporal edit and
        counterfactual edit of a state to it. Default: ``info.edit_ranges``, whatever the spec; a world whose
        bound follows from the spec (a velocity kick bounded per simulation step) overrides this."""
        return cls.info.edit_ranges, ""

    @classmethod
    def preflight(cls, spec) -> None:
        """Raise :class:`WorldUnavailable` (one line) when this world cannot run ``spec`` here at all, e.g. a simulator
        server that does not answer. A run asks it before anything is written, where a render task would run (a Ray
        task with the world's resources, or in this process with ``--inline``). Default: nothing to check."""

    @classmethod
    def resources(cls, spec) -> Resources:
        """Ray resources one render task takes for ``spec`` (default: ``info.resources``)."""
        return cls.info.resources

    @abc.abstractmethod
    def render(self, batch: WorldBatch) -> Rendered:
        """Every declared per-sample output for every sample of ``batch``; deterministic in its inputs."""

    def simulate(self, batch: WorldBatch) -> Simulation:
        """Re-simulate a batch to states without rendering (dynamic worlds override this)."""
        raise NotImplementedError(f"{self.info.name} does not simulate")

    @classmethod
    def can_simulate(cls) -> bool:
        return cls.simulate is not World.simulate

    def feasible(self, batch: WorldBatch) -> np.ndarray:
        """Whether the world can start from each sample's latents: (n,) bool, True where it can.

        A world whose latents can describe an impossible start (two objects interpenetrating, an
        arm inside the table) overrides this; it must be deterministic in ``batch`` (latents and
        seeds), must not mutate it, and should be cheap next to ``render`` (it is asked again for
        every redrawn sample). The default accepts every sample, and a world that does not override
        it stores no ``resampled`` array. See the module docstring for what the pipeline does with
        an infeasible sample.
        """
        return np.ones(len(batch), dtype=bool)

    def explain_infeasible(self, batch: WorldBatch) -> list[str]:
        """Optional: one line per sample of ``batch`` saying why the world cannot start from it
        (``"obj[0] and obj[1] interpenetrate by 0.012 m"``), ``""`` where it can. The pipeline quotes
        the line when a sample stays infeasible after ``max_resamples`` redraws; the default says nothing."""
        return []

    @classmethod
    def checks_feasibility(cls) -> bool:
        """Whether the world overrides :meth:`feasible` (and so its stores record ``resampled``)."""
        return cls.feasible is not World.feasible

    def close(self) -> None:
        """Release engine resources (connections, scenes); calling it again does nothing."""

    def __enter__(self) -> "World":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
