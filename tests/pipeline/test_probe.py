"""`crlgen probe`: a small CNN from pixels to every latent; held-out scores per latent (and state)."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="the probe needs the torch extra (installed by make test)")

from support.cli import run_cli as _cli  # noqa: E402
from crlgen.pipeline._probe import ProbeOptions, _fit_and_score, _kinds  # noqa: E402



def test_probe_scores_every_latent_of_an_image_store(capsys, spring_store):
    code, out, err = _cli(capsys, "probe", str(spring_store), "--epochs", "2", "--size", "16", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert [r["name"] for r in res["rows"]] == ["h", "r", "rho", "m", "k", "l"]
    assert {r["metric"] for r in res["rows"]} == {"r2"} and all(np.isfinite(r["score"]) for r in res["rows"])
    assert res["train"] + res["test"] <= 40 and res["test"] >= 2
    again = json.loads(_cli(capsys, "probe", str(spring_store), "--epochs", "2", "--size", "16", "--json")[1])
    assert again["rows"] == res["rows"]  # seeded: the same store and options give the same table
    code, out, _ = _cli(capsys, "probe", str(spring_store), "--epochs", "1", "--size", "16")
    assert code == 0 and "score" in out and "latent" in out


def test_probe_of_a_video_store_scores_static_latents_and_states(capsys, falling_store):
    code, out, err = _cli(capsys, "probe", str(falling_store), "--epochs", "1", "--size", "16", "--frames", "3", "--json")
    assert code == 0, err
    rows = json.loads(out)["rows"]
    by_name = {(r["target"], r["name"]): r for r in rows}
    assert by_name[("latent", "obj[0].shape")]["metric"] == "accuracy"
    assert by_name[("latent", "obj[0].hue")]["metric"] == "circular"  # the catalogue declares period: 1
    assert by_name[("latent", "gravity")]["metric"] == "r2"
    assert {n for t, n in by_name if t == "state"} == {"obj[0].z", "obj[0].vz"}


def test_declared_unidentifiable_latents_are_scored_apart(capsys, falling_store):
    """Issue 10: a latent the spec declares unidentifiable (with its reason) is scored but not counted
    toward the target; a constant one is not counted either; the table shows the reasons."""
    from crlgen.pipeline import load_spec

    declared = {n.name: n.variable.unidentifiable for n in load_spec("physics/falling_simple").graph.nodes
                if n.variable.unidentifiable}
    assert {"obj[0].mass", "obj[0].density", "obj[0].yaw0", "friction"} <= set(declared)
    code, out, err = _cli(capsys, "probe", str(falling_store), "--epochs", "1", "--size", "16", "--frames", "3", "--json")
    assert code == 0, err
    res = json.loads(out)
    rows = {r["name"]: r for r in res["rows"] if r["target"] == "latent"}
    assert all(rows[n]["unidentifiable"] == why for n, why in declared.items())
    assert rows["obj[0].hue"]["unidentifiable"] is None and not rows["obj[0].hue"]["constant"]
    lat = res["summary"]["latents"]
    counted = [n for n, r in rows.items() if not r["unidentifiable"] and not r["constant"]]
    assert lat["identifiable"] == len(counted) and lat["unidentifiable"] == len(declared)
    below = [n for n in counted if rows[n]["score"] is None or rows[n]["score"] < res["summary"]["target_score"]]
    assert lat["below"] == below and lat["reached"] == len(counted) - len(below)
    code, out, _ = _cli(capsys, "probe", str(falling_store), "--epochs", "1", "--size", "16", "--frames", "3")
    assert code == 0 and "declared unidentifiable" in out and "equivalence principle" in out.replace("\n", " ").replace("│", " ")
    assert f"of {lat['identifiable']} identifiable reach 0.95" in out


def test_declared_unidentifiable_states_are_scored_apart(capsys, tmp_path):
    """A per-frame state whose ``time_varying`` variable the spec declares unidentifiable (a robot joint that
    turns about its own link's axis, say) is scored but counted apart, with its reason, like such a latent."""
    from crlgen.pipeline import RunOptions, load_spec, resolve, run

    spec = load_spec("physics/falling_simple")
    why = "a test's reason: the vertical velocity is declared hidden"
    variables = {**spec.to_dict()["variables"], "obj[i].vz": {"time_varying": True, "unit": "m/s", "unidentifiable": why}}
    spec = spec.replace(samples=24, shard_size=8, video={"fps": 15, "frames": 12}, variables=variables, temporal_edits=[],
                        render={"size": 16, "views": 1, "engine": "tiny"})
    store = tmp_path / "hidden_vz.zarr"
    run(spec, resolve(str(store)), RunOptions(executor="inline", validate=False))
    code, out, err = _cli(capsys, "probe", str(store), "--epochs", "1", "--size", "16", "--frames", "3", "--json")
    assert code == 0, err
    res = json.loads(out)
    states = {r["name"]: r for r in res["rows"] if r["target"] == "state"}
    assert states["obj[0].vz"]["unidentifiable"] == why and states["obj[0].z"]["unidentifiable"] is None
    assert states["obj[0].vz"]["score"] is not None  # scored all the same
    assert res["summary"]["states"]["unidentifiable"] == 1 and res["summary"]["states"]["identifiable"] == 1


def test_the_scores_mean_what_they_say():
    """On images that are a known function of the targets a trained probe scores near 1; on noise near 0."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    n = 400
    y = np.c_[rng.uniform(0, 1, n), rng.integers(0, 3, n), rng.uniform(0, 1, n)]
    x = np.zeros((n, 3, 16, 16), np.uint8)
    x[:, 0] = (y[:, 0] * 255).astype(np.uint8)[:, None, None]  # brightness of channel 0 = target 0
    x[np.arange(n), 1, :, :] = np.where(y[:, 1] == 1, 255, 0).astype(np.uint8)[:, None, None]
    x[:, 2, :8] = np.where(y[:, 1] == 2, 255, 0).astype(np.uint8)[:, None, None]
    ang = 2 * np.pi * y[:, 2]
    x[:, 2, 8:, :8] = ((np.cos(ang) + 1) * 127).astype(np.uint8)[:, None, None]  # a hue-like periodic target
    x[:, 2, 8:, 8:] = ((np.sin(ang) + 1) * 127).astype(np.uint8)[:, None, None]
    kinds = [("r2", None), ("accuracy", 3), ("circular", 1.0)]
    scores = _fit_and_score(torch, x[:300], y[:300], x[300:], y[300:], kinds, ProbeOptions(epochs=25, batch=32))
    assert scores[0] > 0.9 and scores[1] > 0.95 and scores[2] > 0.9
    noise = rng.integers(0, 256, x.shape).astype(np.uint8)
    chance = _fit_and_score(torch, noise[:300], y[:300], noise[300:], y[300:], kinds, ProbeOptions(epochs=5, batch=32))
    assert chance[0] < 0.3 and chance[1] < 0.6 and chance[2] < 0.4


def test_the_clip_probe_reads_motion_that_no_single_frame_shows():
    """A dot starts anywhere and moves at a velocity v: every frame alone is uninformative about v
    (its position at any instant is uniform), the clip (shared frame encoder, temporal
    convolutions) reads it."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    n, frames, size = 500, 6, 16
    v = rng.uniform(-1.5, 1.5, n)  # px per frame
    start = rng.uniform(5, 11, n)
    x = np.zeros((n, frames, 3, size, size), np.uint8)
    for t in range(frames):
        col = np.clip(np.rint(start + v * (t - frames / 2)), 0, size - 1).astype(int)
        x[np.arange(n), t, 0, 8, col] = 255
    y = v[:, None]
    scores = _fit_and_score(torch, x[:400], y[:400], x[400:], y[400:], [("r2", None)], ProbeOptions(epochs=25, batch=32))
    assert scores[0] > 0.9
    mid = frames // 2  # the dot is at its uniform start there, whatever v is
    one = _fit_and_score(torch, x[:400, mid], y[:400], x[400:, mid], y[400:], [("r2", None)], ProbeOptions(epochs=25, batch=32))
    assert one[0] < 0.2  # one frame alone does not show it


def test_kinds_follow_the_variable_types():
    from crlgen.pipeline import load_spec

    spec = load_spec("physics/falling_simple")
    kinds = dict(zip(["obj[0].shape", "obj[0].hue", "gravity"], _kinds(spec, ["obj[0].shape", "obj[0].hue", "gravity"])))
    assert kinds == {"obj[0].shape": ("accuracy", 3), "obj[0].hue": ("circular", 1.0), "gravity": ("r2", None)}


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: expected a positive count, got 0"),
    (["--size", "8"], "--size: expected 16..512 pixels, got 8"),
    (["--max-train", "3"], "--max-train: expected at least 8, got 3"),
    (["--output", "depth"], "--output: expected one of images, got 'depth'"),
])
def test_probe_refuses_bad_flags(capsys, spring_store, args, message):
    code, _, err = _cli(capsys, "probe", str(spring_store), *args)
    assert code == 2 and err.strip() == f"error: {message}"


