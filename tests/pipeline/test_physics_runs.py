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


def test_mounted_and_topdown_cameras_run_and_validate(tmp_path):
    """A camera riding on a falling object and an orthographic top-down camera of another size,
    through `crlgen run` and `crlgen validate`; the mounted camera's stored pose follows the object."""
    import os
    import subprocess
    import sys

    import zarr

    spec = tmp_path / "cams.yaml"
    spec.write_text(
        "extends: physics/falling_simple\nsamples: 4\nshard_size: 2\nvideo: {fps: 20, frames: 24}\n"
        "render:\n  size: 24\n  engine: tiny\n  views:\n    - front\n"
        "    - {kind: mounted, name: ride, mount: 'obj[0]', position: [0, -1.2, 0.3], look_at: [0, 0, 0], follow: position}\n"
        "    - {kind: topdown, name: top, extent: 1.5, size: [32, 24]}\n")
    out = tmp_path / "cams.zarr"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    cli = [sys.executable, "-m", "crlgen.pipeline"]
    r = subprocess.run([*cli, "run", str(spec), "--out", str(out), "--workers", "2", "--quiet"], capture_output=True,
                       text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr + r.stdout
    r = subprocess.run([*cli, "validate", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0 and r.stdout.strip().endswith("passed"), r.stdout
    g = zarr.open_group(str(out), mode="r")
    assert list(g["view"][:]) == ["front", "ride"] and list(g["view_32x24"][:]) == ["top"]
    assert g["frames"].shape == (4, 24, 2, 24, 24, 3) and g["frames_32x24"].shape == (4, 24, 1, 24, 32, 3)
    assert list(g["projection_32x24"][:]) == ["orthographic"]
    pose, states = np.asarray(g["camera_to_world"][:]), np.asarray(g["states"][:])
    z = states[..., list(g["state"][:]).index("obj[0].z")]
    assert np.allclose(pose[:, :, 1, 2, 3], z + 0.3)  # the ride camera's height follows the object's
    assert np.allclose(pose[:, :, 0], pose[:, :1, 0])  # the front camera stands still
