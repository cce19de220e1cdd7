"""Validation of presence-gated interventions: a target on an object whose ``present`` flag is 0 is not
intervened on (the sampler's gate), so the interventions check expects each option's targets on present
objects only, and the statistics check does not mistake the gate's selection (an option drawn only where
its object is present) for an intervention moving a non-descendant. A wrong mask or a real shift still fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

from crlgen.pipeline._plan import make_plan
from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._scm import CompiledSCM
from crlgen.pipeline._urls import resolve
from crlgen.pipeline._validate import validate_store
from crlgen.schemas import DatasetSpec
from support.stores import check_by_name, rewrite_marker

#: The tester's v1/v2/v3 vehicles, plus ``lane``, a descendant of the presence flag (0 while absent), and ``rain``.
_VARIABLES = {
    "rain": {"range": [0, 1], "noise": "uniform(0, 1)"},
    "vehicle[i].present": {"type": "boolean", "noise": "bernoulli(0.5)"},
    "vehicle[i].rt": {"range": [0.2, 1.5], "noise": "uniform(0.4, 1.2)"},
    "vehicle[i].speed": {"mechanism": "10 * vehicle[i].rt + eps", "noise": "normal(0, 0.1)"},
    "vehicle[i].lane": {"range": [0, 3], "mechanism": "vehicle[i].present * eps", "noise": "uniform(1, 2)"},
}
_REGIMES = {
    "sets": ({"regime": "sets", "fraction": 0.5, "sets": [{"name": "slow", "targets": {"vehicle[i].rt": "do(1.5)"}},
                                                        {"name": "v2", "targets": {"vehicle[i].speed": "do(3)"}}]},
             {"fraction": 0.1, "intervention": {"vehicle[i].rt": "do(0.2)"}}),
    "single_node": ({"regime": "single_node", "fraction": 0.5, "targets": {"vehicle[i].rt": "do(1.5)"}}, None),
    # as grid_town: an ungated option (rain) is drawn more often where fewer vehicles are present
    "single_node_mixed": ({"regime": "single_node", "fraction": 0.5, "targets": {"rain": "do(1)", "vehicle[i].rt": "do(1.5)"}},
                          None),
    "explicit": ({"regime": "explicit", "assignments": [{"samples": {"start": 0, "stop": 1800},
                                                          "targets": {"vehicle[i].rt": "do(1.5)"}}]}, None),
}


def _spec(regime: str) -> DatasetSpec:
    interventions, counterfactuals = _REGIMES[regime]
    return DatasetSpec.from_dict({"name": f"gated_{regime}", "samples": 3000, "shard_size": 1000, "objects": {"vehicle": 3},
                                  "variables": _VARIABLES, "interventions": interventions,
                                  "counterfactuals": counterfactuals})


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("gated")
    out = {}
    for regime in _REGIMES:
        out[regime] = root / f"{regime}.zarr"
        run(_spec(regime), resolve(str(out[regime])), RunOptions(executor="inline", validate=False))
    return out


def _arrays(root: Path) -> dict[str, np.ndarray]:
    g = zarr.open_group(str(root), mode="r")
    return {k: np.asarray(g[k][:]) for k in ("latents", "intervention", "intervention_mask", "pair_role")}


def _rewrite(root: Path, regime: str, **arrays: np.ndarray) -> dict:
    """Write ``arrays`` into a store, forge every shard's checksums, validate it."""
    g = zarr.open_group(str(root), mode="r+")
    for name, value in arrays.items():
        g[name][:] = value
    plan = make_plan(_spec(regime))
    for s in range(len(plan.shards)):
        rewrite_marker(root, plan, s)
    return validate_store(resolve(str(root)))


@pytest.mark.parametrize("regime", list(_REGIMES))
def test_a_gated_store_passes_interventions_and_statistics(stores, regime):
    data = _arrays(stores[regime])
    names = _spec(regime).graph.names
    absent = data["latents"][:, [names.index(f"vehicle[{k}].present") for k in range(3)]] == 0
    rt = data["intervention_mask"][:, [names.index(f"vehicle[{k}].rt") for k in range(3)]]
    assert (rt & ~absent).any() and (absent & (data["intervention"] >= 0)[:, None]).any()  # the gate was exercised
    assert not (rt & absent).any()
    report = validate_store(resolve(str(stores[regime])))
    assert check_by_name(report, "interventions")["problems"] == []
    stats = check_by_name(report, "statistics")
    assert stats["problems"] == [] and not stats["skipped"]
    assert stats["details"]["presence_selection"]["flags"] == [f"vehicle[{k}].present" for k in range(3)]
    assert stats["details"]["tests_by_kind"]["ks"] > 0
    assert report["passed"]


def test_a_mask_on_an_absent_object_fails_interventions(stores, tmp_path):
    root = tmp_path / "s.zarr"
    shutil.copytree(stores["sets"], root)
    data = _arrays(root)
    names = _spec("sets").graph.names
    p, rt = names.index("vehicle[1].present"), names.index("vehicle[1].rt")
    i = int(np.flatnonzero((data["intervention"] == 0) & (data["latents"][:, p] == 0) & (data["pair_role"] != 2))[0])
    mask = data["intervention_mask"].copy()
    mask[i, rt] = True
    problems = check_by_name(_rewrite(root, "sets", intervention_mask=mask), "interventions")["problems"]
    assert any("1 samples have an intervention mask that does not match their regime option (first: sample "
               f"{i})" in q for q in problems)


