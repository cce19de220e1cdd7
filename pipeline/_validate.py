"""The validation stage: proves a store's latents agree with its spec and its pixels.

Checks: integrity, reproducibility, mechanisms, interventions, statistics (with
Benjamini-Hochberg false-discovery control), rendering (every world output, compared
as its world declares), dynamics (for worlds that simulate), and each check the world
itself declares (e.g. ``penetration``, ``energy``), reported under its own name. The report is deterministic (no timings) so that it is part of the
byte-identical store, and states what it covered: by default every shard's
objects are checked against their recorded sizes from one listing and a few
shards are re-read and re-hashed; ``full=True`` re-hashes every shard.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..scenes.base import WorldBatch
from ..scenes.registry import build_world
from ..schemas import DatasetSpec, SpecError
from ..schemas._yaml import parse_text
from ..schemas.interventions import Do, Shift, Soft
from ..schemas.variables import NOISE_NAME
from ._plan import FORMAT_VERSION, Plan
from ._reading import load_plan
from ._scm import ROLE_COUNTERFACTUAL, CompiledSCM, _cast
from ._store import Store
from ._tasks import world_batch
from ._urls import Location, check_location, resolve

ALPHA = 0.01
MIN_GROUP = 30


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
    ``reproduce_shards`` shards that are re-sampled). ``rerender_samples`` samples are
    rendered again (and, for videos, simulated again). Raises SpecError when the store's
    spec cannot be read and KeyError when its world is not installed here.
    """
    location = resolve(location, arg="location")
    check_location(location, write=False)
    store = Store(location)
    attrs = store.attrs()
    if not attrs:
        return _report([Check("integrity", [f"{location.redacted()}: not a crlgen store (no zarr group with crlgen attributes)"])], None)
    if attrs.get("format") != FORMAT_VERSION:
        return _report([Check("integrity", [f"store format {attrs.get('format')} (written by an older crlgen); this crlgen "
                                            f"validates format {FORMAT_VERSION}: regenerate it with `crlgen run` on its spec.yaml"])], None)
    if store.read_text("spec.yaml") is None and plan is None:
        return _report([Check("integrity", [f"the run writing this store has not finished (status {attrs.get('status')}): "
                                            "run `crlgen run` on the same spec again to finish it"])], None)
    plan = plan or load_plan(store)
    rng = np.random.default_rng(np.random.SeedSequence(plan.spec.seed, spawn_key=(0xBA11D,)))
    picks = sorted(rng.choice(len(plan.shards), size=min(reproduce_shards, len(plan.shards)), replace=False).tolist())
    integrity = check_integrity(plan, store, attrs, list(range(len(plan.shards))) if full else picks)
    if not _readable(plan, store):
        return _report([integrity], plan)
    g = store.group("r")
    data = {a.name: np.asarray(g[a.name][:]) for a in plan.sample_arrays}
    model = CompiledSCM(plan.spec)
    checks = [
        integrity,
        check_reproducibility(plan, model, data, picks),
        check_mechanisms(plan, model, data),
        check_interventions(plan, model, data),
        check_statistics(plan, model, data),
    ]
    samples = sorted(rng.choice(plan.spec.samples, size=min(rerender_samples, plan.spec.samples), replace=False).tolist())
    world = build_world(plan.spec, threads=0) if plan.world_arrays else None
    try:
        checks.append(check_rendering(plan, model, store, world, samples))
        dynamics, world_checks = check_dynamics(plan, model, store, data, world, samples, rng)
        checks += [dynamics, *world_checks]
    finally:
        if world is not None:
            world.close()
    return _report(checks, plan)


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
def check_integrity(plan: Plan, store: Store, attrs: dict[str, Any], rehash: list[int]) -> Check:
    """Spec hash, arrays, every shard's objects against its marker (one listing), checksums of
    the shards in ``rehash``, latents finite and in range, depth sane in re-read shards, pairs symmetric."""
    c = Check("integrity")
    if attrs.get("spec_hash") != plan.spec_hash:
        c.problems.append(f"store spec hash {str(attrs.get('spec_hash'))[:12]} differs from its spec.yaml ({plan.spec_hash[:12]})")
    g = store.group("r")
    for a in plan.arrays:
        try:
            arr = g[a.name]
        except KeyError:
            c.problems.append(f"array {a.name} is missing")
            continue
        want = np.dtype(a.dtype) if a.dtype != "str" else None
        if tuple(arr.shape) != a.shape or (want is not None and arr.dtype != want):
            c.problems.append(f"array {a.name} is {arr.dtype}{tuple(arr.shape)}, expected {a.dtype}{a.shape}")
    listing = store.listing()
    for a in plan.arrays:  # readers without consolidated metadata need every array's own
        if f"{a.name}/zarr.json" not in listing:
            c.problems.append(f"array {a.name} has no zarr.json (its metadata); readers that do not use the consolidated metadata lose it")
    c.problems += _sidecar_problems(plan, store)
    markers = {k: store.marker(k) for k in range(len(plan.shards))}
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


