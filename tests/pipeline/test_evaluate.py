"""`crlgen evaluate`: MCC and R^2 of a representation against the store's latents."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from support.cli import run_cli as _cli
from crlgen.pipeline.metrics import mcc
from support.stores import latent_spring



@pytest.fixture(scope="module")
def latents_store(tmp_path_factory):
    from crlgen.pipeline import RunOptions, resolve, run

    root = tmp_path_factory.mktemp("evaluate") / "latents.zarr"
    assert run(latent_spring(samples=1500), resolve(str(root)), RunOptions(executor="inline", validate=False)).shards_run
    return root


def test_the_true_latents_score_one(capsys, latents_store, tmp_path):
    z = zarr.open_group(str(latents_store), mode="r")["latents"][:]
    np.save(tmp_path / "true.npy", z)
    code, out, err = _cli(capsys, "evaluate", str(latents_store), str(tmp_path / "true.npy"), "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["mcc_pearson"] == pytest.approx(1.0, abs=1e-12) and res["mcc_spearman"] == pytest.approx(1.0, abs=1e-12)
    assert [r["matched_dim"] for r in res["latents"]] == list(range(6))
    assert res["r2_linear"] == pytest.approx(1.0, abs=1e-6)
    assert res["rows"] == int((zarr.open_group(str(latents_store), mode="r")["split"][:] == 2).sum())
    code, out, _ = _cli(capsys, "evaluate", str(latents_store), str(tmp_path / "true.npy"))
    assert code == 0 and "MCC pearson" in out and "mean" in out


def test_a_mixed_representation_scores_what_the_metrics_say(capsys, latents_store, tmp_path):
    g = zarr.open_group(str(latents_store), mode="r")
    z, split = g["latents"][:], g["split"][:]
    rng = np.random.default_rng(0)
    z_hat = np.tanh((z - z.mean(0)) / z.std(0)) @ rng.normal(size=(6, 4))
    np.save(tmp_path / "mixed.npy", z_hat)
    code, out, err = _cli(capsys, "evaluate", str(latents_store), str(tmp_path / "mixed.npy"), "--split", "val", "--json")
    assert code == 0, err
    res = json.loads(out)
    val = split == 1
    want = mcc(z[val], z_hat[val])
    assert res["mcc_pearson"] == pytest.approx(want.mcc) and res["dims"] == 4
    assert [r["mcc_pearson"] for r in res["latents"]] == pytest.approx(want.per_latent.tolist())
    assert sum(r["matched_dim"] is None for r in res["latents"]) == 2  # six latents, four dimensions


@pytest.mark.parametrize("content, message", [
    (np.zeros((7, 3)), "REPRESENTATIONS: expected shape (1500, K)"),
    (np.full((1500, 2), np.nan), "REPRESENTATIONS: expected finite numbers"),
    (np.array(["a"] * 1500), "REPRESENTATIONS: expected a real-valued numeric array, got dtype <U1"),
    (None, "REPRESENTATIONS: cannot read"),
])
def test_bad_representations_are_one_line(capsys, latents_store, tmp_path, content, message):
    path = tmp_path / "z.npy"
    if content is None:
        path.write_text("not numpy")
    else:
        np.save(path, content)
    code, out, err = _cli(capsys, "evaluate", str(latents_store), str(path))
    assert code == 2 and err.startswith(f"error: {message}") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("content, message", [
    (np.zeros((1500, 0)), "REPRESENTATIONS: expected shape (1500, K) with K >= 1"),
    (np.ones((1500, 2)) * (1 + 1j), "REPRESENTATIONS: expected a real-valued numeric array, got dtype complex128"),
    (np.zeros((1500, 2), dtype="timedelta64[s]"), "REPRESENTATIONS: expected a real-valued numeric array"),
])
def test_more_bad_representations(capsys, latents_store, tmp_path, content, message):
    np.save(tmp_path / "z.npy", content)
    code, _, err = _cli(capsys, "evaluate", str(latents_store), str(tmp_path / "z.npy"))
    assert code == 2 and err.startswith(f"error: {message}")


def test_huge_values_and_npz_files(capsys, latents_store, tmp_path):
    z = zarr.open_group(str(latents_store), mode="r")["latents"][:]
    np.save(tmp_path / "huge.npy", z * 1e300)
    code, out, err = _cli(capsys, "evaluate", str(latents_store), str(tmp_path / "huge.npy"), "--json")
    assert code == 0, err
    assert json.loads(out)["mcc_pearson"] == pytest.approx(1.0) and json.loads(out)["r2_linear"] == pytest.approx(1.0, abs=1e-6)
    np.savez(tmp_path / "z.npz", z=z)
    code, _, err = _cli(capsys, "evaluate", str(latents_store), str(tmp_path / "z.npz"))
    assert code == 2 and "is an .npz archive" in err


def test_few_rows_and_train_rows_come_with_a_note(capsys, latents_store, tmp_path):
    z = zarr.open_group(str(latents_store), mode="r")["latents"][:]
    np.save(tmp_path / "z.npy", z)
    res = json.loads(_cli(capsys, "evaluate", str(latents_store), str(tmp_path / "z.npy"), "--split", "train", "--json")[1])
    assert res["r2_linear"] is None and any("not reported for --split train" in n for n in res["notes"])
    code, out, _ = _cli(capsys, "evaluate", str(latents_store), str(tmp_path / "z.npy"), "--split", "train")
    assert "note: R^2 is held out" in out


def test_a_store_with_few_scored_and_train_rows_says_its_numbers_are_noisy(capsys, tmp_path):
    from crlgen.pipeline import RunOptions, resolve, run

    root = tmp_path / "tiny.zarr"
    spec = latent_spring(samples=60, splits={"fractions": {"train": 0.5, "val": 0.25, "test": 0.25}})
    assert run(spec, resolve(str(root)), RunOptions(executor="inline", validate=False)).shards_run
    g = zarr.open_group(str(root), mode="r")
    np.save(tmp_path / "z.npy", g["latents"][:])
    n_train, n_test = int((g["split"][:] == 0).sum()), int((g["split"][:] == 2).sum())
    assert 3 <= n_test < 50 and 3 <= n_train < 50
    code, out, err = _cli(capsys, "evaluate", str(root), str(tmp_path / "z.npy"), "--json")
    assert code == 0, err
    notes = json.loads(out)["notes"]
    assert [n.split(":")[0] for n in notes] == [f"only {n_test} test rows", f"only {n_train} train rows"], notes
