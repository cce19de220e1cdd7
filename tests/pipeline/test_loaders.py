"""The PyTorch datasets: items, splits from the store, pairs, clips, workers, S3, and failed reads."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr

torch = pytest.importorskip("torch", reason="the loaders need the torch extra (installed by make test)")
from torch.utils.data import DataLoader  # noqa: E402

from crlgen.pipeline import open_store  # noqa: E402
from crlgen.pipeline.loaders import ClipDataset, PairDataset, StoreDataset, StoreReadError  # noqa: E402


def test_items_are_the_stores_values(spring_store):
    ds = StoreDataset(str(spring_store), split=None)
    g = zarr.open_group(str(spring_store), mode="r")
    assert len(ds) == 40 and ds.latent_names == ("h", "r", "rho", "m", "k", "l")
    item = ds[7]
    assert set(item) >= {"x", "z", "domain", "intervention_mask", "intervention_value", "sample", "split"}
    assert item["x"].shape == (2, 3, 16, 16) and item["x"].dtype == torch.float32
    assert torch.equal(item["x"], torch.from_numpy(np.moveaxis(g["images"][7], -1, 1)).float() / 255)
    assert np.array_equal(item["z"].numpy(), g["latents"][7].astype(np.float32))
    assert item["intervention_mask"].dtype == torch.bool and item["sample"].item() == 7
    assert item["domain"].item() == g["domain"][7]


def test_splits_are_the_ones_stored_at_generation(spring_store):
    codes = zarr.open_group(str(spring_store), mode="r")["split"][:]
    seen = []
    for k, name in enumerate(["train", "val", "test"]):
        ds = StoreDataset(str(spring_store), split=name)
        idx = [int(ds[i]["sample"]) for i in range(len(ds))]
        assert idx == np.flatnonzero(codes == k).tolist()
        seen += idx
    assert sorted(seen) == list(range(40))  # every sample in exactly one split
    again = StoreDataset(str(spring_store), split="train")
    assert again.indices.tolist() == StoreDataset(str(spring_store), split="train").indices.tolist()  # never random at load


def test_views_and_unknown_choices(spring_store):
    names = list(open_store(str(spring_store))["view"].values)
    one = StoreDataset(str(spring_store), split=None, views=[names[1]])
    both = StoreDataset(str(spring_store), split=None)
    assert torch.equal(one[3]["x"][0], both[3]["x"][1])
    with pytest.raises(ValueError, match="views"):
        StoreDataset(str(spring_store), views=["nope"])
    with pytest.raises(ValueError, match="split"):
        StoreDataset(str(spring_store), split="training")
    with pytest.raises(ValueError, match="output"):
        StoreDataset(str(spring_store), output="depth")


def test_pairs_share_noise_and_name_what_changed(spring_store):
    pairs = PairDataset(str(spring_store), split=None)
    assert len(pairs) >= 1
    g = zarr.open_group(str(spring_store), mode="r")
    item = pairs[0]
    i, j = int(item["sample"]), int(item["sample_pair"])
    assert g["pair"][i] == j and g["pair_role"][j] == 2
    assert np.array_equal(g["noise"][i], g["noise"][j], equal_nan=True)  # the partner shares the noise
    k = pairs.latent_names.index("k")
    assert item["intervened"][k] and item["z_pair"][k] == pytest.approx(350.0)  # the spec's do(k = 350)
    assert torch.equal(item["changed"], item["z"] != item["z_pair"])
    assert set(np.array(pairs.latent_names)[item["changed"].numpy()]) <= {"k", "l"}  # k and its child
    assert item["x_pair"].shape == item["x"].shape


def test_clips_cut_windows_with_their_states(falling_store):
    clips = ClipDataset(str(falling_store), frames=5, stride=3, split=None)
    g = zarr.open_group(str(falling_store), mode="r")
    assert len(clips) == 24 * 3  # starts 0, 3, 6 of 12 frames
    item = clips[4]  # sample 1, frames 3..7
    assert int(item["sample"]) == 1 and int(item["t0"]) == 3
    assert item["x"].shape == (5, 2, 3, 16, 16)
    assert torch.equal(item["x"], torch.from_numpy(np.moveaxis(g["frames"][1, 3:8], -1, 2)).float() / 255)
    assert np.array_equal(item["states"].numpy(), g["states"][1, 3:8].astype(np.float32))
    assert item["time"].tolist() == pytest.approx((np.arange(3, 8) / 15).tolist())
    assert clips.state_names[0].startswith("obj[0].")
    with pytest.raises(ValueError, match="frames"):
        ClipDataset(str(falling_store), frames=13)


def test_a_clip_dataset_needs_a_video_store(spring_store):
    with pytest.raises(ValueError, match="video"):
        ClipDataset(str(spring_store), frames=2)


def test_whole_videos_and_workers_agree(falling_store):
    ds = StoreDataset(str(falling_store), split="train")
    serial = [b["x"] for b in DataLoader(ds, batch_size=4, num_workers=0)]
    parallel = [b["x"] for b in DataLoader(ds, batch_size=4, num_workers=2, multiprocessing_context="fork")]
    assert serial[0].shape[1:] == (12, 2, 3, 16, 16)
    assert all(torch.equal(a, b) for a, b in zip(serial, parallel))


def test_no_open_handle_is_pickled(spring_store):
    ds = StoreDataset(str(spring_store), split=None)
    ds[0]  # opens the group in this process
    assert ds._group is not None
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._group is None
    assert torch.equal(clone[0]["x"], ds[0]["x"])


def test_spawned_workers_open_their_own_store(spring_store):
    ds = StoreDataset(str(spring_store), split=None)
    ds[0]
    got = torch.cat([b["sample"] for b in DataLoader(ds, batch_size=8, num_workers=2, multiprocessing_context="spawn")])
    assert got.tolist() == list(range(40))


def test_a_missing_chunk_raises_instead_of_reading_zeros(spring_store, tmp_path):
    root = tmp_path / "damaged.zarr"
    shutil.copytree(spring_store, root)
    victim = next(p for p in sorted((root / "images").rglob("*")) if p.is_file() and p.name != "zarr.json")
    victim.unlink()
    with pytest.raises(StoreReadError, match="crlgen validate"):
        StoreDataset(str(root))


def test_an_unfinished_or_foreign_store_is_refused(spring_store, tmp_path):
    root = tmp_path / "unfinished.zarr"
    shutil.copytree(spring_store, root)
    meta = root / "zarr.json"
    meta.write_text(meta.read_text().replace('"status": "complete"', '"status": "writing"'))
    with pytest.raises(StoreReadError, match="not finished"):
        StoreDataset(str(root))
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreReadError, match="not a crlgen store"):
        StoreDataset(str(tmp_path / "plain.zarr"))


def test_loaders_read_an_s3_store(spring_store, falling_store, s3):
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True, **s3.storage_options)
    for name, local in (("loaders/spring.zarr", spring_store), ("loaders/falling.zarr", falling_store)):
        fs.put(str(local), f"{s3.bucket}/{name}", recursive=True)
    url = s3.url("loaders/spring.zarr")
    remote = StoreDataset(url, split=None, storage_options=s3.storage_options)
    here = StoreDataset(str(spring_store), split=None)
    assert len(remote) == len(here) and torch.equal(remote[5]["x"], here[5]["x"])
    batches = list(DataLoader(remote, batch_size=10, num_workers=2, multiprocessing_context="fork"))
    assert torch.cat([b["sample"] for b in batches]).tolist() == list(range(40))
    pair = PairDataset(url, split=None, storage_options=s3.storage_options)[0]
    assert torch.equal(pair["x"], PairDataset(str(spring_store), split=None)[0]["x"])
    clip = ClipDataset(s3.url("loaders/falling.zarr"), frames=4, split=None, storage_options=s3.storage_options)[2]
    assert torch.equal(clip["x"], ClipDataset(str(falling_store), frames=4, split=None)[2]["x"])


def _flip_a_byte(root, array: str, sample_chunk: int = 1) -> None:
    files = sorted(p for p in (root / array).rglob("*") if p.is_file() and p.name != "zarr.json")
    victim = files[sample_chunk]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 1
    victim.write_bytes(bytes(data))


def test_bytes_damaged_in_place_raise_when_read(spring_store, tmp_path):
    """Same size, so the listing cannot see it: Zstandard's content checksum does."""
    root = tmp_path / "flipped.zarr"
    shutil.copytree(spring_store, root)
    _flip_a_byte(root, "images")
    ds = StoreDataset(str(root), split=None)  # sizes are intact
    failures = 0
    for i in range(len(ds)):
        try:
            ds[i]
        except StoreReadError as e:
            assert "cannot decode its data" in str(e) and "crlgen validate --full" in str(e)
            failures += 1
    assert failures >= 1


