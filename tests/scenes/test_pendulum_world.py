"""static/pendulum: CausalVAE's shadow equations and where Cycles (bpy, CPU) casts the shadow; small renders.

The world contract (determinism, outputs as declared, every latent visible, camera geometry,
memory) runs on a tiny spec in :class:`TestPendulumContract`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crlgen.pipeline import CompiledSCM, check_spec, load_spec
from crlgen.pipeline._run import RunOptions, run
from crlgen.pipeline._tasks import world_batch
from crlgen.pipeline._urls import resolve
from crlgen.pipeline._validate import validate_store
from crlgen.schemas import SpecError
from crlgen.scenes.base import WorldBatch
from crlgen.scenes.cameras import project
from crlgen.scenes.static.pendulum import (
    BOB_ID, BOB_RADIUS, GROUND_ID, HUB_RADIUS, LIGHT_ID, PIVOT_HEIGHT, ROD_ID, PendulumWorld, bob_centre,
    light_position, plane_axis, shadow_endpoints, shadow_length_position,
)
from crlgen.scenes.testing import WorldContract
from support.cli import run_cli

pytestmark = pytest.mark.slow


class TestPendulumContract(WorldContract):
    spec = load_spec("static/pendulum").replace(samples=8, render={"size": 24, "views": 2, "samples": 4,
                                                                      "engine": "cycles"})
    topdown_extent = 2.0
    memory_samples = 40


def batch(rows: list[tuple[float, float]]) -> WorldBatch:
    n = len(rows)
    return WorldBatch(index=np.arange(n), latents={"pendulum_angle": np.array([r[0] for r in rows]),
                                                   "light_angle": np.array([r[1] for r in rows])},
                      seeds=np.zeros(n, np.uint64))


def world_point(p: float, z: float) -> np.ndarray:
    return plane_axis() * p + np.array([0.0, 0.0, z])


# ----- the equations -------------------------------------------------------------------------------
def test_each_shadow_lies_on_the_ray_from_the_light():
    th, ph = np.linspace(-0.7, 0.7, 9)[:, None], np.linspace(-0.78, 0.78, 11)[None, :]
    a, b = np.broadcast_arrays(*shadow_endpoints(th, ph))
    sp, sz = light_position(ph)
    bp, bz = bob_centre(th)
    np.testing.assert_allclose(a, np.broadcast_to(-PIVOT_HEIGHT * np.tan(ph), a.shape), atol=1e-12)
    # light, bob centre and its shadow are collinear (zero 2D cross product)
    np.testing.assert_allclose((bp - sp) * (0.0 - sz) - (bz - sz) * (b - sp), 0.0, atol=1e-12)
    length, position = shadow_length_position(th, ph)
    np.testing.assert_allclose(length, np.abs(b - a))
    np.testing.assert_allclose(position, 0.5 * (a + b))
    # the light on the rod's line (phi = -theta): the shadows of both rod ends coincide
    length0, _ = shadow_length_position(0.4, -0.4)
    assert float(length0) == pytest.approx(0.0, abs=1e-12)


def test_the_catalogue_mechanisms_are_the_world_projection():
    sp = load_spec("static/pendulum").with_samples(2000)
    b = CompiledSCM(sp).sample(0, 2000)
    th, ph = b.column("pendulum_angle"), b.column("light_angle")
    length, position = shadow_length_position(th, ph)
    np.testing.assert_allclose(b.column("shadow_length"), length, atol=1e-12)
    np.testing.assert_allclose(b.column("shadow_position"), position, atol=1e-12)


def test_check_refuses_shadow_interventions_other_geometry_and_ranges():
    assert PendulumWorld.check(load_spec("static/pendulum")) == []
    on_shadow = load_spec("static/pendulum", {"counterfactuals": {"fraction": 0.1, "intervention": "do(shadow_length = 0.3)"}})
    assert any("'shadow_length'" in p for p in PendulumWorld.check(on_shadow))
    other = load_spec("static/pendulum", {"parameters": {"rod_length": 0.5}})
    assert any("parameters.rod_length" in p for p in PendulumWorld.check(other))
    with pytest.raises(SpecError, match="pendulum_angle"):
        check_spec(load_spec("static/pendulum", {"variables": {"pendulum_angle": {"range": [-1.2, 1.2]}}}))


def _shadow_length_scaled(factor: float, **changes):
    """The catalogue spec with its shadow_length mechanism multiplied by ``factor`` (an edited, wrong equation)."""
    sp = load_spec("static/pendulum")
    return load_spec("static/pendulum", {"variables": {"shadow_length": {
        "mechanism": f"{factor!r} * ({sp.variables['shadow_length'].mechanism})"}}}).replace(**changes)


def _shadow_check():
    return next(c for c in PendulumWorld.checks if c.name == "shadow")


def test_the_shadow_check_finds_every_sample_whose_stored_shadow_is_not_the_cast_one():
    good = load_spec("static/pendulum").with_samples(200)
    model = CompiledSCM(good)
    assert _shadow_check().run(None, world_batch(model, model.sample(0, 200)), None) == []
    wrong = CompiledSCM(_shadow_length_scaled(1.1).with_samples(200))
    wb = world_batch(wrong, wrong.sample(0, 200))
    problems = _shadow_check().run(None, wb, None)
    length, _ = shadow_length_position(wb.latents["pendulum_angle"], wb.latents["light_angle"])
    off = np.flatnonzero(np.abs(0.1 * length) > 1e-6 * (1.0 + length))  # 10 % of the length exceeds the tolerance
    assert len(off) > 150
    assert [p.split(":")[0] for p in problems] == [f"sample {i}" for i in off]
    assert all("shadow_length" in p and "shadow_position" not in p for p in problems)
    # one row: the stored value and the rendered one are both in the line
    i = int(off[0])
    assert f"{wb.latents['shadow_length'][i]:.6g}" in problems[0] and f"{length[i]:.6g}" in problems[0]
    # a position off by 2e-6 m is caught, one off by 2e-7 m (float rounding) is not
    for eps, caught in ((2e-6, True), (2e-7, False)):
        shifted = {**wb.latents, "shadow_length": length, "shadow_position":
                   shadow_length_position(wb.latents["pendulum_angle"], wb.latents["light_angle"])[1] + eps}
        found = _shadow_check().run(None, WorldBatch(wb.index, shifted, wb.seeds), None)
        assert (len(found) == 200) if caught else (found == [])


def test_check_refuses_shadow_latents_that_the_light_cannot_cast(tmp_path, capsys):
    blind = load_spec("static/pendulum", {"variables": {"shadow_length": {"mechanism": "abs(0.4 * sin(pendulum_angle))"}}})
    assert PendulumWorld.check(blind) == ["variables.shadow_length: the cast shadow_length depends on pendulum_angle "
                                          "and light_angle; the mechanism does not read light_angle"]
    noisy = load_spec("static/pendulum", {"variables": {"shadow_position": {
        "mechanism": f"{load_spec('static/pendulum').variables['shadow_position'].mechanism} + eps",
        "noise": "normal(0, 0.01)"}}})
    assert PendulumWorld.check(noisy) == ["variables.shadow_position: static/pendulum casts shadow_position with the "
                                          "light, so it carries no noise; remove the noise (and 'eps')"]
    root = load_spec("static/pendulum", {"variables": {"shadow_length": {"mechanism": None, "noise": "uniform(0, 1)"}}})
    assert any(p.startswith("variables.shadow_length: static/pendulum casts shadow_length from") for p in
               PendulumWorld.check(root))
    domain = load_spec("static/pendulum", {"domains": {"dim": {"overrides": {"shadow_position": "-0.7 * tan(light_angle)"}}}})
    assert PendulumWorld.check(domain) == ["domains.dim.overrides.shadow_position: the cast shadow_position depends on "
                                           "pendulum_angle and light_angle; the mechanism does not read pendulum_angle"]
    # the command line: exit 2, naming the field
    path = blind.dump(tmp_path / "blind.yaml")
    code, _, err = run_cli(capsys, "check", str(path))
    assert code == 2 and "variables.shadow_length" in err
    # a mechanism that reads both angles passes the spec check; validation's `shadow` check compares the values
    assert PendulumWorld.check(_shadow_length_scaled(1.1)) == []


_TINY = {"samples": 6, "render": {"size": 24, "views": 1, "samples": 4, "engine": "cycles", "annotations": []}}


def test_validation_fails_a_store_whose_shadow_mechanism_is_not_the_cast_shadow(tmp_path):
    reports = {}
    for name, spec in (("good", load_spec("static/pendulum").replace(**_TINY)),
                       ("wrong", _shadow_length_scaled(1.1, **_TINY))):
        run(spec, resolve(str(tmp_path / f"{name}.zarr")), RunOptions(executor="inline", validate=False))
        reports[name] = {c["name"]: c for c in validate_store(resolve(str(tmp_path / f"{name}.zarr")))["checks"]}
    assert reports["good"]["shadow"]["passed"] and all(c["passed"] for c in reports["good"].values())
    wrong = reports["wrong"]
    assert not wrong["shadow"]["passed"] and wrong["shadow"]["problem_count"] == 6
    assert all("shadow_length" in p for p in wrong["shadow"]["problems"])
    # everything else about the store is consistent: only the world's check sees that the shadow is not the cast one
    assert all(c["passed"] for n, c in wrong.items() if n != "shadow")


# ----- the images ------------------------------------------------------------------------------------
SCALE = 96 / 2.0  # pixels per metre of the top-down view


@pytest.fixture(scope="module")
def world():
    views = [{"kind": "topdown", "name": "top", "extent": 2.0, "size": [96, 96]},
             {"kind": "orbit", "name": "side", "azimuth": 0, "elevation": 20, "size": [96, 96]}]
    w = PendulumWorld(load_spec("static/pendulum").replace(render={"views": views, "size": 96, "samples": 4,
                                                                   "device": "cpu"}), threads=1)
    yield w
    w.close()


def _sphere_shadow(light_p: float, light_z: float, p: float, z: float, r: float) -> tuple[float, float]:
    """Extent (p, m) on the ground of the shadow of a sphere: where the light's two tangent rays land."""
    d = math.hypot(p - light_p, z - light_z)
    alpha, beta = math.atan2(z - light_z, p - light_p), math.asin(r / d)
    lands = [light_p - light_z / math.sin(a) * math.cos(a) for a in (alpha - beta, alpha + beta)]
    return min(lands), max(lands)


