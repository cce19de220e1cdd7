"""Every physics catalogue scene runs through the pipeline and validates, at test size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._urls import resolve
from crlgen.pipeline import load_spec
from crlgen.scenes.registry import catalog

PHYSICS = sorted(e.name for e in catalog() if e.name.startswith("physics/"))


def test_catalogue_lists_the_six_physics_scenes():
    assert PHYSICS == ["physics/collision_complex", "physics/collision_simple", "physics/falling_complex",
                       "physics/falling_simple", "physics/projectile_complex", "physics/projectile_simple"]


@pytest.mark.parametrize("name", PHYSICS)
def test_scene_runs_and_validates(name, tmp_path):
    spec = load_spec(name).replace(samples=8, shard_size=4, video={"fps": 20, "frames": 40},
                                   render={"size": 16, "views": 2, "engine": "tiny"})
    res = run(spec, resolve(str(tmp_path / "s.zarr")), RunOptions(executor="inline"))
    assert res.valid, json.dumps(res.report, indent=1)[:3000]
    import zarr

    g = zarr.open_group(str(tmp_path / "s.zarr"), mode="r")
    assert g["frames"].shape == (8, 40, 2, 16, 16, 3)
    names = list(g["state"][:])
    assert names == list(spec.graph.states)  # exactly the states the spec declares time_varying
    assert g["states"].shape == (8, 40, len(names))
    assert [float(t) for t in g["time"][:3]] == [0.0, 0.05, 0.1] and g["frames"].attrs["fps"] == 20
    states = np.asarray(g["states"][:])
    assert np.isfinite(states).all()
    # frame 0 holds the initial positions the latents prescribe
    lat = np.asarray(g["latents"][:])
    lnames = list(g["latent"][:])
    axes = [a for a in "xyz" if f"obj[0].{a}" in names]
    assert axes
    for a in axes:
        assert np.allclose(states[:, 0, names.index(f"obj[0].{a}")], lat[:, lnames.index(f"obj[0].{a}0")])


def test_blender_rendered_physics_video_runs_and_validates(tmp_path):
    """`render.engine: cycles` films the same simulated trajectory with Blender."""
    base = load_spec("physics/projectile_simple").replace(samples=2, shard_size=2, video={"fps": 10, "frames": 8},
                                                          temporal_edits=[], counterfactuals=None)
    tiny = run(base.replace(render={"size": 16, "views": 1, "engine": "tiny"}), resolve(str(tmp_path / "t.zarr")),
               RunOptions(executor="inline"))
    cyc = run(base.replace(render={"size": 16, "views": 1, "engine": "cycles", "samples": 4}),
              resolve(str(tmp_path / "c.zarr")), RunOptions(executor="inline"))
    assert tiny.valid and cyc.valid, cyc.report
    import zarr

    t, c = zarr.open_group(str(tmp_path / "t.zarr")), zarr.open_group(str(tmp_path / "c.zarr"))
    assert np.array_equal(np.asarray(t["states"][:]), np.asarray(c["states"][:]))  # same physics
    assert not np.array_equal(np.asarray(t["frames"][:]), np.asarray(c["frames"][:]))  # another renderer
