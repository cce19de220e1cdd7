"""An outside check of the causal claims: causal-learn's PC (Spirtes, Glymour & Scheines 2000, with the
kernel conditional-independence test KCI of Zhang, Peters, Janzing & Schölkopf 2011), a library crlgen
did not write, runs on the observational latents of a generated spring store and its result must agree
with the store's own `causal_graph.json`.

What "agree" can mean is set by the spring's mass: m = rho * pi * r^2 * h has no noise, so m is a
function of its parents and m ⊥ l | {h, r, rho} holds although m -> l is an edge (Geiger, Verma & Pearl
1990, "Identifying independence in Bayesian networks", Networks 20: D-separation). The joint law of
all six latents is therefore not faithful to the graph, the assumption PC needs to find every edge.
So the checks are:

- on all six latents, PC is *sound*: every adjacency it finds is an edge of the sidecar graph and no
  edge it orients points against the graph (it may miss edges: m -> l, whose separating set then holds
  all of m's parents, and edges a test within one domain is too weak for);
- on views of the latents that never hold a deterministic node with all its parents and a descendant,
  where the law is faithful, PC finds exactly the CPDAG (the Markov equivalence class) of the sidecar
  graph projected onto the view (Verma & Pearl 1990's latent projection), in each domain and pooled;
- pooled over the domains with the store's `domain` array as a context variable, exogenous by
  background knowledge (Joint Causal Inference: Mooij, Magliacane & Claassen 2020, JMLR 21(99)), PC
  connects the context to exactly the latents the sidecar's `context_edges` name (l: the moon changes g).

What PC must *find* is checked on the spring as the issue ran it (its ranges pinned below, seed 0), so
scene tuning does not move it; the catalogue's spring as it now stands is checked for soundness and for
its context edges.

These are statements about a finite-sample procedure, so the store's size and the test level are chosen
for them to hold with margin, not for one draw: the issue's run (600 samples, ~180 observational per
domain, alpha 0.01) held on seed 0 by chance. Over seeds 0-9 of that set-up PC failed one of the claims
on 5 of 10: KCI's type I errors (an adjacency between the independent r and rho, p ~ 3e-4) and its weak
power for the weakest edge (h -> l on the moon, g = 1.62) and for h -> m, which made PC orient l -> m.
1200 samples at alpha 1e-3 or 1e-4 still failed 2 of 8 and 2 of 5 seeds (the h - m and h - l power, r - rho
type I). ``SAMPLES`` (~750 observational samples per domain) gives the weak edges p-values far below
``ALPHA``, and ``ALPHA`` keeps the dozens of independence tests clear of type I errors: every claim below
held on each of seeds 0-9 (the catalogue spring's too, at its 600 samples). The pooled test, where KCI
gets seven columns, uses the first ``POOLED`` observational samples (its claims held on seeds 0-9 there).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from support.stores import latent_spring

from crlgen.pipeline import RunOptions, open_store, resolve, run

#: The spring's store size: about 0.63 of it is observational (30 % intervened, 10 % counterfactual pairs
#: whose partners are left out), ~750 per domain. KCI's cost grows with it: the module took 7 min on one BLAS
#: thread beside a render on 2 cores (about 11 min before the shared p-values below).
SAMPLES = 2400
#: How many of its observational samples (in sample order) the pooled test gives PC with the context.
POOLED = 750
#: PC's level for KCI (the issue ran 0.01 on 180 samples per domain, which let type I errors through).
#: SAMPLES, POOLED and ALPHA were chosen by running this module's tests on the stores of seeds 0-9.
ALPHA = 1e-4
CONTEXT = "domain"


#: The spring as issue 10 ran it (the catalogue's ranges then: r up to 5 cm, rho up to 9000 kg/m^3, k from
#: 50 N/m). The catalogue's ranges are tuned for what the pixels show; this pins the SCM so that what PC
#: must *find* does not move with that tuning. The catalogue's spring itself is checked for soundness.
ISSUE_RANGES = {
    "r": {"range": [0.01, 0.05], "unit": "m", "noise": "uniform(0.01, 0.05)"},
    "rho": {"range": [500, 11000], "unit": "kg/m^3", "noise": "uniform(500, 9000)"},
    "k": {"range": [50, 400], "unit": "N/m", "noise": "uniform(50, 400)"},
}


def _store(root: Path, spec) -> tuple[dict, dict[str, np.ndarray], np.ndarray, list[str]]:
    """Generate ``spec`` into ``root`` and read back (causal_graph.json, {latent: observational values},
    domain codes, domain labels): observational = no regime option, no latent intervened, not a
    counterfactual partner (pair_role 2)."""
    assert run(spec, resolve(str(root)), RunOptions(executor="inline")).valid
    graph = json.loads(Path(root, "causal_graph.json").read_text())
    ds = open_store(str(root))
    obs = (ds["intervention"].values == -1) & ~ds["intervention_mask"].values.any(axis=1) & (ds["pair_role"].values != 2)
    latents = ds["latents"].values[obs]
    values = {name: latents[:, j] for j, name in enumerate(ds["latent"].values.tolist())}
    assert set(values) == {n["name"] for n in graph["nodes"]}
    return graph, values, ds["domain"].values[obs].astype(int), list(ds["domain"].attrs["labels"])


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory):
    """The catalogue spring without a renderer, 600 samples, seed 0."""
    return _store(tmp_path_factory.mktemp("outside") / "catalogue.zarr", latent_spring(samples=600))


@pytest.fixture(scope="module")
def spring(tmp_path_factory):
    """The spring as issue 10 ran it (its ranges, seed 0), ``SAMPLES`` samples."""
    spec = latent_spring(samples=SAMPLES)
    spec = spec.replace(variables={**spec.to_dict()["variables"], **ISSUE_RANGES})
    out = _store(tmp_path_factory.mktemp("outside") / "spring.zarr", spec)
    # the power the level was chosen for: a 0.3 intervened, 0.1 paired store leaves ~0.63 observational
    assert all(c >= 0.28 * SAMPLES for c in np.bincount(out[2])), np.bincount(out[2])
    return out


#: KCI p-values by the bytes of the columns each test read, shared by every PC run of this module: PC on a
#: view of the latents asks many of the tests PC on all six asked of the same rows (a third of the
#: module's KCI time went to such repeats). KCI with its gamma approximation is deterministic given
#: its columns, so a reused p-value is the one KCI would compute again.
_KCI_PVALUES: dict[tuple, float] = {}


def _shared_kci():
    """causal-learn's KCI test, registered as ``"kci_shared"``: the same tests, with ``_KCI_PVALUES``
    consulted by column content before causal-learn's own per-run cache and computation."""
    from causallearn.utils import cit

    class _SharedKCI(cit.KCI):
        def __init__(self, data, **kwargs):
            super().__init__(data, **kwargs)
            self._column_keys = [hashlib.sha1(np.ascontiguousarray(data[:, j]).tobytes()).hexdigest()
                                 for j in range(data.shape[1])]

        def __call__(self, X, Y, condition_set=None):
            xs, ys, zs, _ = self.get_formatted_XYZ_and_cachekey(X, Y, condition_set)  # KCI's column order
            key = tuple(tuple(self._column_keys[j] for j in part) for part in (xs, ys, zs))
            if key not in _KCI_PVALUES:
                _KCI_PVALUES[key] = super().__call__(X, Y, condition_set)
            return _KCI_PVALUES[key]

    cit.register_ci_test("kci_shared", _SharedKCI)
    return "kci_shared"


