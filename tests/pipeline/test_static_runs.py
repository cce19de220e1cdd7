"""Every static catalogue scene runs through the pipeline and validates, at test size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._urls import resolve
from crlgen.scenes.registry import catalog, world_info

pytestmark = pytest.mark.slow

STATIC = sorted(e.name for e in catalog() if e.name.startswith("static/"))


def test_catalogue_lists_the_eleven_static_scenes():
    assert STATIC == ["static/figure_apartment", "static/figure_living_room", "static/figure_rooms", "static/figure_shop",
                      "static/figure_wall", "static/objects_light", "static/pendulum", "static/plasticine",
                      "static/refraction", "static/slope", "static/spring"]


@pytest.mark.parametrize("name", STATIC)
def test_scene_runs_and_validates(name, tmp_path):
    spec = load_spec(name)
    assert world_info(spec.world).kind == "image" and world_info(spec.world).engines[0] == "cycles"
    assert spec.render.engine in (None, "cycles") and "depth" in spec.render.annotations and "segmentation" in spec.render.annotations
    assert len(spec.render.cameras()) == 4  # the benchmark's four views
    small = spec.replace(samples=8, shard_size=4, render={"size": 16, "views": 2, "samples": 2, "device": "cpu"})
    res = run(small, resolve(str(tmp_path / "s.zarr")), RunOptions(executor="inline"))
    assert res.valid, json.dumps(res.report, indent=1)[:3000]
    import zarr

    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert g["images"].shape == (8, 2, 16, 16, 3)
    seg = np.asarray(g["segmentation"][:])
    ids = {int(k) for k in g["segmentation"].attrs["ids"]}
    assert set(np.unique(seg)) <= ids and len(np.unique(seg)) >= 2  # something besides the background is seen
    assert np.isfinite(np.asarray(g["depth"][:])).all() and g["intrinsics"].shape == (2, 3, 3)
    assert np.isfinite(np.asarray(g["camera_to_world"][:])).all()


@pytest.mark.parametrize("name", ["static/objects_light", "static/figure_rooms"])
def test_the_workbench_preview_runs_and_validates(name, tmp_path):
    spec = load_spec(name).replace(samples=4, shard_size=4, render={"size": 16, "views": 2, "engine": "workbench"})
    res = run(spec, resolve(str(tmp_path / "p.zarr")), RunOptions(executor="inline"))
    assert res.valid, json.dumps(res.report, indent=1)[:3000]
    assert "a preview engine" in (tmp_path / "p.zarr" / "README.md").read_text()
