"""static/refraction: what only this Cycles (bpy, CPU) scene does, with small renders; and its world contract.

Determinism, lazy engine import, outputs as declared, every latent visible and the camera geometry
are the contract's (:class:`TestRefractionContract`); here: the annotations through glass, the
apparent depth of the submerged rod against paraxial Snell's law, refused latents and engines.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from crlgen.pipeline import CompiledSCM, load_spec
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.cameras import project
from crlgen.scenes.static.refraction import (
    GLASS_BASE, GLASS_ID, LIQUID_ID, ROD_ID, ROD_RADIUS, TABLE_ID, RefractionWorld, apparent_displacement, rod_axis,
)
from crlgen.scenes.testing import WorldContract

pytestmark = pytest.mark.slow

BASE = {"theta": 20.0, "level": 0.07, "n": 1.33}
#: A camera 0.35 m straight above the glass's axis, narrow (20 deg) so the glass fills the image.
ABOVE = {"kind": "fixed", "name": "above", "position": [0.0, 0.0, 0.35], "look_at": [0.0, 0.0, 0.0],
         "up": [0.0, 1.0, 0.0], "fov": 20.0}


class TestRefractionContract(WorldContract):
    spec = load_spec("static/refraction").replace(samples=8, render={"size": 24, "views": 2, "samples": 4, "engine": "cycles"})
    topdown_extent = 0.3
    memory_samples = 40


def spec(size=32, views=2, samples=4, **kw):
    return load_spec("static/refraction").replace(render={"size": size, "views": views, "samples": samples, "device": "cpu", **kw})


def batch(rows: list[dict]) -> WorldBatch:
    n = len(rows)
    return WorldBatch(index=np.arange(n), latents={k: np.array([r[k] for r in rows], dtype=np.float64) for k in rows[0]},
                      seeds=np.zeros(n, np.uint64))


def red(rgb: np.ndarray) -> np.ndarray:
    """Mask of the rod's red pixels (seen directly or through glass and liquid)."""
    c = rgb.astype(int)
    return (c[..., 0] > 90) & (c[..., 0] > c[..., 1] + 50) & (c[..., 0] > c[..., 2] + 50)


def rod_blob(rgb: np.ndarray) -> np.ndarray:
    """The largest connected patch of red: the rod, without its small reflections in the glass wall."""
    labels, count = ndimage.label(red(rgb))
    sizes = ndimage.sum_labels(np.ones_like(labels), labels, index=np.arange(1, count + 1))
    return labels == 1 + int(np.argmax(sizes))


@pytest.fixture(scope="module")
def world():
    w = RefractionWorld(spec(), threads=1)
    yield w
    w.close()


def test_ids_and_what_the_annotations_hold_through_glass(world):
    out = world.render(batch([BASE, {**BASE, "theta": 35.0, "n": 1.6}]))
    rgb, seg, depth = out.outputs["images"], out.outputs["segmentation"], out.outputs["depth"]
    assert {TABLE_ID, GLASS_ID, ROD_ID} <= set(np.unique(seg)) <= {0, TABLE_ID, GLASS_ID, LIQUID_ID, ROD_ID}
    assert np.all(depth[seg == 0] == 0.0) and np.all(depth[seg > 0] > 0.05)
    # the rod is seen through the glass, but the passes hold the first surface hit: the glass, nearer
    behind = red(rgb) & (seg == GLASS_ID)
    assert behind.sum() > 10, "the rod should show through the glass in the colour image"
    assert depth[behind].mean() < depth[seg == ROD_ID].mean() + 0.05
    (key,) = [o.attrs["ids"] for o in RefractionWorld.outputs(world.spec) if o.name == "segmentation"]
    assert key["2"] == "glass" and key["4"].startswith("rod")


@pytest.fixture(scope="module")
def above():
    """The straight-down camera's renders at n = 1 (no refraction) and n = 1.6, deep liquid."""
    rows = [{"theta": 20.0, "level": 0.09, "n": n} for n in (1.0, 1.6)]
    with RefractionWorld(spec(size=128, views=[ABOVE], samples=8), threads=1) as w:
        out = w.render(batch(rows))
        K = next(o.value for o in w.outputs(w.spec) if o.name == "intrinsics")[0]
    return rows, out.outputs, K


def test_the_liquid_surface_is_the_first_hit_at_its_level(above):
    """Depth (camera z) on the free surface is the camera's height above it: level is read straight off it."""
    rows, out, K = above
    pose = out["camera_to_world"][0, 0]
    s = GLASS_BASE + rows[0]["level"]
    uv, _ = project(np.array([[0.0, 0.03, s]]), K, pose)
    u, v = (int(round(x)) for x in uv[0])
    for i in range(2):
        assert out["segmentation"][i, 0, v, u] == LIQUID_ID
        assert out["depth"][i, 0, v, u] == pytest.approx(0.35 - s, abs=1e-3)


