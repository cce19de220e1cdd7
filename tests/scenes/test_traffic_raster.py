"""The top-down raster's segmentation and depth are coverage-based: a pixel shows the id covering most of it, and
every object whose colour tints some pixel keeps at least one pixel of its id (a car about one pixel across used to
be missing from segmentation and depth where the pixel centre missed it)."""

from __future__ import annotations

import numpy as np

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world
from crlgen.scenes.cameras import orthographic_intrinsics, project, topdown_pose
from crlgen.scenes.testing import _batch
from crlgen.scenes.traffic import _raster


def _grid(px_per_m: float = 0.5, size: int = 8, ss: int = 5) -> _raster.Grid:
    K = orthographic_intrinsics(size, size, size / px_per_m)
    return _raster.Grid.of(K, topdown_pose((0.0, 0.0), 50.0), size, size, ss=ss)


def test_a_pixel_takes_the_id_covering_most_of_it_and_its_depth():
    g = _grid()  # 2 m pixels
    c = _raster.blank(g)
    _raster.paint_quads(c, g, np.array([[[-8, -8], [8, -8], [8, 8], [-8, 8]]], float), np.array([[0.3, 0.3, 0.3]]),
                        np.array([2]), np.array([0]))
    # a 3.0 x 1.6 m box whose centre lies on a pixel centre: most of that pixel
    px, py = g.cx[5], g.cy[2]
    _raster.paint_boxes(c, g, np.array([[px, py, 0.75]]), np.zeros(1), np.array([[1.5, 0.8, 0.75]]),
                        np.array([[1.0, 0.0, 0.0]]), np.array([20]))
    rgb, depth, seg = c.finish(g)
    assert seg[2, 5] == 20 and (seg == 20).sum() == 1 and depth[2, 5] == np.float32(50.0 - 1.5)
    assert (seg[seg != 20] == 2).all() and np.allclose(depth[seg == 2], 50.0)


def test_an_object_smaller_than_a_pixel_straddling_four_keeps_one():
    g = _grid()
    c = _raster.blank(g)
    _raster.paint_quads(c, g, np.array([[[-8, -8], [8, -8], [8, 8], [-8, 8]]], float), np.array([[0.3, 0.3, 0.3]]),
                        np.array([2]), np.array([0]))
    # two 1 m boxes around the corner where four 2 m pixels meet (one up-left of it, one down-right, overlapping at
    # the corner): each covers at most a third of any pixel, so the road covers most of every pixel
    corner_x, corner_y = (g.cx[3] + g.cx[4]) / 2, (g.cy[3] + g.cy[4]) / 2
    _raster.paint_boxes(c, g, np.array([[corner_x - 0.3, corner_y + 0.3, 0.5], [corner_x + 0.3, corner_y - 0.3, 0.4]]),
                        np.zeros(2), np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.3]]),
                        np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]), np.array([20, 21]))
    rgb, depth, seg = c.finish(g)
    tinted = np.argwhere(rgb[..., 0] > 0.3 * 255 + 5)  # pixels the red box tints
    assert len(tinted) >= 2
    a, b = np.argwhere(seg == 20), np.argwhere(seg == 21)
    assert len(a) == 1 and len(b) == 1 and not np.array_equal(a, b)  # one pixel each, not the same one
    assert depth[tuple(a[0])] == np.float32(50.0 - 1.0)
    assert any(np.array_equal(a[0], t) for t in tinted)


