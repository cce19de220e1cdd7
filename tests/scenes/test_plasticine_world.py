"""static/plasticine: what only this Cycles (bpy, CPU) scene does, with small renders; and its world contract.

Determinism, lazy engine import, outputs as declared, every latent visible and the camera geometry
are the contract's (:class:`TestPlasticineContract`); here: the dent measured in the depth map
against Tabor's energy balance, what each latent changes, refused latents and engines.
"""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import CompiledSCM, load_spec
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.cameras import pixel_rays
from crlgen.scenes.static.plasticine import (
    BALL_ID, MAGNET_ID, SLAB_ID, SLAB_THICKNESS, TABLE_ID, PlasticineWorld, dent_depth, dent_width,
)
from crlgen.scenes.testing import WorldContract

pytestmark = pytest.mark.slow


def latents(R=0.02, rho=6000.0, h=0.1, H=0.2) -> dict:
    """A sample whose dent follows the catalogue's mechanism."""
    return {"R": R, "rho": rho, "h": h, "H": H, "depth": float(dent_depth(rho * 4.18879020 * R**3, h, H, R))}


BASE = latents()
#: Looking down 65 deg onto the dent from the -y side (the magnet hangs clear of the line of sight).
OBLIQUE = {"kind": "fixed", "name": "oblique", "position": [0.0, -0.15, 0.35], "look_at": [0.0, 0.0, SLAB_THICKNESS],
           "fov": 20.0}


#: The catalogue's first two cameras (55 deg up, from -y and from +x).
VIEWS = [v.model_dump(mode="json") for v in load_spec("static/plasticine").render.views[:2]]


class TestPlasticineContract(WorldContract):
    spec = load_spec("static/plasticine").replace(samples=8, render={"size": 24, "views": VIEWS, "samples": 4, "engine": "cycles"})
    topdown_extent = 0.3
    memory_samples = 40


def spec(size=32, views=VIEWS, samples=4, **kw):
    return load_spec("static/plasticine").replace(render={"size": size, "views": views, "samples": samples, "device": "cpu", **kw})


def batch(rows: list[dict]) -> WorldBatch:
    n = len(rows)
    return WorldBatch(index=np.arange(n), latents={k: np.array([r[k] for r in rows], dtype=np.float64) for k in rows[0]},
                      seeds=np.zeros(n, np.uint64))


@pytest.fixture(scope="module")
def world():
    w = PlasticineWorld(spec(), threads=1)
    yield w
    w.close()


def test_the_catalogue_dent_is_tabors_energy_balance():
    d = CompiledSCM(load_spec("static/plasticine").with_samples(500)).sample(0, 500)
    m = d.column("rho") * 4.0 / 3.0 * np.pi * d.column("R") ** 3
    np.testing.assert_allclose(d.column("m"), m, rtol=1e-6)
    # all of m g h goes into the plastic work pi H R d^2 (Tabor 1951, d << R)
    work = np.pi * d.column("H") * 1e6 * d.column("R") * d.column("depth") ** 2
    np.testing.assert_allclose(work, m * 9.81 * d.column("h"), rtol=1e-6)
    np.testing.assert_allclose(d.column("width"), dent_width(d.column("R"), d.column("depth")), rtol=1e-6)
    assert d.column("depth").max() <= 0.01 and np.all(d.column("depth") < d.column("R"))


def test_ids_and_depth(world):
    out = world.render(batch([BASE, latents(R=0.025, h=0.14)]))
    seg, depth = out.outputs["segmentation"], out.outputs["depth"]
    assert {TABLE_ID, SLAB_ID, BALL_ID, MAGNET_ID} <= set(np.unique(seg)) <= {0, TABLE_ID, SLAB_ID, BALL_ID, MAGNET_ID}
    assert np.all(depth[seg == 0] == 0.0) and np.all(depth[seg > 0] > 0.05)
    assert 20 < out.outputs["images"].mean() < 235


@pytest.fixture(scope="module")
def oblique():
    rows = [latents(R=0.025, rho=9000.0, h=0.14, H=0.11), latents(R=0.015, rho=5000.0, h=0.09, H=0.25)]
    with PlasticineWorld(spec(size=160, views=[OBLIQUE], samples=1, annotations=["depth", "segmentation"]),
                         threads=1) as w:
        out = w.render(batch(rows)).outputs
        K = next(o.value for o in w.outputs(w.spec) if o.name == "intrinsics")[0]
    return rows, out, K


def slab_points(out, K, i) -> np.ndarray:
    """World points (N, 3) of the plasticine's pixels, from the depth map and the stored camera."""
    depth, seg = out["depth"][i, 0], out["segmentation"][i, 0]
    origins, dirs = pixel_rays(K, out["camera_to_world"][i, 0], depth.shape[1], depth.shape[0])
    pts = origins + dirs * depth[..., None]  # unit camera z: depth is the ray parameter
    return pts[seg == SLAB_ID]


