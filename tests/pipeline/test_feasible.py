"""Feasibility: samples a world cannot start from are redrawn deterministically, counted in
`resampled`, re-derived bit for bit by validation, and never dropped (an exhausted budget is a
one-line spec error). The world is tests/data/toyworld's toy/balls: two balls on the ground that
must not start inside each other."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crlgen.pipeline import CompiledSCM, RunOptions, load_spec, make_plan, resolve, run
from crlgen.pipeline._feasible import InfeasibleError, sample_feasible, world_batch
from crlgen.pipeline._validate import validate_store
from crlgen.scenes.registry import build_world, world_class
from crlgen.scenes.testing import WorldContract
from crlgen.schemas import DatasetSpec

BALLS = Path(__file__).resolve().parents[1] / "data/toyworld/crlgen_toyworld/catalog/toy/balls.yaml"
SAMPLER_ARRAYS = ("latents", "noise", "domain", "intervention", "intervention_mask", "intervention_value", "pair",
                  "pair_role", "split", "resampled")


@pytest.fixture(scope="module", autouse=True)
def _installed(toyworld):
    return toyworld


def rich_spec(samples: int = 36, shard_size: int | None = 7, **changes) -> DatasetSpec:
    """toy/balls with what a redraw must keep: two domains (one with its own noise), a single-node regime
    with a distributional do(), counterfactual pairs whose intervention can make only the partner
    infeasible, and a test_range split rule; crowded enough that many samples are redrawn."""
    data = {
        "name": "balls_rich", "world": "toy/balls",
        "variables": {
            "x0": {"range": [-1, 1], "unit": "m", "noise": "uniform(-0.6, 0.6)"},
            "x1": {"range": [-1, 1], "unit": "m", "mechanism": "0.5 * x0 + eps", "noise": "uniform(-0.4, 0.4)"},
            "r0": {"range": [0.05, 0.4], "unit": "m", "noise": "uniform(0.1, 0.25)"},
            "r1": {"range": [0.05, 0.4], "unit": "m", "noise": "uniform(0.1, 0.25)"},
            "hue": {"range": [0, 1], "noise": "uniform(0, 1)"},
        },
        "domains": {"near": {"weight": 1}, "big": {"weight": 1, "noise": {"r0": "uniform(0.2, 0.3)"}}},
        "interventions": {"regime": "single_node", "fraction": 0.4,
                          "targets": {"x1": "do(uniform(-0.8, 0.8))", "hue": "do(0.5)"}},
        "counterfactuals": {"fraction": 0.25, "intervention": {"r1": "do(0.3)"}},
        "splits": {"test_range": {"latent": "x0", "low": 0.4, "high": 1.0}},
        "render": {"size": 16, "views": 1},
        "samples": samples, "max_resamples": 60,
        **({"shard_size": shard_size} if shard_size else {}),
    }
    return DatasetSpec.from_dict({**data, **changes})


def _overlap(lat: np.ndarray, names) -> np.ndarray:
    c = {n: lat[:, k] for k, n in enumerate(names)}
    return c["r0"] + c["r1"] - np.abs(c["x0"] - c["x1"])


@pytest.fixture(scope="module")
def rich_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("feasible") / "rich.zarr"
    result = run(rich_spec(), resolve(str(root)), RunOptions(executor="inline"))
    assert result.valid, json.dumps([c for c in result.report["checks"] if not c["passed"]])
    return root


def _arrays(root: Path, names=SAMPLER_ARRAYS + ("images",)) -> dict[str, np.ndarray]:
    import zarr

    g = zarr.open_group(str(root), mode="r")
    return {n: np.asarray(g[n][:]) for n in names}


def test_only_worlds_that_check_feasibility_store_resampled():
    assert world_class("toy/balls").checks_feasibility() and not world_class("toy/pendulum").checks_feasibility()
    assert make_plan(rich_spec()).has("resampled")
    pendulum = load_spec("toy/pendulum").with_samples(4)
    assert not make_plan(pendulum).has("resampled") and CompiledSCM(pendulum).sample(0, 4).resampled is None
    with build_world(pendulum, threads=1) as w:  # the base class accepts everything
        model = CompiledSCM(pendulum)
        batch = sample_feasible(model, w, 0, 4)
        assert batch.resampled is None and w.feasible(world_batch(model, batch)).tolist() == [True] * 4


def test_redraws_are_stored_with_units_and_every_stored_sample_is_feasible(rich_store):
    import zarr

    a = _arrays(rich_store)
    spec = rich_spec()
    names = spec.graph.names
    r = a["resampled"]
    assert r.dtype == np.int16 and (r > 0).sum() >= 5 and r.max() <= spec.max_resamples
    assert (_overlap(a["latents"], names) <= 0).all()
    attrs = zarr.open_group(str(rich_store), mode="r")["resampled"].attrs
    assert attrs["units"] == "redraws" and attrs["max_resamples"] == 60 and "World.feasible" in attrs["description"]
    card = (rich_store / "README.md").read_text()
    assert "`resampled` counts how often" in card and "conditioned on feasibility" in card
    report = json.loads((rich_store / "validation.json").read_text())
    feas = next(c for c in report["checks"] if c["name"] == "feasibility")
    assert feas["passed"] and feas["details"]["resampled_samples"] == int((r > 0).sum())
    assert feas["details"]["max_redraws"] == int(r.max())


def test_a_redraw_keeps_everything_but_the_exogenous_draws(rich_store):
    a = _arrays(rich_store)
    spec = rich_spec()
    model = CompiledSCM(spec)
    first = model.sample(0, spec.samples, check=False)
    redrawn = a["resampled"] > 0
    for name in ("domain", "intervention", "pair", "pair_role"):
        assert np.array_equal(getattr(first, name), a[name]), name
    # every redrawn sample's first draw was infeasible (for a pair: one of its two samples)
    bad_first = _overlap(first.latents, spec.graph.names) > 0
    partner_bad = np.zeros_like(bad_first)
    has = first.pair >= 0
    partner_bad[has] = bad_first[first.pair[has]]
    assert ((bad_first | partner_bad)[redrawn]).all() and not (bad_first | partner_bad)[~redrawn].any()
    assert not np.array_equal(first.noise[redrawn], a["noise"][redrawn])
    # the split follows the rules on the stored latents: test_range on x0 (partners follow their factual sample)
    x0 = a["latents"][:, spec.graph.names.index("x0")]
    inside = (x0 >= 0.4) & (x0 <= 1.0)
    assert (a["split"][inside] == 2).all()


def test_pairs_are_redrawn_together(rich_store):
    a = _arrays(rich_store)
    part = np.flatnonzero(a["pair_role"] == 2)
    fact = a["pair"][part]
    assert part.size >= 4
    assert np.array_equal(a["resampled"][part], a["resampled"][fact])
    assert np.array_equal(a["noise"][part], a["noise"][fact], equal_nan=True)
    assert (a["resampled"][part] > 0).any()


def test_stored_latents_are_rederived_bit_for_bit_from_the_counts(rich_store):
    a = _arrays(rich_store)
    spec = rich_spec()
    model = CompiledSCM(spec)
    again = model.sample(0, spec.samples, check=False, attempts=a["resampled"]).arrays()
    for name in SAMPLER_ARRAYS:
        assert np.array_equal(again[name], a[name], equal_nan=again[name].dtype.kind == "f"), name
    # any sub-range gives the same rows (a partner beyond the range is not needed for re-derivation)
    part = model.sample(5, 23, check=False, attempts=a["resampled"][5:23]).arrays()
    for name in SAMPLER_ARRAYS:
        assert np.array_equal(part[name], a[name][5:23], equal_nan=part[name].dtype.kind == "f"), name


def test_the_same_store_whatever_the_shard_size_and_workers(rich_store, tmp_path):
    ref = _arrays(rich_store)
    for size, opts in ((1, RunOptions(executor="inline", validate=False)), (36, RunOptions(executor="inline", validate=False)),
                       (5, RunOptions(workers=2, validate=False))):
        root = tmp_path / f"s{size}.zarr"
        run(rich_spec(shard_size=size), resolve(str(root)), opts)
        other = _arrays(root)
        for name, arr in ref.items():
            assert np.array_equal(arr, other[name], equal_nan=arr.dtype.kind == "f"), (size, name)


def test_a_shard_holding_one_member_of_a_pair_asks_about_both():
    spec = rich_spec()
    model = CompiledSCM(spec)
    whole = None
    with build_world(spec, threads=1) as w:
        whole = sample_feasible(model, w, 0, spec.samples)
        for k in range(spec.samples):
            one = sample_feasible(model, w, k, k + 1)
            assert np.array_equal(one.latents, whole.latents[k:k + 1]) and one.resampled[0] == whole.resampled[k]


def test_validation_asks_the_world_again_and_compares_the_counts(rich_store):
    report = validate_store(str(rich_store))
    repro = next(c for c in report["checks"] if c["name"] == "reproducibility")
    assert repro["passed"] and repro["details"]["feasibility_asked_again"]
    stats = next(c for c in report["checks"] if c["name"] == "statistics")
    assert stats["details"]["tested_on"].startswith("the spec's first draws")


def test_a_partner_with_another_count_than_its_factual_is_refused():
    spec = rich_spec()
    model = CompiledSCM(spec)
    b = model.sample(0, spec.samples, check=False)
    f = int(np.flatnonzero(b.pair_role == 1)[0])
    attempts = np.zeros(spec.samples, np.int64)
    attempts[f] = 1
    with pytest.raises(ValueError, match="a pair is redrawn together"):
        model.sample(0, spec.samples, attempts=attempts)


def test_an_exhausted_budget_fails_in_one_line_naming_the_sample(tmp_path):
    # every sample is told to put the balls 5 cm apart: with radii of 10-25 cm no redraw can help
    spec = rich_spec(samples=6, max_resamples=3, counterfactuals=None, splits={},
                     interventions={"regime": "sets", "fraction": 1.0, "sets": [{"targets": {"x0": "do(0.0)", "x1": "do(0.05)"}}]})
    with build_world(spec, threads=1) as w, pytest.raises(InfeasibleError) as e:
        sample_feasible(CompiledSCM(spec), w, 0, 6)
    assert len(e.value.problems) == 1 and "(and 5 more samples of this shard)" in e.value.problems[0]
    spec_file = tmp_path / "stuck.yaml"
    spec.replace(samples=2).dump(spec_file)
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "run", str(spec_file), "--out", str(tmp_path / "x.zarr"),
                        "--inline", "--quiet"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr
    assert lines[0].startswith("error: max_resamples: sample 0 (domain ")
    assert "intervention x0 do(0.0), x1 do(0.05)" in lines[0]
    assert "infeasible in world toy/balls after 3 redraws: ball 0 and ball 1 interpenetrate by" in lines[0]
    assert "x0 = 0, x1 = 0.05" in lines[0]
    assert not (tmp_path / "x.zarr").exists()  # the store the run created is removed again: nothing written


def test_a_spec_mistake_found_by_a_ray_shard_leaves_the_location_as_it_was(tmp_path):
    """The same mistake on Ray workers: shards still in flight finish before the store is removed, and an
    empty directory the user gave stays (empty)."""
    spec = rich_spec(samples=4, max_resamples=2, counterfactuals=None, splits={},
                     interventions={"regime": "sets", "fraction": 1.0, "sets": [{"targets": {"x0": "do(0.0)", "x1": "do(0.05)"}}]})
    spec_file = tmp_path / "stuck.yaml"
    spec.dump(spec_file)
    out = tmp_path / "given"
    out.mkdir()
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "run", str(spec_file), "--out", str(out), "--workers", "2",
                        "--quiet"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: max_resamples: sample ") and "Traceback" not in r.stderr
    assert out.is_dir() and list(out.iterdir()) == []


class TestToyBalls(WorldContract):
    spec = load_spec(BALLS).replace(samples=6)
    memory_samples = 30


def test_crlgen_check_says_the_world_checks_feasibility():
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "check", str(BALLS)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert ("feasibility: world toy/balls refuses starts it cannot take; such samples are redrawn, at most 20 times "
            "(max_resamples), and counted in `resampled`") in r.stdout
    r = subprocess.run([sys.executable, "-m", "crlgen.pipeline", "check", "toy/pendulum", "--json"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0 and "max_resamples" not in json.loads(r.stdout)