def test_every_car_in_view_of_a_downtown_clip_has_a_segmentation_pixel():
    spec = load_spec("traffic/downtown")  # 64 px over the map's 125 m: a car is about one pixel wide
    r = spec.render.model_dump(mode="json")
    r["views"] = [r["views"][0]]
    spec = spec.replace(samples=2, video={"fps": 10, "frames": 32, "substeps": 2}, render=r)
    with build_world(spec, threads=1) as w:
        out = w.render(_batch(spec, 0, 2, w)).outputs
        first_car = w._first_car
    names = list(next(o for o in w.outputs(spec) if o.name == "states").coords["state"][1])
    K = next(o for o in w.outputs(spec) if o.name == "intrinsics").value[0]
    S, seg, depth = out["states"], out["segmentation"][:, :, 0], out["depth"][:, :, 0]
    H, W = seg.shape[-2:]
    seen, missing = 0, []
    for i in range(len(S)):
        pose = out["camera_to_world"][i, 0, 0]
        for t in range(S.shape[1]):
            for k in range(spec.object_count("vehicle")):
                x, y = S[i, t, names.index(f"vehicle[{k}].x")], S[i, t, names.index(f"vehicle[{k}].y")]
                if not np.isfinite(x):  # absent
                    continue
                uv, _ = project(np.array([[x, y, 0.75]]), K, pose, True)
                if not (1 <= uv[0, 0] < W - 1 and 1 <= uv[0, 1] < H - 1):
                    continue
                seen += 1
                rows, cols = np.nonzero(seg[i, t] == first_car + k)
                if rows.size == 0:
                    missing.append((i, t, k))
                    continue
                # the pixels lie on the car (half-diagonal 2.4 m, plus a pixel) and their depth is its roof or body top
                assert np.all(np.hypot(cols - uv[0, 0], rows - uv[0, 1]) <= 2.45 * K[0, 0] + 1.0), (i, t, k)
                assert np.all(depth[i, t][rows, cols] < 50.0 - 1.0), (i, t, k)
    assert seen > 100 and missing == [], f"{len(missing)} of {seen} in-view car-frames have no segmentation pixel: {missing[:5]}"


def test_each_car_index_has_a_hue_band_of_its_own_in_the_pixels():
    import colorsys

    from crlgen.scenes.traffic.world import vehicle_rgb

    n = 8
    for k in range(n):  # the latent moves the hue inside the index's band; bands never meet
        lo, hi = (colorsys.rgb_to_hsv(*vehicle_rgb(k, n, h))[0] for h in (0.0, 1.0))
        assert k / n < lo < hi < (k + 1) / n
    spec = load_spec("traffic/grid_town").replace(samples=2, video={"fps": 10, "frames": 32, "substeps": 2})
    with build_world(spec, threads=1) as w:
        out = w.render(_batch(spec, 0, 2, w)).outputs
        first_car = w._first_car
    seg, rgb = out["segmentation"][:, :, 0], out["frames"][:, :, 0]
    checked = 0
    for i in range(2):
        for t in range(0, 32, 4):
            for k in range(n):
                on = seg[i, t] == first_car + k
                if not on.any():
                    continue
                px = rgb[i, t][on].astype(float) / 255.0
                hue = colorsys.rgb_to_hsv(*px[np.argmax(px.max(1) - px.min(1))])[0]  # its most saturated pixel
                assert k / n <= hue <= (k + 1) / n, (i, t, k, hue)
                checked += 1
    assert checked > 50


def test_a_frozen_background_gives_the_same_pixels_as_painting_from_scratch():
    from crlgen.scenes.traffic import _maps

    m = _maps.get_map(3)
    g = _grid(px_per_m=0.55, size=64, ss=5)
    bg = _raster.blank(g)
    _raster.paint_quads(bg, g, m.quads, m.quad_rgb, m.quad_ids, m.quad_layer)
    plain = bg.copy()
    frozen = bg.copy().freeze(g).copy()
    rng = np.random.default_rng(0)  # test data: 20 cars anywhere, any heading
    centre = np.c_[rng.uniform(-50, 50, (20, 2)), np.full(20, 0.75)]
    args = (centre, rng.uniform(-3, 3, 20), np.tile([2.25, 0.9, 0.75], (20, 1)), rng.uniform(0, 1, (20, 3)), np.arange(20) + 30)
    for c in (plain, frozen):
        _raster.paint_boxes(c, g, *args)
    for a, b in zip(plain.finish(g), frozen.finish(g)):
        np.testing.assert_array_equal(a, b)
    assert set(range(30, 50)) <= set(np.unique(frozen.finish(g)[2]).tolist())  # every car keeps a pixel