def test_loader_arguments_are_checked(falling_store, spring_store):
    with pytest.raises(ValueError, match="views: expected a non-empty list"):
        StoreDataset(str(spring_store), views=[])
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="stride"):
            ClipDataset(str(falling_store), frames=4, stride=bad)
    with pytest.raises(ValueError, match="frames"):
        ClipDataset(str(falling_store), frames=2.5)
    assert len(StoreDataset(Path(spring_store), split=None)) == 40  # a pathlib.Path is a URL too


def test_pairs_that_differ_by_a_temporal_edit_say_so(falling_store):
    pairs = PairDataset(str(falling_store), split=None)
    item = pairs[0]
    assert not item["changed"].any()  # the catalogue's counterfactual is an edit (obj[0].vx += 1 at frame 10)
    assert item["edited"].any() and int(item["edit_frame_pair"][item["edited"]][0]) == 10
    assert not torch.equal(item["x"][10:], item["x_pair"][10:]) and torch.equal(item["x"][:10], item["x_pair"][:10])


def test_a_split_without_pairs_says_why(tmp_path):
    from crlgen.pipeline import RunOptions, resolve, run
    from support.stores import latent_spring

    def store(name, **changes):
        root = tmp_path / name
        run(latent_spring(samples=200, **changes), resolve(str(root)), RunOptions(executor="inline", validate=False))
        return str(root)

    all_train = store("train.zarr", splits={"fractions": {"train": 1.0}})
    assert len(PairDataset(all_train, split="train")) > 0
    with pytest.raises(ValueError, match="split 'val' holds no counterfactual pairs$"):
        PairDataset(all_train, split="val")
    with pytest.raises(ValueError, match=r"holds no counterfactual pairs \(the spec has no `counterfactuals:`\)"):
        PairDataset(store("none.zarr", counterfactuals=None), split=None)


