"""The validation stage: proves a store's latents agree with its spec and its pixels.

Checks: integrity, reproducibility (for a world that checks feasibility, with the world asked again, so
the stored redraw counts are re-derived; every other re-derivation uses the stored counts), mechanisms,
interventions (and what counterfactual partners share with their factual sample), feasibility (worlds
that check it: every stored sample feasible, counts within ``max_resamples``, pairs redrawn together), statistics (:mod:`._validate_stats`: implied
independencies, conditional ones with KCI, and interventions' reach, under Benjamini-Hochberg
false-discovery control; tests without enough samples are listed, never silently passed),
rendering (every world output, compared as its world declares), dynamics (for worlds that
simulate, with counterfactual pairs compared clip against clip), and each check the world
itself declares (e.g. ``penetration``, ``energy``), reported under its own name. The report
is deterministic (no timings) so that it is part of the byte-identical store, and states
what it covered: by default every shard's objects are checked against their recorded sizes
from one listing and a few shards are re-read and re-hashed; ``full=True`` re-hashes every
shard and compares every counterfactual pair. Checks and thresholds: ``docs/validation.md``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from ..scenes.base import WorldBatch
from ..scenes.registry import build_world
from ..schemas import DatasetSpec, SpecError
from ..schemas._yaml import parse_text
from ..schemas.interventions import Do, Shift, Soft
from ..schemas.variables import NOISE_NAME
from ._feasible import sample_feasible, world_batch
from ._plan import FORMAT_VERSION, Plan
from ._reading import load_plan, not_a_store, unfinished
from ._scm import ROLE_COUNTERFACTUAL, SAMPLER_VERSION, CompiledSCM, _cast
from ._store import Store
from ._urls import Location, check_location, resolve
from ._validate_stats import observational_flags, presence_gates, statistics

#: Counterfactual pairs whose stored clips are compared by default (``full=True``: every pair).
CF_PAIRS_COMPARED = 8
#: Of those, pairs re-simulated (both samples) against their stored states; the first partner is also re-rendered.
CF_PAIRS_RESIMULATED = 2
#: Per-pair findings kept in the report.
CF_FINDINGS_REPORTED = 8



@dataclass
class Check:
    """One named check's outcome: problems (empty = passed), details, or why it was skipped."""

    name: str
    problems: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    @property
    def passed(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "passed": self.passed, "problems": self.problems[:50],
                "problem_count": len(self.problems), "details": self.details, "skipped": self.skipped}


def validate_store(location: Location | str, plan: Plan | None = None, *, full: bool = False, reproduce_shards: int = 2,
                   rerender_samples: int = 2) -> dict[str, Any]:
    """Run every check on the store at ``location``; returns the report (a JSON-ready dict).

    ``report["passed"]`` is True when no check found a problem; ``report["checks"]``
    lists each check's name, problems, details and skip reason. ``full`` re-reads and
    re-hashes every shard (default: every shard's sizes from one listing, plus the
    ``reproduce_shards`` shards that are re-sampled) and compares every counterfactual pair's
    clips (default: :data:`CF_PAIRS_COMPARED` pairs). ``rerender_samples`` samples, plus one
    counterfactual partner when the store has pairs, are rendered again (and, for videos,
    simulated again). Raises SpecError when the store's spec cannot be read and KeyError when
    its world is not installed here.
    """
    location = resolve(location, arg="location")
    check_location(location, write=False)
    store = Store(location)
    attrs = store.attrs()
    if not attrs:
        return _report([Check("integrity", [not_a_store(store, location.redacted())])], None)
    if attrs.get("format") != FORMAT_VERSION:
        return _report([Check("integrity", [f"store format {attrs.get('format')} (written by an older crlgen); this crlgen "
                                            f"validates format {FORMAT_VERSION}: regenerate it with `crlgen run` on its spec.yaml"])], None)
    problem = unfinished(store, attrs) if plan is None else None
    if problem:
        return _report([Check("integrity", [problem])], None)
    plan = plan or load_plan(store)
    rng = np.random.default_rng(np.random.SeedSequence(plan.spec.seed, spawn_key=(0xBA11D,)))
    picks = sorted(rng.choice(len(plan.shards), size=min(reproduce_shards, len(plan.shards)), replace=False).tolist())
    listing = store.listing()
    markers = {k: store.marker(k) for k in range(len(plan.shards))}
    integrity = check_integrity(plan, store, attrs, list(range(len(plan.shards))) if full else picks,
                                listing=listing, markers=markers)
    if not _readable(plan, store):
        return _report([integrity], plan)
    lost = _lost_shards(plan, listing, markers)
    keep = np.ones(plan.spec.samples, bool)
    for k in lost:
        keep[slice(*plan.shards[k])] = False
    if plan.sampler != SAMPLER_VERSION:  # the samples cannot be re-derived: only integrity can be checked
        why = (f"the store was drawn by sampler {plan.sampler} and this crlgen draws with sampler {SAMPLER_VERSION}, so "
               "samples cannot be re-derived from the spec: regenerate it (`crlgen run --overwrite`) to run this check")
        return _report([integrity, *(Check(name, skipped=why) for name in _RE_DERIVING)], plan)
    g = store.group("r")
    data = {a.name: np.asarray(g[a.name][:]) for a in plan.sample_arrays}
    model = CompiledSCM(plan.spec, resamples="resampled" in data)
    world = build_world(plan.spec, threads=0) if plan.world_arrays or model.resamples else None
    try:
        checks = [
            check_reproducibility(plan, model, data, [k for k in picks if k not in lost], world),
            check_mechanisms(plan, model, data, keep),
            check_interventions(plan, model, data, keep),
            check_statistics(plan, model, data, keep),
        ]
        if model.resamples:
            checks.append(check_feasibility(plan, model, data, world, keep))
        samples = sorted(rng.choice(plan.spec.samples, size=min(rerender_samples, plan.spec.samples), replace=False).tolist())
        samples = [i for i in samples if keep[i]]
        pairs = [(a, b) for a, b in _pick_pairs(plan, data, None if full else CF_PAIRS_COMPARED) if keep[a] and keep[b]]
        rendered = sorted(set(samples) | {pairs[0][1]}) if pairs and rerender_samples > 0 else samples
        checks.append(check_rendering(plan, model, store, world, rendered, data))
        dynamics, world_checks = check_dynamics(plan, model, store, data, world, samples, rng, pairs, keep)
        checks += [dynamics, *world_checks, *check_still_world(plan, model, data, world, keep)]
    finally:
        if world is not None:
            world.close()
    if lost:
        note = (f"{int((~keep).sum())} sample(s) left out (shards {lost}): objects of theirs are missing, so their stored "
                "data read back as fill values, not data; the integrity check names them")
        for c in checks:
            c.details["left_out"] = note
    return _report([integrity, *checks], plan)