ROWS = [(-0.3, 0.6), (0.6, 0.3), (0.5, -0.7), (-0.6, -0.4)]


@pytest.fixture(scope="module")
def shadows(world):
    return world.render(batch(ROWS))


@pytest.mark.parametrize("row", range(len(ROWS)))
def test_the_cast_shadow_lies_where_the_projection_puts_it(shadows, row):
    """Top-down: the dark ground pixels span, along the swing plane, from the shadow of the pivot's hub to that of
    the bob, each end where the light's tangent rays to the sphere land, within 1.5 pixels."""
    th, ph = ROWS[row]
    img, seg = shadows.outputs["images"][row, 0].astype(float), shadows.outputs["segmentation"][row, 0]
    dark = (seg == GROUND_ID) & (img.mean(-1) < 120)
    lit = (seg == GROUND_ID) & ~dark
    assert lit.sum() > 0.9 * (seg == GROUND_ID).sum()
    ys, xs = np.nonzero(dark)
    x, y = (xs - 47.5) / SCALE, -(ys - 47.5) / SCALE  # ground coordinates (m): image right is +x, up is +y
    u = plane_axis()
    along, across = x * u[0] + y * u[1], -x * u[1] + y * u[0]
    sp, sz = (float(v) for v in light_position(ph))
    bp, bz = (float(v) for v in bob_centre(th))
    hub = _sphere_shadow(sp, sz, 0.0, PIVOT_HEIGHT, HUB_RADIUS)
    bob = _sphere_shadow(sp, sz, bp, bz, BOB_RADIUS)
    tol = 1.5 / SCALE
    assert along.min() == pytest.approx(min(hub[0], bob[0]), abs=tol)
    assert along.max() == pytest.approx(max(hub[1], bob[1]), abs=tol)
    assert np.abs(across).max() < max(hub[1] - hub[0], bob[1] - bob[0]) / 2 + tol, "the shadow lies on the plane's line"
    length, position = (float(v) for v in shadow_length_position(th, ph))
    ends = shadow_endpoints(th, ph)
    for end in ends:  # the shadows of both rod ends are dark
        i, j = int(round(47.5 - float(end) * u[1] * SCALE)), int(round(47.5 + float(end) * u[0] * SCALE))
        assert dark[i, j] or seg[i, j] != GROUND_ID
    assert along.max() - along.min() >= length


