"""static/spring: a Cycles (bpy, CPU) scene; small renders (32 px, 2 samples, 2 views)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from crlgen.scenes.base import WorldBatch
from crlgen.schemas.render import RenderSettings

from crlgen.scenes.engines import blender as bl
from crlgen.scenes.static.spring import CYLINDER_ID, GROUND_ID, SPRING_ID, SpringWorld

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE = {"h": 0.05, "r": 0.03, "rho": 3000.0, "k": 200.0, "l": 0.06}


def spec(size=32, views=2, samples=2, **kw):
    return types.SimpleNamespace(render=RenderSettings(size=size, views=views, samples=samples, device="cpu", **kw))


def batch(rows: list[dict]) -> WorldBatch:
    n = len(rows)
    names = sorted({k for r in rows for k in r})
    return WorldBatch(
        index=np.arange(n),
        latents={k: np.array([r[k] for r in rows], dtype=np.float64) for k in names},
        seeds=np.zeros(n, np.uint64),
    )


def with_(**kw) -> dict:
    return {**BASE, **kw}


@pytest.fixture(scope="module")
def world():
    w = SpringWorld(spec(), threads=1)
    yield w
    w.close()


def test_import_does_not_load_bpy():
    code = "import sys, crlgen.scenes.static.spring, crlgen.scenes.engines.blender; assert 'bpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_shapes_dtypes_ids_and_depth(world):
    out = world.render(batch([BASE, with_(r=0.045, l=0.1), with_(h=0.02, l=0.02)]))
    assert out.pixels.shape == (3, 2, 32, 32, 3) and out.pixels.dtype == np.uint8
    assert out.depth.shape == (3, 2, 32, 32) and out.depth.dtype == np.float32
    assert out.segmentation.shape == (3, 2, 32, 32) and out.segmentation.dtype == np.uint8
    seg, depth = out.segmentation, out.depth
    assert set(np.unique(seg)) <= {0, GROUND_ID, SPRING_ID, CYLINDER_ID}
    assert {GROUND_ID, SPRING_ID, CYLINDER_ID} <= set(np.unique(seg))
    assert (seg == 0).any(), "some background should be visible above the table"
    assert np.all(depth[seg == 0] == 0.0)
    on = depth[seg > 0]
    assert np.all(on > 0.05) and np.all(on < 2.0)
    # the cylinder on top of the spring is nearer the camera than the table behind it
    assert depth[seg == CYLINDER_ID].mean() < depth[seg == GROUND_ID].mean()
    assert 20 < out.pixels.mean() < 235, "neither black nor blown out"


def test_annotations_off_and_non_square():
    with SpringWorld(spec(size=(40, 24), views=("front", "top"), annotations=()), threads=1) as w:
        out = w.render(batch([BASE]))
    assert out.pixels.shape == (1, 2, 24, 40, 3)
    assert out.depth is None and out.segmentation is None


def test_rejects_bad_latents(world):
    with pytest.raises(KeyError, match="missing"):
        world.render(batch([{k: v for k, v in BASE.items() if k != "k"}]))
    with pytest.raises(ValueError, match="non-finite"):
        world.render(batch([with_(h=float("nan"))]))


def test_rejects_other_engines():
    with pytest.raises(ValueError, match="cycles"):
        SpringWorld(spec(engine="workbench"))


def test_deterministic_in_process(world):
    b = batch([BASE, with_(k=350.0, rho=8000.0)])
    a = world.render(b)
    world.render(batch([with_(l=0.1)]))  # something else in between
    c = world.render(b)
    for name in ("pixels", "depth", "segmentation"):
        np.testing.assert_array_equal(getattr(a, name), getattr(c, name))


def test_deterministic_across_processes(world, tmp_path):
    rows = [BASE, with_(h=0.09, r=0.015, k=60.0)]
    here = world.render(batch(rows))
    path = tmp_path / "out.npz"
    code = textwrap.dedent(
        f"""
        import types, numpy as np
        from crlgen.schemas.render import RenderSettings
        from crlgen.scenes.base import WorldBatch
        from crlgen.scenes.static.spring import SpringWorld
        rows = {rows!r}
        b = WorldBatch(index=np.arange(2), latents={{k: np.array([r[k] for r in rows]) for k in rows[0]}},
                       seeds=np.zeros(2, np.uint64))
        spec = types.SimpleNamespace(render=RenderSettings(size=32, views=2, samples=2, device="cpu"))
        with SpringWorld(spec, threads=2) as w:  # another thread count too
            o = w.render(b)
        np.savez({str(path)!r}, pixels=o.pixels, depth=o.depth, segmentation=o.segmentation)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
    there = np.load(path)
    for name in ("pixels", "depth", "segmentation"):
        np.testing.assert_array_equal(getattr(here, name), there[name])