def test_the_submerged_foot_appears_at_its_apparent_depth(above):
    """The foot's outer edge, seen from above, sits where paraxial Snell's law (apparent depth d/n) puts it."""
    rows, out, K = above
    pose = out["camera_to_world"][0, 0]
    theta, level = rows[0]["theta"], rows[0]["level"]
    a = np.radians(theta)
    edge = rod_axis(theta, 0.0) - ROD_RADIUS * np.array([np.cos(a), 0.0, -np.sin(a)])  # the rod's -x-most point
    s = GLASS_BASE + level
    lefts, predicted = [], []
    for i, n in enumerate(r["n"] for r in rows):
        seen = np.array([edge[0], edge[1], s - (s - edge[2]) / n])  # its image at apparent depth
        uv, _ = project(seen[None], K, pose)
        predicted.append(uv[0, 0])
        cols = np.nonzero(rod_blob(out["images"][i, 0]).any(axis=0))[0]
        lefts.append(cols.min())
    assert lefts[1] < lefts[0] - 3, "refraction should pull the foot's image outwards (towards the camera)"
    for got, want in zip(lefts, predicted):
        assert abs(got - want) <= 1.5, f"foot edge at column {got}, apparent depth puts it at {want:.1f}"
    assert (lefts[0] - lefts[1]) == pytest.approx(predicted[0] - predicted[1], abs=1.5)


def test_apparent_displacement():
    assert apparent_displacement(0.08, 0.0, 1.5) == 0.0 and apparent_displacement(0.08, 30.0, 1.0) == 0.0
    assert apparent_displacement(0.08, 30.0, 1.6) == pytest.approx(0.08 * 0.5 * (1 - 1 / 1.6))
    d = CompiledSCM(load_spec("static/refraction").with_samples(200)).sample(0, 200)
    np.testing.assert_allclose(d.column("displacement"), apparent_displacement(d.column("level"), d.column("theta"), d.column("n")),
                               rtol=1e-6)


def test_deeper_liquid_and_higher_index_change_the_picture(world):
    out = world.render(batch([BASE, {**BASE, "level": 0.09}, {**BASE, "n": 1.0}, {**BASE, "n": 1.6}]))
    im = out.outputs["images"].astype(int)
    assert np.abs(im[1] - im[0]).sum() > 2000
    assert np.abs(im[3] - im[2]).sum() > 2000
    np.testing.assert_array_equal(out.outputs["segmentation"][2], out.outputs["segmentation"][3])  # n: only refraction


def test_rejects_bad_latents(world):
    with pytest.raises(KeyError, match="missing"):
        world.render(batch([{"theta": 20.0, "level": 0.05}]))
    with pytest.raises(ValueError, match="non-finite"):
        world.render(batch([{**BASE, "n": float("nan")}]))
    with pytest.raises(ValueError, match=r"'theta' has values outside static/refraction's valid range \[0, 38\]"):
        world.render(batch([{**BASE, "theta": 45.0}]))  # the rod would cut through the rim
    with pytest.raises(ValueError, match=r"'level' has values outside"):
        world.render(batch([{**BASE, "level": 0.2}]))  # over the rim


def test_rejects_other_engines():
    with pytest.raises(ValueError, match="cycles"):
        RefractionWorld(spec(engine="tiny"))


def test_steepest_and_tallest_rod_stays_in_frame():
    with RefractionWorld(spec(size=32, views=4, samples=1), threads=1) as w:
        out = w.render(batch([{"theta": 5.0, "level": 0.09, "n": 1.6}, {"theta": 35.0, "level": 0.03, "n": 1.0}]))
    seg = out.outputs["segmentation"]
    for i in range(2):
        for v in range(4):
            ys, xs = np.nonzero(seg[i, v] == ROD_ID)
            assert ys.size > 3 and ys.min() >= 1 and xs.min() >= 1 and xs.max() <= 30, f"sample {i} view {v}"


def test_the_glass_mesh_is_closed_and_faces_outwards():
    """The divergence theorem on the lathed cup gives its volume, positive only with outward faces."""
    from crlgen.scenes.static.refraction import GLASS_HEIGHT, GLASS_RADIUS, GLASS_WALL, _glass_profile, _lathe_data

    verts, faces, _ = _lathe_data(_glass_profile(), segments=256)
    v = np.asarray(verts)
    vol = 0.0
    for f in faces:
        for a, b in zip(f[1:-1], f[2:]):  # fan triangles
            vol += np.dot(v[f[0]], np.cross(v[a], v[b])) / 6.0
    r_in = GLASS_RADIUS - GLASS_WALL
    want = np.pi * (GLASS_RADIUS**2 * GLASS_HEIGHT - r_in**2 * (GLASS_HEIGHT - GLASS_BASE))
    assert vol == pytest.approx(want, rel=1e-3)


def _displacement_check(spec):
    from crlgen.scenes.static.refraction import RefractionWorld
    from crlgen.scenes.testing import _batch

    (check,) = RefractionWorld.checks
    return check.run(None, _batch(spec, 0, 200), None)


def test_the_displacement_check_passes_the_catalogue_and_catches_another_mechanism():
    """displacement is derived by the spec but drawn by Cycles' refraction: validation's 'displacement' check
    compares every stored value with the world's apparent-depth law."""
    base = load_spec("static/refraction").with_samples(200)
    assert _displacement_check(base) == []
    variables = dict(base.variables)
    variables["displacement"] = variables["displacement"].model_copy(
        update={"mechanism": "1.1 * level * sin(theta * 0.0174532925) * (1 - 1 / n)"})
    problems = _displacement_check(base.replace(variables=variables))
    assert len(problems) > 150 and "displacement" in problems[0] and "not what the world renders" in problems[0]