def test_bob_and_bulb_are_drawn_where_the_angles_put_them(shadows, world):
    outs = {o.name: o for o in PendulumWorld.outputs(world.spec)}
    K = outs["intrinsics"].value[1]
    for row, (th, ph) in enumerate(ROWS):
        seg = shadows.outputs["segmentation"][row, 1]
        pose = shadows.outputs["camera_to_world"][row, 1]
        for oid, (p, z) in ((BOB_ID, bob_centre(th)), (LIGHT_ID, light_position(ph))):
            ys, xs = np.nonzero(seg == oid)
            assert ys.size >= 4, (row, oid)
            (u, v), = project(world_point(float(p), float(z))[None], K, pose)[0]
            assert abs(xs.mean() - u) < 1.0 and abs(ys.mean() - v) < 1.0, (row, oid, xs.mean(), ys.mean(), u, v)
    assert {GROUND_ID, ROD_ID, BOB_ID, LIGHT_ID} <= set(np.unique(shadows.outputs["segmentation"][:, 1]))


def test_the_bulb_is_lit_and_only_the_lamp_casts_shadows(shadows):
    img, seg = shadows.outputs["images"][:, 1].astype(float), shadows.outputs["segmentation"][:, 1]
    bulb = img[seg == LIGHT_ID].mean(0)
    assert bulb.min() > 200, "the bulb shows as a bright, emissive light"
    ground = img[seg == GROUND_ID].mean(-1)
    assert np.percentile(ground, 2) < 0.5 * np.percentile(ground, 50), "crisp, dark shadows on the ground"