def test_probe_of_a_latents_only_store_is_one_line(capsys, tmp_path):
    from crlgen.pipeline import RunOptions, resolve, run
    from support.stores import latent_spring

    root = tmp_path / "latents.zarr"
    run(latent_spring(samples=100), resolve(str(root)), RunOptions(executor="inline", validate=False))
    code, _, err = _cli(capsys, "probe", str(root))
    assert code == 2 and err.strip().endswith("the store holds latents only: there are no pixels to probe")


def test_a_last_batch_of_one_sample_is_skipped_not_fatal():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (33, 3, 16, 16)).astype(np.uint8)  # 33 = 32 + 1: batch norm cannot train on the last one
    y = rng.uniform(size=(33, 1))
    scores = _fit_and_score(torch, x, y, x[:5], y[:5], [("r2", None)], ProbeOptions(epochs=1, batch=32))
    assert len(scores) == 1 and np.isfinite(scores[0])


def test_few_test_samples_come_with_a_note(capsys, spring_store):
    code, out, _ = _cli(capsys, "probe", str(spring_store), "--epochs", "1", "--size", "16")
    assert code == 0 and "note: only" in out and "test samples" in out


def test_a_categorical_target_is_scored_where_it_has_a_value():
    """-1 (or NaN) marks a frame without a value (an absent pedestrian's `walking`): left out of loss and accuracy."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    n = 400
    y = rng.integers(0, 3, n).astype(np.float64)
    x = np.zeros((n, 3, 16, 16), np.uint8)
    for c in range(3):
        x[y == c, c] = 255  # class c lights channel c
    y_seen = y.copy()
    y_seen[rng.random(n) < 0.3] = -1.0  # no value in 30 % of rows
    y_seen[:5] = np.nan
    kinds = [("accuracy", 3)]
    (acc,) = _fit_and_score(torch, x[:300], y_seen[:300, None], x[300:], y_seen[300:, None], kinds, ProbeOptions(epochs=15, batch=32))
    assert acc > 0.95


def test_traffic_light_states_are_probed_by_accuracy(tmp_path):
    """The traffic world declares its categorical states (light red/amber/green, walking) in the store;
    the probe scores them by accuracy and the rest by R^2."""
    pytest.importorskip("torch")
    from crlgen.pipeline import RunOptions, load_spec, run
    from crlgen.pipeline._probe import probe_store

    spec = load_spec("traffic/grid_town")
    d = spec.to_dict()
    for key in ("interventions", "counterfactuals", "temporal_edits"):
        d.pop(key, None)
    d.update(samples=16, video={"fps": 10, "frames": 6, "substeps": 2})
    d["render"] = {**d["render"], "size": [32, 24], "views": [d["render"]["views"][0]]}  # the top-down only
    out = tmp_path / "t.zarr"
    run(type(spec).from_dict(d), str(out), RunOptions(executor="inline", validate=False))
    report = probe_store(str(out), ProbeOptions(epochs=1, size=16, frames=2))
    metric = {r["name"]: r["metric"] for r in report["rows"] if r["target"] == "state"}
    assert metric["light[0].state"] == "accuracy" and metric["pedestrian[0].walking"] == "accuracy"
    assert metric["vehicle[0].x"] == "r2" and metric["vehicle[0].lane"] == "r2"
