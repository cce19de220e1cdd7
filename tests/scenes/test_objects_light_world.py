"""static/objects_light: the world contract, and what only this Cycles (bpy, CPU) scene does.

Small renders (32-48 px, 2-4 samples). Each test checks a piece of geometry or colour the
module docstring claims: the spotlight's pool of light lies where the ray from the lamp through
the object meets the floor; the background's hue is what the corner pixels show; each shape
class has its own silhouette; the dark half shows the rotation of a sphere; the object's centre
projects into its mask.
"""

from __future__ import annotations

import colorsys
import math

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.cameras import project
from crlgen.scenes.static._objects_light_shapes import SHAPES
from crlgen.scenes.static.objects_light import (
    BACKGROUND_SV, FLOOR_ID, OBJECT_ID, OBJECT_SIZE, RANGES, SHAPE_NAMES, ObjectsLightWorld, object_rotation,
    spot_position,
)
from crlgen.scenes.testing import WorldContract

pytestmark = pytest.mark.slow

BASE = {"shape": 1.0, "pos_x": 0.0, "pos_y": 0.0, "pos_z": 0.25, "yaw": 0.4, "pitch": 0.2, "obj_hue": 0.6,
        "spot_angle": 0.5, "spot_hue": 0.1, "bg_hue": 0.3}


class TestObjectsLightCycles(WorldContract):
    spec = load_spec("static/objects_light").replace(samples=8, render={"size": 24, "views": 2, "samples": 4, "engine": "cycles"})
    topdown_extent = 1.6
    memory_samples = 40


def spec(size=32, views=2, samples=2, **kw):
    return load_spec("static/objects_light").replace(
        render={"size": size, "views": views, "samples": samples, "device": "cpu", **kw})


def batch(rows: list[dict]) -> WorldBatch:
    n = len(rows)
    return WorldBatch(index=np.arange(n), latents={k: np.array([r[k] for r in rows], dtype=np.float64) for k in BASE},
                      seeds=np.zeros(n, np.uint64))


def with_(**kw) -> dict:
    return {**BASE, **kw}


@pytest.fixture(scope="module")
def world():
    w = ObjectsLightWorld(spec(), threads=1)
    yield w
    w.close()


TOP_EXTENT = 1.6  # metres the top-down camera spans


@pytest.fixture(scope="module")
def top():
    """A world seen straight down by one orthographic camera spanning TOP_EXTENT metres."""
    views = [{"kind": "topdown", "name": "top", "extent": TOP_EXTENT, "size": [64, 64]}]
    w = ObjectsLightWorld(spec(size=64, views=views, samples=4), threads=1)
    yield w
    w.close()


def test_shapes_dtypes_ids_and_depth(world):
    out = world.render(batch([BASE, with_(shape=4.0, pos_z=0.28), with_(shape=5.0, pos_x=0.1)]))
    seg, depth, rgb = out.outputs["segmentation"], out.outputs["depth"], out.outputs["images"]
    assert rgb.shape == (3, 2, 32, 32, 3) and rgb.dtype == np.uint8
    assert {0, FLOOR_ID, OBJECT_ID} == set(np.unique(seg).tolist())
    assert np.all(depth[seg == 0] == 0.0) and np.all(depth[seg > 0] > 0.3)
    for i in range(3):
        for v in range(2):
            obj, floor = seg[i, v] == OBJECT_ID, seg[i, v] == FLOOR_ID
            assert obj.sum() >= 8, f"sample {i} view {v}: the object covers too few pixels"
            assert depth[i, v][obj].mean() < depth[i, v][floor].mean()  # floating above the floor, in front of it
    (ids,) = [o.attrs["ids"] for o in ObjectsLightWorld.outputs(world.spec) if o.name == "segmentation"]
    assert ids == {"0": "background", "1": "floor", "2": "object"}


def test_background_colour_in_the_corners_is_its_hue(world):
    hues = [0.0, 0.17, 0.33, 0.55, 0.8]
    out = world.render(batch([with_(bg_hue=h) for h in hues]))
    seg, rgb = out.outputs["segmentation"], out.outputs["images"]
    for i, h in enumerate(hues):
        for v in range(2):
            for corner in ((0, 0), (0, -1)):  # the two top corners: above the floor's horizon
                assert seg[i, v][corner] == 0
                hh, s, val = colorsys.rgb_to_hsv(*(rgb[i, v][corner] / 255.0))
                assert min(abs(hh - h), 1 - abs(hh - h)) < 0.01, f"hue {hh:.3f} in the corner, {h} drawn"
                assert s == pytest.approx(BACKGROUND_SV[0], abs=0.02) and val == pytest.approx(BACKGROUND_SV[1], abs=0.02)


