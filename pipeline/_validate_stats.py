"""Validation's statistics check: the independencies a store's graph implies, and what interventions move.

Four families of tests, all p-values under one Benjamini-Hochberg false-discovery control at
:data:`ALPHA`, each run within a domain (a domain may change mechanisms, so pooled data need
not follow any one graph), on observational samples only (not intervened, not counterfactual
partners, which share their factual sample's noise):

(a) each stochastic variable's noise ``eps`` is independent of every non-descendant;
(b) two variables with no directed path between them and no common ancestor are independent;
(c) the local Markov property: each stochastic non-root variable X is independent of each
    non-descendant Y given its parents, X _||_ Y | pa(X), tested with the kernel-based
    conditional-independence test KCI (Zhang, Peters, Janzing & Schoelkopf 2011, "Kernel-based
    conditional independence test and application in causal discovery", UAI), as implemented by
    causal-learn;
(d) an intervention leaves the distribution of every non-descendant of its targets unchanged
    (two-sample Kolmogorov-Smirnov against the observational samples).

(a) and (b) run two tests per pair: Spearman's rank correlation (monotone dependence) and
Pearson's chi-square test of independence on a contingency table of quantile bins (any
dependence that moves mass between bins, e.g. y = x^2 with x symmetric around 0, which no
correlation sees). Both are O(n) per pair, so every pair is tested at any size; KCI is O(n^3)
and runs on a deterministic subsample of at most :data:`CI_MAX_ROWS` rows, for at most
:data:`CI_MAX_STATEMENTS` statements per store.

Presence-gated options (a target on an object with a ``present`` flag is intervened on only where the
object is present) select samples on the flags: which option a sample gets, and whether it stays
observational. The selection is a node the flags point to, so (a)-(c) leave out what it couples (both
sides reached by the flags' ancestry), and (d) compares a latent that ancestry reaches within each
configuration of the flags, and does not test the flags; ``details["presence_selection"]`` says what and why.

A test that cannot run for lack of samples is listed in the check's ``details["not_tested"]``
with its sample count and the minimum it needs: it never fails the check, and it is never silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..schemas.graph import mechanism_names
from ..schemas.variables import NOISE_NAME
from ._scm import ROLE_COUNTERFACTUAL, CompiledSCM, _cast

if TYPE_CHECKING:
    from ._plan import Plan

#: Benjamini-Hochberg false-discovery rate over every test of the check.
ALPHA = 0.01
#: Observational samples a domain needs for the rank-correlation tests (a) and (b).
MIN_INDEPENDENCE_SAMPLES = 30
#: Quantile bins per variable in the chi-square tests of (a) and (b) (4 x 4 tables).
BINS = 4
#: Observational samples a domain needs for the chi-square tests: 5 expected counts in each of BINS^2 cells.
MIN_BINNED_SAMPLES = 5 * BINS * BINS
#: Observational samples a domain needs for the KCI conditional-independence tests (c).
MIN_CI_SAMPLES = 100
#: KCI is O(n^3) in time and O(n^2) in memory: each domain's rows are subsampled (deterministically) to this many.
CI_MAX_ROWS = 300
#: Most local-Markov statements tested with KCI per store (about 0.03-0.07 s each at CI_MAX_ROWS rows).
CI_MAX_STATEMENTS = 24
#: Samples an intervention option (and the observational pool it is compared with) needs for the KS tests (d).
MIN_OPTION_SAMPLES = 30

TOO_FEW = "too few samples"


@dataclass(frozen=True)
class _DomainGraph:
    """The graph as one domain's mechanisms draw it (overrides may add or drop parents)."""

    parents: dict[str, tuple[str, ...]]
    stochastic: dict[str, bool]  # a root, or an equation that reads eps
    descendants: dict[str, set[str]]
    ancestors: dict[str, set[str]]


def _domain_graph(plan: Plan, domain: int) -> _DomainGraph:
    spec = plan.spec
    g = spec.graph
    names = g.names
    mechs = spec.domain_overrides(list(spec.domains)[domain])[0] if spec.domains else {}
    parents: dict[str, tuple[str, ...]] = {}
    stochastic: dict[str, bool] = {}
    for node in g.nodes:
        mech = mechs.get(node.name, node.mechanism)
        used = mechanism_names(mech) if mech else frozenset()
        parents[node.name] = tuple(n for n in names if n in used)
        stochastic[node.name] = mech is None or NOISE_NAME in used
    children: dict[str, list[str]] = {n: [] for n in names}
    for c, ps in parents.items():
        for p in ps:
            children[p].append(c)
    desc: dict[str, set[str]] = {}
    for n in reversed(names):  # topological order: children are done first
        desc[n] = set(children[n]).union(*(desc[c] for c in children[n])) if children[n] else set()
    anc = {n: {m for m in names if n in desc[m]} for n in names}
    return _DomainGraph(parents, stochastic, desc, anc)