# latent -> (low, high, instance id whose area must grow with it, or None if the geometry must not change)
VARIATIONS = {
    "h": (0.03, 0.08, CYLINDER_ID),
    "r": (0.02, 0.045, CYLINDER_ID),
    "rho": (1000.0, 8000.0, None),
    "k": (60.0, 380.0, SPRING_ID),
    "l": (0.04, 0.10, SPRING_ID),
}


@pytest.fixture(scope="module")
def variations(world):
    rows = [with_(**{name: v}) for name, (lo, hi, _) in VARIATIONS.items() for v in (lo, hi)]
    out = world.render(batch(rows))
    return {name: (out, 2 * i, 2 * i + 1) for i, name in enumerate(VARIATIONS)}


@pytest.mark.parametrize("name", list(VARIATIONS))
def test_each_latent_is_visible(variations, name):
    out, lo, hi = variations[name]
    _, _, part = VARIATIONS[name]
    diff = np.abs(out.pixels[lo].astype(int) - out.pixels[hi].astype(int))
    assert diff.sum() > 1000, f"{name} barely changes the pixels"
    seg_lo, seg_hi = out.segmentation[lo], out.segmentation[hi]
    if part is None:  # rho: colour only
        np.testing.assert_array_equal(seg_lo, seg_hi)
        cyl = seg_lo == CYLINDER_ID
        assert np.abs(out.pixels[lo][cyl].mean(0) - out.pixels[hi][cyl].mean(0)).max() > 20
    else:
        assert (seg_hi == part).sum() > (seg_lo == part).sum() * 1.1, f"larger {name} should show more of part {part}"


def test_spring_length_moves_the_cylinder(variations):
    out, lo, hi = variations["l"]
    top_lo = np.nonzero((out.segmentation[lo, 0] == CYLINDER_ID).any(axis=1))[0].min()
    top_hi = np.nonzero((out.segmentation[hi, 0] == CYLINDER_ID).any(axis=1))[0].min()
    assert top_hi < top_lo, "a longer spring lifts the cylinder (higher in the image)"


def test_optional_latents(world):
    plain = world.render(batch([BASE]))
    light = world.render(batch([{**BASE, "light": 2.0}]))
    dark = world.render(batch([{**BASE, "light": 0.3}]))
    hue = world.render(batch([{**BASE, "hue": 0.33}]))
    assert light.pixels.mean() > plain.pixels.mean() > dark.pixels.mean()
    np.testing.assert_array_equal(light.segmentation, plain.segmentation)
    cyl = plain.segmentation[0] == CYLINDER_ID
    assert np.abs(hue.pixels[0][cyl].astype(int) - plain.pixels[0][cyl]).max() > 30
    # light=1 and the hue rho gives are the defaults
    same = world.render(batch([{**BASE, "light": 1.0}]))
    np.testing.assert_array_equal(same.pixels, plain.pixels)


def test_tallest_configuration_stays_in_frame():
    with SpringWorld(spec(views=4, samples=1), threads=1) as w:
        out = w.render(batch([{"h": 0.10, "r": 0.05, "rho": 9000.0, "k": 400.0, "l": 0.12}]))
    seg = out.segmentation[0]
    for v in range(4):
        ys, xs = np.nonzero(seg[v] == CYLINDER_ID)
        assert ys.size > 40
        assert ys.min() >= 1 and xs.min() >= 1 and xs.max() <= 30, f"view {v}: the cylinder touches the border"


def test_two_worlds_in_one_process(world):
    before = world.render(batch([BASE]))
    other = SpringWorld(spec(size=16, views=1), threads=1)
    assert other.render(batch([BASE])).pixels.shape == (1, 1, 16, 16, 3)
    other.close()
    np.testing.assert_array_equal(world.render(batch([BASE])).pixels, before.pixels)


def test_exr_reader_codecs(world, tmp_path):
    """read_exr (the OpenEXR package) gives the same passes for Blender's NONE, ZIPS and ZIP codecs."""
    bpy = bl.require_bpy()
    sc = world.bs.scene
    sc.camera = world.cameras[0]
    bpy.ops.render.render(write_still=False, scene=sc.name)
    fmt = sc.render.image_settings
    fmt.media_type = "MULTI_LAYER_IMAGE"
    fmt.color_depth = "32"
    got = {}
    for codec in ("NONE", "ZIPS", "ZIP"):
        fmt.exr_codec = codec
        p = str(tmp_path / f"{codec}.exr")
        bpy.data.images["Render Result"].save_render(p, scene=sc)
        got[codec] = bl.read_exr(p)
    assert any(k.endswith("Depth.Z") for k in got["NONE"])
    for codec in ("ZIPS", "ZIP"):
        assert got[codec].keys() == got["NONE"].keys()
        for k in got["NONE"]:
            np.testing.assert_array_equal(got[codec][k], got["NONE"][k])