def test_rejects_bad_latents_and_engines(world):
    with pytest.raises(KeyError, match="missing"):
        world.render(WorldBatch(np.arange(1), {"pendulum_angle": np.array([0.1])}, np.zeros(1, np.uint64)))
    with pytest.raises(ValueError, match=r"'light_angle' has values outside static/pendulum's valid range"):
        world.render(batch([(0.1, 1.3)]))  # a light that low would be drawn below the bob: refused, not clamped
    with pytest.raises(ValueError, match="non-finite"):
        world.render(batch([(float("nan"), 0.1)]))
    with pytest.raises(ValueError, match="engines"):
        PendulumWorld(load_spec("static/pendulum").replace(render={"engine": "eevee"}))


def _locally_dark(lum: np.ndarray, window: int = 7) -> np.ndarray:
    """Pixels under 60 % of the brightest pixel around them: a shadow, not the light's smooth falloff with distance."""
    pad = np.pad(lum, window // 2, mode="edge")
    return lum < 0.6 * np.lib.stride_tricks.sliding_window_view(pad, (window, window)).max(axis=(-1, -2))


def test_everything_stays_in_frame_at_64_px():
    extremes = [(0.698, 0.785), (-0.698, -0.785), (0.698, -0.785), (-0.698, 0.785)]
    with PendulumWorld(load_spec("static/pendulum").replace(render={"samples": 1, "device": "cpu"}), threads=1) as w:
        out = w.render(batch(extremes))
    img, seg = out.outputs["images"].astype(float), out.outputs["segmentation"]
    assert seg.shape == (4, 4, 64, 64)
    for i in range(4):
        for v in range(4):
            for oid in (ROD_ID, BOB_ID, LIGHT_ID):
                ys, xs = np.nonzero(seg[i, v] == oid)
                if oid != ROD_ID:
                    assert ys.size >= 2, (i, v, oid)
                if ys.size:
                    assert ys.min() >= 1 and xs.min() >= 1 and ys.max() <= 62 and xs.max() <= 62, (i, v, oid)
            # the shadow (dark ground) does not reach the border either
            dark = (seg[i, v] == GROUND_ID) & _locally_dark(img[i, v].mean(-1))
            ys, xs = np.nonzero(dark)
            assert ys.size > 0 and ys.min() >= 1 and xs.min() >= 1 and ys.max() <= 62 and xs.max() <= 62, (i, v)