def test_the_shard_sampler_shuffles_whole_epochs_and_batches_read_the_same(spring_store):
    ds = StoreDataset(str(spring_store), split=None)  # shards of 10 samples
    sampler = ds.sampler(seed=3, mix=2)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == sorted(second) == list(range(40))
    assert first != second  # a new order every epoch
    assert list(ds.sampler(seed=3, mix=2)) == first  # seeded
    assert list(ds.sampler(shuffle=False)) == list(range(40))
    batch_shards = {k // 10 for k in first[:20]}
    assert len(batch_shards) == 2  # mix=2: 20 consecutive draws come from two shards
    batched = ds.__getitems__(first[:13])
    for k, item in zip(first[:13], batched):
        one = ds[k]
        assert torch.equal(item["x"], one["x"]) and torch.equal(item["z"], one["z"]) and item["sample"] == one["sample"]
    loaded = torch.cat([b["sample"] for b in DataLoader(ds, batch_size=8, sampler=ds.sampler(seed=3, mix=2))])
    assert loaded.tolist() == first
    with pytest.raises(ValueError, match="mix"):
        ds.sampler(mix=0)


def test_clip_states_of_absent_agents_are_marked_unknown(tmp_path):
    """Traffic stores NaN for the float states of an absent car; a clip says which states have a value."""
    from crlgen.pipeline import RunOptions, load_spec, run
    from crlgen.schemas import DatasetSpec

    d = load_spec("traffic/grid_town").to_dict()
    d["variables"]["vehicle[1].present"] = {"type": "boolean", "mechanism": "0", "description": "absent in every sample"}
    for key in ("interventions", "counterfactuals", "temporal_edits"):
        d.pop(key, None)
    d.update(samples=2,
             video={"fps": 10, "frames": 6, "substeps": 2})
    d["render"]["size"] = [32, 24]
    out = tmp_path / "absent.zarr"
    run(DatasetSpec.from_dict(d), str(out), RunOptions(executor="inline", validate=False))
    clips = ClipDataset(str(out), frames=3, split=None)
    item = clips[0]
    names = list(clips.state_names)
    for field in ("x", "y", "speed"):
        k = names.index(f"vehicle[1].{field}")
        assert torch.isnan(item["states"][:, k]).all() and not item["state_known"][:, k].any()
        k = names.index(f"vehicle[0].{field}")  # the ego car is always there
        assert item["state_known"][:, k].all() and torch.isfinite(item["states"][:, k]).all()
    assert torch.equal(item["state_known"], torch.isfinite(item["states"]))


def test_the_default_colour_array_is_the_main_one_whatever_camera_comes_first(tmp_path):
    """Cameras of two sizes, a smaller top-down listed first: ``frames`` (the ``render.size``
    cameras) is the default, not ``frames_20x14`` (its own group), in every dataset."""
    from crlgen.pipeline import RunOptions, load_spec, run
    from crlgen.schemas import DatasetSpec

    d = load_spec("traffic/grid_town").to_dict()
    for key in ("interventions", "counterfactuals", "temporal_edits"):
        d.pop(key, None)
    d.update(samples=2, video={"fps": 10, "frames": 4, "substeps": 2})
    d["render"].update(size=[32, 24], views=[
        {"kind": "topdown", "name": "top", "extent": 118, "center": [0, 0], "altitude": 50, "size": [20, 14]},
        {"kind": "fixed", "name": "junction", "position": [-10, -7, 7], "look_at": [-17.5, 0, 0]}])
    out = tmp_path / "sizes.zarr"
    run(DatasetSpec.from_dict(d), str(out), RunOptions(executor="inline", validate=False))
    g = zarr.open_group(str(out), mode="r")
    assert {"frames", "frames_20x14"} <= set(g.array_keys())
    for ds in (StoreDataset(str(out), split=None), ClipDataset(str(out), frames=2, split=None)):
        assert ds.output == "frames" and ds.views == ("junction",)
        assert ds[0]["x"].shape[-2:] == (24, 32)
    top = StoreDataset(str(out), split=None, output="frames_20x14")
    assert top.views == ("top",) and top[0]["x"].shape[-2:] == (14, 20)
