"""`crlgen export`: Parquet loadable by Hugging Face `datasets` and WebDataset shards, both lossless."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import zarr

from support.cli import run_cli as _cli



@pytest.fixture(scope="module")
def stores(spring_store, falling_store):
    return {"spring": spring_store, "falling": falling_store}


@pytest.mark.parametrize("name, output", [("spring", "images"), ("falling", "frames")])
def test_parquet_reads_back_equal_with_datasets(capsys, stores, tmp_path, name, output, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # read before the first import: nothing leaves the machine
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    datasets = pytest.importorskip("datasets")
    store = stores[name]
    dest = tmp_path / "hub"
    code, out, err = _cli(capsys, "export", str(store), str(dest), "--format", "parquet")
    assert code == 0, err
    g = zarr.open_group(str(store), mode="r")
    names = [str(x) for x in g["latent"][:]]
    views = [str(v) for v in g["view"][:]]
    dd = datasets.load_dataset(str(dest), cache_dir=str(tmp_path / "hf-cache"))  # the README's `configs` map data/<split>-*.parquet to splits
    codes = g["split"][:]
    assert {s: len(dd[s]) for s in dd} == {s: int((codes == k).sum()) for k, s in enumerate(["train", "val", "test"]) if (codes == k).any()}
    seen = 0
    for split in dd:
        for row in dd[split]:
            i = row["sample"]
            assert [row[n] for n in names] == g["latents"][i].tolist()  # float64, exactly
            assert row["split"] == split and row["domain_index"] == int(g["domain"][i])
            assert row["intervention_mask"] == g["intervention_mask"][i].tolist()
            for v, view in enumerate(views):
                cell = row[f"{output}.{view}"]
                if output == "frames":
                    got = np.stack([np.asarray(im) for im in cell])
                    want = g[output][i, :, v]
                else:
                    got, want = np.asarray(cell), g[output][i, v]
                assert got.dtype == np.uint8 and np.array_equal(got, want)  # PNG: lossless
            if name == "falling":
                assert row["state.obj[0].z"] == g["states"][i, :, [str(s) for s in g["state"][:]].index("obj[0].z")].astype(float).tolist()
                cam = np.asarray(row["camera_to_world"]).reshape(g["camera_to_world"].shape[1:])
                assert np.array_equal(cam, g["camera_to_world"][i])
            seen += 1
    assert seen == g["latents"].shape[0]
    meta = json.loads((dest / "crlgen_export.json").read_text())
    assert meta["latents"] == names and meta["spec_hash"] == g.attrs["crlgen"]["spec_hash"]
    for sidecar in ("causal_graph.json", "spec.yaml", "README.md"):
        assert (dest / sidecar).is_file()


def test_webdataset_reads_back_equal(capsys, stores, tmp_path):
    wds = pytest.importorskip("webdataset")
    store = stores["falling"]
    dest = tmp_path / "shards"
    code, _, err = _cli(capsys, "export", str(store), str(dest), "--format", "webdataset", "--split", "train")
    assert code == 0, err
    g = zarr.open_group(str(store), mode="r")
    views = [str(v) for v in g["view"][:]]
    names = [str(x) for x in g["latent"][:]]
    train = np.flatnonzero(g["split"][:] == 0)
    tars = sorted(str(p) for p in dest.glob("train-*.tar"))
    assert tars and not list(dest.glob("test-*.tar"))
    samples = list(wds.WebDataset(tars, shardshuffle=False, empty_check=False).decode("rgb8"))
    assert [int(s["__key__"]) for s in samples] == train.tolist()
    for s in samples:
        i = int(s["__key__"])
        assert [s["latents.json"][n] for n in names] == g["latents"][i].tolist()
        assert s["labels.json"]["split"] == "train"
        frame = s[f"frames.{views[1]}.0005.png"]
        assert np.array_equal(frame, g["frames"][i, 5, 1])
        assert np.array_equal(s["states.npy"], g["states"][i])


@pytest.mark.parametrize("dest_kind", ["nonempty", "file", "url"])
def test_export_refuses_a_bad_destination_before_writing(capsys, stores, tmp_path, dest_kind):
    if dest_kind == "nonempty":
        dest = tmp_path / "full"
        dest.mkdir()
        (dest / "keep.txt").write_text("mine")
    elif dest_kind == "file":
        dest = tmp_path / "afile"
        dest.write_text("mine")
    else:
        dest = "s3://bucket/out"
    code, out, err = _cli(capsys, "export", str(stores["spring"]), str(dest), "--format", "parquet")
    assert code == 2 and err.startswith("error: DEST:") and len(err.strip().splitlines()) == 1
    if dest_kind == "nonempty":
        assert [p.name for p in dest.iterdir()] == ["keep.txt"]


def test_export_of_something_else_writes_nothing(capsys, tmp_path):
    code, _, err = _cli(capsys, "export", str(tmp_path / "none.zarr"), str(tmp_path / "out"), "--format", "webdataset")
    assert code == 2 and err.startswith("error: URL:")
    assert not (tmp_path / "out").exists()
    code, _, err = _cli(capsys, "export", str(tmp_path / "none.zarr"), str(tmp_path / "out"), "--format", "tfrecord")
    assert code == 2 and "--format" in err


def test_the_export_manifest_carries_what_is_not_per_sample(capsys, stores, tmp_path):
    dest = tmp_path / "m"
    assert _cli(capsys, "export", str(stores["falling"]), str(dest), "--format", "webdataset")[0] == 0
    meta = json.loads((dest / "crlgen_export.json").read_text())
    g = zarr.open_group(str(stores["falling"]), mode="r")
    assert np.array_equal(np.asarray(meta["fixed"]["intrinsics"]["values"]), g["intrinsics"][:])
    assert meta["fixed"]["time"]["values"] == pytest.approx(g["time"][:].tolist())
    assert meta["fixed"]["edit"]["values"] == [str(e) for e in g["edit"][:]]
    assert meta["arrays"]["segmentation"]["attrs"]["ids"]  # the segmentation key
    assert meta["domains"] == list(g["domain"].attrs["labels"])


def test_domain_names_come_from_the_store_not_the_graph_file(capsys, stores, tmp_path):
    import shutil

    root = tmp_path / "s.zarr"
    shutil.copytree(stores["spring"], root)
    (root / "causal_graph.json").unlink()
    dest = tmp_path / "x"
    assert _cli(capsys, "export", str(root), str(dest), "--format", "webdataset")[0] == 0
    wds = pytest.importorskip("webdataset")
    labels = {s["labels.json"]["domain"] for s in wds.WebDataset(sorted(str(p) for p in dest.glob("*.tar")),
                                                                shardshuffle=False, empty_check=False).decode()}
    assert labels <= {"earth", "moon"} and labels


def test_a_latent_named_like_an_array_is_refused_not_dropped(capsys, tmp_path):
    from crlgen.pipeline import RunOptions, load_spec, resolve, run

    spec = load_spec("physics/falling_simple").replace(samples=8, shard_size=8, video={"fps": 15, "frames": 24},
                                                      render={"size": 16, "views": 1, "engine": "tiny"})
    spec = spec.replace(variables={**spec.to_dict()["variables"], "depth": {"noise": "uniform(0, 1)"}})
    root = tmp_path / "clash.zarr"
    run(spec, resolve(str(root)), RunOptions(executor="inline", validate=False))
    code, _, err = _cli(capsys, "export", str(root), str(tmp_path / "out"), "--format", "parquet")
    assert code == 2 and "latent names ['depth'] would share a column" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_empty_split_or_a_folder_inside_the_store_is_refused(capsys, stores, tmp_path):
    from crlgen.pipeline import RunOptions, resolve, run
    from support.stores import latent_spring

    root = tmp_path / "train_only.zarr"
    run(latent_spring(samples=50, splits={"fractions": {"train": 1.0}}), resolve(str(root)),
        RunOptions(executor="inline", validate=False))
    code, _, err = _cli(capsys, "export", str(root), str(tmp_path / "t"), "--format", "parquet", "--split", "test")
    assert code == 2 and err.strip() == "error: --split test: the store's test split holds no samples"
    assert not (tmp_path / "t").exists()
    code, _, err = _cli(capsys, "export", str(root), str(root / "inside"), "--format", "parquet")
    assert code == 2 and "lies inside the store being read" in err and not (root / "inside").exists()


def test_a_damaged_store_is_not_exported(capsys, stores, tmp_path):
    import shutil

    root = tmp_path / "damaged.zarr"
    shutil.copytree(stores["spring"], root)
    next(p for p in sorted((root / "latents").rglob("*")) if p.is_file() and p.name != "zarr.json").unlink()
    code, _, err = _cli(capsys, "export", str(root), str(tmp_path / "x"), "--format", "parquet")
    assert code == 2 and "problem(s) with its shards" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()
    shutil.rmtree(root)
    shutil.copytree(stores["spring"], root)
    victim = sorted(p for p in (root / "images").rglob("*") if p.is_file() and p.name != "zarr.json")[1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))  # same size: only decoding can tell
    (tmp_path / "empty").mkdir()
    code, _, err = _cli(capsys, "export", str(root), str(tmp_path / "empty"), "--format", "webdataset")
    assert code == 2 and "cannot decode its data" in err
    assert list((tmp_path / "empty").iterdir()) == []  # what was written before the damaged chunk is gone again
