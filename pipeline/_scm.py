"""Vectorised ancestral sampling of a spec's structural causal model.

Determinism contract: sample ``i`` gets bitwise identical values whatever the
shard size, shard order, worker count or retry. Every random stream is derived
from ``(spec seed, block, purpose[, domain])`` with :class:`numpy.random.SeedSequence`,
where a block is a fixed run of ``BLOCK`` consecutive samples. Assignment counts
(domains, interventions, pairs, edits) use global cumulative rounding, so totals
are exact over the dataset while each block is computed on its own (with counterfactual pairs an
intervention's or edit's ``fraction`` is drawn among a block's factual and unpaired samples, and a
partner copies its factual's, so it is the share of all samples). A latent ``kind[k].present`` gates
its object (:data:`~crlgen.schemas.graph.PRESENCE`): read in the sample's observational world, it
restricts a single-node draw to the options whose object is present (none: the sample stays
observational), keeps a set's or counterfactual's targets on absent objects unapplied, and drops a
temporal edit on an absent object. A sample its world could not
start from is redrawn from ``(spec seed, sample, 6, attempt)`` instead (``sample``'s ``attempts``;
the stored ``resampled`` count), so it too is a function of the spec and its index alone.
Mechanisms are elementwise, so they are evaluated on a whole shard at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..scenes.registry import world_class
from ..schemas import DatasetSpec, SpecError
from ..schemas.interventions import Do, Scale, Shift, Soft
from ..schemas.noise import Uniform
from ..schemas.variables import NOISE_NAME
from ..schemas.compiler import compile_expression
from ._noise import draw

#: Samples per random-stream block; part of the sampler's contract (changing it changes datasets).
BLOCK = 1024
#: Rows per mechanism-evaluation chunk (a speed knob only: evaluation is elementwise).
EVAL_CHUNK = 32768
SAMPLER_VERSION = 3  # 3: edit_value NaN where an edit is not applied (was 0.0); a specific single_node target wins over
#                      its template; an integer or categorical target of do(space), or root drawn in a domain's space,
#                      takes each whole number of the space equally often (the ends had half weight); a do() on one
#                      stores the whole number it set in intervention_value
#                      2: intervention and edit fractions count counterfactual partners (they were inflated by pairs);
#                      presence flags gate do-targets and edits (a `kind[k].present` latent: no intervention on an absent object)

# stream purposes (spawn_key = (block, purpose, ...))
_ASSIGN, _NOISE, _IVALUE, _WORLD, _EDIT, _SPLIT = 0, 1, 2, 3, 4, 5
# a redrawn sample's stream: spawn_key = (sample index, _RESAMPLE, attempt); no block stream uses purpose 6
_RESAMPLE = 6

ROLE_NONE, ROLE_FACTUAL, ROLE_COUNTERFACTUAL = 0, 1, 2


@dataclass(frozen=True)
class SampleField:
    """One per-sample array the sampler produces: its name, dtype, trailing dim and meaning."""

    name: str
    dtype: str
    dim: str | None  # trailing dimension ("latent", "edit") or None for (sample,)
    description: str


#: Every per-sample array the sampler writes, in store order: the one list the planner,
#: the shard task and validation read. ``edit_*`` exist only for specs with temporal edits.
SAMPLE_FIELDS: tuple[SampleField, ...] = (
    SampleField("latents", "float64", "latent", "value of each latent"),
    SampleField("noise", "float64", "latent", "exogenous noise eps of each latent (NaN where it has none)"),
    SampleField("domain", "int16", None, "domain (environment) index into the `labels` attribute"),
    SampleField("intervention", "int32", None, "regime option index, -1 = observational"),
    SampleField("intervention_mask", "bool", "latent", "whether each latent was intervened on"),
    SampleField("intervention_value", "float64", "latent", "do value or shift/scale amount (NaN otherwise)"),
    SampleField("pair", "int64", None, "counterfactual partner's sample index, -1 = none"),
    SampleField("pair_role", "int8", None, "0 none, 1 factual, 2 counterfactual partner"),
    SampleField("split", "int8", None, "0 train, 1 val, 2 test (decided at generation, see labels)"),
    SampleField("edit_frame", "int32", "edit", "frame each temporal edit starts at, -1 = not applied"),
    SampleField("edit_value", "float64", "edit", "value of each temporal edit"),
    SampleField("resampled", "int16", None, "how many times the sample's exogenous noise was redrawn because the world "
                "could not start from its latents (0 = the first draw; World.feasible)"),
)


def sample_fields(has_edits: bool, resamples: bool = False) -> tuple[SampleField, ...]:
    """The fields a spec's store holds: the edit arrays only when it has temporal edits, ``resampled``
    only when its world checks feasibility."""
    return tuple(f for f in SAMPLE_FIELDS
                 if (has_edits or f.dim != "edit") and (resamples or f.name != "resampled"))


def world_checks_feasibility(spec: DatasetSpec) -> bool:
    """Whether the spec's world overrides ``World.feasible`` (latents-only specs: False). Raises
    KeyError for a world the registry does not know."""
    return spec.world is not None and world_class(spec.world).checks_feasibility()


@dataclass
class SampleBatch:
    """Everything sampled for samples ``start..stop-1`` (rows in sample order).

    Array shapes: n = stop - start, L = latents, E = temporal edit columns.
    """

    start: int
    stop: int
    names: tuple[str, ...]
    latents: np.ndarray  # (n, L) float64
    noise: np.ndarray  # (n, L) float64, NaN where a variable has no noise term
    domain: np.ndarray  # (n,) int16
    intervention: np.ndarray  # (n,) int32: regime option index, -1 = none
    intervention_mask: np.ndarray  # (n, L) bool
    intervention_value: np.ndarray  # (n, L) float64: do value / shift or scale amount; NaN otherwise (and soft)
    pair: np.ndarray  # (n,) int64 partner index, -1 = none
    pair_role: np.ndarray  # (n,) int8: 0 none, 1 factual, 2 counterfactual partner
    split: np.ndarray  # (n,) int8: 0 train, 1 val, 2 test
    edit_frame: np.ndarray  # (n, E) int32, -1 = edit not applied
    edit_value: np.ndarray  # (n, E) float64
    seeds: np.ndarray  # (n,) uint64 per-sample seed for world-internal randomness
    resampled: np.ndarray | None = None  # (n,) int16 redraws per sample; None when the world checks no feasibility

    def __len__(self) -> int:
        return self.stop - self.start

    def column(self, name: str) -> np.ndarray:
        """One latent's values, shape (n,) float64."""
        return self.latents[:, self.names.index(name)]

    def arrays(self) -> dict[str, np.ndarray]:
        """The stored per-sample arrays (:data:`SAMPLE_FIELDS`), by name."""
        return {f.name: getattr(self, f.name) for f in sample_fields(self.edit_frame.shape[1] > 0, self.resampled is not None)}

    def rows(self, a: int, b: int) -> "SampleBatch":
        """Rows ``a..b-1`` of this batch (samples ``start + a .. start + b - 1``) as a batch of their own."""
        cut = {f: getattr(self, f)[a:b] for f in ("latents", "noise", "domain", "intervention", "intervention_mask",
                                                  "intervention_value", "pair", "pair_role", "split", "edit_frame",
                                                  "edit_value", "seeds")}
        return SampleBatch(self.start + a, self.start + b, self.names, **cut,
                           resampled=None if self.resampled is None else self.resampled[a:b])


