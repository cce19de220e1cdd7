"""`crlgen export`: Parquet loadable by Hugging Face `datasets` and WebDataset shards, both lossless."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import zarr

from crlgen.pipeline._cli import main


def _cli(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


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
