"""static/spring: what only this Cycles (bpy, CPU) scene does; small renders (32 px, 2 samples, 2 views).

Determinism, lazy engine import, outputs as declared, every latent visible and the camera
geometry are the world contract's (tests/scenes/test_contract_static.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.engines import blender as bl
from crlgen.scenes.static.spring import CYLINDER_ID, GROUND_ID, SPRING_ID, SpringWorld

pytestmark = pytest.mark.slow

BASE = {"h": 0.05, "r": 0.03, "rho": 3000.0, "k": 200.0, "l": 0.06}


def spec(size=32, views=2, samples=2, **kw):
    return load_spec("static/spring").replace(render={"size": size, "views": views, "samples": samples, "device": "cpu", **kw})


def px(r):
    return r.outputs["images"]


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


def test_shapes_dtypes_ids_and_depth(world):
    out = world.render(batch([BASE, with_(r=0.045, l=0.1), with_(h=0.02, l=0.02)]))
    seg, depth = out.outputs["segmentation"], out.outputs["depth"]
    assert set(np.unique(seg)) <= {0, GROUND_ID, SPRING_ID, CYLINDER_ID}
    assert {GROUND_ID, SPRING_ID, CYLINDER_ID} <= set(np.unique(seg))
    assert (seg == 0).any(), "some background should be visible above the table"
    assert np.all(depth[seg == 0] == 0.0)
    on = depth[seg > 0]
    assert np.all(on > 0.05) and np.all(on < 2.0)
    # the cylinder on top of the spring is nearer the camera than the table behind it
    assert depth[seg == CYLINDER_ID].mean() < depth[seg == GROUND_ID].mean()
    assert 20 < px(out).mean() < 235, "neither black nor blown out"
    (key,) = [o.attrs["ids"] for o in SpringWorld.outputs(world.spec) if o.name == "segmentation"]
    assert key == {"0": "background", "1": "ground", "2": "spring (coil and seat)", "3": "cylinder"}


def test_annotations_off_and_non_square():
    with SpringWorld(spec(size=(40, 24), views=("front", "top"), annotations=()), threads=1) as w:
        out = w.render(batch([BASE]))
    assert px(out).shape == (1, 2, 24, 40, 3)
    assert set(out.outputs) == {"images", "camera_to_world"}


def test_rejects_bad_latents(world):
    with pytest.raises(KeyError, match="missing"):
        world.render(batch([{k: v for k, v in BASE.items() if k != "k"}]))
    with pytest.raises(ValueError, match="non-finite"):
        world.render(batch([with_(h=float("nan"))]))
    with pytest.raises(ValueError, match=r"'l' has values outside static/spring's valid range \[0.01, 0.13\]"):
        world.render(batch([with_(l=-0.05)]))  # never drawn as a clamped spring


def test_rejects_other_engines():
    with pytest.raises(ValueError, match="cycles"):
        SpringWorld(spec(engine="tiny"))


def test_a_spring_each_camera_kind_frames():
    views = ["front", {"kind": "fixed", "name": "side", "position": [0.4, -0.1, 0.2], "look_at": [0, 0, 0.08]},
             {"kind": "topdown", "name": "top", "extent": 0.3, "size": [40, 32]}]
    with SpringWorld(spec(views=views), threads=1) as w:
        out = w.render(batch([BASE])).outputs
    assert out["images"].shape == (1, 2, 32, 32, 3) and out["images_40x32"].shape == (1, 1, 32, 40, 3)
    top = out["segmentation_40x32"][0, 0]
    assert top[16, 20] == CYLINDER_ID  # straight down onto the cylinder's top
    assert out["depth_40x32"][0, 0][16, 20] == pytest.approx(50.0 - (BASE["l"] + BASE["h"]), abs=1e-3)


def variations(world):
    rows = [with_(**{name: v}) for name, (lo, hi, _) in VARIATIONS.items() for v in (lo, hi)]
    out = world.render(batch(rows))
    return {name: (out, 2 * i, 2 * i + 1) for i, name in enumerate(VARIATIONS)}


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
    diff = np.abs(px(out)[lo].astype(int) - px(out)[hi].astype(int))
    assert diff.sum() > 1000, f"{name} barely changes the pixels"
    seg_lo, seg_hi = out.outputs["segmentation"][lo], out.outputs["segmentation"][hi]
    if part is None:  # rho: colour only
        np.testing.assert_array_equal(seg_lo, seg_hi)
        cyl = seg_lo == CYLINDER_ID
        assert np.abs(px(out)[lo][cyl].mean(0) - px(out)[hi][cyl].mean(0)).max() > 20
    else:
        assert (seg_hi == part).sum() > (seg_lo == part).sum() * 1.1, f"larger {name} should show more of part {part}"


def test_spring_length_moves_the_cylinder(variations):
    out, lo, hi = variations["l"]
    seg = out.outputs["segmentation"]
    top_lo = np.nonzero((seg[lo, 0] == CYLINDER_ID).any(axis=1))[0].min()
    top_hi = np.nonzero((seg[hi, 0] == CYLINDER_ID).any(axis=1))[0].min()
    assert top_hi < top_lo, "a longer spring lifts the cylinder (higher in the image)"


def test_optional_latents(world):
    plain = world.render(batch([BASE]))
    light = world.render(batch([{**BASE, "light": 2.0}]))
    dark = world.render(batch([{**BASE, "light": 0.3}]))
    hue = world.render(batch([{**BASE, "hue": 0.33}]))
    assert px(light).mean() > px(plain).mean() > px(dark).mean()
    np.testing.assert_array_equal(light.outputs["segmentation"], plain.outputs["segmentation"])
    cyl = plain.outputs["segmentation"][0] == CYLINDER_ID
    assert np.abs(px(hue)[0][cyl].astype(int) - px(plain)[0][cyl]).max() > 30
    # light=1 and the hue rho gives are the defaults
    same = world.render(batch([{**BASE, "light": 1.0}]))
    np.testing.assert_array_equal(px(same), px(plain))


def test_tallest_configuration_stays_in_frame():
    with SpringWorld(spec(views=4, samples=1), threads=1) as w:
        out = w.render(batch([{"h": 0.10, "r": 0.05, "rho": 9000.0, "k": 400.0, "l": 0.13}]))
    seg = out.outputs["segmentation"][0]
    for v in range(4):
        ys, xs = np.nonzero(seg[v] == CYLINDER_ID)
        assert ys.size > 40
        assert ys.min() >= 1 and xs.min() >= 1 and xs.max() <= 30, f"view {v}: the cylinder touches the border"


def test_two_worlds_in_one_process(world):
    before = world.render(batch([BASE]))
    other = SpringWorld(spec(size=16, views=1), threads=1)
    assert px(other.render(batch([BASE]))).shape == (1, 1, 16, 16, 3)
    other.close()
    np.testing.assert_array_equal(px(world.render(batch([BASE]))), px(before))


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


def test_the_catalogue_spring_stays_off_coil_bind():
    """Issue 10: at the 0.01 m floor of l (coil bind) neither m nor k acts and the coil hides under
    the cylinder, so the catalogue's ranges keep all but a few samples above it (interventions,
    counterfactual partners and both domains included)."""
    from crlgen.pipeline import CompiledSCM, load_spec

    batch = CompiledSCM(load_spec("static/spring").with_samples(4000)).sample(0, 4000)
    l = batch.column("l")
    assert np.mean(l < 0.03) < 0.005, f"{np.mean(l < 0.03):.2%} of samples within 2 cm of coil bind"
    assert np.std(l) > 0.01  # l still varies by centimetres: the spring is seen to compress