def _bh(pvals: list[float], alpha: float = ALPHA) -> np.ndarray:
    """Benjamini-Hochberg rejections at false-discovery rate ``alpha`` (Benjamini & Hochberg 1995, JRSS B 57)."""
    if not pvals:
        return np.zeros(0, bool)
    from scipy.stats import false_discovery_control

    return false_discovery_control(np.asarray(pvals), method="bh") < alpha


def _standard_ranks(values: np.ndarray) -> np.ndarray:
    """Per column (shape (n, k)): average ranks, centred and scaled to unit norm; a constant column stays 0."""
    from scipy.stats import rankdata

    r = rankdata(values, axis=0)
    r -= r.mean(axis=0)
    norm = np.sqrt((r * r).sum(axis=0))
    return np.divide(r, norm, out=np.zeros_like(r), where=norm > 0)


def spearman_p(rx: np.ndarray, ry: np.ndarray) -> float:
    """Two-sided p-value of Spearman's rank correlation from two columns of :func:`_standard_ranks`
    (shape (n,)): Pearson's correlation of the ranks with the t approximation, t = r sqrt((n - 2) / (1 - r^2))
    on n - 2 degrees of freedom, as ``scipy.stats.spearmanr`` computes it (Spearman 1904; Zar 1972,
    JASA 67). 1.0 when either column is constant."""
    from scipy.special import stdtr

    n = rx.size
    if n < 3 or not rx.any() or not ry.any():
        return 1.0
    r = float(np.clip(rx @ ry, -1.0, 1.0))
    if abs(r) == 1.0:
        return 0.0
    stat = r * np.sqrt((n - 2) / (1.0 - r * r))
    return float(2 * stdtr(n - 2, -abs(stat)))  # two-sided tail of Student's t