def _pool_centre(world, row) -> tuple[np.ndarray, np.ndarray]:
    """Centroid (world x, y in m) of the spotlight's pool on the floor seen from straight above, and the image."""
    out = world.render(batch([row])).outputs
    rgb, seg = out["images"][0, 0].astype(float), out["segmentation"][0, 0]
    lum = rgb.mean(-1)
    floor = seg == FLOOR_ID
    lit = floor & (lum > np.percentile(lum[floor], 50) + 0.5 * (lum[floor].max() - np.percentile(lum[floor], 50)))
    v, u = np.nonzero(lit)
    s = 64 / TOP_EXTENT  # pixels per metre; image +u = world +x, image +v = world -y
    return np.array([(u.mean() - 31.5) / s, -(v.mean() - 31.5) / s]), lit


def _axis_on_floor(row) -> np.ndarray:
    """Where the spot's axis (lamp -> object centre) meets the floor plane z = 0."""
    lamp = np.array(spot_position(row["spot_angle"]))
    obj = np.array([row["pos_x"], row["pos_y"], row["pos_z"]])
    t = lamp[2] / (lamp[2] - obj[2])
    return (lamp + t * (obj - lamp))[:2]


@pytest.mark.parametrize("angle", [0.0, 0.5 * math.pi, 2.4, -2.0])
def test_the_spotlight_pool_lies_where_its_axis_meets_the_floor(top, angle):
    row = with_(spot_angle=angle, pos_x=0.08, pos_y=-0.05, spot_hue=0.0)
    centre, lit = _pool_centre(top, row)
    expected = _axis_on_floor(row)
    assert lit.sum() > 30
    assert np.linalg.norm(centre - expected) < 0.12, f"pool centre {centre}, axis meets the floor at {expected}"
    # the pool lies on the far side of the object from the lamp
    lamp_dir = np.array([math.cos(angle), math.sin(angle)])
    assert np.dot(centre - np.array([row["pos_x"], row["pos_y"]]), lamp_dir) < 0


def test_the_spotlight_colours_its_pool(top):
    red, green = (top.render(batch([with_(spot_hue=h)])).outputs for h in (0.0, 1.0 / 3.0))
    _, lit = _pool_centre(top, with_(spot_hue=0.0))
    r, g = red["images"][0, 0][lit].astype(float).mean(0), green["images"][0, 0][lit].astype(float).mean(0)
    assert r[0] > r[1] + 30 and g[1] > g[0] + 30


def test_each_shape_class_has_its_own_silhouette():
    with ObjectsLightWorld(spec(size=48, views=4, samples=2), threads=1) as w:
        seg = w.render(batch([with_(shape=float(k)) for k in range(len(SHAPE_NAMES))])).outputs["segmentation"]
    masks = seg == OBJECT_ID  # (6, 4, 48, 48)
    for a in range(len(SHAPE_NAMES)):
        for b in range(a + 1, len(SHAPE_NAMES)):
            inter = (masks[a] & masks[b]).sum((1, 2))
            union = (masks[a] | masks[b]).sum((1, 2))
            assert (inter / union).min() < 0.8, f"{SHAPE_NAMES[a]} and {SHAPE_NAMES[b]} look alike in every view"


@pytest.mark.parametrize("shape", range(len(SHAPES)))
def test_the_objects_centre_projects_into_its_mask(shape):
    with ObjectsLightWorld(spec(size=48, views=4, samples=1), threads=1) as w:
        row = with_(shape=float(shape), pos_x=-0.1, pos_y=0.1, yaw=1.1, pitch=-0.4)
        r = w.render(batch([row]))
        K = next(o.value for o in w.outputs(w.spec) if o.name == "intrinsics")
    c = np.array([row["pos_x"], row["pos_y"], row["pos_z"]])
    point = c + OBJECT_SIZE * object_rotation(row["yaw"], row["pitch"]) @ np.array(SHAPES[shape].landmark)
    np.testing.assert_allclose(r.landmarks[0, 0, 0], point)
    for v in range(4):
        uv, _ = project(point[None], K[v], r.outputs["camera_to_world"][0, v])
        u, vv = np.rint(uv[0]).astype(int)
        assert r.outputs["segmentation"][0, v][vv, u] == OBJECT_ID, f"{SHAPE_NAMES[shape]}, view {v}"