def test_a_missing_mask_on_a_present_object_fails_interventions(stores, tmp_path):
    root = tmp_path / "e.zarr"
    shutil.copytree(stores["explicit"], root)
    data = _arrays(root)
    names = _spec("explicit").graph.names
    p, rt = names.index("vehicle[2].present"), names.index("vehicle[2].rt")
    i = int(np.flatnonzero((data["intervention"] == 0) & (data["latents"][:, p] == 1))[0])
    mask = data["intervention_mask"].copy()
    mask[i, rt] = False
    problems = check_by_name(_rewrite(root, "explicit", intervention_mask=mask), "interventions")["problems"]
    assert any(f"does not match their regime option (first: sample {i})" in q for q in problems)


def test_an_option_recorded_where_no_object_is_present_fails_interventions(stores, tmp_path):
    root = tmp_path / "n.zarr"
    shutil.copytree(stores["single_node"], root)
    data = _arrays(root)
    names = _spec("single_node").graph.names
    none = (data["latents"][:, [names.index(f"vehicle[{k}].present") for k in range(3)]] == 0).all(axis=1)
    i = int(np.flatnonzero(none & (data["intervention"] == -1))[0])
    opt = data["intervention"].copy()
    opt[i] = 0
    problems = check_by_name(_rewrite(root, "single_node", intervention=opt), "interventions")["problems"]
    assert any(f"1 samples record option 0 (vehicle[0].rt) although none of its targets' objects is present (first: "
               f"sample {i})" in q for q in problems)


@pytest.mark.parametrize("latent, by", [("vehicle[1].rt", 0.3), ("vehicle[1].lane", 0.6)])
def test_a_non_descendant_moved_among_present_samples_fails_statistics(stores, tmp_path, latent, by):
    """Option 0 (vehicle[0].rt) samples get another vehicle's rt (independent of presence: compared with every
    observational sample) or lane (a descendant of its presence flag: compared within presence strata) shifted,
    where that vehicle is present; its equations' children are kept consistent, so only the statistics can notice."""
    root = tmp_path / "m.zarr"
    shutil.copytree(stores["single_node"], root)
    spec = _spec("single_node")
    names = spec.graph.names
    g = zarr.open_group(str(root), mode="r")
    lat, noise = np.asarray(g["latents"][:]), np.asarray(g["noise"][:])
    j, p = names.index(latent), names.index("vehicle[1].present")
    rows = (np.asarray(g["intervention"][:]) == 0) & (lat[:, p] == 1)
    lat[rows, j] += by
    if latent.endswith(".lane"):
        noise[rows, j] += by
    else:
        s = names.index("vehicle[1].speed")
        lat[rows, s] = 10 * lat[rows, j] + noise[rows, s]
    assert list(CompiledSCM(spec).options[0]) == ["vehicle[0].rt"]
    stats = check_by_name(_rewrite(root, "single_node", latents=lat, noise=noise), "statistics")
    assert any(q.startswith(f"option 0 (vehicle[0].rt): non-descendant {latent} moved") for q in stats["problems"])
    if latent.endswith(".lane"):  # compared within presence strata
        assert all("among samples with" in q for q in stats["problems"])


def test_the_gate_is_read_in_the_observational_world(tmp_path):
    """The rain option reaches the presence flags (rain makes cars stay home), so in its samples the stored flag
    is not the one the sampler gated the counterfactual's targets by: the check evaluates the flag without
    the intervention, from the stored noise, as the sampler does."""
    spec = DatasetSpec.from_dict({
        "name": "gated_rain", "samples": 600, "shard_size": 300, "objects": {"vehicle": 2},
        "variables": {"rain": {"range": [0, 1], "noise": "uniform(0, 1)"},
                      "vehicle[i].present": {"type": "boolean", "mechanism": "eps < 1 - 0.8 * rain", "noise": "uniform(0, 1)"},
                      "vehicle[i].rt": {"range": [0.2, 1.5], "noise": "uniform(0.4, 1.2)"}},
        "interventions": {"regime": "sets", "fraction": 0.5, "sets": [{"name": "storm", "targets": {"rain": "do(1)"}}]},
        "counterfactuals": {"fraction": 0.3, "intervention": {"vehicle[i].rt": "do(0.2)"}}})
    root = tmp_path / "rain.zarr"
    run(spec, resolve(str(root)), RunOptions(executor="inline", validate=False))
    data = _arrays(root)
    names = spec.graph.names
    p, rt = names.index("vehicle[0].present"), names.index("vehicle[0].rt")
    flipped = (data["pair_role"] == 2) & (data["intervention"] == 0) & (data["latents"][:, p] == 0) & data["intervention_mask"][:, rt]
    assert flipped.any()  # absent in the stored (stormy) world, present without the storm: intervened on
    report = validate_store(resolve(str(root)))
    assert check_by_name(report, "interventions")["problems"] == []