def _bin_codes(x: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Each value's quantile bin, 0..k-1 with no empty bin (k <= bins); a variable with at most
    ``bins`` distinct values (categorical, boolean) keeps its own levels. Shape (n,) int64."""
    levels, codes = np.unique(x, return_inverse=True)
    if levels.size <= bins:
        return codes.astype(np.int64)
    edges = np.quantile(x, np.arange(1, bins) / bins)
    raw = np.searchsorted(edges, x, side="right")
    return np.unique(raw, return_inverse=True)[1].astype(np.int64)


def chi2_binned_p(cx: np.ndarray, cy: np.ndarray) -> float:
    """P-value of Pearson's chi-square test of independence on the contingency table of two
    bin-code vectors (shape (n,) ints from 0, every code present): the statistic
    sum (O - E)^2 / E with (kx - 1)(ky - 1) degrees of freedom (Pearson 1900; e.g. Agresti,
    *Categorical Data Analysis*, 3rd ed., section 3.2). 1.0 when either variable has a single bin."""
    from scipy.special import chdtrc

    kx, ky = int(cx.max()) + 1, int(cy.max()) + 1
    if kx < 2 or ky < 2:
        return 1.0
    n = cx.size
    table = np.bincount(cx * ky + cy, minlength=kx * ky).reshape(kx, ky).astype(np.float64)
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / n
    stat = float(((table - expected) ** 2 / expected).sum())
    return float(chdtrc((kx - 1) * (ky - 1), stat))  # upper tail of chi-square


def kci_p(x: np.ndarray, y: np.ndarray, z: np.ndarray | None) -> float:
    """P-value of the kernel-based (conditional) independence test KCI of x _||_ y | z.

    ``x`` and ``y`` shape (n,) or (n, d), ``z`` shape (n, k) or None / k = 0 for the unconditional
    test (then HSIC with KCI's gamma approximation). Gaussian kernels with causal-learn's
    empirical widths, gamma approximation of the null (deterministic: no permutations).
    Source: K. Zhang, J. Peters, D. Janzing and B. Schoelkopf, "Kernel-based conditional
    independence test and application in causal discovery", UAI 2011; implementation:
    ``causallearn.utils.KCI.KCI`` (what ``causallearn.utils.cit.CIT(data, "kci")`` runs).
    Time O(n^3), memory O(n^2): keep n to a few hundred.
    """
    from causallearn.utils.KCI.KCI import KCI_CInd, KCI_UInd

    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    if not np.ptp(x, axis=0).any() or not np.ptp(y, axis=0).any():
        return 1.0  # a constant is independent of anything
    with np.errstate(all="ignore"):
        if z is None or np.asarray(z).size == 0:
            p = KCI_UInd().compute_pvalue(x, y)[0]
        else:
            p = KCI_CInd().compute_pvalue(x, y, np.asarray(z, np.float64).reshape(len(z), -1))[0]
    return float(np.clip(p, 0.0, 1.0)) if np.isfinite(p) else 1.0  # degenerate kernels (no variation left) give NaN


def presence_gates(model: CompiledSCM) -> dict[str, str]:
    """Each regime option's or counterfactual target whose object has a presence flag that is not always 1
    (``vehicle[0].rt`` -> ``vehicle[0].present``; see ``DatasetSpec.presence_flag``): the sampler intervenes on
    it only in the samples where that flag, read in the sample's observational world, is set."""
    spec = model.spec
    targets = {t for opt in model.options for t in opt} | set(model.cf_targets)
    flags = {t: spec.presence_flag(t) for t in sorted(targets)}
    return {t: f for t, f in flags.items() if f is not None and not spec.always_present(f)}


def observational_flags(model: CompiledSCM, data: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each gating flag of :func:`presence_gates` in every stored sample's observational world: its equations
    (its domain's) evaluated on the stored noise, domain and parameters, with no intervention, as the sampler
    reads it. {flag: (n,) bool}; only the flags and their ancestors are evaluated."""
    flags = set(presence_gates(model).values())
    if not flags:
        return {}
    g = model.spec.graph
    need = flags.union(*(g.ancestors(f, extra=True) for f in flags))
    dom, noise = data["domain"].astype(np.int64), data["noise"]
    env: dict[str, Any] = {p: vals[dom] for p, vals in model.param_table.items()}
    with np.errstate(all="ignore"):
        for j, node in enumerate(model.nodes):  # topological order
            if node.name not in need:
                continue
            env[NOISE_NAME] = noise[:, j]
            val = (noise[:, j].copy() if model.mech[j] is None else
                   np.broadcast_to(model.mech[j](env), dom.shape).astype(np.float64, copy=True))
            for d, f in model.domain_mech[j].items():
                sel = dom == d
                if sel.any():
                    sub = {k: (v[sel] if isinstance(v, np.ndarray) else v) for k, v in env.items()}
                    val[sel] = np.broadcast_to(f(sub), (int(sel.sum()),))
            env[node.name] = _cast(node.variable, val)
    return {f: np.asarray(env[f]) != 0 for f in sorted(flags, key=model.index.get)}


def _selection_flags(model: CompiledSCM) -> tuple[list[str], list[str]]:
    """The presence flags on which the gated regime selects samples: (those deciding which samples stay
    observational, those deciding which option a sample gets). A sets or explicit option all of whose targets
    are gated becomes observational where none of them is present; a single-node draw picks among the options
    whose object is present, and stays observational only when every option is gated and none is present."""
    gates = presence_gates(model)
    per_option = [[gates.get(t) for t in opt] for opt in model.options]
    full = [fs for fs in per_option if fs and all(fs)]
    order = lambda fs: sorted(set(fs), key=model.index.get)  # noqa: E731
    if model.regime == "single_node":
        every = order(f for fs in per_option for f in fs if f)
        return (every if len(full) == len(per_option) else []), every
    chosen = order(f for fs in full for f in fs)
    return chosen, chosen


def _statement(x: str, y: str, given: tuple[str, ...]) -> str:
    return f"{x} _||_ {y}" + (f" | {', '.join(given)}" if given else "")


def _determined(dg: _DomainGraph, names: tuple[str, ...], given: set[str]) -> set[str]:
    """Variables that are functions of ``given``: given itself, and every deterministic equation of determined parents."""
    out = set(given)
    for n in names:
        if n not in out and not dg.stochastic[n] and dg.parents[n] and set(dg.parents[n]) <= out:
            out.add(n)
    return out


def _interleave(lists: list[list[Any]]) -> list[Any]:
    """Round-robin over lists: the first item of each, then the second of each, ..."""
    out = []
    for k in range(max((len(x) for x in lists), default=0)):
        out += [x[k] for x in lists if k < len(x)]
    return out


def statistics(plan: Plan, model: CompiledSCM, data: dict[str, np.ndarray]) -> tuple[list[str], dict[str, Any], str | None]:
    """(problems, details, skip reason or None) of the statistics check: independencies the graph implies
    hold in each domain's observational samples, and interventions move only descendants of their targets;
    see the module docstring for the tests.

    ``data`` holds the store's sample arrays by name (``latents`` (n, L) float64, ``noise`` (n, L),
    ``intervention`` (n,), ``pair_role`` (n,), ``domain`` (n,)). Every p-value joins one
    Benjamini-Hochberg family at :data:`ALPHA`; a rejection of an implied independence is a problem.
    Which interventions visibly moved their targets is reported, not failed (a small shift need not be
    detectable; the interventions check proves every value). Tests without enough samples are listed in
    ``details["not_tested"]`` (test, reason, n, min) and do not fail the check. With presence-gated options,
    what the gate's selection shifts is left out or compared within presence strata (module docstring).
    """
    from scipy.stats import ks_2samp

    problems: list[str] = []
    names = model.names
    lat, noise, opt, role, dom = (data[k] for k in ("latents", "noise", "intervention", "pair_role", "domain"))
    indep = (role != ROLE_COUNTERFACTUAL) & np.isfinite(lat).all(axis=1)  # partners share their factual sample's
    obs = indep & (opt == -1)                                                # noise; NaN latents: an integrity problem
    tests: list[tuple[str, str, float]] = []  # (label, test name, p)
    not_tested: list[dict[str, Any]] = []
    counts = {"spearman": 0, "chi_square": 0, "kci": 0, "ks": 0}
    ci_candidates: list[list[tuple[int, str, str, tuple[str, ...]]]] = []
    deterministic: set[str] = set()
    obs_flags, option_flags = _selection_flags(model)
    selection_left_out: list[str] = []

    def skip(test: str, n: int, need: int) -> None:
        not_tested.append({"test": test, "reason": TOO_FEW, "n": int(n), "min": int(need)})

    for d, dname in enumerate(model.domain_names):
        rows = np.flatnonzero(obs & (dom == d))
        n = rows.size
        dg = _domain_graph(plan, d)
        where = f"domain {dname}"
        # constant columns (nothing to test) are known only with enough rows; below that, count every statement
        const = {name for j, name in enumerate(names) if np.ptp(lat[rows, j]) == 0} if n >= MIN_CI_SAMPLES else set()
        # which samples stay observational depends on presence flags (a gated option with none of its objects
        # present leaves its sample observational): a selection that couples the flags' ancestors and, through
        # them, their descendants. ``upstream``: the flags and their ancestors (whose noise reaches the selection);
        # ``coupled``: those and their descendants. A pair with both sides coupled is left out.
        upstream = set(obs_flags).union(*(dg.ancestors[f] for f in obs_flags))
        coupled = upstream.union(*(dg.descendants[a] for a in upstream))
        # (a) + (b): pairs the graph calls independent, as (label, (x array, x column), (y array, y column))
        pairs: list[tuple[str, tuple[str, int], tuple[str, int]]] = []
        for j, node in enumerate(model.nodes):
            x = node.name
            if node.mechanism is None or not dg.stochastic[x] or not np.isfinite(noise[rows, j]).all():
                continue
            for k, y in enumerate(names):
                if y == x or y in dg.descendants[x]:
                    continue
                if x in upstream and y in coupled:
                    selection_left_out.append(f"{where}: noise of {x} vs {y}")
                    continue
                pairs.append((f"{where}: noise of {x} vs {y}", ("noise", j), ("latents", k)))
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                x, y = names[a], names[b]
                if x in dg.ancestors[y] or y in dg.ancestors[x] or (dg.ancestors[x] | {x}) & (dg.ancestors[y] | {y}):
                    continue
                if x in coupled and y in coupled:
                    selection_left_out.append(f"{where}: {x} vs {y}")
                    continue
                pairs.append((f"{where}: {x} vs {y}", ("latents", a), ("latents", b)))
        if pairs and n < MIN_INDEPENDENCE_SAMPLES:
            skip(f"{where}: {len(pairs)} pairwise independence tests (Spearman, binned chi-square)", n, MIN_INDEPENDENCE_SAMPLES)
        elif pairs:
            binned = n >= MIN_BINNED_SAMPLES
            if not binned:
                skip(f"{where}: {len(pairs)} binned chi-square tests (nonlinear dependence)", n, MIN_BINNED_SAMPLES)
            values = {"latents": lat[rows], "noise": noise[rows]}
            with np.errstate(invalid="ignore"):  # noise columns of variables without noise are NaN (never paired)
                ranks = {kind: _standard_ranks(v) for kind, v in values.items()}
            codes: dict[tuple[str, int], np.ndarray] = {}
            for label, xs, ys in pairs:
                tests.append((label, "Spearman", spearman_p(ranks[xs[0]][:, xs[1]], ranks[ys[0]][:, ys[1]])))
                counts["spearman"] += 1
                if binned:
                    for key in (xs, ys):
                        if key not in codes:
                            codes[key] = _bin_codes(values[key[0]][:, key[1]])
                    tests.append((label, "binned chi-square", chi2_binned_p(codes[xs], codes[ys])))
                    counts["chi_square"] += 1
        # (c) local Markov statements X _||_ Y | pa(X), X stochastic with parents
        stmts = []
        for j, node in enumerate(model.nodes):
            x = node.name
            pa = dg.parents[x]
            if not pa:
                continue
            if not dg.stochastic[x]:
                deterministic.add(x)
                continue
            if x in const:
                continue
            given = tuple(p for p in pa if p not in const)
            det = _determined(dg, names, set(given) | const)
            ys = [y for y in names if y != x and y not in pa and y not in dg.descendants[x] and y not in det]
            if x in upstream:
                selection_left_out += [f"{where}: {_statement(x, y, given)}" for y in ys if y in coupled]
                ys = [y for y in ys if y not in coupled]
            if ys:  # rotate, so that a cap that keeps one statement per variable still varies the partners
                r = len(stmts) % len(ys)
                stmts.append([(d, x, y, given) for y in ys[r:] + ys[:r]])
        flat = _interleave(stmts)
        if flat and n < MIN_CI_SAMPLES:
            skip(f"{where}: {len(flat)} conditional-independence statements (KCI)", n, MIN_CI_SAMPLES)
            flat = []
        ci_candidates.append(flat)

    # (c) run KCI on the first CI_MAX_STATEMENTS statements, round-robin over domains
    chosen = _interleave(ci_candidates)
    tested_ci, over_cap = chosen[:CI_MAX_STATEMENTS], len(chosen) - min(len(chosen), CI_MAX_STATEMENTS)
    subsample: dict[int, np.ndarray] = {}
    for d, x, y, given in tested_ci:
        if d not in subsample:
            rows = np.flatnonzero(obs & (dom == d))
            if rows.size > CI_MAX_ROWS:
                rng = np.random.default_rng(np.random.SeedSequence(plan.spec.seed, spawn_key=(0xC1, d)))
                rows = np.sort(rng.choice(rows, size=CI_MAX_ROWS, replace=False))
            subsample[d] = rows
        rows = subsample[d]
        col = lambda name: lat[rows, model.index[name]]  # noqa: E731
        z = np.stack([col(p) for p in given], axis=1) if given else None
        label = f"domain {model.domain_names[d]}: {_statement(x, y, given)}"
        tests.append((label, f"KCI, {rows.size} rows", kci_p(col(x), col(y), z)))
        counts["kci"] += 1

    # (d) an intervention leaves non-descendants' distributions unchanged (base graph: domains share it)
    g = plan.spec.graph
    desc = {n: g.descendants(n) for n in names}
    obs_rows = np.flatnonzero(obs)
    moved, small = [], []
    move_tests: list[tuple[str, float, int]] = []
    # presence-gated options: which option a sample gets, or whether it stays observational, depends on presence
    # flags, so the flags and what their ancestry reaches differ between an option's samples and the observational
    # ones with no intervention at all. Such a latent is compared within the samples of one configuration of the
    # flags (a stratum), where the selection is constant; the flags themselves are constant there, so untested.
    sel_up = set(option_flags).union(*(g.ancestors(f, extra=True) for f in option_flags))
    sel_coupled = sel_up.union(*(g.descendants(a, extra=True) for a in sel_up))
    strata = np.zeros(lat.shape[0], np.int64)
    configs = np.zeros((1, 0), bool)
    if option_flags:
        present = observational_flags(model, data)
        configs, strata = np.unique(np.stack([present[f] for f in option_flags], axis=1), axis=0, return_inverse=True)
        strata = strata.reshape(-1)
    selected_on: list[str] = []

    def ks(a: np.ndarray, b: np.ndarray, k: int) -> float:
        counts["ks"] += 1
        both = np.r_[lat[a, k], lat[b, k]]
        return float(ks_2samp(lat[a, k], lat[b, k]).pvalue) if np.ptp(both) > 0 else 1.0

    for o, targets in enumerate(model.options):
        rows = np.flatnonzero(indep & (opt == o))
        label = f"option {o} ({', '.join(targets)}): KS tests of {len(names)} latents against observational samples"
        if rows.size < MIN_OPTION_SAMPLES or obs_rows.size < MIN_OPTION_SAMPLES:
            small.append(o)
            if rows.size < MIN_OPTION_SAMPLES:
                skip(label, rows.size, MIN_OPTION_SAMPLES)
            else:
                skip(label + " (the observational pool)", obs_rows.size, MIN_OPTION_SAMPLES)
            continue
        downstream = set().union(*(desc[t] for t in targets)) | set(targets)
        within = [k for k, name in enumerate(names) if name not in downstream and name in sel_coupled - set(option_flags)]
        selected_on += [f"option {o}: {name}" for name in option_flags if name not in downstream]
        for k, name in enumerate(names):
            if name in downstream:
                move_tests.append((f"option {o}: {name}", ks(rows, obs_rows, k), o))
            elif name not in sel_coupled:
                tests.append((f"option {o} ({', '.join(targets)}): non-descendant {name} moved", "KS", ks(rows, obs_rows, k)))
        too_small = []
        for code in np.unique(strata[rows]) if within else ():
            a, b = rows[strata[rows] == code], obs_rows[strata[obs_rows] == code]
            if min(a.size, b.size) < MIN_OPTION_SAMPLES:
                too_small.append(min(a.size, b.size))
                continue
            among = ", ".join(f"{f}={int(v)}" for f, v in zip(option_flags, configs[code]))
            tests += [(f"option {o} ({', '.join(targets)}): non-descendant {names[k]} moved among samples with {among}",
                       "KS", ks(a, b, k)) for k in within]
        if too_small:
            skip(f"option {o}: KS tests of {', '.join(names[k] for k in within)} within {len(too_small)} presence "
                 f"strata ({', '.join(option_flags)}), in the stratum's option and observational samples", max(too_small),
                 MIN_OPTION_SAMPLES)
    rejected = _bh([p for *_, p in tests])
    for (label, test, p), r in zip(tests, rejected):
        if r:
            problems.append(f"{label}: dependence where the graph implies none ({test}, p={p:.2g}, BH at {ALPHA})")
    undetected = []
    if move_tests:
        rej = _bh([p for _, p, _ in move_tests])
        for o in sorted({o for *_, o in move_tests}):
            (moved if any(r for (_, _, oo), r in zip(move_tests, rej) if oo == o) else undetected).append(o)
    details = {
        "independence_tests": len(tests), "tests_by_kind": counts, "observational_samples": int(obs.sum()),
        "conditional_independence": {
            "test": f"KCI (Zhang et al. 2011), at most {CI_MAX_ROWS} rows per domain",
            "statements_tested": [f"domain {model.domain_names[d]}: {_statement(x, y, gv)}" for d, x, y, gv in tested_ci],
            "statements_not_tested_over_cap": over_cap, "cap": CI_MAX_STATEMENTS,
            "deterministic_given_parents": sorted(deterministic, key=names.index),
        },
        "options_moved": moved, "options_effect_not_detected": undetected, "options_skipped_small": small,
        "not_tested": not_tested,
    }
    if obs_flags or option_flags:
        details["presence_selection"] = {
            "flags": option_flags,
            "reason": ("gated interventions act only on present objects, so presence flags decide which option a sample "
                       "gets and whether it stays observational: a selection on the flags, which shifts them and "
                       "whatever their ancestry reaches without any intervention moving it"),
            "independence_tests_left_out": selection_left_out,
            "option_tests_within_presence_strata": "latents downstream of the flags' ancestry, per configuration of the flags",
            "option_tests_left_out": selected_on,
        }
    skipped = None
    if not tests and not move_tests:
        skipped = "no statistical test had enough samples" if not_tested else "the graph implies no independence to test"
    return problems, details, skipped