@dataclass(frozen=True)
class EditColumn:
    """One temporal edit column of ``edit_frame``/``edit_value``."""

    name: str
    target: str
    op: str
    start: int
    end: int  # exclusive, -1 = until the end
    fraction: float
    value: Any  # float or a noise model
    counterfactual: bool = False


def edit_columns(spec: DatasetSpec) -> list[EditColumn]:
    """The columns of ``edit_frame``/``edit_value``: each temporal edit, then the counterfactual edit."""
    fps = spec.video.fps if spec.video else 1
    cols = [EditColumn(f"edit{i}", e.target, e.op, e.start_frame(fps), e.end_frame(), e.fraction, e.value)
            for i, e in enumerate(spec.temporal_edits)]
    cf = spec.counterfactuals
    if cf and cf.edit:
        e = cf.edit
        cols.append(EditColumn("counterfactual", e.target, e.op, e.start_frame(fps), e.end_frame(), 1.0, e.value, True))
    return cols


def _cum(x: int, frac: float) -> int:
    """How many of samples ``[0, x)`` get a property held by ``frac`` of samples."""
    return int(np.floor(x * frac + 0.5))


def _block_count(a: int, b: int, frac: float) -> int:
    return _cum(b, frac) - _cum(a, frac)


def _free_count(a: int, b: int, frac: float, free: int, paired: bool) -> int:
    """How many of a block's ``free`` rows (unpaired samples and factuals; samples ``[a, b)``) to
    choose so that ``frac`` of all samples carry a property that a partner copies from its factual:
    without counterfactual pairs every row is free (the exact cumulative count); with them a chosen
    factual brings its partner along, so ``frac`` of the free rows gives each sample, factual,
    partner or unpaired, the property with probability ``frac``."""
    if not paired:
        return _block_count(a, b, frac)
    return min(_cum(free, frac), free)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


@dataclass
class _Blocks:
    domain: list = field(default_factory=list)
    option: list = field(default_factory=list)
    pick: list = field(default_factory=list)
    pair: list = field(default_factory=list)
    role: list = field(default_factory=list)
    noise: list = field(default_factory=list)
    idraws: list = field(default_factory=list)
    edit_frame: list = field(default_factory=list)
    edit_value: list = field(default_factory=list)
    seeds: list = field(default_factory=list)
    split: list = field(default_factory=list)


