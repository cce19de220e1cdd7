"""static/slope: the rolling-ball physics and what the Cycles (bpy, CPU) images show of it; small renders.

The world contract (determinism, outputs as declared, every latent visible, camera geometry,
memory) runs on a tiny spec in :class:`TestSlopeContract`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crlgen.pipeline import CompiledSCM, check_spec, load_spec
from crlgen.schemas import SpecError
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.cameras import project
from crlgen.scenes.static.slope import (
    BALL_ID, BALL_RADIUS, FLOOR_ID, SLOPE_ID, SLOPE_LENGTH, SlopeWorld, ball_position, speed_at_bottom,
    stopping_distance,
)
from crlgen.scenes.testing import WorldContract

pytestmark = pytest.mark.slow

BASE = {"theta": 0.65, "mu": 0.4, "s": 0.8}
G = 9.81


class TestSlopeContract(WorldContract):
    spec = load_spec("static/slope").replace(samples=8, render={"size": 24, "views": 2, "samples": 4, "engine": "cycles"})
    topdown_extent = 2.4
    memory_samples = 40


def spec(size=32, views=2, samples=2, **kw):
    return load_spec("static/slope").replace(render={"size": size, "views": views, "samples": samples, "device": "cpu", **kw})


def batch(rows: list[dict]) -> WorldBatch:
    n = len(rows)
    names = sorted({k for r in rows for k in r})
    return WorldBatch(index=np.arange(n), latents={k: np.array([r[k] for r in rows], dtype=np.float64) for k in names},
                      seeds=np.zeros(n, np.uint64))


def with_(**kw) -> dict:
    return {**BASE, **kw}


def geometry(w, out, suffix=""):
    """(K, camera_to_world, orthographic) per view of the group ``suffix``, from the stored outputs."""
    outs = {o.name: o for o in SlopeWorld.outputs(w.spec)}
    K = outs[f"intrinsics{suffix}"].value
    names = outs[f"intrinsics{suffix}"].coords[f"view{suffix}"][1]
    ortho = {c.name: c.orthographic for c in w.rig.cameras}
    return K, out.outputs[f"camera_to_world{suffix}"], [ortho[n] for n in names]


# ----- the equations -------------------------------------------------------------------------------
def test_equations_follow_the_work_energy_theorem():
    v0, theta, mu = 1.5, 0.6, 0.4
    vb = float(speed_at_bottom(v0, theta, mu))
    # kinetic energy of a rolling solid sphere 7/10 m v^2: gained m g L sin, lost mu m g cos L on the slope
    assert 0.7 * vb**2 == pytest.approx(0.7 * v0**2 + G * SLOPE_LENGTH * (math.sin(theta) - mu * math.cos(theta)))
    s = float(stopping_distance(vb, mu))
    assert 0.7 * vb**2 == pytest.approx(mu * G * s)  # all of it spent against rolling resistance on the floor
    with pytest.raises(ValueError, match="stops on the slope"):
        speed_at_bottom(0.1, 0.2, 0.5)  # tan(0.2) < 0.5: a slow ball stops on the slope


def test_the_catalogue_mechanisms_are_the_world_equations():
    sp = load_spec("static/slope").with_samples(2000)
    b = CompiledSCM(sp).sample(0, 2000)
    theta, mu, v0, vb, s, friction = (b.column(n) for n in ("theta", "mu", "v0", "v_b", "s", "friction"))
    np.testing.assert_allclose(friction, mu * G * np.cos(theta), rtol=1e-12)
    np.testing.assert_allclose(vb, speed_at_bottom(v0, theta, mu), rtol=1e-12)
    np.testing.assert_allclose(s, stopping_distance(vb, mu), rtol=1e-12)
    assert np.all(np.tan(theta) > mu), "every ball accelerates down the slope"
    assert sp.parameters["L"] == SLOPE_LENGTH


def test_check_refuses_specs_that_leave_the_valid_ranges():
    # a rough shallow slope: a slow ball stops on it, v_b is not real, and the dry run says so
    stuck = load_spec("static/slope", {"variables": {"mu": {"range": [0.3, 0.6], "noise": "uniform(0.55, 0.6)"},
                                                      "theta": {"noise": "uniform(0.5236, 0.53)"},
                                                      "v0": {"range": [0.0, 2.0], "noise": "uniform(0.0, 0.1)"}}})
    with pytest.raises(SpecError, match="variables.v_b: the mechanism gives non-finite values"):
        check_spec(stuck)
    with pytest.raises(SpecError, match=r"variables.s: world static/slope reads s only in \[0, 1.6\]"):  # past the floor
        check_spec(load_spec("static/slope", {"variables": {"s": {"range": [0.15, 3.0]}}}))
    other_l = load_spec("static/slope", {"parameters": {"L": 0.5}})
    assert any("parameters.L" in p for p in SlopeWorld.check(other_l))
    on_vb = load_spec("static/slope", {"counterfactuals": {"fraction": 0.1, "intervention": "do(v_b = 2.0)"}})
    assert any("'v_b'" in p for p in SlopeWorld.check(on_vb))
    assert SlopeWorld.check(load_spec("static/slope")) == []


# ----- the images ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def top():
    """A top-down orthographic view over the whole course plus one orbit view."""
    views = [{"kind": "topdown", "name": "top", "extent": 2.4, "center": [0.55, 0.55], "size": [64, 64]},
             {"kind": "orbit", "name": "side", "azimuth": 0, "elevation": 30, "size": [64, 64]}]
    w = SlopeWorld(spec(views=views, size=64, samples=2), threads=1)
    yield w
    w.close()


def test_ids_depth_and_the_ball_where_the_equations_stop_it(top):
    v0, theta, mu = 1.6, 0.7, 0.35
    s = float(stopping_distance(speed_at_bottom(v0, theta, mu), mu))
    out = top.render(batch([{"theta": theta, "mu": mu, "s": s}]))
    seg, depth = out.outputs["segmentation"][0], out.outputs["depth"][0]
    assert {FLOOR_ID, SLOPE_ID, BALL_ID} <= set(np.unique(seg)) <= {0, FLOOR_ID, SLOPE_ID, BALL_ID}
    assert np.all(depth[seg == 0] == 0.0) and np.all(depth[seg > 0] > 0)
    K, poses, ortho = geometry(top, out)
    for j in range(2):
        ys, xs = np.nonzero(seg[j] == BALL_ID)
        assert ys.size >= 6
        (u, v), = project(ball_position(s)[None], K[j], poses[0, j], ortho[j])[0]
        # the ball's silhouette centres on its centre's projection within a pixel
        assert abs(xs.mean() - u) < 1.0 and abs(ys.mean() - v) < 1.0, (j, xs.mean(), ys.mean(), u, v)
    # top-down: the ball lies s past the foot of the slope along the run (the ramp ends at the foot)
    ys, xs = np.nonzero(seg[0] == BALL_ID)
    scale = K[0][0, 0]  # pixels per metre
    foot_u, foot_v = K[0][0, 2] + (0.0 - 0.55) * scale, K[0][1, 2] - (0.0 - 0.55) * scale
    run = math.hypot(xs.mean() - foot_u, ys.mean() - foot_v) / scale
    assert run == pytest.approx(s, abs=1.0 / scale)


def test_the_ramp_rises_at_theta(top):
    shallow, steep = top.render(batch([with_(theta=0.5), with_(theta=0.8)])).outputs["segmentation"][:, 0]
    scale = 64 / 2.4  # pixels per metre
    foot_u, foot_v = 31.5 - 0.55 * scale, 31.5 + 0.55 * scale  # the foot of the slope, the world's origin
    for seg, theta in ((shallow, 0.5), (steep, 0.8)):
        ys, xs = np.nonzero(seg == SLOPE_ID)
        along = ((xs - foot_u) + (foot_v - ys)) / math.sqrt(2.0) / scale  # metres along the run (up-right diagonal)
        # seen from above the ramp covers L cos(theta) behind the foot
        assert along.max() == pytest.approx(0.0, abs=1.0 / scale)
        assert -along.min() == pytest.approx(SLOPE_LENGTH * math.cos(theta), abs=1.0 / scale)


def test_roughness_shows_as_a_darker_rougher_surface_without_moving_anything(top):
    out = top.render(batch([with_(mu=0.3), with_(mu=0.55)]))
    img, seg = out.outputs["images"][:, 1].astype(float), out.outputs["segmentation"][:, 1]
    np.testing.assert_array_equal(seg[0], seg[1])
    floor = seg[0] == FLOOR_ID
    assert img[0][floor].mean() - img[1][floor].mean() > 40, "a rough surface is darker"
    assert img[1][floor].std(axis=0).mean() > img[0][floor].std(axis=0).mean(), "and more speckled"


def test_rejects_bad_latents_and_engines(top):
    with pytest.raises(KeyError, match="missing"):
        top.render(batch([{"theta": 0.6, "mu": 0.4}]))
    with pytest.raises(ValueError, match="non-finite"):
        top.render(batch([with_(mu=float("nan"))]))
    with pytest.raises(ValueError, match=r"'s' has values outside static/slope's valid range"):
        top.render(batch([with_(s=2.5)]))  # never a ball clamped to the end of the floor
    with pytest.raises(ValueError, match="engines"):
        SlopeWorld(spec(engine="eevee"))


def test_the_whole_course_stays_in_frame_at_64_px():
    with SlopeWorld(load_spec("static/slope").replace(render={"samples": 1, "device": "cpu"}), threads=1) as w:
        out = w.render(batch([{"theta": 0.8, "mu": 0.3, "s": 1.5}, {"theta": 0.5, "mu": 0.5, "s": 0.15}]))
    seg = out.outputs["segmentation"]
    assert seg.shape == (2, 4, 64, 64)
    for i in range(2):
        for v in range(4):
            on = seg[i, v] > 0
            ys, xs = np.nonzero(on)
            assert ys.min() >= 1 and xs.min() >= 1 and ys.max() <= 62 and xs.max() <= 62, f"sample {i} view {v} touches the border"
            assert (seg[i, v] == BALL_ID).sum() >= 4, f"sample {i} view {v}: the ball is not seen"


def test_ball_radius_is_a_solid_sphere_on_the_floor(top):
    out = top.render(batch([BASE]))
    d = out.outputs["depth"][0, 0]
    seg = out.outputs["segmentation"][0, 0]
    # straight down: the ball's top is 2 R above the floor
    assert d[seg == FLOOR_ID].min() - d[seg == BALL_ID].min() == pytest.approx(2 * BALL_RADIUS, abs=0.01)