def _sidecar_problems(plan: Plan, store: Store) -> list[str]:
    """The graph sidecar and the resolved spec must say what the plan says."""
    from ._sidecars import causal_graph

    out = []
    graph = store.read_json("causal_graph.json")
    if graph is None:
        out.append("causal_graph.json is missing or not valid JSON")
    elif {k: v for k, v in graph.items() if k != "generator"} != {
            k: v for k, v in json.loads(json.dumps(causal_graph(plan))).items() if k != "generator"}:
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
def check_reproducibility(plan: Plan, model: CompiledSCM, data: dict, picks: list[int]) -> Check:
    """The shards in ``picks`` re-sampled from the spec equal the stored sampler arrays bitwise."""
    c = Check("reproducibility")
    for k in picks:
        a, b = plan.shards[k]
        for name, arr in model.sample(a, b, check=False).arrays().items():
            if not np.array_equal(arr, data[name][a:b], equal_nan=arr.dtype.kind == "f"):
                c.problems.append(f"shard {k}: re-sampled {name} differs from the stored one")
    c.details = {"shards_resampled": picks}
    return c


# ----- 3. mechanisms ------------------------------------------------------------------------------
def _env(model: CompiledSCM, data: dict, rows: np.ndarray) -> dict[str, Any]:
    dom = data["domain"][rows]
    env: dict[str, Any] = {p: vals[dom] for p, vals in model.param_table.items()}
    for j, name in enumerate(model.names):
        env[name] = data["latents"][rows, j]
    return env


def check_mechanisms(plan: Plan, model: CompiledSCM, data: dict) -> Check:
    c = Check("mechanisms")
    lat, noise, mask, dom = data["latents"], data["noise"], data["intervention_mask"], data["domain"]
    checked = 0
    with np.errstate(all="ignore"):
        for j, node in enumerate(model.nodes):
            rows = np.flatnonzero(~mask[:, j])
            if rows.size == 0:
                continue
            if model.mech[j] is None:
                expect = _cast(node.variable, noise[rows, j].copy())
            else:
                env = _env(model, data, rows)
                env[NOISE_NAME] = noise[rows, j]
                expect = np.broadcast_to(model.mech[j](env), rows.shape).astype(np.float64, copy=True)
                for d, f in model.domain_mech[j].items():
                    sel = dom[rows] == d
                    if sel.any():
                        sub = {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in env.items()}
                        expect[sel] = f(sub)
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
def check_interventions(plan: Plan, model: CompiledSCM, data: dict) -> Check:
    c = Check("interventions")
    lat, mask, ival, opt, role, noise = (data[k] for k in ("latents", "intervention_mask", "intervention_value",
                                                          "intervention", "pair_role", "noise"))
    n, L = lat.shape
    expected = np.zeros((n, L), bool)
    for o, targets in enumerate(model.options):
        rows = opt == o
        for t in targets:
            expected[rows, model.index[t]] = True
    if (opt >= len(model.options)).any() or (opt < -1).any():
        c.problems.append("intervention holds option indices the spec does not define")
    cf = role == ROLE_COUNTERFACTUAL
    for t in model.cf_targets:
        expected[cf, model.index[t]] = True
    wrong = (expected != mask).any(axis=1)
    if wrong.any():
        c.problems.append(f"{int(wrong.sum())} samples have an intervention mask that does not match their regime option "
                          f"(first: sample {int(np.flatnonzero(wrong)[0])})")
    with np.errstate(all="ignore"):
        for t, entries in model.by_target.items():
            j = model.index[t]
            node = model.nodes[j]
            for src, iv in entries:
                rows = np.flatnonzero(cf) if src == "cf" else np.flatnonzero((opt == src) & ~(cf & (t in model.cf_targets)))
                rows = rows[mask[rows, j]]
                if rows.size == 0:
                    continue
                got = lat[rows, j]
                if isinstance(iv, Do):
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
    c.details = {"intervened_samples": int(mask.any(axis=1).sum()), "options": len(model.options)}
    return c