def test_the_dark_half_shows_a_spheres_rotation(world):
    """A sphere's silhouette ignores its rotation, but its painted +x half faces the camera at azimuth 90 deg
    (on the +x side) at yaw 0 and turns away at yaw pi."""
    views = [{"name": "east", "azimuth": 90, "elevation": 20}]
    with ObjectsLightWorld(spec(views=views, samples=4), threads=1) as w:
        out = w.render(batch([with_(shape=0.0, yaw=0.0, pitch=0.0, obj_hue=0.15, spot_angle=0.0),
                              with_(shape=0.0, yaw=math.pi, pitch=0.0, obj_hue=0.15, spot_angle=0.0)])).outputs
    seg, rgb = out["segmentation"][:, 0], out["images"][:, 0].astype(float)
    a, b = seg[0] == OBJECT_ID, seg[1] == OBJECT_ID
    assert (a & b).sum() / (a | b).sum() > 0.9  # the same silhouette
    assert rgb[0][a].mean() > rgb[1][b].mean() + 40  # painted half towards the camera vs the dark half


def test_the_dark_half_is_a_shade_of_the_objects_hue():
    """The -x half is the object's colour times DARK_SHADE: seen from the -x side (azimuth 270) under the white
    fill, a sphere at yaw 0 shows the object's hue, darker than the painted half but not black."""
    views = [{"name": "west", "azimuth": 270, "elevation": 20}, {"name": "east", "azimuth": 90, "elevation": 20}]
    hues = [0.0, 0.33, 0.6]
    with ObjectsLightWorld(spec(views=views, samples=4), threads=1) as w:
        out = w.render(batch([with_(shape=0.0, yaw=0.0, pitch=0.0, obj_hue=h, spot_angle=0.0, spot_hue=h)
                              for h in hues])).outputs
    for i, h in enumerate(hues):
        seg, rgb = out["segmentation"][i], out["images"][i].astype(float) / 255.0
        dark, lit = rgb[0][seg[0] == OBJECT_ID].mean(0), rgb[1][seg[1] == OBJECT_ID].mean(0)
        hh, s, v = colorsys.rgb_to_hsv(*dark)
        assert min(abs(hh - h), 1 - abs(hh - h)) < 0.05 and s > 0.3, f"dark half hue {hh:.3f} sat {s:.2f}, drawn {h}"
        assert 0.08 < v < colorsys.rgb_to_hsv(*lit)[2] - 0.15, f"dark half value {v:.2f}"


@pytest.mark.parametrize("yaw", [0.0, 0.8, 1.6, 2.9])
def test_the_torus_lies_flat_and_shows_its_hole_from_above(yaw):
    """The torus's axis is vertical, so a camera 50 deg above the horizon sees its hole (pixels its silhouette
    encloses that are not the torus) at any yaw; a sphere's silhouette encloses none."""
    from scipy.ndimage import binary_fill_holes

    views = [{"name": "high", "azimuth": 30, "elevation": 50}]
    with ObjectsLightWorld(spec(size=64, views=views, samples=1), threads=1) as w:
        seg = w.render(batch([with_(shape=4.0, yaw=yaw, pitch=0.0), with_(shape=0.0, yaw=yaw, pitch=0.0)]))
    torus, sphere = (m == OBJECT_ID for m in seg.outputs["segmentation"][:, 0])
    assert (binary_fill_holes(torus) & ~torus).sum() >= 10
    assert (binary_fill_holes(sphere) & ~sphere).sum() == 0


def test_the_cylinder_is_a_pillar_and_the_cube_is_square_in_profile():
    """Seen level (elevation 0), the cylinder's mask is about twice as tall as wide (1.76 / 0.84 object
    units) and the cube's about as tall as wide at yaw 0, so the two differ in outline, not only in shading."""
    views = [{"name": "level", "azimuth": 0, "elevation": 0}]
    with ObjectsLightWorld(spec(size=64, views=views, samples=1), threads=1) as w:
        seg = w.render(batch([with_(shape=2.0, yaw=0.0, pitch=0.0), with_(shape=1.0, yaw=0.0, pitch=0.0)]))
    aspect = []
    for m in seg.outputs["segmentation"][:, 0] == OBJECT_ID:
        rows, cols = np.nonzero(m)
        aspect.append((np.ptp(rows) + 1) / (np.ptp(cols) + 1))
    assert aspect[0] > 1.7 and 0.8 < aspect[1] < 1.25, aspect


def test_pitch_tilts_a_cylinder():
    """R = Rz(yaw) Ry(pitch): at yaw 0 a positive pitch swings the cylinder's top towards +x, which a camera
    on the -y side (azimuth 0) sees as image right."""
    views = [{"name": "south", "azimuth": 0, "elevation": 0}]
    with ObjectsLightWorld(spec(size=48, views=views, samples=1), threads=1) as w:
        seg = w.render(batch([with_(shape=2.0, yaw=0.0, pitch=p) for p in (-0.6, 0.0, 0.6)])).outputs["segmentation"][:, 0]
    lean = []
    for s in seg:
        rows, cols = np.nonzero(s == OBJECT_ID)
        top, bottom = rows <= np.percentile(rows, 20), rows >= np.percentile(rows, 80)
        lean.append(cols[top].mean() - cols[bottom].mean())  # pixels the top stands right of the bottom
    assert lean[0] < -2 and abs(lean[1]) < 1.0 and lean[2] > 2, lean