def _pc(columns: dict[str, np.ndarray], context: str | None = None):
    """causal-learn's PC (KCI, level ``ALPHA``) on the named columns; ``context`` names a column no other
    column may cause (JCI's exogenous context). Returns (names, causal-learn CausalGraph)."""
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.search.ConstraintBased.PC import pc
    from causallearn.utils.PCUtils.BackgroundKnowledge import BackgroundKnowledge

    names = list(columns)
    bk = None
    if context is not None:
        bk = BackgroundKnowledge()
        for n in names:
            if n != context:
                bk.add_forbidden_by_node(GraphNode(n), GraphNode(context))
    data = np.column_stack([columns[n] for n in names]).astype(np.float64)
    return names, pc(data, ALPHA, _shared_kci(), node_names=names, background_knowledge=bk, show_progress=False)


def _edges(names: list[str], graph) -> tuple[set[tuple[str, str]], set[frozenset[str]]]:
    """A causal-learn graph (PC's CausalGraph or a GeneralGraph) as (directed edges (a, b) for a -> b,
    undirected edges {a, b})."""
    G = getattr(graph, "G", graph).graph  # G[j, i] == 1 and G[i, j] == -1 means i -> j; both -1 means i -- j
    directed, undirected = set(), set()
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            a, b = G[i, j], G[j, i]
            if (a, b) == (-1, 1):
                directed.add((names[i], names[j]))
            elif (a, b) == (1, -1):
                directed.add((names[j], names[i]))
            elif (a, b) == (-1, -1):
                undirected.add(frozenset((names[i], names[j])))
            else:
                assert (a, b) == (0, 0), f"PC returned an edge mark PC does not make: {names[i]} {names[j]} {(a, b)}"
    return directed, undirected


