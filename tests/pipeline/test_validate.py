"""Each validation check passes on a good store and fails on a store corrupted the way it guards against."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from crlgen.pipeline._plan import make_plan
from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._urls import resolve
from crlgen.pipeline._validate import validate_store
from support.stores import check_by_name, edit_array, latent_spring, rewrite_marker, tiny_spring


def _failed(report: dict) -> set[str]:
    return {c["name"] for c in report["checks"] if not c["passed"]}


@pytest.fixture(scope="module")
def latent_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("latent") / "spring.zarr"
    result = run(latent_spring(), resolve(str(root)), RunOptions(executor="inline"))
    assert result.valid, result.report
    return root


@pytest.fixture
def latent_copy(latent_store, tmp_path) -> tuple[Path, object]:
    dst = tmp_path / "copy.zarr"
    shutil.copytree(latent_store, dst)
    return dst, make_plan(latent_spring())


@pytest.fixture(scope="module")
def image_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("img") / "spring.zarr"
    result = run(tiny_spring(samples=4), resolve(str(root)), RunOptions(executor="inline"))
    assert result.valid, result.report
    return root


def test_good_store_passes_every_check(latent_store):
    report = validate_store(resolve(str(latent_store)))
    assert report["passed"]
    names = [c["name"] for c in report["checks"]]
    assert names == ["integrity", "reproducibility", "mechanisms", "interventions", "statistics", "rendering", "dynamics"]
    stats = check_by_name(report, "statistics")
    assert stats["details"]["independence_tests"] > 10 and stats["details"]["options_moved"] == [0, 1, 2]


def test_missing_marker_fails_integrity(latent_copy):
    root, _ = latent_copy
    (root / "_crlgen/shards/000001.json").unlink()
    report = validate_store(resolve(str(root)))
    assert "integrity" in _failed(report)
    assert any("shard 1: no commit marker" in p for p in check_by_name(report, "integrity")["problems"])


def test_truncated_shard_fails_integrity(latent_copy):
    root, _ = latent_copy
    chunk = next(p for p in (root / "latents").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(chunk.read_bytes()[: chunk.stat().st_size // 2])
    report = validate_store(resolve(str(root)))
    assert not report["passed"] and "integrity" in _failed(report)


@pytest.mark.parametrize("array", ["latents", "noise"])
def test_a_missing_object_fails_integrity_alone(latent_copy, array):
    """A shard's object deleted reads back as fill values (NaN): integrity names it, and the checks that
    re-derive samples leave that shard's samples out, saying how many and why, instead of reporting the
    NaNs as broken mechanisms (follow-on noise hiding the cause)."""
    root, _ = latent_copy
    (root / array / "c" / "1" / "0").unlink()
    report = validate_store(resolve(str(root)), reproduce_shards=3)
    assert _failed(report) == {"integrity"}
    problems = check_by_name(report, "integrity")["problems"]
    assert problems[0] == (f"shard 1: {array} object {array}/c/1/0 has no object, its marker says "
                           f"{json.loads((root / '_crlgen/shards/000001.json').read_text())['objects'][array]['bytes']} bytes")
    assert all(p.startswith("shard 1: ") for p in problems)  # re-hashed too: its checksum does not match either
    note = ("1000 sample(s) left out (shards [1]): objects of theirs are missing, so their stored data read back as "
            "fill values, not data; the integrity check names them")
    for name in ("reproducibility", "mechanisms", "interventions", "statistics"):
        assert check_by_name(report, name)["details"]["left_out"] == note, name
    assert check_by_name(report, "reproducibility")["details"]["shards_resampled"] == [0, 2]
    assert check_by_name(report, "mechanisms")["details"]["values_checked"] < 2000 * 6


def test_edited_latents_fail_checksum_then_reproducibility_and_mechanisms(latent_copy):
    root, plan = latent_copy
    lat = np.asarray(__import__("zarr").open_group(str(root))["latents"][:])
    mask = np.asarray(__import__("zarr").open_group(str(root))["intervention_mask"][:])
    j = plan.spec.graph.names.index("m")
    i = int(np.flatnonzero(~mask[:, j])[0])
    edit_array(root, "latents", (i, j), lat[i, j] * 1.5)
    assert "integrity" in _failed(validate_store(resolve(str(root))))  # checksum catches it
    rewrite_marker(root, plan, plan.shard_of(i))  # ... and with a forged checksum, the semantic checks do
    report = validate_store(resolve(str(root)))
    assert "integrity" not in _failed(report)
    assert {"mechanisms"} <= _failed(report)
    assert any(p.startswith("m:") for p in check_by_name(report, "mechanisms")["problems"])


def test_the_graph_sidecar_must_say_what_the_spec_says(latent_copy):
    """A changed edge fails integrity; a sidecar an earlier crlgen wrote (without the keys added
    since: context nodes, a node's ``unidentifiable``) still agrees."""
    import json

    root, plan = latent_copy
    path = root / "causal_graph.json"
    graph = json.loads(path.read_text())
    older = {k: v for k, v in graph.items() if k not in ("context_nodes", "context_edges")}
    older["nodes"] = [{k: v for k, v in n.items() if k != "unidentifiable"} for n in graph["nodes"]]
    path.write_text(json.dumps(older))
    report = validate_store(resolve(str(root)), plan)
    assert report["passed"], report
    older["edges"] = older["edges"][1:]  # one mechanism edge dropped
    path.write_text(json.dumps(older))
    report = validate_store(resolve(str(root)), plan)
    assert "integrity" in _failed(report)
    assert "causal_graph.json differs from the graph the store's spec implies" in check_by_name(report, "integrity")["problems"]


def test_flipped_intervention_mask_fails_interventions(latent_copy):
    root, plan = latent_copy
    g = __import__("zarr").open_group(str(root))
    mask = np.asarray(g["intervention_mask"][:])
    i = int(np.flatnonzero(~mask.any(axis=1))[0])
    edit_array(root, "intervention_mask", (i, 0), True)
    rewrite_marker(root, plan, plan.shard_of(i))
    report = validate_store(resolve(str(root)))
    assert "interventions" in _failed(report)
    assert any("does not match their regime option" in p for p in check_by_name(report, "interventions")["problems"])


def test_wrong_do_value_fails_interventions(latent_copy):
    root, plan = latent_copy
    g = __import__("zarr").open_group(str(root))
    opt = np.asarray(g["intervention"][:])
    j = plan.spec.graph.names.index("h")
    option_h = next(o for o, t in enumerate(plan.spec.intervention_options()) if "h" in t)
    i = int(np.flatnonzero((opt == option_h) & (np.asarray(g["pair_role"][:]) != 2))[0])
    edit_array(root, "latents", (i, j), 0.05)
    rewrite_marker(root, plan, plan.shard_of(i))
    assert "interventions" in _failed(validate_store(resolve(str(root))))


def test_dependence_the_graph_forbids_fails_statistics(latent_copy):
    """Make the root k a function of the root h: the graph says they are independent."""
    root, plan = latent_copy
    g = __import__("zarr").open_group(str(root), mode="r+")
    lat = np.asarray(g["latents"][:])
    noise = np.asarray(g["noise"][:])
    names = plan.spec.graph.names
    h, k = names.index("h"), names.index("k")
    new_k = 50 + 350 * (lat[:, h] - 0.02) / 0.08
    lat[:, k], noise[:, k] = new_k, new_k
    # keep l consistent with its equation so that only the statistics can notice
    from crlgen.pipeline._scm import CompiledSCM

    model = CompiledSCM(plan.spec)
    params = {p: v[np.asarray(g["domain"][:])] for p, v in model.param_table.items()}
    l = names.index("l")
    env = {**params, **{n: lat[:, j] for j, n in enumerate(names)}, "eps": noise[:, l]}
    mask = np.asarray(g["intervention_mask"][:])
    lat[:, l] = np.where(mask[:, l], lat[:, l], model.mech[l](env))
    g["latents"][:] = lat
    g["noise"][:] = noise
    for s in range(len(plan.shards)):
        rewrite_marker(root, plan, s)
    report = validate_store(resolve(str(root)))
    failed = _failed(report)
    assert "statistics" in failed
    assert any("h" in p and "k" in p for p in check_by_name(report, "statistics")["problems"])


def test_swapped_image_fails_rendering(image_store, tmp_path):
    root = tmp_path / "img.zarr"
    shutil.copytree(image_store, root)
    plan = make_plan(tiny_spring(samples=4))
    g = __import__("zarr").open_group(str(root), mode="r+")
    imgs = np.asarray(g["images"][:])
    g["images"][:] = imgs[::-1]  # every sample gets another sample's pixels
    rewrite_marker(root, plan, 0)
    report = validate_store(resolve(str(root)), rerender_samples=2)
    assert _failed(report) == {"rendering"}
    assert any("re-rendered images differs" in p for p in check_by_name(report, "rendering")["problems"])


def test_image_store_passes_rendering(image_store):
    report = validate_store(resolve(str(image_store)), rerender_samples=1)
    assert report["passed"], report
    assert check_by_name(report, "rendering")["details"]["samples_rerendered"]


def test_not_a_store_is_reported(tmp_path):
    (tmp_path / "x").mkdir()
    report = validate_store(resolve(str(tmp_path / "x")))
    assert not report["passed"] and "not a crlgen store" in report["checks"][0]["problems"][0]


# ----- video stores --------------------------------------------------------------------------------
def video_spec():
    from crlgen.pipeline import load_spec

    return load_spec("physics/falling_simple").replace(
        samples=20, shard_size=5, video={"fps": 15, "frames": 24},
        temporal_edits=[{"at_frame": 10, "do": "gravity = 1.62", "fraction": 0.3}],
        counterfactuals={"fraction": 0.1, "edit": {"at_frame": 6, "do": "obj[0].vx += 1.0"}},
        render={"size": 16, "views": 2, "engine": "tiny"})


@pytest.fixture(scope="module")
def video_store(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("video") / "falling.zarr"
    result = run(video_spec(), resolve(str(root)), RunOptions(executor="inline"))
    assert result.valid, result.report
    return root


def test_video_store_passes_dynamics_and_the_worlds_own_checks(video_store):
    report = validate_store(resolve(str(video_store)))
    dyn = check_by_name(report, "dynamics")
    assert report["passed"] and dyn["details"]["edits_checked"] >= 1 and dyn["details"]["counterfactual_pairs_checked"] >= 1
    names = [c["name"] for c in report["checks"]]
    assert names[-2:] == ["penetration", "energy"]  # declared by the physics world, reported by name
    assert check_by_name(report, "energy")["details"]["owner"] == "physics/falling"
    assert (video_store / "preview.gif").read_bytes()[:3] == b"GIF"


def test_tampered_states_fail_dynamics(video_store, tmp_path):
    root = tmp_path / "v.zarr"
    shutil.copytree(video_store, root)
    plan = make_plan(video_spec())
    g = __import__("zarr").open_group(str(root), mode="r+")
    states = np.asarray(g["states"][:])
    assert list(g["state"][:]) == ["obj[0].z", "obj[0].vz"]  # the states the spec declares
    states[:, 12:, 0] += 0.05  # every object floats 5 cm higher from frame 12 on
    g["states"][:] = states
    for s in range(len(plan.shards)):
        rewrite_marker(root, plan, s)
    report = validate_store(resolve(str(root)))
    assert "dynamics" in _failed(report)
    assert any("re-simulated states differ" in p for p in check_by_name(report, "dynamics")["problems"])


def test_counterfactual_frames_must_match_before_the_edit(video_store, tmp_path):
    root = tmp_path / "v.zarr"
    shutil.copytree(video_store, root)
    plan = make_plan(video_spec())
    g = __import__("zarr").open_group(str(root), mode="r+")
    j = int(np.flatnonzero(np.asarray(g["pair_role"][:]) == 2)[0])
    frames = np.asarray(g["frames"][j])
    frames[0] = 255 - frames[0]
    g["frames"][j] = frames
    rewrite_marker(root, plan, plan.shard_of(j))
    report = validate_store(resolve(str(root)), rerender_samples=0)
    assert any("differ before the counterfactual edit" in p for p in check_by_name(report, "dynamics")["problems"])


def test_moved_edit_frame_fails_reproducibility(video_store, tmp_path):
    root = tmp_path / "v.zarr"
    shutil.copytree(video_store, root)
    plan = make_plan(video_spec())
    g = __import__("zarr").open_group(str(root), mode="r+")
    ef = np.asarray(g["edit_frame"][:])
    ef[ef >= 0] += 1
    g["edit_frame"][:] = ef
    for s in range(len(plan.shards)):
        rewrite_marker(root, plan, s)
    report = validate_store(resolve(str(root)), reproduce_shards=4)
    assert "reproducibility" in _failed(report)