def test_the_dent_in_the_depth_map_has_the_depth_and_width_of_the_equation(oblique):
    rows, out, K = oblique
    for i, row in enumerate(rows):
        pts = slab_points(out, K, i)
        top = np.median(pts[:, 2])
        assert top == pytest.approx(SLAB_THICKNESS, abs=2e-4)
        near = pts[np.hypot(pts[:, 0], pts[:, 1]) < 0.04]
        bottom = near[:, 2].min()
        assert SLAB_THICKNESS - bottom == pytest.approx(row["depth"], abs=3e-4), "dent depth"
        # where the dent is more than 0.2 mm deep: a disc of the cap's radius at that depth
        eps = 2e-4
        dented = near[near[:, 2] < SLAB_THICKNESS - eps]
        reach = np.hypot(dented[:, 0], dented[:, 1]).max()
        want = 0.5 * float(dent_width(row["R"], row["depth"] - eps))
        assert reach == pytest.approx(want, abs=1.5e-3), "dent radius (a pixel is ~1 mm here)"
    # the heavier, faster ball on the softer slab digs the deeper and wider dent
    assert rows[0]["depth"] > 2 * rows[1]["depth"]


def test_each_latent_shows_where_it_should(world):
    rows = [BASE, {**BASE, "H": 0.4}, {**BASE, "rho": 2500.0}, {**BASE, "R": 0.025}, {**BASE, "h": 0.14},
            {**BASE, "depth": 0.0}]
    out = world.render(batch(rows))
    im, seg = out.outputs["images"].astype(int), out.outputs["segmentation"]
    base = seg[0]
    # hardness: the slab's colour only
    np.testing.assert_array_equal(seg[1], base)
    slab = base == SLAB_ID
    assert np.abs(im[1][slab].mean(0) - im[0][slab].mean(0)).max() > 30
    # density: the ball's brightness only
    np.testing.assert_array_equal(seg[2], base)
    ball = base == BALL_ID
    assert im[2][ball].mean() > im[0][ball].mean() + 20
    # radius: a larger ball (and its magnet higher by 2 R)
    assert (seg[3] == BALL_ID).sum() > 1.3 * ball.sum()
    # drop height: the magnet higher up in the image (smaller row index) in every view
    for v in range(seg.shape[1]):
        top_base = np.nonzero((seg[0, v] == MAGNET_ID).any(axis=1))[0].max()
        top_high = np.nonzero((seg[4, v] == MAGNET_ID).any(axis=1))[0].max()
        assert top_high < top_base, f"view {v}: the magnet's bottom should rise with h"
    # the dent alone: depth pixels on the slab change, nothing else moves
    assert not np.array_equal(out.outputs["depth"][5][base == SLAB_ID], out.outputs["depth"][0][base == SLAB_ID])
    np.testing.assert_array_equal(out.outputs["depth"][5][seg[5] == BALL_ID], out.outputs["depth"][0][base == BALL_ID])


def test_rejects_bad_latents(world):
    with pytest.raises(KeyError, match="missing"):
        world.render(batch([{k: v for k, v in BASE.items() if k != "depth"}]))
    with pytest.raises(ValueError, match="non-finite"):
        world.render(batch([{**BASE, "H": float("nan")}]))
    with pytest.raises(ValueError, match=r"'depth' has values outside static/plasticine's valid range \[0, 0.01\]"):
        world.render(batch([{**BASE, "depth": 0.02}]))
    with pytest.raises(ValueError, match=r"'R' has values outside"):
        world.render(batch([{**BASE, "R": 0.005}]))  # a ball smaller than the deepest dent it may sit beside


def test_rejects_other_engines():
    with pytest.raises(ValueError, match="cycles"):
        PlasticineWorld(spec(engine="tiny"))


def test_highest_magnet_and_largest_ball_stay_in_frame():
    with PlasticineWorld(spec(size=32, views=load_spec("static/plasticine").render.views, samples=1), threads=1) as w:
        out = w.render(batch([latents(R=0.025, rho=9000.0, h=0.14, H=0.11)]))
    seg = out.outputs["segmentation"][0]
    for v in range(4):
        for oid in (BALL_ID, MAGNET_ID, SLAB_ID):
            ys, xs = np.nonzero(seg[v] == oid)
            assert ys.size > 3, f"view {v}: id {oid} not seen"
        ys, xs = np.nonzero(seg[v] == SLAB_ID)
        assert xs.min() >= 1 and xs.max() <= 30 and ys.max() <= 30, f"view {v}: the slab touches the border"
        puck = np.nonzero((seg[v] == MAGNET_ID).sum(axis=1) > 1)[0]  # rows wider than the hanger
        assert puck.size and puck.min() >= 1, f"view {v}: the magnet is cut off"


def test_the_width_check_passes_the_catalogue_and_catches_another_mechanism():
    """width is derived by the spec but drawn as the cap the stored depth makes: validation's 'width' check
    compares every stored value with the world's cap geometry."""
    from crlgen.scenes.static.plasticine import PlasticineWorld
    from crlgen.scenes.testing import _batch

    (check,) = PlasticineWorld.checks
    base = load_spec("static/plasticine").with_samples(200)
    assert check.run(None, _batch(base, 0, 200), None) == []
    variables = dict(base.variables)
    variables["width"] = variables["width"].model_copy(update={"mechanism": "2 * sqrt(R * depth)"})
    problems = check.run(None, _batch(base.replace(variables=variables), 0, 200), None)
    assert len(problems) > 150 and "width" in problems[0] and "not what the world renders" in problems[0]
