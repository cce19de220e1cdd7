"""Intervention spaces A and B end to end: domains draw their roots in their space, do(space) draws in
the sample's space, test_space sends one space to test; the store, its card and graph say so, validation
passes, and `crlgen check` shows the spaces. With toy/balls, spaces combine with feasibility redraws."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crlgen.pipeline import CompiledSCM, RunOptions, resolve, run
from crlgen.schemas import DatasetSpec

SPEC = {
    "name": "spaces",
    "variables": {
        "mass": {"range": [0.1, 1.0], "unit": "kg", "noise": "uniform(0.1, 1.0)", "spaces": {"A": [0.1, 0.5], "B": [0.5, 1.0]}},
        "friction": {"range": [0.2, 1.0], "mechanism": "0.3 + 0.2 * mass + eps", "noise": "uniform(0, 0.2)",
                     "spaces": {"A": [0.3, 0.6], "B": [0.6, 1.0]}},
        "count": {"type": "integer", "range": [0, 10], "noise": "uniform(0, 10)", "spaces": {"A": [0, 4], "B": [6, 10]}},
        "speed": {"mechanism": "mass * friction + 0.1 * count + eps", "noise": "normal(0, 0.1)"},
    },
    "domains": {"train": {"space": "A", "weight": 2}, "test": {"space": "B"}},
    "interventions": {"regime": "single_node", "fraction": 0.3, "targets": {"mass": "do(space)", "speed": "do(1.0)"}},
    "counterfactuals": {"fraction": 0.1, "intervention": {"friction": "do(space)"}},
    "splits": {"test_space": "B", "few_shot": 0.1},
    "samples": 300,
    "shard_size": 64,
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("spaces") / "spaces.zarr"
    result = run(DatasetSpec.from_dict(SPEC), resolve(str(root)), RunOptions(executor="inline"))
    assert result.valid, json.dumps([c for c in result.report["checks"] if not c["passed"]])
    return root


def _read(root: Path) -> dict[str, np.ndarray]:
    import zarr

    g = zarr.open_group(str(root), mode="r")
    return {k: np.asarray(g[k][:]) for k in ("latents", "domain", "split", "intervention_mask", "intervention_value", "pair_role", "pair")}


def test_each_domain_draws_its_roots_in_its_space(store):
    a = _read(store)
    lat, dom, mask = a["latents"], a["domain"], a["intervention_mask"]
    spaces = {"mass": 0, "count": 2}
    for d, space in ((0, "A"), (1, "B")):
        for name, j in spaces.items():
            lo, hi = SPEC["variables"][name]["spaces"][space]
            vals = lat[dom == d, j]
            assert vals.size > 20 and lo <= vals.min() and vals.max() <= hi, (space, name)
    # friction has an equation: a domain's space leaves it (0.3 + 0.2 mass + U(0, 0.2)), only do(space) moves it
    fr_b = lat[~mask[:, 1] & ~mask[:, 0] & (dom == 1), 1]
    assert np.allclose(fr_b - 0.2 * lat[~mask[:, 1] & ~mask[:, 0] & (dom == 1), 0], np.clip(fr_b - 0.2 * lat[~mask[:, 1] & ~mask[:, 0] & (dom == 1), 0], 0.3, 0.5))
    assert (fr_b < 0.6).any()  # below space B: the equation, not a draw in the space
    assert np.array_equal(np.unique(lat[:, 2]), np.unique(np.rint(lat[:, 2])))  # integer stays integer


def test_do_space_draws_in_the_space_of_the_samples_domain(store):
    a = _read(store)
    lat, dom, mask, ival, role = a["latents"], a["domain"], a["intervention_mask"], a["intervention_value"], a["pair_role"]
    for d, space in ((0, "A"), (1, "B")):
        rows = mask[:, 0] & (dom == d)  # mass: do(space)
        lo, hi = SPEC["variables"]["mass"]["spaces"][space]
        assert rows.sum() >= 5 and (lat[rows, 0] >= lo).all() and (lat[rows, 0] <= hi).all()
        assert np.array_equal(lat[rows, 0], ival[rows, 0])
        part = (role == 2) & (dom == d)  # counterfactual partners: friction do(space)
        lo, hi = SPEC["variables"]["friction"]["spaces"][space]
        assert part.sum() >= 2 and (lat[part, 1] >= lo).all() and (lat[part, 1] <= hi).all()
    # a partner shares its factual sample's domain, so its space
    part = np.flatnonzero(role == 2)
    assert np.array_equal(dom[part], dom[a["pair"][part]])


def test_test_space_sends_space_b_to_test_with_a_few_shot_share(store):
    a = _read(store)
    split, dom = a["split"], a["domain"]
    b = split[dom == 1]
    assert (b == 2).mean() > 0.75 and (b == 0).any() and not (b == 1).any()  # few_shot 0.1 stays in train
    assert (split[dom == 0] == 0).mean() > 0.6 and (split[dom == 0] == 2).any()  # space A: the random fractions


def test_the_store_describes_the_spaces(store):
    import zarr

    card = (store / "README.md").read_text()
    assert "## Intervention spaces" in card and "| `mass` | [0.1, 0.5] | [0.5, 1] |" in card
    assert "`train` draws in space A; `test` draws in space B" in card and "space B's domains (test) go to test" in card
    graph = json.loads((store / "causal_graph.json").read_text())
    nodes = {n["name"]: n for n in graph["nodes"]}
    assert nodes["mass"]["spaces"] == {"A": [0.1, 0.5], "B": [0.5, 1.0]} and nodes["speed"]["spaces"] is None
    assert graph["domains"]["test"]["space"] == "B"
    edges = {e["target"]: e for e in graph["context_edges"]}
    assert set(edges) == {"mass", "count"}  # the domain moves the roots with spaces, nothing else
    assert zarr.open_group(str(store), mode="r")["split"].attrs["rules"]["test_space"] == "B"


def test_the_sampler_is_the_same_whatever_the_shard_size():
    spec = DatasetSpec.from_dict(SPEC)
    model = CompiledSCM(spec)
    whole = model.sample(0, spec.samples).arrays()
    parts = [model.sample(a, min(a + 7, spec.samples)).arrays() for a in range(0, spec.samples, 7)]
    for name, arr in whole.items():
        assert np.array_equal(arr, np.concatenate([p[name] for p in parts]), equal_nan=arr.dtype.kind == "f"), name


def test_crlgen_check_shows_the_spaces(tmp_path):
    p = tmp_path / "spaces.json"
    p.write_text(json.dumps(SPEC))
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "check", str(p)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ("spaces: mass A [0.1, 0.5] B [0.5, 1]; friction A [0.3, 0.6] B [0.6, 1]; count A [0, 4] B [6, 10]; "
            "domains: train A, test B; test split: space B") in r.stdout
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "check", str(p), "--json"], capture_output=True, text=True,
                       env=env, timeout=120)
    info = json.loads(r.stdout)
    assert info["spaces"]["count"] == {"A": [0, 4], "B": [6, 10]} and info["domain_spaces"] == {"train": "A", "test": "B"}
    bad = dict(SPEC, variables={**SPEC["variables"], "mass": {**SPEC["variables"]["mass"], "spaces": {"A": [0.1, 0.6], "B": [0.5, 1.0]}}})
    p.write_text(json.dumps(bad))
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "check", str(p)], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: variables.mass.spaces: spaces A [0.1, 0.6] and B [0.5, 1] overlap; they must be disjoint (they may share an end point)"]


def test_spaces_and_feasibility_together_in_a_world(toyworld, tmp_path):
    """toy/balls with small balls in space A and big ones in space B: B's samples need more redraws; every
    stored sample is feasible and in its domain's space, and the run validates."""
    spec = DatasetSpec.from_dict({
        "name": "balls_spaces", "world": "toy/balls",
        "variables": {
            "x0": {"range": [-1, 1], "unit": "m", "noise": "uniform(-0.7, 0.7)"},
            "x1": {"range": [-1, 1], "unit": "m", "noise": "uniform(-0.7, 0.7)"},
            "r0": {"range": [0.05, 0.4], "unit": "m", "noise": "uniform(0.05, 0.4)", "spaces": {"A": [0.05, 0.15], "B": [0.2, 0.35]}},
            "r1": {"range": [0.05, 0.4], "unit": "m", "noise": "uniform(0.05, 0.4)", "spaces": {"A": [0.05, 0.15], "B": [0.2, 0.35]}},
        },
        "domains": {"small": {"space": "A"}, "big": {"space": "B"}},
        "interventions": {"regime": "single_node", "fraction": 0.5, "targets": {"r1": "do(space)"}},
        "splits": {"test_space": "B"},
        "render": {"size": 16, "views": 1}, "samples": 40, "shard_size": 9,
    })
    root = tmp_path / "bs.zarr"
    result = run(spec, resolve(str(root)), RunOptions(executor="inline"))
    assert result.valid, json.dumps([c for c in result.report["checks"] if not c["passed"]])
    import zarr

    g = zarr.open_group(str(root), mode="r")
    lat, dom, res, split = (np.asarray(g[k][:]) for k in ("latents", "domain", "resampled", "split"))
    assert (lat[:, 2] + lat[:, 3] <= np.abs(lat[:, 0] - lat[:, 1])).all()
    for d, (lo, hi) in ((0, (0.05, 0.15)), (1, (0.2, 0.35))):
        assert ((lat[dom == d, 2:4] >= lo) & (lat[dom == d, 2:4] <= hi)).all()
    assert res[dom == 1].mean() > res[dom == 0].mean()
    assert (split[dom == 1] == 2).all()


def test_an_integer_space_gives_each_whole_number_equally_often():
    """The tester's sp1: `count` drawn in space A [0, 4] came out [15 54 56 62 14] (uniform(0, 4) rounded gives
    the ends half weight); a do(space) on an integer did the same, and stored the unrounded draw."""
    from scipy.stats import chisquare

    data = {**SPEC, "samples": 6000, "counterfactuals": None,
            "interventions": {"regime": "single_node", "fraction": 0.5,
                              "targets": {"count": "do(space)", "friction": "do(space)"}}}
    b = CompiledSCM(DatasetSpec.from_dict(data)).sample(0, 6000)
    j = b.names.index("count")
    hit = b.intervention_mask[:, j]
    for rows, what in ((~hit, "drawn in the domain's space"), (hit, "do(space)")):
        for d, values in ((0, range(0, 5)), (1, range(6, 11))):
            got = b.latents[rows & (b.domain == d), j]
            counts = np.array([(got == v).sum() for v in values])
            assert counts.sum() == got.size and counts.min() > 0, (what, d, counts)
            assert chisquare(counts).pvalue > 1e-3, (what, d, counts)  # the ends too (they had half as many)
    assert np.array_equal(b.intervention_value[hit, j], b.latents[hit, j])  # the whole number set