def _lost_shards(plan: Plan, listing: dict[str, int], markers: dict[int, dict[str, Any] | None]) -> list[int]:
    """Shards an object of which is missing although their commit marker records one: their samples read
    back as fill values (NaN, -1), so the checks that re-derive samples leave them out (integrity reports them)."""
    return [k for k in range(len(plan.shards)) if markers.get(k) and any(
        isinstance(o, dict) and o.get("bytes") is not None and o.get("key") not in listing
        for o in markers[k]["objects"].values())]


#: The checks that re-derive samples from the spec (skipped for a store another sampler version drew).
_RE_DERIVING = ("reproducibility", "mechanisms", "interventions", "statistics", "rendering", "dynamics")


def _readable(plan: Plan, store: Store) -> bool:
    try:
        g = store.group("r")
        for a in plan.sample_arrays:
            g[a.name][:]
        return True
    except Exception:  # noqa: BLE001 - any failure to read means later checks cannot run
        return False


def _report(checks: list[Check], plan: Plan | None) -> dict[str, Any]:
    return {"passed": all(c.passed for c in checks), "spec_hash": plan.spec_hash if plan else None,
            "samples": plan.spec.samples if plan else None, "checks": [c.as_dict() for c in checks]}


# ----- 1. integrity --------------------------------------------------------------------------
def check_integrity(plan: Plan, store: Store, attrs: dict[str, Any], rehash: list[int], *,
                    listing: dict[str, int] | None = None, markers: dict[int, dict[str, Any] | None] | None = None) -> Check:
    """Spec hash, arrays, every shard's objects against its marker (one listing), checksums of
    the shards in ``rehash``, latents finite and in range, depth sane in re-read shards, pairs symmetric.
    ``listing`` and ``markers`` (shard -> marker): the store's, where the caller has read them already."""
    c = Check("integrity")
    if attrs.get("spec_hash") != plan.spec_hash:
        c.problems.append(f"store spec hash {str(attrs.get('spec_hash'))[:12]} differs from its spec.yaml ({plan.spec_hash[:12]})")
    g = store.group("r")
    listing = store.listing() if listing is None else listing
    no_metadata = store.missing_metadata(plan, listing)  # readers without consolidated metadata need every array's own
    for a in plan.arrays:
        try:
            arr = g[a.name]
        except KeyError:
            if a.name not in no_metadata:  # else the line below says why
                c.problems.append(f"array {a.name} is missing")
            continue
        want = np.dtype(a.dtype) if a.dtype != "str" else None
        if tuple(arr.shape) != a.shape or (want is not None and arr.dtype != want):
            c.problems.append(f"array {a.name} is {arr.dtype}{tuple(arr.shape)}, expected {a.dtype}{a.shape}")
    c.problems += [f"array {name} has no zarr.json (its metadata); `crlgen run` on the same spec writes it again" for name in no_metadata]
    c.problems += _sidecar_problems(plan, store)
    markers = {k: store.marker(k) for k in range(len(plan.shards))} if markers is None else markers
    for k in range(len(plan.shards)):
        c.problems.extend(store.verify_sizes(plan, k, listing, markers[k]))
    for k in rehash:
        c.problems.extend(store.verify_checksums(plan, k, markers[k]))
    c.details = {"shards": len(plan.shards), "arrays": len(plan.arrays), "shards_size_checked": len(plan.shards),
                 "shards_rehashed": rehash if len(rehash) < len(plan.shards) else "all",
                 "coverage": ("every shard re-read and re-hashed" if len(rehash) == len(plan.shards) else
                              f"every shard's objects checked against the sizes in its marker (one listing); shards "
                              f"{rehash} re-read and re-hashed; `crlgen validate --full` re-hashes all {len(plan.shards)}")}
    if c.problems:
        return c
    lat = np.asarray(g["latents"][:])
    bad = ~np.isfinite(lat)
    if bad.any():
        c.problems.append(f"latents hold {int(bad.sum())} NaN/inf values")
    for j, node in enumerate(plan.spec.graph.nodes):
        lo, hi = node.variable.bounds()
        out = (lat[:, j] < lo) | (lat[:, j] > hi)
        if out.any():
            c.problems.append(f"{node.name}: {int(out.sum())} values outside the declared range [{lo:g}, {hi:g}]")
    if plan.has("depth"):
        for k in rehash:
            s0, s1 = plan.shards[k]
            d = np.asarray(g["depth"][s0:s1])
            if not np.isfinite(d).all() or (d < 0).any():
                c.problems.append(f"shard {k}: depth has NaN/inf or negative values")
    pair = np.asarray(g["pair"][:])
    has = pair >= 0
    if has.any() and not np.array_equal(pair[pair[has]], np.flatnonzero(has)):
        c.problems.append("pair indices are not symmetric (pair[pair[i]] != i)")
    return c