class CompiledSCM:
    """A spec's structural causal model compiled once into numpy closures.

    ``sample(a, b)`` then draws samples ``a..b-1`` (a :class:`SampleBatch`),
    bitwise identical however the range is split. Raises
    :class:`~crlgen.schemas.SpecError` for values a spec's ranges forbid.
    """

    def __init__(self, spec: DatasetSpec, resamples: bool | None = None):
        """``resamples``: whether batches carry ``resampled`` (default: whether the spec's world checks
        feasibility, :func:`world_checks_feasibility`)."""
        self.spec = spec
        self.resamples = world_checks_feasibility(spec) if resamples is None else resamples
        g = spec.graph
        self.nodes = g.nodes
        self.names = g.names
        self.index = {n: j for j, n in enumerate(self.names)}
        self.seed = spec.seed
        self.n_samples = spec.samples

        # domains
        self.domain_names = tuple(spec.domains) or ("default",)
        doms = list(spec.domains.values())
        if doms and doms[0].samples is not None:
            counts = np.array([d.samples for d in doms], dtype=np.int64)
            self._domain_cum = np.cumsum(counts)
            self._domain_exact = True
        else:
            w = np.array([d.weight if d.weight is not None else 1.0 for d in doms] or [1.0])
            self._domain_cumw = np.cumsum(w / w.sum())
            self._domain_cumw[-1] = 1.0
            self._domain_exact = False
        self._domain_stride = self._domain_stride_for()

        # parameters: scalar, or per-domain values indexed by label
        self.param_table: dict[str, np.ndarray] = {}
        for p, v in spec.parameters.items():
            vals = np.array([d.parameters.get(p, v) for d in doms] or [v], dtype=np.float64)
            self.param_table[p] = vals

        # mechanisms (base and per-domain overrides)
        self.has_noise = np.array([n.variable.noise is not None for n in self.nodes], bool)
        self.mech = [compile_expression(n.mechanism) if n.mechanism else None for n in self.nodes]
        self.domain_mech: list[dict[int, Any]] = [dict() for _ in self.nodes]
        self.domain_noise: list[dict[int, Any]] = [dict() for _ in self.nodes]
        for d, dname in enumerate(spec.domains):
            mechs, noises = spec.domain_overrides(dname)
            for e, src in mechs.items():
                self.domain_mech[self.index[e]][d] = compile_expression(src)
            for e, nz in noises.items():
                self.domain_noise[self.index[e]][d] = _space_draw(spec, dname, self.nodes[self.index[e]], nz)

        # interventions: regime options, plus the counterfactual intervention
        self.options = spec.intervention_options()
        self.regime = spec.interventions.regime
        self.fraction = getattr(spec.interventions, "fraction", 0.0)
        if self.regime == "sets":
            w = np.array([s.weight for s in spec.interventions.sets])
            self._set_p = w / w.sum()
        if self.regime == "explicit":
            pairs = sorted((s, o) for o, a in enumerate(spec.interventions.assignments) for s in a.indices())
            self._explicit = (np.array([p[0] for p in pairs], dtype=np.int64), np.array([p[1] for p in pairs], dtype=np.int32))
        cf = spec.counterfactuals
        self.cf_fraction = cf.fraction if cf else 0.0
        self.cf_targets = spec.expand_targets(cf.intervention) if cf and cf.intervention else {}
        # which (source, target) pairs need drawn values: source = option index or "cf"
        self.dist_slots: list[tuple[Any, str]] = []
        for o, opt in enumerate(self.options):
            for t, iv in opt.items():
                if _drawn(iv):
                    self.dist_slots.append((o, t))
        for t, iv in self.cf_targets.items():
            if _drawn(iv):
                self.dist_slots.append(("cf", t))
        # do(space): a uniform(0, 1) draw mapped onto [low, high] of the target's space in the sample's domain
        self.space_bounds: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for _, t in self.dist_slots:
            var = g.node(t).variable
            if getattr(var, "spaces", None) and t not in self.space_bounds:
                picked = [var.spaces[d.space] if d.space else (np.nan, np.nan) for d in doms] or [(np.nan, np.nan)]
                half = 0.5 if var.type in _DISCRETE else 0.0  # each whole number in the space equally often
                self.space_bounds[t] = (np.array([p[0] - half for p in picked]), np.array([p[1] + half for p in picked]))
        self.soft_mech = {}
        for o, opt in enumerate(self.options):
            for t, iv in opt.items():
                if isinstance(iv, Soft):
                    self.soft_mech[(o, t)] = compile_expression(iv.mechanism)
        for t, iv in self.cf_targets.items():
            if isinstance(iv, Soft):
                self.soft_mech[("cf", t)] = compile_expression(iv.mechanism)
        self.by_target: dict[str, list[tuple[Any, Any]]] = {}
        for o, opt in enumerate(self.options):
            for t, iv in opt.items():
                self.by_target.setdefault(t, []).append((o, iv))
        for t, iv in self.cf_targets.items():
            self.by_target.setdefault(t, []).append(("cf", iv))

        # the spec field that produced a latent's value, for problems: {(option index or "cf", latent): (path, what)}
        # and {(domain index, latent): (path, what)}
        self._iv_fields = _intervention_fields(spec)
        self._domain_fields = _domain_fields(spec)

        self.edits: list[EditColumn] = edit_columns(spec)
        self._init_gates(spec)
        problems = _truth_problems(self)
        if problems:
            raise SpecError(problems)

        # splits: random fractions per block, then the out-of-distribution rules
        sp = spec.splits
        self._split_cum = (sp.fraction("train"), sp.fraction("train") + sp.fraction("val"))
        held = dict.fromkeys((*sp.test_domains, *(spec.domains_in_space(sp.test_space) if sp.test_space else ())))
        self._test_domains = np.array([self.domain_names.index(d) for d in held], dtype=np.int16)
        self._few_shot = sp.few_shot
        tr = sp.test_range
        self._test_range = (self.index[tr.latent], tr.low, tr.high) if tr is not None else None

    def _init_gates(self, spec: DatasetSpec) -> None:
        """Presence gates (:data:`~crlgen.schemas.graph.PRESENCE`): which intervention and edit targets belong to
        an object whose ``present`` flag is not constant 1, and the nodes to evaluate to read the flags.

        Raises SpecError when an intervention reaches (is or is an ancestor of) the flag that gates one of its own
        targets: the flag is read in the sample's observational world, so it must not depend on that option."""
        targets = {t for opt in self.options for t in opt} | set(self.cf_targets) | {e.target for e in self.edits}
        flags = {t: spec.presence_flag(t) for t in sorted(targets)}
        varying = {f: not spec.always_present(f) for f in set(flags.values()) - {None}}
        self._gate = {t: self.index[f] for t, f in flags.items() if f is not None and varying[f]}
        g = spec.graph
        cf_reach = set(self.cf_targets).union(*(g.descendants(t, extra=True) for t in self.cf_targets))
        problems = []
        for o, opt in enumerate(self.options):
            reach = cf_reach.union(opt, *(g.descendants(t, extra=True) for t in opt))
            for t in opt:
                if t in self._gate and self.names[self._gate[t]] in reach:
                    problems.append(f"interventions: option {o} ({', '.join(opt)}) reaches {self.names[self._gate[t]]}, "
                                    f"the presence flag of its target {t}; a presence flag must not depend on an "
                                    "intervention on its own object")
        for t in self.cf_targets:
            if t in self._gate and self.names[self._gate[t]] in cf_reach:
                problems.append(f"counterfactuals.intervention: it reaches {self.names[self._gate[t]]}, the presence "
                                f"flag of its target {t}; a presence flag must not depend on an intervention on its own object")
        if problems:
            raise SpecError(list(dict.fromkeys(problems)))
        # per option: the gate of each target (-1: none), for single_node's draw and the sets' "applies anywhere"
        self._opt_gates = [np.array([self._gate.get(t, -1) for t in opt], np.int64) for opt in self.options]
        self._gated_options = any((gates >= 0).any() for gates in self._opt_gates)
        # the flags and every node they depend on: what the observational pre-pass evaluates
        need = {self.names[j] for j in self._gate.values()}
        for f in list(need):
            need |= g.ancestors(f, extra=True)
        self._presence_nodes = np.array([n in need for n in self.names], bool)

    # ----- per-block assignments and noise -----------------------------------------
    def _domain_prefix(self, x: np.ndarray) -> np.ndarray:
        """How many of the first ``x`` samples (int64, shape (X,)) have a domain <= k, for every k: cumulative
        rounding of the share (int64, shape (X, domains); the last column is ``x``)."""
        x = np.asarray(x, np.int64)[:, None]
        if self._domain_exact:
            n = self.n_samples
            return (2 * x * self._domain_cum[None, :] + n) // (2 * n)  # exact integer rounding
        c = np.floor(x * self._domain_cumw[None, :] + 0.5).astype(np.int64)
        c[:, -1] = x[:, 0]
        return c

    def _domain_stride_for(self) -> int | None:
        """The stride of the low-discrepancy domain order, for a dataset whose blocks cumulative rounding cannot
        share out (some block would get a negative count: three or more domains and a small block, e.g. the last
        block of 1025 samples with weights 1:1:2:2); None when it can (every dataset sampler 2 could draw)."""
        n, m = self.n_samples, len(self.domain_names)
        if m < 3:
            return None
        per_level = np.diff(self._domain_prefix(np.unique(np.r_[np.arange(0, n, BLOCK), n])), axis=0)  # (blocks, m)
        if (np.diff(per_level, axis=1, prepend=0) >= 0).all():
            return None
        g = max(1, round(n * 0.6180339887498949))  # n / golden ratio: consecutive samples' ranks spread evenly
        while math.gcd(g, n) != 1:
            g += 1
        return g

    def _domain_counts(self, a: int, b: int) -> np.ndarray:
        """How many of samples ``[a, b)`` fall in each domain (int64, shape (domains,), non-negative, summing to
        ``b - a``); over the whole dataset each domain gets its share rounded cumulatively (exact ``samples``).

        By default each block's counts are the difference of the cumulative rounding at its two ends, so
        every block holds its share within one sample. Where that would give some block a negative count
        (:meth:`_domain_stride_for`), sample ``s`` instead takes the domain whose slice of the totals holds its
        rank ``s * g mod n`` (``g`` coprime to ``n``, near ``n`` / golden ratio: a rank-1 lattice, whose
        consecutive points spread evenly, Niederreiter 1992, *Random Number Generation and Quasi-Monte Carlo
        Methods*, ch. 5): the same totals, each block close to its share."""
        if self._domain_stride is None:
            pref = self._domain_prefix(np.array([a, b]))
            return np.diff(pref[1] - pref[0], prepend=0)
        rank = np.arange(a, b, dtype=np.int64) * self._domain_stride % self.n_samples
        totals = self._domain_prefix(np.array([self.n_samples]))[0]
        return np.bincount(np.searchsorted(totals, rank, side="right"), minlength=len(self.domain_names))

    def _block(self, blk: int, out: _Blocks) -> None:
        a = blk * BLOCK
        b = min(a + BLOCK, self.n_samples)
        n = b - a
        rng = _rng(self.seed, blk, _ASSIGN)

        # counterfactual pairs occupy slots (2k, 2k+1): factual, partner
        role = np.zeros(n, np.int8)
        pair = np.full(n, -1, np.int64)
        if self.cf_fraction:
            n_pairs = min(_block_count(a, b, self.cf_fraction), n // 2)
            slots = np.sort(rng.choice(n // 2, size=n_pairs, replace=False))
            f, p = 2 * slots, 2 * slots + 1
            role[f], role[p] = ROLE_FACTUAL, ROLE_COUNTERFACTUAL
            pair[f], pair[p] = a + p, a + f
        partners = np.flatnonzero(role == ROLE_COUNTERFACTUAL)
        free = np.flatnonzero(role != ROLE_COUNTERFACTUAL)

        if len(self.domain_names) == 1:
            domain = np.zeros(n, np.int16)
        else:
            domain = np.repeat(np.arange(len(self.domain_names), dtype=np.int16), self._domain_counts(a, b))
            domain = domain[rng.permutation(n)]
            domain[partners] = domain[partners - 1]

        option = np.full(n, -1, np.int32)
        pick = np.zeros(n)
        if self.regime in ("single_node", "sets"):
            k = _free_count(a, b, self.fraction, free.size, partners.size > 0)
            chosen = np.sort(rng.choice(free, size=k, replace=False))
            if self.regime == "single_node":
                option[chosen] = rng.integers(len(self.options), size=k)
            else:
                option[chosen] = rng.choice(len(self.options), size=k, p=self._set_p)
            if self._gated_options and self.regime == "single_node":  # which present object's option (_gate_options)
                pick = rng.random(n)
        elif self.regime == "explicit":
            s, o = self._explicit
            lo_i, hi_i = np.searchsorted(s, [a, b])
            option[s[lo_i:hi_i] - a] = o[lo_i:hi_i]
        option[partners] = option[partners - 1]
        pick[partners] = pick[partners - 1]

        # temporal edits
        e_frame = np.full((n, len(self.edits)), -1, np.int32)
        e_value = np.full((n, len(self.edits)), np.nan)  # NaN where an edit is not applied, as intervention_value
        if self.edits:
            erng = _rng(self.seed, blk, _EDIT)
            for c, e in enumerate(self.edits):
                if e.counterfactual:
                    rows = partners
                else:
                    k = _free_count(a, b, e.fraction, free.size, partners.size > 0)
                    rows = np.sort(erng.choice(free, size=k, replace=False))
                e_frame[rows, c] = e.start
                vals = draw(e.value, erng, n) if not isinstance(e.value, float) else np.full(n, e.value)
                e_value[:, c] = np.where(e_frame[:, c] >= 0, vals, np.nan)
                if not e.counterfactual:
                    e_frame[partners, c] = e_frame[partners - 1, c]
                    e_value[partners, c] = e_value[partners - 1, c]

        # exogenous noise, one stream per (block, domain), variables in topological order
        noise = np.empty((len(self.nodes), n))  # variable-major: contiguous per-variable rows
        noise[~self.has_noise] = np.nan
        single = len(self.domain_names) == 1
        for d in range(len(self.domain_names)):
            rows = slice(None) if single else np.flatnonzero(domain == d)
            size = n if single else rows.size
            if size == 0:
                continue
            nrng = _rng(self.seed, blk, _NOISE, d)
            for j, node in enumerate(self.nodes):
                dist = self.domain_noise[j].get(d, node.variable.noise)
                if dist is not None:
                    noise[j, rows] = draw(dist, nrng, size)
        noise[:, partners] = noise[:, partners - 1]

        # values of distributional interventions, one column per slot
        idraws = np.empty((len(self.dist_slots), n))
        if self.dist_slots:
            irng = _rng(self.seed, blk, _IVALUE)
            for c, (src, t) in enumerate(self.dist_slots):
                iv = self.options[src][t] if src != "cf" else self.cf_targets[t]
                idraws[c] = draw(_slot_dist(iv), irng, n)
            idraws[:, partners] = idraws[:, partners - 1]  # drawn values are exogenous too: the partner shares them

        # splits: the free samples (pairs count once) in a seeded order, cut at the cumulative fractions;
        # partners follow their factual sample
        split = np.full(n, 2, np.int8)
        order = _rng(self.seed, blk, _SPLIT).permutation(free)
        cut = [int(np.floor(order.size * f + 0.5)) for f in self._split_cum]
        split[order[:cut[0]]], split[order[cut[0]:max(cut)]] = 0, 1
        if self._test_domains.size:  # held-out environments: test, but a few_shot share of them trains
            held = np.flatnonzero(np.isin(domain, self._test_domains))
            held = held[~np.isin(held, partners)]
            keep = _rng(self.seed, blk, _SPLIT, 1).random(held.size) < self._few_shot
            split[held] = np.where(keep, 0, 2)
        split[partners] = split[partners - 1]

        seeds = _rng(self.seed, blk, _WORLD).integers(0, 2**63, size=n, dtype=np.uint64)
        seeds[partners] = seeds[partners - 1]

        out.domain.append(domain); out.option.append(option); out.pick.append(pick); out.pair.append(pair); out.role.append(role)
        out.noise.append(noise); out.idraws.append(idraws); out.edit_frame.append(e_frame); out.split.append(split)
        out.edit_value.append(e_value); out.seeds.append(seeds)

    # ----- the whole range -----------------------------------------------------------
    def sample(self, start: int, stop: int, check: bool = True, attempts: np.ndarray | None = None,
               _pairs: bool = True) -> SampleBatch:
        """Sample ``start..stop-1``; ``check`` raises SpecError on non-finite or out-of-range values.

        ``attempts`` ((n,) ints, default all 0): how many times each sample was redrawn because its world
        could not start from it. A sample with ``k > 0`` keeps its domain, intervention, split, pairing
        and edits, and takes its exogenous noise, distributional intervention values and world seed from
        the stream ``(seed, sample, 6, k)`` instead of its block's (a counterfactual partner from its
        factual sample's stream: give both members of a pair the same count). Raises ValueError for a
        range outside the dataset, attempts of another length or a partner whose count differs from its
        factual sample's.
        """
        if not 0 <= start <= stop <= self.n_samples:
            raise ValueError(f"sample range {start}..{stop} outside 0..{self.n_samples}")
        if attempts is not None:
            attempts = np.asarray(attempts)
            if attempts.shape != (stop - start,) or (attempts < 0).any():
                raise ValueError(f"attempts: expected {stop - start} counts >= 0, got shape {attempts.shape}")
        first, last = start // BLOCK, (stop - 1) // BLOCK if stop > start else start // BLOCK - 1
        blocks = _Blocks()
        for blk in range(first, last + 1):
            self._block(blk, blocks)
        lo = start - first * BLOCK
        n = stop - start
        L, E = len(self.nodes), len(self.edits)

        def cat(xs: list, shape: tuple, axis: int = 0) -> np.ndarray:
            if not xs:
                return np.zeros(shape)
            arr = np.concatenate(xs, axis=axis) if len(xs) > 1 else xs[0]
            return arr[lo:lo + n] if axis == 0 else arr[:, lo:lo + n]

        domain = cat(blocks.domain, (0,)).astype(np.int16)
        option = cat(blocks.option, (0,)).astype(np.int32)
        role = cat(blocks.role, (0,)).astype(np.int8)
        pair = cat(blocks.pair, (0,)).astype(np.int64)
        noise = cat(blocks.noise, (L, 0), axis=1)
        idraws = cat(blocks.idraws, (len(self.dist_slots), 0), axis=1)
        seeds = cat(blocks.seeds, (0,)).astype(np.uint64)
        if attempts is not None and attempts.any():
            noise, idraws, seeds = noise.copy(), idraws.copy(), seeds.copy()
            self._redraw(start, attempts, domain, role, pair, noise, idraws, seeds)

        found: dict[str, str] = {}  # booleans given other values than 0 or 1: raised with the other problems
        present = self._presence(domain, noise, idraws, found) if self._gate else None
        if present is not None and self._gated_options:
            option = self._gate_options(option, cat(blocks.pick, (0,)), present)

        latents = np.empty((L, n))
        imask = np.zeros((L, n), bool)
        ivalue = np.full((L, n), np.nan)
        for c0 in range(0, n, EVAL_CHUNK):  # cache-sized chunks: mechanisms are elementwise
            c = slice(c0, min(c0 + EVAL_CHUNK, n))
            pc = None if present is None else {g: v[c] for g, v in present.items()}
            self._evaluate(domain[c], option[c], role[c], noise[:, c], idraws[:, c], latents[:, c], imask[:, c], ivalue[:, c], pc,
                           found=found)
        e_frame, e_value = cat(blocks.edit_frame, (0, E)).astype(np.int32), cat(blocks.edit_value, (0, E))
        for col, e in enumerate(self.edits):  # an edit on an absent object is not applied
            g = self._gate.get(e.target)
            if g is not None:
                absent = latents[g] == 0
                e_frame[absent, col], e_value[absent, col] = -1, np.nan
        split = cat(blocks.split, (0,)).astype(np.int8)
        if self._test_range is not None:
            split = self._range_to_test(split, latents, pair, start, _pairs, attempts)
        resampled = None
        if self.resamples:
            resampled = np.zeros(n, np.int16) if attempts is None else attempts.astype(np.int16)
        batch = SampleBatch(start, stop, self.names, latents.T, noise.T, domain, option, imask.T, ivalue.T, pair, role, split,
                            e_frame, e_value, seeds, resampled)
        problems = [*found.values(), *(self.problems(batch) if check else ())]
        if problems:
            raise SpecError(problems)
        return batch

    def _presence(self, domain: np.ndarray, noise: np.ndarray, idraws: np.ndarray,
                  found: dict[str, str] | None = None) -> dict[int, np.ndarray]:
        """Each gating flag's value in the samples' observational world (same noise and domain, no intervention):
        {flag node index: (n,) bool}. Only the flags and their ancestors are evaluated; ``found``: as for
        :meth:`_evaluate`."""
        n, L = domain.size, len(self.nodes)
        lat, mask, val = np.empty((L, n)), np.zeros((L, n), bool), np.empty((L, n))
        none, plain = np.full(n, -1, np.int32), np.zeros(n, np.int8)
        for c0 in range(0, n, EVAL_CHUNK):
            c = slice(c0, min(c0 + EVAL_CHUNK, n))
            self._evaluate(domain[c], none[c], plain[c], noise[:, c], idraws[:, c], lat[:, c], mask[:, c], val[:, c],
                           only=self._presence_nodes, found=found)
        return {g: lat[g] != 0 for g in set(self._gate.values())}

    def _gate_options(self, option: np.ndarray, pick: np.ndarray, present: dict[int, np.ndarray]) -> np.ndarray:
        """Options after the presence gates. single_node: each intervened sample's target drawn uniformly (``pick``)
        among the options whose object is present in it, observational (-1) when there is none; sets and explicit:
        an option none of whose targets exists in a sample becomes -1 there (the present ones still apply)."""
        rows = np.flatnonzero(option >= 0)
        if not rows.size:
            return option
        avail = np.ones((rows.size, len(self.options)), bool)
        for o, gates in enumerate(self._opt_gates):
            if (gates >= 0).all():  # every target gated: available where any of them is present
                avail[:, o] = np.logical_or.reduce([present[g][rows] for g in gates])
        option = option.copy()
        if self.regime == "single_node":
            count = avail.sum(axis=1)
            k = np.minimum((pick[rows] * count).astype(np.int64), np.maximum(count - 1, 0))
            chosen = np.argmax(np.cumsum(avail, axis=1) > k[:, None], axis=1)
            option[rows] = np.where(count > 0, chosen, -1)
        else:
            option[rows] = np.where(avail[np.arange(rows.size), option[rows]], option[rows], -1)
        return option

    def _redraw(self, start: int, attempts: np.ndarray, domain: np.ndarray, role: np.ndarray, pair: np.ndarray,
                noise: np.ndarray, idraws: np.ndarray, seeds: np.ndarray) -> None:
        """Overwrite the exogenous inputs of the rows with ``attempts > 0`` (in place; noise and idraws are
        variable-major): noise in the sample's domain, then the distributional intervention values, then the
        world seed, from the stream ``(seed, sample, _RESAMPLE, attempt)``; a partner uses its factual's."""
        part = np.flatnonzero(role == ROLE_COUNTERFACTUAL)
        fact = pair[part] - start
        inside = (fact >= 0) & (fact < attempts.size)
        differ = part[inside][attempts[part[inside]] != attempts[fact[inside]]]
        if differ.size:
            r = int(differ[0])
            raise ValueError(f"attempts: sample {start + r} (a counterfactual partner) has {int(attempts[r])}, its factual "
                             f"sample {int(pair[r])} {int(attempts[pair[r] - start])}; a pair is redrawn together")
        for r in np.flatnonzero(attempts):
            k = int(attempts[r])
            source = start + int(r) if role[r] != ROLE_COUNTERFACTUAL else int(pair[r])
            rng = _rng(self.seed, source, _RESAMPLE, k)
            d = int(domain[r])
            for j, node in enumerate(self.nodes):
                dist = self.domain_noise[j].get(d, node.variable.noise)
                if dist is not None:
                    noise[j, r] = draw(dist, rng, 1)[0]
            for c, (src, t) in enumerate(self.dist_slots):
                iv = self.options[src][t] if src != "cf" else self.cf_targets[t]
                idraws[c, r] = draw(_slot_dist(iv), rng, 1)[0]
            seeds[r] = rng.integers(0, 2**63, dtype=np.uint64)

    def _range_to_test(self, split: np.ndarray, latents: np.ndarray, pair: np.ndarray, start: int, pairs: bool,
                       attempts: np.ndarray | None) -> np.ndarray:
        """Send samples whose held-out latent lies in the test range to ``test``, with their partners."""
        j, lo, hi = self._test_range
        inside = (latents[j] >= lo) & (latents[j] <= hi)
        out = inside.copy()
        if pairs:
            local = pair - start
            for r in np.flatnonzero(pair >= 0):
                if 0 <= local[r] < out.size:
                    out[r] |= inside[local[r]]
                else:  # the partner lies beyond this range (a shard boundary between them)
                    k = None if attempts is None else attempts[r:r + 1]  # a pair shares its count
                    v = self.sample(int(pair[r]), int(pair[r]) + 1, check=False, attempts=k, _pairs=False).latents[0, j]
                    out[r] |= lo <= v <= hi
        split = split.copy()
        split[out] = 2
        return split

    def _evaluate(self, domain, option, role, noise, idraws, latents, imask, ivalue, present=None, only=None,
                  found: dict[str, str] | None = None) -> None:
        """Mechanisms and interventions in topological order, written into the given views. ``present``:
        {flag node: (n,) bool}, a gated target is intervened on only where its flag is set; ``only``: a mask
        of the nodes to evaluate (closed under ancestors); ``found``: where a boolean given another value than
        0 or 1 is noted ({spec path: problem line}, the first per path; it then reads as true where not 0)
        instead of raised."""
        n = domain.size
        env: dict[str, Any] = {p: vals[domain] if vals.size > 1 and np.ptp(vals) > 0 else float(vals[0])
                               for p, vals in self.param_table.items()}
        slot = {s: c for c, s in enumerate(self.dist_slots)}
        cf_idx = np.flatnonzero(role == ROLE_COUNTERFACTUAL)
        opt_idx = _group(option, len(self.options)) if self.options else []
        with np.errstate(all="ignore"):
            for j, node in enumerate(self.nodes):
                if only is not None and not only[j]:
                    continue
                eps = noise[j]
                if self.mech[j] is None:
                    val = eps.copy()
                else:
                    val = np.broadcast_to(self.mech[j]({**env, NOISE_NAME: eps}), (n,)).astype(np.float64, copy=True)
                for d, f in self.domain_mech[j].items():  # a domain's mechanism, roots' included
                    rows = np.flatnonzero(domain == d)
                    if rows.size:
                        sub = {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in env.items()}
                        sub[NOISE_NAME] = eps[rows]
                        val[rows] = np.broadcast_to(f(sub), (rows.size,))
                if node.variable.type == "boolean":  # a domain's override, parameters or noise blamed on its own field
                    own = np.ones(n, bool)
                    for (d, name), (path, _) in self._domain_fields.items():
                        if name == node.name:
                            rows = np.flatnonzero(domain == d)
                            own[rows] = False
                            _truth_values(node, val[rows], "mechanism" if self.mech[j] or d in self.domain_mech[j] else "noise", path, found)
                    _truth_values(node, val[own], "mechanism" if self.mech[j] else "noise", found=found)
                val = _cast(node.variable, val)
                for src, iv in self.by_target.get(node.name, ()):
                    if src == "cf":
                        rows = cf_idx
                    else:
                        rows = opt_idx[src]
                        if node.name in self.cf_targets and cf_idx.size:
                            rows = rows[role[rows] != ROLE_COUNTERFACTUAL]
                    gate = self._gate.get(node.name)
                    if gate is not None and present is not None:
                        rows = rows[present[gate][rows]]
                    if not rows.size:
                        continue
                    if isinstance(iv, Do) and iv.space:
                        lo, hi = self.space_bounds[node.name]
                        d = domain[rows]
                        new = lo[d] + idraws[slot[(src, node.name)], rows] * (hi[d] - lo[d])
                        if node.variable.type in _DISCRETE:  # [low - 1/2, high + 1/2] onto whole numbers in [low, high]
                            new = np.clip(np.rint(new), lo[d] + 0.5, hi[d] - 0.5)
                        param = new
                    elif isinstance(iv, Do):
                        new = np.full(rows.size, iv.value) if iv.value is not None else idraws[slot[(src, node.name)], rows]
                        param = _cast(node.variable, new) if node.variable.type in _DISCRETE else new  # the value set
                    elif isinstance(iv, Shift):
                        new, param = val[rows] + iv.by, iv.by
                    elif isinstance(iv, Scale):
                        new, param = val[rows] * iv.by, iv.by
                    else:  # Soft
                        sub = {k: (v[rows] if isinstance(v, np.ndarray) else v) for k, v in env.items()}
                        sub[NOISE_NAME] = idraws[slot[(src, node.name)], rows] if iv.noise is not None else eps[rows]
                        new, param = np.broadcast_to(self.soft_mech[(src, node.name)](sub), (rows.size,)), np.nan
                    new = np.asarray(new, dtype=np.float64)
                    if node.variable.type == "boolean":
                        path = self._iv_fields.get((src, node.name), (f"variables.{node.template}", ""))[0]
                        _truth_values(node, np.atleast_1d(new), f"{iv.kind} intervention", path, found)
                    val[rows] = _cast(node.variable, new)
                    imask[j, rows] = True
                    ivalue[j, rows] = param
                latents[j] = val
                env[node.name] = val

    def problems(self, batch: SampleBatch) -> list[str]:
        """Non-finite values and values outside declared ranges, one line per variable and per spec field that
        produced them: ``variables.<name>`` where the variable's own mechanism and noise did, else the intervention
        (``interventions...``, ``counterfactuals.intervention...``) or the domain override (``domains...``)."""
        out = []
        cols = batch.latents.T  # variable-major view
        for j, node in enumerate(self.nodes):
            col = cols[j]
            lo, hi = node.variable.bounds()
            if col.size == 0:
                continue
            mn, mx = col.min(), col.max()
            if lo <= mn and mx <= hi and np.isfinite(mn) and np.isfinite(mx):  # NaN fails both comparisons, inf isfinite
                continue
            bad = ~np.isfinite(col)
            if bad.any():
                for field, what, rows in self._sources(batch, j, np.flatnonzero(bad)):
                    i = int(rows[0])
                    if field is None:
                        out.append(f"variables.{node.template}: the mechanism gives non-finite values for {rows.size} samples (first: sample {batch.start + i}, {node.name} = {col[i]})")
                    else:
                        out.append(f"{field}: {what} gives non-finite values of {node.name} for {rows.size} samples (first: sample {batch.start + i}, {node.name} = {col[i]})")
                continue
            bad = (col < lo) | (col > hi)
            for field, what, rows in self._sources(batch, j, np.flatnonzero(bad)):
                i = int(rows[0])
                if field is None:
                    out.append(f"variables.{node.template}: {rows.size} samples fall outside the declared range [{lo:g}, {hi:g}] (first: sample {batch.start + i}, {node.name} = {col[i]:g})")
                else:
                    out.append(f"{field}: {what} gives {node.name} values outside its declared range [{lo:g}, {hi:g}] for {rows.size} samples (first: sample {batch.start + i}, {node.name} = {col[i]:g})")
        return out

    def _sources(self, batch: SampleBatch, j: int, rows: np.ndarray) -> list[tuple[str | None, str, np.ndarray]]:
        """``rows`` of ``batch`` grouped by the spec field that produced latent ``j``'s value there, in order of
        their first row: ``[(path or None for the variable's own mechanism and noise, what it is, rows)]``."""
        if not rows.size:
            return []
        name = self.names[j]
        hit = batch.intervention_mask[rows, j]
        cf = hit & (batch.pair_role[rows] == ROLE_COUNTERFACTUAL) & (name in self.cf_targets)
        # -2: the counterfactual intervention, >= 0: a regime option, -1: none (then the domain decides)
        code = np.where(cf, -2, np.where(hit, batch.intervention[rows], -1)).astype(np.int64)
        groups: dict[tuple[str | None, str], list[np.ndarray]] = {}
        keys = np.stack([code, batch.domain[rows].astype(np.int64)])
        uniq, inverse = np.unique(keys, axis=1, return_inverse=True)
        inverse = inverse.ravel()
        for u in range(uniq.shape[1]):
            c, d = int(uniq[0, u]), int(uniq[1, u])
            if c == -1:
                field = self._domain_fields.get((d, name), (None, ""))
            else:
                field = self._iv_fields.get(("cf" if c == -2 else c, name), (None, ""))
            groups.setdefault(field, []).append(rows[inverse == u])
        found = [(f, w, np.sort(np.concatenate(r))) for (f, w), r in groups.items()]
        return sorted(found, key=lambda t: int(t[2][0]))


def _intervention_fields(spec: DatasetSpec) -> dict[tuple[Any, str], tuple[str, str]]:
    """Where each intervention is written: ``{(option index or "cf", latent): (spec path, "the <kind> intervention")}``,
    options numbered as :meth:`DatasetSpec.intervention_options` numbers them."""
    return {(o, e): (path, f"the {'counterfactual ' if o == 'cf' else ''}{iv.kind} intervention")
            for o, e, path, iv in spec.intervention_entries()}


def _domain_fields(spec: DatasetSpec) -> dict[tuple[int, str], tuple[str, str]]:
    """What a domain replaces, per latent: ``{(domain index, latent): (spec path, what)}``: its mechanism
    (``overrides``), else its noise (``noise``), else the uniform draw in its ``space``, else a parameter the
    latent's own mechanism reads and the domain gives another value (``parameters``; the first in the mechanism's
    order when it changes several)."""
    out: dict[tuple[int, str], tuple[str, str]] = {}
    for d, (dname, dom) in enumerate(spec.domains.items()):
        changed = {p: v for p, v in dom.parameters.items() if v != spec.parameters.get(p)}
        for node in spec.graph.nodes if changed else ():
            p = next((p for p in node.parameters if p in changed), None)
            if p is not None:
                out[(d, node.name)] = (f"domains.{dname}.parameters.{p}", f"domain {dname}'s parameter {p} = {changed[p]:g}")
        if dom.space is not None:
            for node in spec.graph.nodes:
                if getattr(node.variable, "spaces", None) is not None and node.mechanism is None:
                    out[(d, node.name)] = (f"domains.{dname}.space", f"domain {dname}'s space {dom.space}")
        for e, (key, _, _) in spec.expand_keyed(dom.noise.items()).items():
            out[(d, e)] = (f"domains.{dname}.noise.{key}", f"domain {dname}'s noise")
        for e, (key, _, _) in spec.expand_keyed(dom.overrides.items()).items():
            out[(d, e)] = (f"domains.{dname}.overrides.{key}", f"domain {dname}'s mechanism")
    return out


#: What a ``do(space)`` slot draws: the position within the space, mapped onto its range per domain.
_UNIT = Uniform(low=0.0, high=1.0)


def _drawn(iv) -> bool:
    """Whether an intervention needs a drawn value per sample (a distributional or space do, a soft one with noise)."""
    return (isinstance(iv, Do) and (iv.dist is not None or iv.space)) or (isinstance(iv, Soft) and iv.noise is not None)


def _slot_dist(iv):
    """The distribution a drawn intervention's slot draws from."""
    if isinstance(iv, Do):
        return _UNIT if iv.space else iv.dist
    return iv.noise


def _group(labels: np.ndarray, k: int) -> list[np.ndarray]:
    """Row indices holding each label 0..k-1 (one stable sort instead of k full scans)."""
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(k + 1))
    return [order[bounds[i]:bounds[i + 1]] for i in range(k)]


def _truth_values(node, val: np.ndarray, what: str, path: str | None = None, found: dict[str, str] | None = None) -> None:
    """Raise SpecError unless every value of boolean ``node`` is 0 or 1 (a boolean is never coerced: ``b + 0.5``
    for ``b and x`` would otherwise read as always true); the line names ``path``, the field that gave the values
    (default ``variables.<template>``). With ``found`` the line is noted there (the first per path) instead."""
    bad = (val != 0) & (val != 1)  # NaN too
    if bad.any():
        v = val[np.flatnonzero(bad)[0]]
        path = path or f"variables.{node.template}"
        line = (f"{path}: a boolean is 0 or 1, its {what} gives {v:g} ({int(bad.sum())} of "
                f"{val.size} samples); write a truth value (a comparison, and, or, not, where(c, 1, 0))")
        if found is None:
            raise SpecError([line])
        found.setdefault(path, line)


def _truth_problems(model: "CompiledSCM") -> list[str]:
    """Boolean latents whose mechanism (base or a domain's) can give a value other than 0 or 1, found without
    sampling by evaluating it on every combination of its inputs where each input has a small finite support
    (booleans, bounded integers and categoricals, bernoulli/categorical noise, parameters); a mechanism with a
    real-valued input is left to the sampler's check of the values it draws."""
    from ..schemas.expression import parse_expression

    out = []
    for j, node in enumerate(model.nodes):
        if node.variable.type != "boolean":
            continue
        sources = [(None, node.mechanism, model.mech[j])] if node.mechanism else []
        for d, dname in enumerate(model.spec.domains):
            src = model.spec.domain_overrides(dname)[0].get(node.name)
            if src is not None:
                sources.append((d, src, model.domain_mech[j][d]))
            elif node.mechanism and (d, node.name) in model._domain_fields:  # its parameters or noise
                sources.append((d, node.mechanism, model.mech[j]))
        reported = False
        for d, src, f in sources:
            if reported and d is not None and src is node.mechanism:
                continue  # the spec's own mechanism already fails: not again per domain that changes an input
            supports = {}
            for name in sorted(parse_expression(src).names):
                supports[name] = _support(model, j, name, d)
                if supports[name] is None:
                    break
            else:
                size = int(np.prod([s.size for s in supports.values()])) if supports else 1
                if size > 100_000:
                    continue
                grid = np.meshgrid(*supports.values(), indexing="ij") if supports else []
                env = {n: g.ravel() for n, g in zip(supports, grid)}
                with np.errstate(all="ignore"):
                    vals = np.broadcast_to(f(env), (size,))
                bad = np.flatnonzero((vals != 0) & (vals != 1))
                if bad.size:
                    at = ", ".join(f"{n} = {env[n][bad[0]]:g}" for n in supports)
                    path = f"variables.{node.template}" if d is None else model._domain_fields[(d, node.name)][0]
                    where = "" if d is None else f" (domain {model.domain_names[d]})"
                    reported = reported or d is None
                    out.append(f"{path}: a boolean is 0 or 1, its mechanism {src!r}{where} gives "
                               f"{vals[bad[0]]:g}{' at ' + at if at else ''}; write a truth value (a comparison, "
                               "and, or, not, where(c, 1, 0))")
    return list(dict.fromkeys(out))  # (a do() value on a boolean is checked by the spec itself: 0 or 1)


def _support(model: "CompiledSCM", j: int, name: str, d: int | None) -> np.ndarray | None:
    """Every value input ``name`` of node ``j``'s mechanism can take (in domain ``d``; None: with the spec's own
    parameters and noise), or None when it is not small and finite."""
    if name == NOISE_NAME:
        dist = model.domain_noise[j].get(d, model.nodes[j].variable.noise) if d is not None else model.nodes[j].variable.noise
        kind = getattr(dist, "dist", None)
        if kind == "bernoulli":
            return np.array([0.0, 1.0])
        return np.arange(float(len(dist.probs))) if kind == "categorical" else None
    if name in model.param_table:
        vals = model.param_table[name]
        return np.array([model.spec.parameters[name]]) if d is None else vals[d:d + 1]
    if name not in model.index:
        return None
    var = model.nodes[model.index[name]].variable
    if var.type == "boolean":
        return np.array([0.0, 1.0])
    lo, hi = var.bounds()
    if var.type in ("integer", "categorical") and np.isfinite(lo) and np.isfinite(hi) and hi - lo < 256:
        return np.arange(np.ceil(lo), np.floor(hi) + 1)
    return None


_DISCRETE = ("integer", "categorical")


def _space_draw(spec: DatasetSpec, domain: str, node, noise):
    """The noise a domain replaces ``node``'s with, as the sampler draws it: a root drawn in the domain's
    ``space`` of an integer or categorical variable is drawn over [low - 1/2, high + 1/2], so that rounding
    gives each whole number of the space the same weight (a uniform draw over [low, high] gives the ends half)."""
    space = spec.domains[domain].space
    spaces = getattr(node.variable, "spaces", None)
    if space is None or not spaces or node.mechanism is not None or node.variable.type not in _DISCRETE:
        return noise
    if node.name in spec.expand_keyed(spec.domains[domain].noise.items()):  # the domain's own noise wins
        return noise
    lo, hi = spaces[space]
    return Uniform(low=lo - 0.5, high=hi + 0.5)


def _cast(var, val: np.ndarray) -> np.ndarray:
    """Apply a variable's type after its mechanism or intervention."""
    t = var.type
    if t in ("integer", "categorical"):
        return np.rint(val)
    if t == "boolean":
        return (val != 0).astype(np.float64)
    return val
