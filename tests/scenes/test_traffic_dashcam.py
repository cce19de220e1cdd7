"""The traffic dashcam (TinyRenderer box world): geometry against the pinhole model, segmentation ids,
Koschmieder fog checked pixel by pixel against the law at the stored depth, determinism, flat memory."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from crlgen.scenes.cameras import look_at, perspective_intrinsics, project
from crlgen.scenes.traffic._dashcam import (KOSCHMIEDER, Boxes, Dashcam, Ground, View, Weather, linear_to_srgb,
                                            render_boxes, srgb_to_linear)

W, H = 129, 97               # odd: the principal point is the centre of pixel (64, 48)
EYE_Z = 1.4                   # camera height (m)
GROUND_ID, ROAD_ID, BOX_ID = 1, 2, 7


def _view(width: int = W, height: int = H, fov: float = 50.0) -> View:
    """A dashcam at (0, 0, EYE_Z) looking along +x, level."""
    return View(perspective_intrinsics(width, height, fov), look_at((0.0, 0.0, EYE_Z), (10.0, 0.0, EYE_Z)), width, height,
                near=0.1, far=800.0)


def _ground() -> Ground:
    grass = [[-400.0, -400.0], [400.0, -400.0], [400.0, 400.0], [-400.0, 400.0]]
    road = [[-50.0, -4.0], [-50.0, 4.0], [300.0, 4.0], [300.0, -4.0]]  # clockwise: flipped to face up
    return Ground(np.array([grass, road]), np.array([[0.3, 0.55, 0.25], [0.35, 0.35, 0.37]]), np.array([GROUND_ID, ROAD_ID]),
                  np.array([0, 1]))


def _boxes(centres, half, ids, rgb=None, yaw=None, emissive=None) -> Boxes:
    c = np.asarray(centres, dtype=np.float64).reshape(-1, 3)
    n = len(c)
    rgb = np.tile([0.8, 0.2, 0.1], (n, 1)) if rgb is None else rgb
    return Boxes(c, np.zeros(n) if yaw is None else yaw, np.broadcast_to(np.asarray(half, dtype=np.float64), (n, 3)), rgb,
                 np.asarray(ids), emissive)


def _u8_law(clear: np.ndarray, fog_rgb, t: float) -> np.ndarray:
    """The Koschmieder law in float64, on an 8-bit sRGB pixel: encode(decode(p) t + decode(fog) (1 - t))."""
    lin = srgb_to_linear(np.asarray(clear) / 255.0).astype(np.float64)
    air = srgb_to_linear(np.asarray(fog_rgb)).astype(np.float64)
    return linear_to_srgb(lin * t + air * (1.0 - t)).astype(np.float64) * 255.0


@pytest.fixture
def dashcam():
    cam = Dashcam(None, _ground(), Boxes.empty(), n_dynamic=8)
    yield cam
    cam.close()


def test_box_straight_ahead_lands_at_the_centre_at_its_geometric_depth(dashcam):
    """A 1 m cube 20 m ahead at eye height: its front face (19.5 m) is the depth at the centre pixel within
    1 cm, its mask's edges are where K projects the face's edges within a pixel, and every box pixel's
    depth is 19.5 m (a flat face facing the camera has one camera z)."""
    view = _view()
    rgb, depth, seg = dashcam.render(_boxes([20.0, 0.0, EYE_Z], 0.5, [BOX_ID]), view)
    assert rgb.shape == (H, W, 3) and rgb.dtype == np.uint8
    assert depth.shape == (H, W) and depth.dtype == np.float32
    assert seg.shape == (H, W) and seg.dtype == np.int32
    cu, cv = int(view.K[0, 2]), int(view.K[1, 2])
    assert seg[cv, cu] == BOX_ID
    assert abs(depth[cv, cu] - 19.5) < 0.01
    mask = seg == BOX_ID
    np.testing.assert_allclose(depth[mask], 19.5, atol=0.01)
    corners = np.array([[19.5, y, EYE_Z + z] for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    uv, z = project(corners, view.K, view.camera_to_world)
    np.testing.assert_allclose(z, 19.5)
    cols, rows = np.nonzero(mask.any(0))[0], np.nonzero(mask.any(1))[0]
    # pixels whose centres fall inside [u_min, u_max]: the mask's edges sit within a pixel of K's projection
    assert abs(cols.min() - uv[:, 0].min()) <= 1.0 and abs(cols.max() - uv[:, 0].max()) <= 1.0
    assert abs(rows.min() - uv[:, 1].min()) <= 1.0 and abs(rows.max() - uv[:, 1].max()) <= 1.0
    assert abs(0.5 * (cols.min() + cols.max()) - cu) <= 0.5 and abs(0.5 * (rows.min() + rows.max()) - cv) <= 0.5


def test_ground_depth_follows_the_pinhole_model(dashcam):
    """Below the horizon every pixel sees the ground (the road, layer 1, at z = 1 cm): camera z of the plane
    z = 0.01 along each row's ray, within 0.2 % (TinyRenderer's depth buffer is float32)."""
    view = _view()
    _, depth, seg = dashcam.render(Boxes.empty(), view)
    cu, cv = int(view.K[0, 2]), int(view.K[1, 2])
    rows = np.arange(cv + 3, H)
    y_n = (rows - view.K[1, 2]) / view.K[1, 1]
    expected = (EYE_Z - 0.01) / y_n
    np.testing.assert_allclose(depth[rows, cu], expected, rtol=2e-3)
    assert np.all(seg[rows, cu] == ROAD_ID)
    assert np.all(seg[:cv - 1] == 0) and np.all(depth[:cv - 1] == 0.0)  # sky above the horizon: id 0, depth 0


def test_segmentation_ids_follow_the_boxes_not_the_bodies(dashcam):
    """Two boxes of one size swap places between frames (the pool reuses the same two bodies): each pixel
    keeps the id and colour of the box that stands there; a box of another size and a yawed box show their
    own ids; nothing but the given ids appears."""
    view = _view()
    left, right = [25.0, 3.0, 1.0], [25.0, -3.0, 1.0]
    red, blue = [0.9, 0.1, 0.1], [0.1, 0.2, 0.9]
    extra = dict(centres=[[40.0, 0.0, 2.0], [15.0, -1.0, 0.4]], half=[[1.0, 1.0, 2.0], [0.3, 0.3, 0.4]], ids=[30, 31])
    frames = [([left, right], [11, 12], [red, blue]), ([right, left], [11, 12], [red, blue])]
    for centres, ids, rgb in frames:
        b = _boxes(np.r_[centres, extra["centres"]], np.r_[[[1.0, 1.0, 1.0]] * 2, extra["half"]], ids + extra["ids"],
                   rgb=np.r_[rgb, [[0.5, 0.5, 0.5]] * 2], yaw=np.array([0.0, 0.0, 0.0, 0.7]))
        rgb_img, _, seg = dashcam.render(b, view)
        uv, _ = project(b.centre, view.K, view.camera_to_world)
        for (u, v), box_id, colour in zip(np.rint(uv).astype(int), b.ids, b.rgb):
            assert seg[v, u] == box_id
            if box_id in (11, 12):  # the lit side's colour is dominated by the box's own hue
                assert np.argmax(rgb_img[v, u]) == np.argmax(colour)
        assert set(np.unique(seg)) <= {0, GROUND_ID, ROAD_ID, 11, 12, 30, 31}
    assert dashcam.bodies == 2 + 4  # two ground meshes, four pooled boxes: nothing was created for frame 2


def test_fog_follows_koschmieder_at_the_stored_depth_and_changes_only_colour(dashcam):
    """Visibility 60 m: beta = 3.912 / 60. At the centre pixel (box, depth d) the fogged value is the law
    encode(decode(clear) t + decode(fog) (1 - t)), t = exp(-beta d), within one 8-bit level; off-centre
    ground pixels use the distance along their ray, depth * |(x_n, y_n, 1)|; sky is the fog colour; depth
    and segmentation are bitwise those of the clear frame."""
    view = _view()
    boxes = _boxes([[20.0, 0.0, EYE_Z], [45.0, 3.0, 1.0]], 0.5, [BOX_ID, BOX_ID + 1])
    clear, d0, s0 = dashcam.render(boxes, view, Weather())
    fog = Weather(visibility=60.0, fog_rgb=(0.7, 0.72, 0.75))
    foggy, d1, s1 = dashcam.render(boxes, view, fog)
    np.testing.assert_array_equal(d0, d1)
    np.testing.assert_array_equal(s0, s1)
    assert fog.extinction == pytest.approx(KOSCHMIEDER / 60.0)
    beta = 3.912 / 60.0
    K = view.K
    pixels = [(int(K[1, 2]), int(K[0, 2])), (H - 3, 10), (H - 10, W - 20), (int(K[1, 2]) + 6, 80)]
    for v, u in pixels:
        assert s0[v, u] != 0
        rho = float(d0[v, u]) * math.sqrt(1.0 + ((u - K[0, 2]) / K[0, 0]) ** 2 + ((v - K[1, 2]) / K[1, 1]) ** 2)
        expected = _u8_law(clear[v, u], fog.fog_rgb, math.exp(-beta * rho))
        assert np.all(np.abs(foggy[v, u] - expected) <= 1.0), (v, u, foggy[v, u], expected)
        assert np.any(foggy[v, u] != clear[v, u])  # fog did change it
    sky = s0 == 0
    np.testing.assert_allclose(foggy[sky], np.rint(np.asarray(fog.fog_rgb) * 255.0)[None].repeat(sky.sum(), 0), atol=1.0)
    # farther surfaces lose more contrast: the box at 45 m is closer to the fog colour than the one at 20 m
    far_box = np.abs(foggy[s0 == BOX_ID + 1].astype(float) - np.asarray(fog.fog_rgb) * 255).mean()
    near_box = np.abs(foggy[s0 == BOX_ID].astype(float) - np.asarray(fog.fog_rgb) * 255).mean()
    assert far_box < near_box


def test_rain_and_night_darken_without_touching_depth_or_segmentation(dashcam):
    """Rain 1: the frame's mean linear light drops, the sky darkens, and the box/road contrast shrinks (the
    stated veil and darkening); daylight 0.1 darkens every pixel. Depth and ids stay bitwise the same."""
    view = _view()
    boxes = _boxes([20.0, 0.0, EYE_Z], 0.5, [BOX_ID])
    clear, d0, s0 = dashcam.render(boxes, view)
    rainy, d, s = dashcam.render(boxes, view, Weather(rain=1.0))
    night, dn, sn = dashcam.render(boxes, view, Weather(daylight=0.1))
    for depth, seg in ((d, s), (dn, sn)):
        np.testing.assert_array_equal(depth, d0)
        np.testing.assert_array_equal(seg, s0)
    lin = lambda img: srgb_to_linear(img / 255.0)  # noqa: E731
    assert lin(rainy).mean() < 0.8 * lin(clear).mean()
    assert np.all(rainy[s0 == 0] < clear[s0 == 0])
    assert np.all(night <= clear) and night.mean() < 0.6 * clear.mean()
    contrast = lambda img: np.abs(lin(img)[s0 == BOX_ID].mean(0) - lin(img)[s0 == ROAD_ID].mean(0)).sum()  # noqa: E731
    assert contrast(rainy) < 0.5 * contrast(clear)


def test_emissive_boxes_glow_in_their_own_colour_at_night(dashcam):
    """A lamp (emissive) keeps its exact sRGB colour at daylight 0.05 while a plain box of the same colour goes dark."""
    view = _view()
    colour = [1.0, 0.1, 0.05]
    boxes = _boxes([[20.0, 1.0, EYE_Z], [20.0, -1.0, EYE_Z]], 0.4, [40, 41], rgb=np.array([colour, colour]),
                   emissive=np.array([True, False]))
    img, _, seg = dashcam.render(boxes, view, Weather(daylight=0.05))
    np.testing.assert_array_equal(img[seg == 40], np.rint(np.array(colour) * 255).astype(np.uint8)[None].repeat((seg == 40).sum(), 0))
    assert img[seg == 41].astype(float).mean() < 0.5 * img[seg == 40].astype(float).mean()


def test_two_renderers_agree_bitwise():
    """The same frames through two Dashcams (own PyBullet clients) and twice through one are bitwise equal."""
    view = _view()
    frames = [_boxes([[10.0 + t, 1.5, 0.8], [30.0 - t, -1.5, 0.8]], [2.2, 0.9, 0.8], [20, 21], yaw=np.array([0.1 * t, 0.0]))
              for t in range(4)]
    weather = Weather(visibility=120.0, rain=0.3, daylight=0.7)
    out = []
    for _ in range(2):
        cam = Dashcam(None, _ground(), _boxes([[60.0, 12.0, 6.0]], [8.0, 5.0, 6.0], [50]), n_dynamic=4)
        try:
            out.append([cam.render(b, view, weather) for b in frames] + [cam.render(frames[0], view, weather)])
        finally:
            cam.close()
    for a, b in zip(out[0], out[1]):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)
    for x, y in zip(out[0][0], out[0][-1]):  # frame 0 again after the boxes moved
        np.testing.assert_array_equal(x, y)


def test_render_boxes_matches_a_dashcam():
    view = _view(64, 48)
    boxes = _boxes([12.0, 0.0, 1.0], 0.6, [BOX_ID])
    cam = Dashcam(None, _ground(), Boxes.empty(), 1)
    try:
        a = cam.render(boxes, view, Weather(visibility=90.0))
    finally:
        cam.close()
    b = render_boxes(boxes, _ground(), view, Weather(visibility=90.0))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="RSS is read from /proc (Linux)")
def test_memory_stays_flat_over_many_frames():
    """400 frames of 12 moving boxes that change colour, count (6..12) and weather: the body count stops
    growing after the first frames and the resident set grows < 8 MB after a 50-frame warm-up (a soft
    bound; the report measures 1000 frames)."""
    view = _view(96, 72)
    cam = Dashcam(None, _ground(), Boxes.empty(), n_dynamic=12)
    rng = np.random.default_rng(0)
    try:
        def frame(t: int) -> None:
            n = 6 + t % 7
            centres = np.c_[rng.uniform(5, 60, n), rng.uniform(-4, 4, n), np.full(n, 0.8)]
            half = np.where(np.arange(n)[:, None] % 2 == 0, [2.2, 0.9, 0.8], [0.3, 0.3, 0.9])
            cam.render(Boxes(centres, rng.uniform(-3, 3, n), half, rng.uniform(0, 1, (n, 3)), np.arange(n) + 10),
                       view, Weather(visibility=float(rng.uniform(30, 500)), rain=float(rng.uniform(0, 1))))
        for t in range(50):
            frame(t)
        bodies, rss = cam.bodies, _rss_mb()
        for t in range(50, 400):
            frame(t)
        assert cam.bodies == bodies
        assert _rss_mb() - rss < 8.0
    finally:
        cam.close()


@pytest.mark.parametrize("make, field", [
    (lambda: Boxes(np.zeros((1, 2)), np.zeros(1), np.ones((1, 3)), np.zeros((1, 3)), [1]), "boxes.centre"),
    (lambda: Boxes(np.zeros((2, 3)), np.zeros(1), np.ones((2, 3)), np.zeros((2, 3)), [1, 2]), "boxes.yaw"),
    (lambda: _boxes([1.0, 2.0, 3.0], -0.5, [1]), "boxes.half_extents"),
    (lambda: _boxes([1.0, 2.0, 3.0], 0.5, [1], rgb=np.array([[1.0, 2.0, 0.0]])), "boxes.rgb"),
    (lambda: Ground(np.zeros((2, 3, 2)), np.zeros((2, 3)), np.zeros(2)), "ground.corners"),
    (lambda: Weather(visibility=0.0), "weather.visibility"),
    (lambda: Weather(rain=1.5), "weather.rain"),
    (lambda: View(np.eye(3), np.eye(4), 0, 10), "view size"),
])
def test_bad_input_is_named(make, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        make()


def test_more_boxes_than_built_for_is_refused(dashcam):
    with pytest.raises(ValueError, match="at most 8"):
        dashcam.render(_boxes(np.zeros((9, 3)) + [10.0, 0.0, 1.0], 0.5, np.arange(9) + 1), _view())


def test_a_spec_camera_gives_the_same_view():
    """View.from_camera takes K, size and clip planes from a resolved spec camera (scenes.cameras.CameraModel)."""
    from crlgen.scenes.cameras import CameraModel

    v = _view(64, 48)
    model = CameraModel("dash", "mounted", 64, 48, v.K, False, 50.0, None, 0.1, 800.0, mount="vehicle[0]", local=np.eye(4))
    got = View.from_camera(model, v.camera_to_world)
    assert (got.width, got.height, got.near, got.far) == (64, 48, 0.1, 800.0)
    np.testing.assert_array_equal(got.K, v.K)
    with pytest.raises(ValueError, match="mounted"):
        View.from_camera(model)