def _sidecar_edges(graph: dict, keep: list[str], context: bool = False) -> set[tuple[str, str]]:
    """The sidecar's edges among ``keep`` (plus the context node's edges when ``context``), with the
    latents outside ``keep`` projected out: a -> b when a directed path a -> ... -> b runs only through
    dropped latents (Verma & Pearl 1990's latent projection; asserted to need no bidirected edge)."""
    children: dict[str, set[str]] = {}
    for e in graph["edges"] + (graph["context_edges"] if context else []):
        children.setdefault(e["source"], set()).add(e["target"])
    kept = set(keep)

    def first_kept(start: str) -> set[str]:  # kept latents reached from start through dropped ones only
        hit, stack, seen = set(), list(children.get(start, ())), set()
        while stack:
            b = stack.pop()
            if b in seen:
                continue
            seen.add(b)
            if b in kept:
                hit.add(b)
            else:
                stack.extend(children.get(b, ()))
        return hit

    out = {(a, b) for a in kept for b in first_kept(a)}
    for n in {e["source"] for e in graph["edges"]} - kept:  # a dropped latent reaching two kept ones would confound them
        hit = first_kept(n)
        assert len(hit) <= 1, f"projecting out {n} needs a bidirected edge between {sorted(hit)}"
    return out


def _cpdag(names: list[str], edges: set[tuple[str, str]]) -> tuple[set[tuple[str, str]], set[frozenset[str]]]:
    """The CPDAG (Markov equivalence class) of a DAG, by causal-learn's dag2cpdag (Chickering 1995)."""
    from causallearn.graph.Dag import Dag
    from causallearn.graph.GraphNode import GraphNode
    from causallearn.utils.DAG2CPDAG import dag2cpdag

    nodes = {n: GraphNode(n) for n in names}
    dag = Dag(list(nodes.values()))
    for a, b in edges:
        dag.add_directed_edge(nodes[a], nodes[b])
    return _edges(names, dag2cpdag(dag))


def _deterministic(graph: dict) -> dict[str, list[str]]:
    """Latents the sidecar gives an equation without noise: name -> parents (which fix it exactly)."""
    return {n["name"]: n["parents"] for n in graph["nodes"]
            if n["mechanism"] is not None and n["noise"] is None and "eps" not in n["mechanism"]}


#: Views of the spring's latents on which the law is faithful: none holds the deterministic m together
#: with all of h, r, rho and a descendant of m.
VIEWS = (["h", "r", "rho", "m"], ["m", "k", "l"], ["h", "r", "rho", "k", "l"])


def _assert_sound(graph: dict, directed: set, undirected: set, context: bool = False) -> None:
    true = {(e["source"], e["target"]) for e in graph["edges"] + (graph["context_edges"] if context else [])}
    skeleton = {frozenset(e) for e in true}
    found = {frozenset(e) for e in directed} | undirected
    assert found <= skeleton, f"PC finds adjacencies the sidecar graph lacks: {sorted(map(sorted, found - skeleton))}"
    assert directed <= true, f"PC orients edges against the sidecar graph: {sorted(directed - true)}"


def test_the_spring_s_mass_is_deterministic_so_all_six_latents_are_not_faithful(spring):
    graph, values, _, _ = spring
    assert _deterministic(graph) == {"m": ["h", "r", "rho"]}
    from causallearn.utils.cit import CIT

    names = list(values)
    test = CIT(np.column_stack(list(values.values())), "kci")
    m, l, parents = names.index("m"), names.index("l"), [names.index(p) for p in ("h", "r", "rho")]
    assert test(m, l, []) < 1e-6  # m and l: strongly dependent
    assert test(m, l, parents) > ALPHA  # ... yet independent given m's parents, which fix m