# ----- 5. statistics -----------------------------------------------------------------------------
def _bh(pvals: list[float], alpha: float = ALPHA) -> np.ndarray:
    """Benjamini-Hochberg rejections."""
    if not pvals:
        return np.zeros(0, bool)
    from scipy.stats import false_discovery_control

    return false_discovery_control(np.asarray(pvals), method="bh") < alpha


def _spearman_p(x: np.ndarray, y: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return 1.0
    return float(spearmanr(x, y).pvalue)


def check_statistics(plan: Plan, model: CompiledSCM, data: dict) -> Check:
    """Independencies the graph implies hold in observational data; interventions move only descendants."""
    from scipy.stats import ks_2samp

    c = Check("statistics")
    g = plan.spec.graph
    lat, noise, opt, role, dom = (data[k] for k in ("latents", "noise", "intervention", "pair_role", "domain"))
    indep = role != ROLE_COUNTERFACTUAL  # partners share noise with their factual sample
    obs = indep & (opt == -1)
    names = model.names
    desc = {n: g.descendants(n) for n in names}
    anc = {n: {m for m in names if n in desc[m]} for n in names}
    tests: list[tuple[str, float]] = []
    for d in range(len(model.domain_names)):
        rows = np.flatnonzero(obs & (dom == d))
        if rows.size < MIN_GROUP:
            continue
        # (a) each noise term is independent of the variable's non-descendants
        for j, node in enumerate(model.nodes):
            if node.mechanism is None or not np.isfinite(noise[rows, j]).all():
                continue
            for k, other in enumerate(names):
                if other == node.name or other in desc[node.name]:
                    continue
                tests.append((f"domain {model.domain_names[d]}: noise of {node.name} vs {other}", _spearman_p(noise[rows, j], lat[rows, k])))
        # (b) variables with no common ancestor and no directed path between them are independent
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                x, y = names[a], names[b]
                if x in anc[y] or y in anc[x] or (anc[x] | {x}) & (anc[y] | {y}):
                    continue
                tests.append((f"domain {model.domain_names[d]}: {x} vs {y}", _spearman_p(lat[rows, a], lat[rows, b])))
    # (c) an intervention leaves non-descendants' distributions unchanged
    obs_rows = np.flatnonzero(obs)
    moved, skipped = [], []
    move_tests: list[tuple[str, float, int]] = []
    for o, targets in enumerate(model.options):
        rows = np.flatnonzero(indep & (opt == o))
        if rows.size < MIN_GROUP or obs_rows.size < MIN_GROUP:
            skipped.append(o)
            continue
        downstream = set().union(*(desc[t] for t in targets)) | set(targets)
        for k, name in enumerate(names):
            p = float(ks_2samp(lat[rows, k], lat[obs_rows, k]).pvalue) if np.ptp(np.r_[lat[rows, k], lat[obs_rows, k]]) > 0 else 1.0
            if name in downstream:
                move_tests.append((f"option {o}: {name}", p, o))
            else:
                tests.append((f"option {o} ({', '.join(targets)}): non-descendant {name} moved", p))
    rejected = _bh([p for _, p in tests])
    for (label, p), r in zip(tests, rejected):
        if r:
            c.problems.append(f"{label}: dependence where the graph implies none (p={p:.2g}, BH at {ALPHA})")
    # (d) which interventions visibly move their targets or descendants: reported, not failed, since a
    # legitimately small shift need not be detectable (check 4 already proves every value holds)
    undetected = []
    if move_tests:
        rej = _bh([p for _, p, _ in move_tests])
        for o in sorted({o for *_, o in move_tests}):
            (moved if any(r for (_, _, oo), r in zip(move_tests, rej) if oo == o) else undetected).append(o)
    c.details = {"independence_tests": len(tests), "observational_samples": int(obs.sum()),
                 "options_moved": moved, "options_effect_not_detected": undetected, "options_skipped_small": skipped}
    if not tests and not move_tests:
        c.skipped = f"fewer than {MIN_GROUP} observational samples per domain"
    return c


# ----- 6. rendering --------------------------------------------------------------------------------
def check_rendering(plan: Plan, model: CompiledSCM, store: Store, world, picks: list[int]) -> Check:
    """Re-rendered samples equal the stored outputs, each under the comparison its world declared."""
    c = Check("rendering")
    if world is None:
        c.skipped = "latents-only dataset"
        return c
    g = store.group("r")
    for i in picks:
        fresh = world.render(world_batch(model, model.sample(i, i + 1, check=False))).outputs
        for a in plan.world_arrays:
            c.problems += [f"sample {i}: re-rendered {p}" for p in a.compare.problems(a.name, np.asarray(g[a.name][i:i + 1]), fresh[a.name])]
    c.details = {"samples_rerendered": picks, "compared": {a.name: a.compare.describe() for a in plan.world_arrays}}
    return c


# ----- 7. dynamics (worlds that simulate) ----------------------------------------------------------
def _stored_columns(plan: Plan, sim_names: tuple[str, ...]) -> list[int] | None:
    if not plan.has("state"):
        return None
    return [sim_names.index(str(s)) for s in plan.array("state").values]


def check_dynamics(plan: Plan, model: CompiledSCM, store: Store, data: dict, world, picks: list[int],
                   rng) -> tuple[Check, list[Check]]:
    """Re-simulated state series equal the stored ones; edits act at their frame; counterfactual partners
    equal their factual sample before their edit. Also runs the world's own checks on the re-simulated
    samples; returns (dynamics, [one check per world check])."""
    c = Check("dynamics")
    if world is None or not world.can_simulate():
        c.skipped = "the world does not simulate" if world is not None else "latents-only dataset"
        return c, []
    g = store.group("r")
    ef = data.get("edit_frame", np.zeros((plan.spec.samples, 0), np.int32))
    role, pair = data["pair_role"], data["pair"]
    edited = np.flatnonzero((ef >= 0).any(axis=1)) if ef.size else np.zeros(0, int)
    picks = sorted(set(picks) | (set(rng.choice(edited, size=min(2, edited.size), replace=False).tolist()) if edited.size else set()))
    checked_edits = 0
    sims = []
    for i in picks:
        wb = world_batch(model, model.sample(i, i + 1, check=False))
        sim = world.simulate(wb)
        sims.append((wb, sim))
        cols = _stored_columns(plan, sim.state_names)
        if cols is not None and not np.array_equal(sim.states[:, :, cols], np.asarray(g["states"][i:i + 1])):
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
            if not np.array_equal(sim.states[0, :t], plain[0, :t]):
                c.problems.append(f"sample {i}: edit {k} ({e.target} {e.op}) changed states before its frame {t}")
            if not _no_op(e, wb) and np.array_equal(sim.states[0, t:], plain[0, t:]):
                c.problems.append(f"sample {i}: edit {k} ({e.target} {e.op} {e.value[0]:g}) had no effect from frame {t}")
    # counterfactual videos: every output with a time axis is identical before the partner's edit
    cf_cols = [k for k, e in enumerate(model.edits) if e.counterfactual]
    timed = [a.name for a in plan.world_arrays if len(a.dims) > 1 and a.dims[1] == "time"]
    pairs_checked = 0
    for j in np.flatnonzero(role == ROLE_COUNTERFACTUAL)[:4] if cf_cols else ():
        t, f = int(ef[j, cf_cols[0]]), int(pair[j])
        if t <= 0:
            continue
        pairs_checked += 1
        for name in timed:
            if not np.array_equal(np.asarray(g[name][j, :t]), np.asarray(g[name][f, :t]), equal_nan=True):
                c.problems.append(f"pair {f}/{j}: {name} differ before the counterfactual edit at frame {t}")
    c.details = {"samples_resimulated": picks, "edits_checked": checked_edits, "counterfactual_pairs_checked": pairs_checked}
    world_checks = []
    for wc in type(world).checks:
        wcheck = Check(wc.name)
        for wb, sim in sims:
            wcheck.problems += wc.run(world, wb, sim)
        wcheck.details = {"owner": plan.spec.world, "rule": wc.description, "samples": picks}
        world_checks.append(wcheck)
    return c, world_checks


def _no_op(edit, wb) -> bool:
    """An edit that cannot change anything (add 0, scale 1, set a global to its current value)."""
    v = float(edit.value[0])
    if edit.op == "add":
        return v == 0.0
    if edit.op == "scale":
        return v == 1.0
    current = wb.latents.get(edit.target)
    return current is not None and float(current[0]) == v


def summary_lines(report: dict[str, Any]) -> list[str]:
    out = []
    for ch in report["checks"]:
        mark = "SKIP" if ch["skipped"] and ch["passed"] else ("PASS" if ch["passed"] else "FAIL")
        extra = ch["skipped"] or json.dumps(ch["details"], sort_keys=True)
        out.append(f"{mark} {ch['name']}: {extra}")
        out.extend(f"     - {p}" for p in ch["problems"][:10])
    return out