def _agrees(stored: Any, fresh: Any) -> bool:
    """Whether a stored sidecar says what a freshly computed one says: every key it has agrees
    (recursively; lists item by item). Keys only the fresh one has are what a later crlgen added
    (``context_nodes``, a node's ``unidentifiable``): a store an earlier crlgen wrote lacks them."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        return all(k in fresh and _agrees(v, fresh[k]) for k, v in stored.items())
    if isinstance(stored, list) and isinstance(fresh, list):
        return len(stored) == len(fresh) and all(_agrees(a, b) for a, b in zip(stored, fresh))
    return stored == fresh


def _sidecar_problems(plan: Plan, store: Store) -> list[str]:
    """The graph sidecar and the resolved spec must say what the plan says."""
    from ._sidecars import causal_graph

    out = []
    graph = store.read_json("causal_graph.json")
    if graph is None:
        out.append("causal_graph.json is missing or not valid JSON")
    elif not _agrees({k: v for k, v in graph.items() if k != "generator"},
                     {k: v for k, v in json.loads(json.dumps(causal_graph(plan))).items() if k != "generator"}):
        out.append("causal_graph.json differs from the graph the store's spec implies")
    text = store.read_text("spec.yaml")

    def dataset(spec: DatasetSpec) -> dict:  # where and how it is written (redacted in spec.yaml) is not the dataset
        return {k: v for k, v in spec.resolved().model_dump(mode="json").items() if k != "output"}

    try:
        same = text is not None and dataset(DatasetSpec.from_dict(parse_text(text, "spec.yaml"))) == dataset(plan.spec)
    except SpecError:
        same = False
    if not same:
        out.append("spec.yaml is missing or is not the store's spec")
    return out


# ----- 2. reproducibility ----------------------------------------------------------------------
def check_reproducibility(plan: Plan, model: CompiledSCM, data: dict, picks: list[int], world=None) -> Check:
    """The shards in ``picks`` re-sampled from the spec equal the stored sampler arrays bitwise. For a world
    that checks feasibility they are re-sampled the way the shard task did, asking the world again, so the
    stored ``resampled`` counts are re-derived too (not just read back)."""
    c = Check("reproducibility")
    for k in picks:
        a, b = plan.shards[k]
        fresh = sample_feasible(model, world, a, b, check=False) if model.resamples else model.sample(a, b, check=False)
        for name, arr in fresh.arrays().items():
            if not np.array_equal(arr, data[name][a:b], equal_nan=arr.dtype.kind == "f"):
                c.problems.append(f"shard {k}: re-sampled {name} differs from the stored one")
    c.details = {"shards_resampled": picks, **({"feasibility_asked_again": True} if model.resamples else {})}
    return c


def stored_sample(model: CompiledSCM, data: dict, a: int, b: int):
    """Samples ``a..b-1`` re-derived from the spec and the stored redraw counts (``resampled``, when the store has
    them): the batch their world was given, without asking the world again."""
    attempts = data["resampled"][a:b] if "resampled" in data else None
    return model.sample(a, b, check=False, attempts=attempts)


# ----- 2b. feasibility (worlds that check it) ----------------------------------------------------
def check_feasibility(plan: Plan, model: CompiledSCM, data: dict, world, keep: np.ndarray | None = None) -> Check:
    """Every stored sample is one its world can start from (``World.feasible`` on the stored latents), the
    redraw counts lie in ``[0, max_resamples]`` and both samples of a counterfactual pair share theirs.
    Details: how many samples were redrawn, the most redraws one took, the budget, and a note that the data
    follow the spec's distribution conditioned on feasibility. ``keep``: the samples to check (default all;
    see :func:`_lost_shards`)."""
    c = Check("feasibility")
    r = data["resampled"].astype(np.int64)
    keep = np.ones(r.size, bool) if keep is None else keep
    limit = plan.spec.max_resamples
    bad = ((r < 0) | (r > limit)) & keep
    if bad.any():
        c.problems.append(f"{int(bad.sum())} samples record redraw counts outside [0, {limit}] (first: sample {int(np.flatnonzero(bad)[0])})")
    pair = data["pair"]
    has = np.flatnonzero((pair >= 0) & (pair < r.size) & keep)
    has = has[keep[pair[has]]]
    split_pairs = has[r[has] != r[pair[has]]]
    if split_pairs.size:
        c.problems.append(f"{split_pairs.size} counterfactual pair members record other redraw counts than their partner "
                          f"(first: sample {int(split_pairs[0])}); a pair is redrawn together")
    lat = data["latents"]
    infeasible = []
    for a, b in plan.shards:
        if not keep[a:b].all():
            continue
        wb = world_batch(model, stored_sample(model, data, a, b))
        stored = WorldBatch(wb.index, {name: np.ascontiguousarray(lat[a:b, k]) for k, name in enumerate(model.names)},
                            wb.seeds, wb.edits)
        ok = np.asarray(world.feasible(stored))
        infeasible += (a + np.flatnonzero(~ok)).tolist()
    if infeasible:
        c.problems.append(f"{len(infeasible)} stored samples are ones world {plan.spec.world} cannot start from "
                          f"(first: sample {infeasible[0]})")
    r = r[keep]
    c.details = {"samples_checked": int(r.size), "resampled_samples": int((r > 0).sum()), "max_redraws": int(r.max(initial=0)),
                 "redraws": int(r.sum()), "max_resamples": limit,
                 "note": "the data follow the spec's distribution conditioned on feasibility (a selection)"}
    return c


# ----- 3. mechanisms ------------------------------------------------------------------------------
def _env(model: CompiledSCM, data: dict, rows: np.ndarray) -> dict[str, Any]:
    dom = data["domain"][rows]
    env: dict[str, Any] = {p: vals[dom] for p, vals in model.param_table.items()}
    for j, name in enumerate(model.names):
        env[name] = data["latents"][rows, j]
    return env


def check_mechanisms(plan: Plan, model: CompiledSCM, data: dict, keep: np.ndarray | None = None) -> Check:
    """Every non-intervened latent equals its mechanism (its domain's; a root's is its noise) applied to
    the stored parents and noise. ``keep``: the samples to check (default all; see :func:`_lost_shards`)."""
    c = Check("mechanisms")
    lat, noise, mask, dom = data["latents"], data["noise"], data["intervention_mask"], data["domain"]
    keep = np.ones(lat.shape[0], bool) if keep is None else keep
    checked = 0
    with np.errstate(all="ignore"):
        for j, node in enumerate(model.nodes):
            rows = np.flatnonzero(~mask[:, j] & keep)
            if rows.size == 0:
                continue
            env = _env(model, data, rows)
            env[NOISE_NAME] = noise[rows, j]
            if model.mech[j] is None:
                expect = noise[rows, j].copy()
            else:
                expect = np.broadcast_to(model.mech[j](env), rows.shape).astype(np.float64, copy=True)
            for d, f in model.domain_mech[j].items():  # a domain's mechanism, roots' included
                sel = dom[rows] == d
                if sel.any():
                    sub = {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in env.items()}
                    expect[sel] = np.broadcast_to(f(sub), (int(sel.sum()),))
            expect = _cast(node.variable, expect)
            got = lat[rows, j]
            bad = ~np.isclose(got, expect, rtol=1e-12, atol=0.0)
            checked += rows.size
            if bad.any():
                i = int(rows[np.flatnonzero(bad)[0]])
                c.problems.append(f"{node.name}: {int(bad.sum())} non-intervened samples break its equation "
                                  f"(first: sample {i}, stored {lat[i, j]:.6g}, equation gives {expect[np.flatnonzero(bad)[0]]:.6g})")
    c.details = {"values_checked": checked}
    return c


# ----- 4. interventions ------------------------------------------------------------------------
def check_interventions(plan: Plan, model: CompiledSCM, data: dict, keep: np.ndarray | None = None) -> Check:
    """Intervention masks match each sample's regime option (and the counterfactual intervention) restricted,
    for a target gated by a presence flag, to the samples where its object is present (the flag read in the
    sample's observational world, :func:`._validate_stats.observational_flags`), no sample records an option none of
    whose gated targets' objects is present, every
    intervened value holds its do / shift / scale / soft rule, and every counterfactual partner shares its
    factual sample's exogenous inputs (``details["counterfactual_pairs"]``: pair kind, count, what was compared).
    ``keep``: the samples to check (default all; see :func:`_lost_shards`)."""
    c = Check("interventions")
    lat, mask, ival, opt, role, noise = (data[k] for k in ("latents", "intervention_mask", "intervention_value",
                                                          "intervention", "pair_role", "noise"))
    n, L = lat.shape
    keep = np.ones(n, bool) if keep is None else keep
    gates = presence_gates(model)
    present = observational_flags(model, data)
    everywhere = np.ones(n, bool)

    def on(t: str) -> np.ndarray:  # where target t can be intervened on: its object present (if gated)
        return present[gates[t]] if t in gates else everywhere

    expected = np.zeros((n, L), bool)
    for o, targets in enumerate(model.options):
        rows = opt == o
        for t in targets:
            expected[rows & on(t), model.index[t]] = True
        if targets and all(t in gates for t in targets):  # none of its objects present: the sample stays observational
            absent = rows & keep & ~np.logical_or.reduce([on(t) for t in targets])
            if absent.any():
                c.problems.append(f"{int(absent.sum())} samples record option {o} ({', '.join(targets)}) although none of "
                                  f"its targets' objects is present (first: sample {int(np.flatnonzero(absent)[0])}); "
                                  "such a sample stays observational (-1)")
    if ((opt >= len(model.options)) | (opt < -1))[keep].any():
        c.problems.append("intervention holds option indices the spec does not define")
    cf = role == ROLE_COUNTERFACTUAL
    for t in model.cf_targets:
        expected[cf & on(t), model.index[t]] = True
    wrong = (expected != mask).any(axis=1) & keep
    if wrong.any():
        c.problems.append(f"{int(wrong.sum())} samples have an intervention mask that does not match their regime option "
                          f"(first: sample {int(np.flatnonzero(wrong)[0])})")
    with np.errstate(all="ignore"):
        for t, entries in model.by_target.items():
            j = model.index[t]
            node = model.nodes[j]
            for src, iv in entries:
                rows = np.flatnonzero(cf) if src == "cf" else np.flatnonzero((opt == src) & ~(cf & (t in model.cf_targets)))
                rows = rows[mask[rows, j] & keep[rows]]
                if rows.size == 0:
                    continue
                got = lat[rows, j]
                if isinstance(iv, Do) and iv.space:  # in [low, high] of the target's space in the sample's domain
                    lo, hi = (b[data["domain"][rows]] for b in model.space_bounds[t])
                    ok = (got == _cast(node.variable, ival[rows, j].copy())) & (got >= lo) & (got <= hi)
                elif isinstance(iv, Do):
                    if iv.value is not None:
                        ok = got == _cast(node.variable, np.full(rows.size, iv.value))
                    else:
                        lo, hi = iv.dist.support()
                        ok = (got == _cast(node.variable, ival[rows, j].copy())) & (got >= lo) & (got <= hi)
                else:
                    env = _env(model, data, rows)
                    env[NOISE_NAME] = noise[rows, j]
                    if isinstance(iv, Soft):
                        if iv.noise is not None:  # its own noise is not stored: check it is finite only
                            ok = np.isfinite(got)
                        else:
                            ok = np.isclose(got, _cast(node.variable, np.broadcast_to(model.soft_mech[(src, t)](env), rows.shape).copy()), rtol=1e-12, atol=0)
                    else:
                        base = model.mech[j](env) if model.mech[j] is not None else noise[rows, j]
                        base = _cast(node.variable, np.broadcast_to(base, rows.shape).astype(np.float64, copy=True))
                        new = base + iv.by if isinstance(iv, Shift) else base * iv.by
                        ok = np.isclose(got, _cast(node.variable, new), rtol=1e-12, atol=0) & (ival[rows, j] == iv.by)
                if not ok.all():
                    i = int(rows[np.flatnonzero(~ok)[0]])
                    c.problems.append(f"{t}: {int((~ok).sum())} samples do not hold their {iv.kind} intervention "
                                      f"({'counterfactual' if src == 'cf' else f'option {src}'}; first: sample {i}, value {lat[i, j]:.6g})")
    c.details = {"intervened_samples": int((mask.any(axis=1) & keep).sum()), "options": len(model.options),
                 "counterfactual_pairs": _pair_problems(plan, model, data, c.problems, keep)}
    return c


def _pair_kind(model: CompiledSCM) -> str | None:
    """How a spec's counterfactual partners differ from their factual sample: "intervention", "edit" or None."""
    if model.cf_targets:
        return "intervention"
    return "edit" if any(e.counterfactual for e in model.edits) else None


def _reach(plan: Plan, names: set[str]) -> set[str]:
    """``names`` and everything downstream of them, through every edge any domain or soft intervention adds."""
    g = plan.spec.graph
    return set(names).union(*(g.descendants(n, extra=True) for n in names))


def _pair_problems(plan: Plan, model: CompiledSCM, data: dict, problems: list[str], keep: np.ndarray | None = None) -> dict[str, Any]:
    """Every counterfactual partner shares its factual sample's exogenous inputs (noise, domain, regime
    option, split, temporal edits) and, for an intervention pair, every latent that is not the target or a
    descendant of it; an edit pair shares every latent. Pairs with a sample not in ``keep`` are left out.
    Appends problem lines; returns the details."""
    kind = _pair_kind(model)
    role, pair = data["pair_role"], data["pair"]
    part = np.flatnonzero(role == ROLE_COUNTERFACTUAL)
    if kind is None or part.size == 0:
        return {"kind": kind, "pairs": int(part.size)}
    fact = pair[part]
    if (fact < 0).any() or (fact >= role.size).any():
        problems.append("counterfactual partners point at samples outside the store")
        return {"kind": kind, "pairs": int(part.size)}
    if keep is not None:
        both = keep[part] & keep[fact]
        part, fact = part[both], fact[both]
    moved = _reach(plan, set(model.cf_targets))
    shared = [j for j, n in enumerate(model.names) if n not in moved]
    lat, noise = data["latents"], data["noise"]
    same = {
        "noise": np.array([np.array_equal(a, b, equal_nan=True) for a, b in zip(noise[part], noise[fact])]),
        "latents outside the intervention's descendants": (lat[part][:, shared] == lat[fact][:, shared]).all(axis=1),
    }
    for name in ("domain", "intervention", "split"):
        same[name] = data[name][part] == data[name][fact]
    plain = [k for k, e in enumerate(model.edits) if not e.counterfactual]
    if plain:
        same["temporal edits"] = ((data["edit_frame"][part][:, plain] == data["edit_frame"][fact][:, plain])
                                  & _same_or_both_nan(data["edit_value"][part][:, plain], data["edit_value"][fact][:, plain])).all(axis=1)
    for what, ok in same.items():
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            problems.append(f"{int((~ok).sum())} counterfactual partners differ from their factual sample in {what} "
                            f"(first: pair {int(fact[i])}/{int(part[i])})")
    return {"kind": kind, "pairs": int(part.size), "shared_latents": len(shared),
            "compared": sorted(same)}


# ----- 5. statistics -----------------------------------------------------------------------------
def check_statistics(plan: Plan, model: CompiledSCM, data: dict, keep: np.ndarray | None = None) -> Check:
    """Independencies the graph implies hold in each domain's observational samples (rank correlation,
    binned chi-square, and KCI for the local Markov property), and interventions move only descendants
    of their targets (KS), under one Benjamini-Hochberg control at ``_validate_stats.ALPHA``; tests without enough
    samples are listed in ``details["not_tested"]``. The tests and their sources: :mod:`._validate_stats`.

    In a store whose world redrew infeasible samples the stored data are conditioned on feasibility (a
    selection, which can make latents dependent that the graph keeps independent): the tests then run on
    the spec's first draws of every sample (re-derived with no redraws), and the dependencies only the
    stored data show are listed in ``details["selection_dependencies"]``, not counted as problems.
    ``keep``: the stored samples to test (default all; see :func:`_lost_shards`)."""
    c = Check("statistics")
    if keep is not None and not keep.all():
        data = {k: v[keep] for k, v in data.items()}
    if "resampled" in data and data["resampled"].any():
        # the stored samples are the feasible ones: a selection that can couple the latents the world's feasibility
        # reads (two objects' positions), so the graph's independencies are tested on the spec's first draws of every
        # sample (before any redraw), and what the stored data show beyond them is reported as the selection's effect
        first = model.sample(0, plan.spec.samples, check=False).arrays()
        c.problems, c.details, c.skipped = statistics(plan, model, first)
        selected, _, _ = statistics(plan, model, data)
        c.details = {**c.details, "tested_on": "the spec's first draws of every sample (before feasibility redraws)",
                     "selection_dependencies": [p for p in selected if p not in c.problems]}
        return c
    c.problems, c.details, c.skipped = statistics(plan, model, data)
    return c


# ----- 6. rendering --------------------------------------------------------------------------------
def check_rendering(plan: Plan, model: CompiledSCM, store: Store, world, picks: list[int], data: dict | None = None) -> Check:
    """Re-rendered samples (``picks``; :func:`validate_store` adds a counterfactual partner, so that a partner
    is shown to be its own latents' rendering) equal the stored outputs, each under the comparison its world declared."""
    c = Check("rendering")
    if world is None:
        c.skipped = "latents-only dataset"
        return c
    g = store.group("r")
    for i in picks:
        fresh = world.render(world_batch(model, stored_sample(model, data or {}, i, i + 1))).outputs
        for a in plan.world_arrays:
            c.problems += [f"sample {i}: re-rendered {p}" for p in a.compare.problems(a.name, np.asarray(g[a.name][i:i + 1]), fresh[a.name])]
    c.details = {"samples_rerendered": picks, "compared": {a.name: a.compare.describe() for a in plan.world_arrays}}
    return c


# ----- 7. dynamics (worlds that simulate) ----------------------------------------------------------
def _stored_columns(plan: Plan, sim_names: tuple[str, ...]) -> list[int] | None:
    if not plan.has("state"):
        return None
    return [sim_names.index(str(s)) for s in plan.array("state").values]


def _pick_pairs(plan: Plan, data: dict, limit: int | None) -> list[tuple[int, int]]:
    """(factual, partner) of up to ``limit`` counterfactual pairs (None: all), chosen with the spec's seed, sorted."""
    part = np.flatnonzero(data["pair_role"] == ROLE_COUNTERFACTUAL)
    if limit is not None and part.size > limit:
        rng = np.random.default_rng(np.random.SeedSequence(plan.spec.seed, spawn_key=(0xBA11D, 1)))
        part = np.sort(rng.choice(part, size=limit, replace=False))
    n = data["pair_role"].size
    return [(int(data["pair"][j]), int(j)) for j in part if 0 <= data["pair"][j] < n]  # (others: the interventions check)


def _world_reads(world, model: CompiledSCM) -> set[str]:
    """The latents (expanded names) the world reads: its required and optional latents, by template."""
    read = set(world.info.latents) | set(world.info.optional_latents)
    return {n.name for n in model.nodes if n.template in read or n.name in read}


def _timed_outputs(plan: Plan) -> list[str]:
    """The world outputs with a time axis (frames, depth, segmentation, camera poses, states)."""
    return [a.name for a in plan.world_arrays if len(a.dims) > 1 and a.dims[1] == "time"]


def _pixel_outputs(plan: Plan) -> list[str]:
    """What "visible" means: the world's timed ``rgb`` outputs (every timed output when it has none)."""
    timed = _timed_outputs(plan)
    return [a.name for a in plan.world_arrays if a.name in timed and a.kind == "rgb"] or timed


def _seen_from(plan: Plan, world, wb: WorldBatch, plain: WorldBatch, t: int, rendered: dict[str, np.ndarray]) -> int | None:
    """The first frame from ``t`` on at which the pixels (:func:`_pixel_outputs`) of sample 0 of ``wb`` (its render:
    ``rendered``) differ from those of ``plain`` (the same sample without one edit, rendered here); None: identical."""
    pixels = _pixel_outputs(plan)
    if not pixels or t >= len(rendered[pixels[0]]):
        return None
    without = world.render(plain).outputs
    seen = _first_difference({n: rendered[n][t:] for n in pixels}, {n: np.asarray(without[n][0])[t:] for n in pixels})
    return None if seen is None else t + seen


def _first_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> int | None:
    """The first frame at which any of the paired (time, ...) arrays differ; None when all are identical."""
    first = None
    for name, x in a.items():
        y = b[name]
        diff = (x != y) if x.dtype.kind != "f" else ~((x == y) | (np.isnan(x) & np.isnan(y)))
        frames = np.flatnonzero(diff.reshape(diff.shape[0], -1).any(axis=1))
        if frames.size and (first is None or frames[0] < first):
            first = int(frames[0])
    return first


def _by_how_much(name: str, a: np.ndarray, b: np.ndarray) -> str:
    """``"states by at most 1.4e-16"`` for float arrays (rounding or a real change), else the name."""
    if a.dtype.kind != "f":
        return name
    with np.errstate(invalid="ignore"):
        return f"{name} by at most {float(np.nanmax(np.abs(a.astype(np.float64) - b.astype(np.float64)))):.2g}"


def check_dynamics(plan: Plan, model: CompiledSCM, store: Store, data: dict, world, picks: list[int],
                   rng, pairs: list[tuple[int, int]] = (), keep: np.ndarray | None = None) -> tuple[Check, list[Check]]:
    """Re-simulated state series equal the stored ones; edits act at their frame; counterfactual pairs
    (``pairs``: (factual, partner) sample indices) are compared in every output with a time axis.

    Per pair kind: an *edit* partner equals its factual sample in every such output before the edit's
    frame; an *intervention* partner differs in the latents the intervention moves. Either way, where
    the counterfactual changes something the world reads (an edit that is not a no-op; a latent the
    world reads), the two clips' pixels (the world's ``rgb`` outputs) must differ in some frame:
    identical pixels mean the counterfactual had no visible effect, a problem. The first :data:`CF_PAIRS_RESIMULATED` pairs
    are also re-simulated (both samples): their stored states must equal the fresh simulation, and the
    frame at which their simulated states diverge is reported. An edit that cannot act (:func:`_no_op`, e.g. one
    that sets a light red while it is red anyway; for a pair, the factual's stored state already holds the edit's
    value over the edit's frames) is listed in ``edits_no_op`` (a pair's finding says ``no_op``), not a problem. Any
    other edit has acted (counted in ``edits_acted``) when the states or the pixels change from its frame on: only
    when the states are unchanged is the sample rendered with and without the edit, and an edit seen in the pixels
    alone (a goal disc moved; the goal is no state) is listed in ``edits_acted_in_pixels_only``. An edit of a global
    latent the world reads (``goal.y``, a mass, a desired speed) that leaves states and pixels unchanged to the clip's
    end did not get a chance to act within the clip (the dynamics absorbed it, e.g. a heavier cube still resting
    untouched or a braking car given a new desired speed, or the clip ended first): it is listed in
    ``edits_without_effect``, not a problem. An edit of a time-varying state (a light's state, a velocity) that
    should act and leaves states and pixels unchanged is one. Absent agents' NaN states compare equal to NaN. Also
    runs the world's own checks on every re-simulated sample; returns (dynamics, [one check per world check]).
    Edited samples not in ``keep`` (see :func:`_lost_shards`) are not picked.
    """
    c = Check("dynamics")
    if world is None or not world.can_simulate():
        c.skipped = "the world does not simulate" if world is not None else "latents-only dataset"
        return c, []
    g = store.group("r")
    ef = data.get("edit_frame", np.zeros((plan.spec.samples, 0), np.int32))
    edited = np.flatnonzero((ef >= 0).any(axis=1) & (True if keep is None else keep)) if ef.size else np.zeros(0, int)
    picks = set(picks) | (set(rng.choice(edited, size=min(2, edited.size), replace=False).tolist()) if edited.size else set())
    resim_pairs = list(pairs[:CF_PAIRS_RESIMULATED])
    picks = sorted(picks | {i for p in resim_pairs for i in p})
    checked_edits, no_op_edits, acted, pixels_only, without_effect = 0, [], 0, [], []
    sims: dict[int, tuple[WorldBatch, Any]] = {}
    renders: dict[int, dict[str, np.ndarray]] = {}  # sample -> its pixels with every edit, rendered once when needed
    for i in picks:
        wb = world_batch(model, stored_sample(model, data, i, i + 1))
        sim = world.simulate(wb)
        sims[i] = (wb, sim)
        cols = _stored_columns(plan, sim.state_names)
        if cols is not None and not np.array_equal(sim.states[:, :, cols], np.asarray(g["states"][i:i + 1]), equal_nan=True):
            c.problems.append(f"sample {i}: re-simulated states differ from the stored ones")
        if plan.has("inputs") and not np.array_equal(sim.inputs, np.asarray(g["inputs"][i:i + 1])):
            c.problems.append(f"sample {i}: re-simulated inputs differ from the stored ones")
        for k, e in enumerate(wb.edits):
            t = int(e.frame[0])
            if t < 0:
                continue
            others = tuple(x for j, x in enumerate(wb.edits) if j != k)
            plain = world.simulate(WorldBatch(wb.index, wb.latents, wb.seeds, others)).states
            checked_edits += 1
            if not np.array_equal(sim.states[0, :t], plain[0, :t], equal_nan=True):
                c.problems.append(f"sample {i}: edit {k} ({e.target} {e.op}) changed states before its frame {t}")
            label = f"sample {i}: edit {k} ({e.target} {e.op} {e.value[0]:g})"
            if _no_op(e, wb, plain[0], sim.state_names, sim.states[0]):
                no_op_edits.append(label)
                continue
            if not np.array_equal(sim.states[0, t:], plain[0, t:], equal_nan=True):
                acted += 1
                continue
            if i not in renders:
                out = world.render(wb).outputs
                renders[i] = {n: np.asarray(out[n][0]) for n in _pixel_outputs(plan)}
            seen = _seen_from(plan, world, wb, WorldBatch(wb.index, wb.latents, wb.seeds, others), t, renders[i])
            if seen is not None:
                acted += 1
                pixels_only.append(f"{label}: pixels differ from frame {seen}")
            elif e.target in wb.latents:
                without_effect.append(f"{label}: did not act within the clip (states and pixels unchanged to its end)")
            else:
                c.problems.append(f"{label} had no effect from frame {t} (states and pixels unchanged)")
    c.details = {"samples_resimulated": picks, "edits_checked": checked_edits, "edits_no_op": no_op_edits,
                 "edits_acted": acted, "edits_acted_in_pixels_only": pixels_only, "edits_without_effect": without_effect,
                 **_compare_pairs(plan, model, g, data, world, pairs, sims, c.problems)}
    world_checks = []
    for wc in type(world).checks:
        wcheck = Check(wc.name)
        for wb, sim in sims.values():
            wcheck.problems += wc.run(world, wb, sim)
        wcheck.details = {"owner": plan.spec.world, "rule": wc.description, "samples": picks}
        world_checks.append(wcheck)
    return c, world_checks


def check_still_world(plan: Plan, model: CompiledSCM, data: dict, world, keep: np.ndarray | None = None) -> list[Check]:
    """The checks of a world that does not simulate (still images), run on every sample's stored latents.

    Such a world's checks compare stored latents with what it renders (e.g. a latent the spec derives by a
    mechanism while the engine derives it by physics); they get ``simulation=None``. Returns one check per
    world check ([] for a simulating world, whose checks :func:`check_dynamics` runs, or no world). Shards
    with a sample not in ``keep`` (see :func:`_lost_shards`) are left out.
    """
    if world is None or world.can_simulate() or not type(world).checks:
        return []
    n = plan.spec.samples
    spans = [(0, n)] if keep is None or keep.all() else [(a, b) for a, b in plan.shards if keep[a:b].all()]
    stored = []
    for a, b in spans:
        wb = world_batch(model, stored_sample(model, data, a, b))
        stored.append(WorldBatch(wb.index, {name: np.ascontiguousarray(data["latents"][a:b, k], dtype=np.float64)
                                            for k, name in enumerate(model.names)}, wb.seeds, wb.edits))
    out = []
    for wc in type(world).checks:
        c = Check(wc.name, [p for batch in stored for p in wc.run(world, batch, None)])
        c.details = {"owner": plan.spec.world, "rule": wc.description, "samples": sum(b - a for a, b in spans)}
        out.append(c)
    return out


def _compare_pairs(plan: Plan, model: CompiledSCM, g, data: dict, world, pairs: list[tuple[int, int]],
                   sims: dict[int, tuple[WorldBatch, Any]], problems: list[str]) -> dict[str, Any]:
    """Compare each counterfactual pair's clips (every output with a time axis); append problem lines and
    return the details (``counterfactual_pairs_checked`` and ``counterfactual_pairs``, per pair kind)."""
    kind = _pair_kind(model)
    timed = _timed_outputs(plan)
    total = int((data["pair_role"] == ROLE_COUNTERFACTUAL).sum())
    if kind is None or not pairs or not timed:
        return {"counterfactual_pairs_checked": 0, "counterfactual_pairs": {"kind": kind, "pairs": total, "compared": 0}}
    pixels = _pixel_outputs(plan)
    cf_col = next((k for k, e in enumerate(model.edits) if e.counterfactual), None)
    reads = _world_reads(world, model)
    lat, names = data["latents"], model.names
    identical, findings = [], []
    what = (", ".join(f"{t}: {iv.model_dump(mode='json') if not isinstance(iv, Soft) else f'soft({iv.mechanism})'}"
                      for t, iv in model.cf_targets.items()) if kind == "intervention" else
            f"{model.edits[cf_col].target} {model.edits[cf_col].op}")
    for f, j in pairs:
        clip_f = {name: np.asarray(g[name][f]) for name in timed}
        clip_j = {name: np.asarray(g[name][j]) for name in timed}
        first = _first_difference(clip_f, clip_j)
        seen = _first_difference({n: clip_f[n] for n in pixels}, {n: clip_j[n] for n in pixels})
        finding: dict[str, Any] = {"pair": [f, j], "frames_differ_from": seen, "outputs_differ_from": first}
        if kind == "edit":
            t = int(data["edit_frame"][j, cf_col])
            finding["edit_frame"] = t
            if first is not None and first < t:
                bad = [n for n in timed if not np.array_equal(clip_f[n][:t], clip_j[n][:t], equal_nan=True)]
                problems.append(f"pair {f}/{j}: {', '.join(bad)} differ before the counterfactual edit at frame {t}")
            e, v = model.edits[cf_col], float(data["edit_value"][j, cf_col])
            held = t >= 0 and _state_held(plan, g, f, e, t, v, unchanged=first is None)
            if held:
                finding["no_op"] = "the factual clip's stored state already holds the edit's value"
            visible = t >= 0 and not ((e.op == "add" and v == 0.0) or (e.op == "scale" and v == 1.0) or held)
        else:
            moved = [n for k, n in enumerate(names) if lat[f, k] != lat[j, k]]
            finding["latents_differ"] = moved
            visible = bool(set(moved) & reads)
        if seen is None and visible:
            identical.append([f, j])
            cause = (f"changes {', '.join(n for n in finding['latents_differ'] if n in reads)}" if kind == "intervention"
                     else f"acts from frame {finding['edit_frame']}")
            other = [_by_how_much(n, clip_f[n], clip_j[n]) for n in timed
                     if n not in pixels and not np.array_equal(clip_f[n], clip_j[n], equal_nan=True)]
            problems.append(f"pair {f}/{j}: {', '.join(pixels)} identical in every frame although the counterfactual {kind} "
                            f"({what}) {cause}: it has no visible effect"
                            + (f" (other outputs differ: {'; '.join(other)})" if other else ""))
        if f in sims and j in sims:
            a, b = sims[f][1].states[0], sims[j][1].states[0]
            div = np.flatnonzero(~((a == b) | (np.isnan(a) & np.isnan(b))).reshape(a.shape[0], -1).all(axis=1))
            finding["simulated_states_diverge_at"] = int(div[0]) if div.size else None
        findings.append(finding)
    return {"counterfactual_pairs_checked": len(pairs),
            "counterfactual_pairs": {"kind": kind, "pairs": total, "compared": len(pairs), "compared_outputs": timed,
                                     "visible_in": pixels,
                                     "resimulated": [[f, j] for f, j in pairs if f in sims and j in sims],
                                     "identical_clips": identical, "findings": findings[:CF_FINDINGS_REPORTED]}}


def _state_held(plan: Plan, g, f: int, edit, t: int, v: float, unchanged: bool = False) -> bool:
    """Whether a counterfactual edit ``set`` of a stored time-varying state is a no-op for the pair of factual
    sample ``f`` (the rules of :func:`_no_op`): the factual's stored state already equals ``v`` from frame ``t`` to
    the edit's end, or at frame ``t`` with the two clips ``unchanged`` (equal in every timed output)."""
    if edit.op != "set" or not plan.has("state"):
        return False
    names = [str(s) for s in plan.array("state").values]
    if edit.target not in names:
        return False
    stored = np.asarray(g["states"][f])[:, names.index(edit.target)]
    held = stored[t:edit.end if edit.end >= 0 else len(stored)]
    return held.size > 0 and (bool(np.all(held == v)) or (unchanged and stored[t] == v))


def _no_op(edit, wb, plain: np.ndarray | None = None, state_names: Sequence[str] = (),
           edited: np.ndarray | None = None) -> bool:
    """An edit (of sample 0 of ``wb``) that cannot change anything: add 0, scale 1, set a global latent to its
    current value, or set a time-varying state to a value it holds anyway:

    - held: without the edit the state has that value in every frame the edit is active (from its frame to its end
      frame, exclusive; the clip's end when it has none), e.g. ``light[0].state = 0`` while the light is red all along;
    - already there: the state has that value at the edit's frame without it, and the edit changed no state
      (``edited`` equal to ``plain``): an edit that acts on a change, e.g. ``pedestrian[0].walking = 1`` (step out)
      while the pedestrian is already crossing.

    ``plain`` and ``edited``: (T, S) states simulated without and with the edit, named by ``state_names``."""
    v = float(edit.value[0])
    if edit.op == "add":
        return v == 0.0
    if edit.op == "scale":
        return v == 1.0
    current = wb.latents.get(edit.target)
    if current is not None:
        return float(current[0]) == v
    if plain is None or edit.target not in state_names:
        return False
    start, end = int(edit.frame[0]), int(edit.end_frame[0])
    col = list(state_names).index(edit.target)
    held = plain[start:end if end >= 0 else len(plain), col]
    if held.size > 0 and bool(np.all(held == v)):
        return True
    return (edited is not None and start < len(plain) and plain[start, col] == v
            and np.array_equal(edited, plain, equal_nan=True))


#: Lists longer than this are shown as a count in the one-line summaries (the JSON report keeps them whole).
SUMMARY_LIST_ITEMS = 6


def _compact(v: Any) -> Any:
    """Details for a one-line summary: long lists and lists of records become counts."""
    if isinstance(v, dict):
        return {k: _compact(x) for k, x in v.items()}
    if isinstance(v, list) and (len(v) > SUMMARY_LIST_ITEMS or any(isinstance(x, dict) for x in v)):
        return f"{len(v)} {'item' if len(v) == 1 else 'items'} (see --json)"
    return v


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report as text: one line per check (PASS / FAIL / SKIP, its details or skip reason), up to ten
    problem lines, and one ``not tested: too few samples`` line per statistical test that lacked samples."""
    out = []
    for ch in report["checks"]:
        mark = "SKIP" if ch["skipped"] and ch["passed"] else ("PASS" if ch["passed"] else "FAIL")
        details = {k: v for k, v in ch["details"].items() if k != "not_tested"}
        extra = ch["skipped"] or json.dumps(_compact(details), sort_keys=True)
        out.append(f"{mark} {ch['name']}: {extra}")
        out.extend(f"     - {p}" for p in ch["problems"][:10])
        out.extend(f"     not tested: {t['reason']}: {t['test']} (n = {t['n']}, needs {t['min']})"
                   for t in ch["details"].get("not_tested", ()))
    return out


def _same_or_both_nan(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise: equal, or both NaN (``edit_value`` is NaN where an edit is not applied)."""
    return (a == b) | (np.isnan(a) & np.isnan(b))