def test_height_lifts_the_object_off_its_shadow(world):
    out = world.render(batch([with_(pos_z=0.17), with_(pos_z=0.27)])).outputs
    seg = out["segmentation"][:, 0]
    tops = [np.nonzero((s == OBJECT_ID).any(axis=1))[0].min() for s in seg]
    assert tops[1] < tops[0], "a higher object is higher in the image"


def test_pitch_is_optional_and_defaults_to_upright(world):
    plain = world.render(batch([with_(pitch=0.0)])).outputs["images"]
    rows = {k: np.array([v]) for k, v in BASE.items() if k != "pitch"}
    without = world.render(WorldBatch(np.arange(1), rows, np.zeros(1, np.uint64))).outputs["images"]
    np.testing.assert_array_equal(without, plain)


def test_rejects_bad_latents(world):
    with pytest.raises(KeyError, match="missing"):
        world.render(WorldBatch(np.arange(1), {k: np.array([v]) for k, v in BASE.items() if k != "yaw"},
                                np.zeros(1, np.uint64)))
    with pytest.raises(ValueError, match="non-finite"):
        world.render(batch([with_(obj_hue=float("nan"))]))
    lo = RANGES["pos_z"][0]
    with pytest.raises(ValueError, match=rf"'pos_z' has values outside static/objects_light's valid range \[{lo:g}"):
        world.render(batch([with_(pos_z=0.05)]))  # would cut into the floor: refused, never lifted
    with pytest.raises(ValueError, match="integer class codes"):
        world.render(batch([with_(shape=1.5)]))
    with pytest.raises(ValueError, match="'shape'"):
        world.render(batch([with_(shape=6.0)]))


def test_rejects_other_engines():
    with pytest.raises(ValueError, match="cycles"):
        ObjectsLightWorld(spec(engine="eevee"))


def test_the_catalogue_spec_couples_what_causal3dident_couples():
    """The spotlight stands on the object's side; the background's hue lies opposite the object's."""
    from crlgen.pipeline import CompiledSCM

    b = CompiledSCM(load_spec("static/objects_light").with_samples(4000)).sample(0, 4000)
    obs = b.column("spot_angle")
    d = np.angle(np.exp(1j * (obs - np.arctan2(b.column("pos_y"), b.column("pos_x")))))
    assert np.mean(np.abs(d) < 1.5) > 0.8
    dh = (b.column("bg_hue") - b.column("obj_hue")) % 1.0
    assert np.mean(np.abs(dh - 0.5) <= 0.2 + 1e-9) == 1.0  # an intervened obj_hue still sets bg_hue
    for name in ("yaw", "spot_angle", "obj_hue", "bg_hue", "spot_hue"):
        assert np.ptp(b.column(name)) > 0.9 * (2 * math.pi if name in ("yaw", "spot_angle") else 1.0)


def test_the_catalogue_cameras_frame_the_object_over_its_ranges():
    """Geometry, no render: at every corner of the catalogue spec's position ranges, for every class at 12 yaws,
    the object's centre projects inside each of the four 64 px views and its mesh leaves a view by at most
    6 px (the framing the module states); over the world's wider RANGES the centre still stays in frame."""
    import itertools

    cat = load_spec("static/objects_light")
    rig = ObjectsLightWorld.rig(cat)
    size = cat.render.size
    cams = [(cam.K, pose) for cam, pose in zip(rig.cameras, rig.poses())]

    def overhang(points):
        worst = -np.inf
        for K, pose in cams:
            uv, _ = project(points, K, pose)
            worst = max(worst, -0.5 - uv.min(), uv.max() - (size - 0.5))
        return worst

    corners = itertools.product(*(cat.variables[n].range for n in ("pos_x", "pos_y", "pos_z")))
    worst = -np.inf
    for c in map(np.array, corners):
        assert overhang(c[None]) < 0, f"centre {c} leaves a view"
        for shape, yaw in itertools.product(SHAPES, np.linspace(-math.pi, math.pi, 12, endpoint=False)):
            worst = max(worst, overhang(c + OBJECT_SIZE * np.asarray(shape.mesh[0]) @ object_rotation(yaw, 0.0).T))
    assert worst <= 6.0, f"an object leaves a view by {worst:.1f} px"
    for c in itertools.product(*(RANGES[n] for n in ("pos_x", "pos_y", "pos_z"))):
        assert overhang(np.array(c)[None]) < 0, f"centre {c} (a corner of RANGES) leaves a view"