def test_pc_within_each_domain_agrees_with_the_sidecar_graph(spring):
    graph, values, domain, labels = spring
    for code, label in enumerate(labels):
        rows = domain == code
        names, cg = _pc({n: v[rows] for n, v in values.items()})
        directed, undirected = _edges(names, cg)
        _assert_sound(graph, directed, undirected)
        for view in VIEWS:  # faithful views: exactly the equivalence class of the (projected) sidecar graph
            names, cg = _pc({n: values[n][rows] for n in view})
            assert _edges(names, cg) == _cpdag(view, _sidecar_edges(graph, view)), (label, view)
    # (which edges PC misses on all six is left open: it differs from draw to draw. Within a domain KCI
    # often fails to reject one of h, r, rho ⊥ m given l, so m's parents are never tried together and
    # m -> l stays; sound it is in every draw of seeds 0-9.)


def test_pc_pooled_with_the_domain_as_context_finds_the_sidecar_s_context_edges(spring):
    graph, values, domain, labels = spring
    # the first POOLED observational samples (in sample order): KCI on seven columns costs ~30 s at this size
    values, domain = {n: v[:POOLED] for n, v in values.items()}, domain[:POOLED]
    (ctx,) = graph["context_nodes"]
    assert ctx["name"] == CONTEXT and ctx["array"] == "domain" and ctx["labels"] == labels
    expected_context = {(CONTEXT, e["target"]) for e in graph["context_edges"]}
    assert expected_context == {(CONTEXT, "l")}  # the moon changes g, read by l's mechanism only

    # all six latents and the context: sound, the context's edges exactly the sidecar's, and the one
    # sidecar edge missed is m -> l, separated by m's parents (the determinism, not the domain)
    names, cg = _pc({**values, CONTEXT: domain.astype(np.float64)}, context=CONTEXT)
    directed, undirected = _edges(names, cg)
    _assert_sound(graph, directed, undirected, context=True)
    assert {e for e in directed if CONTEXT in e} == expected_context and not any(CONTEXT in e for e in undirected)
    assert directed == {("h", "m"), ("r", "m"), ("rho", "m"), ("k", "l"), (CONTEXT, "l")} and not undirected
    m, l = names.index("m"), names.index("l")
    assert any(set(_deterministic(graph)["m"]) <= {names[i] for i in s} for s in cg.sepset[m, l])

    # pooling is not why m -> l goes missing: on a faithful view PC finds it pooled, context or not,
    # and with the context the whole equivalence class, context edge included
    view = ["m", "k", "l"]
    assert _edges(*_pc({n: values[n] for n in view}))[0] == {("m", "l"), ("k", "l")}
    for view in VIEWS[:2]:  # (the third, with KCI given four columns, would double this test's time)
        names, cg = _pc({**{n: values[n] for n in view}, CONTEXT: domain.astype(np.float64)}, context=CONTEXT)
        expected = _sidecar_edges(graph, view + [CONTEXT], context=True)
        assert _edges(names, cg) == _cpdag(view + [CONTEXT], expected), view


def test_pc_on_the_catalogue_spring_is_sound_and_finds_its_context_edges(catalogue):
    graph, values, domain, labels = catalogue
    for code, label in enumerate(labels):
        rows = domain == code
        directed, undirected = _edges(*_pc({n: v[rows] for n, v in values.items()}))
        _assert_sound(graph, directed, undirected)
    names, cg = _pc({**values, CONTEXT: domain.astype(np.float64)}, context=CONTEXT)
    directed, undirected = _edges(names, cg)
    _assert_sound(graph, directed, undirected, context=True)
    expected_context = {(CONTEXT, e["target"]) for e in graph["context_edges"]}
    assert expected_context and {e for e in directed if CONTEXT in e} == expected_context
    assert not any(CONTEXT in e for e in undirected)
    if ("m", "l") not in directed and frozenset(("m", "l")) not in undirected:  # then the determinism separates them
        m, l = names.index("m"), names.index("l")
        assert any(set(_deterministic(graph)["m"]) <= {names[i] for i in s} for s in cg.sepset[m, l])
