"""Counterfactual pairs made by an intervention are compared in videos: the partner is re-simulated and
re-rendered from its own latents, and a pair whose clips are identical although the intervention changed
a latent the world reads is reported. Every pair shares its factual sample's exogenous inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from crlgen.pipeline._plan import make_plan
from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._urls import resolve
from crlgen.pipeline._validate import validate_store
from crlgen.schemas import DatasetSpec
from support.stores import check_by_name, latent_spring, rewrite_marker


def _failed(report: dict) -> set[str]:
    return {c["name"] for c in report["checks"] if not c["passed"]}


def _physics(world: str, variables: dict, frames: int, counterfactuals: dict, samples: int) -> DatasetSpec:
    """A small spec of its own (the catalogue's scenes change): 1 object, 16 px, one view, TinyRenderer."""
    common = {
        "gravity": {"range": [1, 20], "noise": "uniform(5, 15)"},
        "friction": {"range": [0.05, 1.0], "noise": "uniform(0.2, 0.8)"},
        "restitution": {"range": [0.0, 1.0], "noise": "uniform(0.1, 0.5)"},
        "obj[i].shape": {"type": "categorical", "levels": ["sphere", "box", "cylinder"], "noise": "categorical(1, 1, 1)"},
        "obj[i].size": {"range": [0.08, 0.12], "noise": "uniform(0.08, 0.12)"},
        "obj[i].mass": {"range": [0.1, 5.0], "noise": "uniform(0.5, 2.0)"},
        "obj[i].hue": {"range": [0, 1], "noise": "uniform(0, 1)"},
        "obj[i].x0": {"range": [-0.1, 0.1], "noise": "uniform(-0.1, 0.1)"},
        "obj[i].y0": {"range": [-0.1, 0.1], "noise": "uniform(-0.1, 0.1)"},
        "obj[i].z": {"time_varying": True},
    }
    return DatasetSpec.from_dict({
        "name": "pairs", "world": world, "objects": 1, "samples": samples, "shard_size": 4, "variables": {**common, **variables},
        "video": {"fps": 20, "frames": frames}, "counterfactuals": counterfactuals,
        "render": {"size": 16, "views": 1, "engine": "tiny"}})


def projectile_spec() -> DatasetSpec:
    """Two pairs whose partner is thrown at angle 0.8 rad (vx0, vz0 follow): visible from the first frames on."""
    return _physics("physics/projectile", {
        "speed": {"range": [1.0, 3.0], "noise": "uniform(1.0, 3.0)"},
        "angle": {"range": [0.3, 1.2], "noise": "uniform(0.3, 1.2)"},
        "obj[i].z0": {"range": [0.05, 0.5], "mechanism": "obj[i].size + 0.01"},
        "obj[i].yaw0": {"range": [-1, 1], "noise": "uniform(-1, 1)"},
        "obj[i].vx0": {"range": [-5, 5], "mechanism": "speed * cos(angle)"},
        "obj[i].vy0": {"range": [-1, 1], "mechanism": "0"},
        "obj[i].vz0": {"range": [-5, 5], "mechanism": "speed * sin(angle)"},
        "obj[i].x": {"time_varying": True},
    }, frames=12, counterfactuals={"fraction": 0.25, "intervention": "do(angle = 0.8)"}, samples=8)


@pytest.fixture(scope="module")
def projectile_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pairs") / "projectile.zarr"
    result = run(projectile_spec(), resolve(str(root)), RunOptions(executor="inline"))
    assert result.valid, result.report
    return root


def test_intervention_pairs_are_compared_resimulated_and_rerendered(projectile_store):
    import zarr

    report = validate_store(resolve(str(projectile_store)))
    assert report["passed"]
    g = zarr.open_group(str(projectile_store), mode="r")
    partners = np.flatnonzero(np.asarray(g["pair_role"][:]) == 2).tolist()
    pairs = check_by_name(report, "dynamics")["details"]["counterfactual_pairs"]
    assert pairs["kind"] == "intervention" and pairs["pairs"] == pairs["compared"] == len(partners) == 2
    assert pairs["identical_clips"] == [] and {"frames", "states"} <= set(pairs["compared_outputs"])
    assert sorted(j for _, j in pairs["resimulated"]) == partners
    for finding in pairs["findings"]:
        assert {"angle", "obj[0].vx0", "obj[0].vz0"} <= set(finding["latents_differ"])  # the target and its descendants
        assert finding["simulated_states_diverge_at"] == 0 and finding["frames_differ_from"] >= 1
    assert partners[0] in check_by_name(report, "rendering")["details"]["samples_rerendered"]
    shared = check_by_name(report, "interventions")["details"]["counterfactual_pairs"]
    assert shared["kind"] == "intervention" and "noise" in shared["compared"]


def test_partner_showing_its_factual_frames_is_caught(projectile_store, tmp_path):
    """The partners' stored frames replaced by their factual samples': the pixels are identical although the
    angle differs (the stored states still differ), and the partner's re-rendering from its own latents disagrees."""
    import zarr

    root = tmp_path / "p.zarr"
    shutil.copytree(projectile_store, root)
    plan = make_plan(projectile_spec())
    g = zarr.open_group(str(root), mode="r+")
    partners = np.flatnonzero(np.asarray(g["pair_role"][:]) == 2)
    for j in partners:
        g["frames"][j] = np.asarray(g["frames"][int(g["pair"][j])])
    for s in {plan.shard_of(int(j)) for j in partners}:
        rewrite_marker(root, plan, s)
    report = validate_store(resolve(str(root)))
    assert _failed(report) == {"rendering", "dynamics"}
    assert any(f"sample {partners[0]}: re-rendered frames differs" in p for p in check_by_name(report, "rendering")["problems"])
    dyn = check_by_name(report, "dynamics")
    assert sum("frames identical in every frame" in p and "angle: do(0.8)" in p and "no visible effect" in p
               and "(other outputs differ: " in p and "states by at most" in p for p in dyn["problems"]) == 2
    pairs = dyn["details"]["counterfactual_pairs"]
    assert pairs["visible_in"] == ["frames"] and len(pairs["identical_clips"]) == 2
    assert all(f["frames_differ_from"] is None and f["outputs_differ_from"] is not None for f in pairs["findings"])


def test_intervention_without_visible_effect_fails(tmp_path):
    """Restitution acts only on contact, and in 4 frames (0.15 s) nothing dropped from 0.8 m or higher
    lands: the pairs' clips are identical, so the counterfactuals show nothing."""
    spec = _physics("physics/falling", {"obj[i].z0": {"range": [0.5, 1.5], "noise": "uniform(0.8, 1.2)"}}, frames=4,
                    counterfactuals={"fraction": 0.5, "intervention": {"restitution": "do(0.95)"}}, samples=4)
    result = run(spec, resolve(str(tmp_path / "f.zarr")), RunOptions(executor="inline"))
    assert not result.valid and _failed(result.report) == {"dynamics"}
    pairs = check_by_name(result.report, "dynamics")["details"]["counterfactual_pairs"]
    assert pairs["identical_clips"] == [[0, 1], [2, 3]]
    assert all(f["latents_differ"] == ["restitution"] and f["frames_differ_from"] is None and f["outputs_differ_from"] is None
               and f["simulated_states_diverge_at"] is None for f in pairs["findings"])


def test_partner_with_its_own_noise_fails_interventions(tmp_path):
    """A counterfactual partner shares its factual sample's exogenous noise: a partner whose l noise was
    redrawn (and l recomputed from it, so its equation holds) is caught by the pair check."""
    import zarr

    from crlgen.pipeline._scm import CompiledSCM

    root = tmp_path / "s.zarr"
    spec = latent_spring(samples=200)
    assert run(spec, resolve(str(root)), RunOptions(executor="inline")).valid
    plan, model = make_plan(spec), CompiledSCM(spec)
    g = zarr.open_group(str(root), mode="r+")
    j = int(np.flatnonzero(np.asarray(g["pair_role"][:]) == 2)[0])
    names = list(spec.graph.names)
    l = names.index("l")
    lat, noise = np.asarray(g["latents"][j]), np.asarray(g["noise"][j])
    noise[l] += 0.0005
    env = {p: v[int(g["domain"][j])] for p, v in model.param_table.items()}
    env.update({n: lat[k] for k, n in enumerate(names)}, eps=noise[l])
    lat[l] = float(model.mech[l](env))
    g["latents"][j], g["noise"][j] = lat, noise
    rewrite_marker(root, plan, plan.shard_of(j))
    report = validate_store(resolve(str(root)), reproduce_shards=0)
    assert _failed(report) == {"interventions"}
    assert any("1 counterfactual partners differ from their factual sample in noise" in p
               for p in check_by_name(report, "interventions")["problems"])
