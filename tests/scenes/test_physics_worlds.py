"""physics/falling, physics/projectile, physics/collision: PyBullet videos at tiny sizes.

16-24 px, 1-2 views, 8-12 frames, 1-2 objects; the Cycles case needs bpy and is marked slow.
"""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.scenes.base import BatchEdit, WorldBatch
from crlgen.scenes.engines import bullet as pb
from crlgen.scenes.physics.worlds import (
    N_STATE,
    CollisionWorld,
    FallingWorld,
    ProjectileWorld,
    state_names,
)
from support.stores import physics_spec

FPS = 30

GLOBAL = {"gravity": 9.81, "friction": 0.5, "restitution": 0.5}
OBJ0 = {"shape": 0, "size": 0.2, "mass": 1.0, "hue": 0.0, "x0": 0.0, "y0": 0.0, "z0": 1.2, "yaw0": 0.0,
        "vx0": 0.0, "vy0": 0.0, "vz0": 0.0}
OBJ1 = {**OBJ0, "shape": 1, "size": 0.15, "hue": 0.6, "x0": 0.5, "y0": 0.3, "z0": 0.6, "yaw0": 0.4}
#: Per world: two objects in view that move during 10 frames.
CASES = {
    FallingWorld: (GLOBAL, [OBJ0, OBJ1]),
    ProjectileWorld: (
        {**GLOBAL, "wall.x": 1.0, "wall.height": 0.5},
        [{**OBJ0, "x0": -1.2, "z0": 0.4, "vx0": 2.5, "vz0": 3.0}, {**OBJ1, "x0": -1.2, "y0": 0.4, "vx0": 2.0, "vz0": 2.0}],
    ),
    CollisionWorld: (
        {"gravity": 9.81, "restitution": 0.9},
        [{**OBJ0, "size": 0.15, "x0": -0.5, "y0": 0.0, "vx0": 3.0, "z0": 0.15},
         {**OBJ0, "shape": 2, "size": 0.15, "hue": 0.3, "x0": 0.0, "y0": 0.0, "z0": 0.15}],
    ),
}
WORLDS = list(CASES)


def spec(cls=None, size=16, views=2, frames=10, fps=FPS, substeps=8, engine="tiny", objects=2, **render):
    return physics_spec((cls or FallingWorld).info.name, objects, size=size, views=views, frames=frames, fps=fps,
                        substeps=substeps, engine=engine, **render)


def flat(glob: dict, objs: list[dict]) -> dict:
    out = dict(glob)
    for i, o in enumerate(objs):
        out.update({f"obj[{i}].{k}": v for k, v in o.items()})
    return out


def batch(rows: list[dict], edits=()) -> WorldBatch:
    n = len(rows)
    names = sorted({k for r in rows for k in r})
    return WorldBatch(
        index=np.arange(n),
        latents={k: np.array([float(r[k]) for r in rows]) for k in names},
        seeds=np.zeros(n, np.uint64),
        edits=tuple(edits),
    )


def edit(target, op, frame, value, end=-1, n=1):
    full = lambda v: np.full(n, v)  # noqa: E731
    return BatchEdit(target, op, frame=full(frame).astype(np.int64), end_frame=full(end).astype(np.int64), value=full(float(value)))


def case(cls, **obj0) -> dict:
    glob, objs = CASES[cls]
    return flat(glob, [{**objs[0], **obj0}, *objs[1:]])


def drop(**obj0) -> dict:
    """One object falling in the falling world."""
    return flat(GLOBAL, [{**OBJ0, **obj0}])


@pytest.fixture(scope="module", params=WORLDS, ids=lambda c: c.info.name)
def world(request):
    w = request.param(spec(request.param))
    yield w
    w.close()


@pytest.fixture(scope="module")
def falling():
    w = FallingWorld(spec(size=16, views=1, frames=12, objects=1))
    yield w
    w.close()


def states(r) -> np.ndarray:
    """Every simulated state of a render (n, T, 13 N)."""
    return r.simulation.states


# --------------------------------------------------------------------------- what only physics has


def test_info_and_state_names():
    for cls, name in ((FallingWorld, "physics/falling"), (ProjectileWorld, "physics/projectile"), (CollisionWorld, "physics/collision")):
        info = cls.info
        assert info.name == name and info.kind == "video" and info.engine == "pybullet"
        assert info.engines == ("tiny", "cycles") and info.annotations == ("depth", "segmentation")
        assert info.states == tuple(f"obj[i].{s}" for s in ("x", "y", "z", "qx", "qy", "qz", "qw", "vx", "vy", "vz", "wx", "wy", "wz"))
        assert set(info.edit_targets) == {"obj[i].vx", "obj[i].vy", "obj[i].vz", "obj[i].mass", "gravity", "friction", "wind"}
        assert "gravity" in info.latents and "obj[i].mass" in info.latents and "obj[i].shape" in info.latents
        assert not set(info.latents) & set(info.optional_latents)
        assert info.mounts == ("obj[i]",) and set(info.camera_kinds) == {"orbit", "fixed", "mounted", "topdown"}
        assert [c.name for c in cls.checks] == ["penetration", "energy"]
    assert {"wall.x", "wall.height"} <= set(ProjectileWorld.info.optional_latents)
    assert "obj[i].z0" in CollisionWorld.info.optional_latents
    names = state_names(2)
    assert len(names) == 2 * N_STATE and names[0] == "obj[0].x" and names[6] == "obj[0].qw" and names[13] == "obj[1].x"
    assert names[-1] == "obj[1].wz"


def test_depth_segmentation_and_quaternions(world):
    r = world.render(batch([case(type(world))] * 2))
    seg, depth = r.outputs["segmentation"], r.outputs["depth"]
    ids = set(np.unique(seg).tolist())
    assert ids <= {0, 1, 2, 3} and {1, 2, 3} <= ids, ids
    assert np.all(depth[seg == 0] == 0.0)
    assert np.all(depth[seg > 0] > 0.05) and np.all(depth[seg > 0] < 100.0)
    assert depth[seg >= 2].mean() < depth[seg == 1].mean()  # objects stand in front of the ground behind them
    q = states(r)[..., 3:7]
    assert np.allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-6)  # quaternions stay unit
    seg_out = next(o for o in type(world).outputs(world.spec) if o.name == "segmentation")
    assert seg_out.attrs["ids"] == {"0": "background", "1": "ground and walls", "2": "obj[0]", "3": "obj[1]"}


def test_annotations_off_non_square_named_views():
    with FallingWorld(spec(size=(24, 16), views=("front", "top"), frames=8, objects=1, annotations=())) as w:
        r = w.render(batch([drop()]))
    assert r.outputs["frames"].shape == (1, 8, 2, 16, 24, 3)
    assert "depth" not in r.outputs and "segmentation" not in r.outputs and r.outputs["states"].shape == (1, 8, N_STATE)


def test_only_declared_states_are_stored():
    s = physics_spec("physics/falling", 2, frames=6, states=("z", "vx"))
    with FallingWorld(s) as w:
        r = w.render(batch([flat(GLOBAL, [OBJ0, OBJ1])]))
    (out,) = [o for o in w.outputs(s) if o.name == "states"]
    assert out.coords["state"][1] == ("obj[0].z", "obj[0].vx", "obj[1].z", "obj[1].vx")
    assert out.coords["state_unit"][1] == ("m", "m/s", "m", "m/s")
    full = states(r)
    assert np.array_equal(r.outputs["states"], full[:, :, [2, 7, N_STATE + 2, N_STATE + 7]])


def test_light_dims_the_frames(world):
    cls = type(world)
    base = world.render(batch([case(cls)])).outputs["frames"]
    dim = world.render(batch([{**case(cls), "light": 0.3}])).outputs["frames"]
    assert dim[0, 0].mean() < base[0, 0].mean()


def test_bad_inputs_fail_clearly():
    from crlgen.scenes import check_world

    assert any(p.startswith("render.engine: 'eevee' is not an engine") for p in check_world(spec(engine="eevee")))
    with pytest.raises(ValueError, match="engine"):
        FallingWorld(spec(engine="eevee"))
    with FallingWorld(spec(frames=8, objects=1)) as w:
        row = drop()
        with pytest.raises(KeyError, match="gravity"):
            w.render(batch([{k: v for k, v in row.items() if k != "gravity"}]))
        with pytest.raises(ValueError, match=r"obj\[0\]\.shape"):
            w.render(batch([drop(shape=3)]))
        with pytest.raises(ValueError, match=r"obj\[0\]\.mass"):
            w.render(batch([drop(mass=0.0)]))
        with pytest.raises(ValueError, match="cannot edit"):
            w.render(batch([row], [edit("obj[0].hue", "set", 2, 0.5)]))
        with pytest.raises(ValueError, match="objects"):
            w.render(batch([row], [edit("obj[3].vx", "add", 2, 0.5)]))


# --------------------------------------------------------------------------- physics


def test_falling_object_lands_and_rests():
    with FallingWorld(spec(size=16, views=1, frames=12, fps=10, substeps=24, objects=1)) as w:
        out = w.render(batch([{**drop(z0=0.6, size=0.1), "restitution": 0.1}]))
    z = states(out)[0, :, 2]
    assert z[1] < z[0] and z[2] < z[1]
    assert abs(z[-1] - 0.1) < 5e-3 and abs(z[-2] - z[-1]) < 1e-3
    assert np.abs(states(out)[0, -1, 7:10]).max() < 0.05
    assert 0.0 <= out.simulation.extras["max_penetration"][0] < 0.02


@pytest.mark.parametrize("gravity", [1.62, 9.81])
def test_a_sphere_bounces_by_its_contact_restitution_at_any_impact_speed(gravity):
    """Newton's law of restitution: a sphere dropped on the ground leaves it at the contact restitution
    (Bullet multiplies the two bodies' coefficients: restitution^2 here) times its impact speed, so
    its first rebound rises to c^2 of the drop height. Bullet's speculative contacts used to drop
    restitution on slow impacts: at lunar gravity nothing bounced, whatever the coefficient."""
    size, height = 0.15, 0.42  # a 30 kg ball of 15 cm: at lunar gravity the old contacts kept it on the ground
    rows = [{**drop(z0=size + height, size=size, mass=30.0), "gravity": gravity, "restitution": e} for e in (0.6, 0.8, 0.95)]
    with FallingWorld(spec(size=16, views=1, frames=60, objects=1)) as w:
        z = w.simulate(batch(rows)).states[:, :, 2] - size  # height of the bottom (m)
    ratios = []
    for k, row in enumerate(rows):
        landed = int(np.argmax(np.diff(z[k]) > 0))  # the first frame after which it rises again
        assert landed > 0, "no bounce"
        ratios.append(z[k, landed:].max() / height)
    c = np.array([r["restitution"] for r in rows]) ** 2
    assert np.all(np.diff(ratios) > 0)  # bouncier contacts rise higher
    assert np.all(np.abs(np.sqrt(ratios) - c) < 0.12), (np.sqrt(ratios), c)


def test_gravity_changes_fall_time(falling):
    out = falling.simulate(batch([{**drop(z0=1.0), "gravity": g} for g in (9.81, 3.0)])).states
    z = out[:, :, 2]
    assert np.all(z[1, 1:] > z[0, 1:])  # lower gravity: still higher at every later frame
    t = 5 / FPS
    assert abs(z[0, 5] - (1.0 - 0.5 * 9.81 * t * t)) < 0.01  # free fall (semi-implicit Euler)


def test_energy_conserved_in_free_flight(falling):
    out = falling.render(batch([drop(z0=1.5, vx0=1.0, vz0=1.0)]))
    e = out.simulation.extras["energy"][0]
    m, g = 1.0, 9.81
    assert abs(e[0] - (0.5 * m * 2.0 + m * g * 1.5)) < 1e-9
    assert np.all(np.abs(e - e[0]) < 0.02 * e[0])  # semi-implicit Euler drifts a little


def test_velocity_impulse_edit_at_frame(falling):
    rows = [drop(z0=1.5)]
    sim = lambda b: falling.simulate(b).states  # noqa: E731
    plain = sim(batch(rows))
    edited = sim(batch(rows, [edit("obj[0].vx", "add", 5, 1.5)]))
    assert np.array_equal(edited[0, :5], plain[0, :5])
    assert not np.array_equal(edited[0, 5], plain[0, 5])
    assert abs(edited[0, 5, 7] - (plain[0, 5, 7] + 1.5)) < 1e-9  # vx
    assert np.allclose(edited[0, 5:, 2], plain[0, 5:, 2])  # z unaffected while in the air
    # frame -1 = not applied; frame 0 acts at frame 0 (test_edits_at_frame_0_show_in_frame_0)
    assert np.array_equal(sim(batch(rows, [edit("obj[0].vx", "add", -1, 1.5)])), plain)


def test_edits_at_frame_0_show_in_frame_0(falling):
    """An edit at frame 0 acts at frame 0 as one at frame f acts at f: a velocity edit changes the velocity stored for
    frame 0 (the positions follow from frame 1), a gravity or mass edit is in force from the first step (frame 0's
    energy counts it already); an edit at frame 3 still leaves states[:3] the unedited run's, bit for bit."""
    rows = [drop(z0=1.5)]
    plain = falling.simulate(batch(rows))
    p, e0 = plain.states[0], plain.extras["energy"][0]
    kicked = falling.simulate(batch(rows, [edit("obj[0].vx", "add", 0, 1.5)])).states[0]
    assert kicked[0, 7] == p[0, 7] + 1.5 and np.array_equal(kicked[0, :7], p[0, :7])
    assert kicked[1, 0] == pytest.approx(p[1, 0] + 1.5 / FPS)  # x moves from frame 1
    weak = falling.simulate(batch(rows, [edit("gravity", "set", 0, 1.0)]))
    assert weak.extras["energy"][0, 0] == pytest.approx(e0[0] - (9.81 - 1.0) * 1.5)  # m g z with g = 1 at frame 0
    assert np.array_equal(weak.states[0, 0], p[0]) and weak.states[0, 1, 9] == pytest.approx(-1.0 / FPS)
    heavy = falling.simulate(batch(rows, [edit("obj[0].mass", "scale", 0, 2.0)])).extras["energy"][0]
    assert np.allclose(heavy, 2.0 * e0, rtol=1e-9)
    late = falling.simulate(batch(rows, [edit("obj[0].vx", "add", 3, 1.5)])).states[0]
    assert np.array_equal(late[:3], p[:3]) and late[3, 7] == p[3, 7] + 1.5


def test_counterfactual_and_temporal_edits_at_frame_0_differ_from_frame_0():
    """The tester's spec (collision_simple, a push and a counterfactual halving of obj[0].vx, both at frame 0): the
    partner's stored frame 0 already holds the halved velocity, the pushed samples' frame 0 the push."""
    from crlgen.pipeline import load_spec
    from crlgen.scenes.testing import _batch

    spec = load_spec("physics/collision_simple").replace(
        samples=4, video={"fps": 30, "frames": 4}, render={"size": 16, "views": 1, "engine": "tiny"},
        interventions={"regime": "observational"},
        temporal_edits=[{"at_frame": 0, "do": "obj[1].vy += 0.8", "fraction": 0.5}],
        counterfactuals={"fraction": 0.5, "edit": {"at_frame": 0, "do": "obj[0].vx *= 0.5"}})
    with CollisionWorld(spec) as w:
        b = _batch(spec, 0, 4, w)
        push, half = b.edits
        sim = w.simulate(b)
        plain = w.simulate(WorldBatch(b.index, b.latents, b.seeds, ())).states
    vx0, vy1 = sim.state_names.index("obj[0].vx"), sim.state_names.index("obj[1].vy")
    partners = np.flatnonzero(half.frame == 0)
    assert partners.size and np.all(half.frame[partners - 1] == -1)  # each partner follows its factual sample
    for j in partners:
        f = j - 1
        assert all(np.array_equal(b.latents[k][f], b.latents[k][j]) for k in b.latents)
        assert sim.states[j, 0, vx0] == pytest.approx(0.5 * sim.states[f, 0, vx0])
        assert not np.array_equal(sim.states[f, 0], sim.states[j, 0])
    pushed = np.flatnonzero(push.frame == 0)
    assert pushed.size
    assert np.allclose(sim.states[pushed, 0, vy1], plain[pushed, 0, vy1] + 0.8)


def test_gravity_set_edit_window(falling):
    rows = [drop(z0=1.5)]
    plain = falling.simulate(batch(rows)).states
    edited = falling.simulate(batch(rows, [edit("gravity", "set", 3, 1.0, end=6)])).states
    assert np.array_equal(edited[0, :3], plain[0, :3])
    assert np.all(edited[0, 3:, 2] > plain[0, 3:, 2])
    dv = np.diff(edited[0, :, 9])  # vz change per frame
    assert np.allclose(dv[2:5], -1.0 / FPS) and np.allclose(dv[5:], -9.81 / FPS)  # restored at end_frame
    assert np.allclose(dv[:2], -9.81 / FPS)


def test_mass_and_wind_edits(falling):
    rows = [drop(z0=1.5)]
    plain = falling.render(batch(rows))
    heavy = falling.render(batch(rows, [edit("obj[0].mass", "scale", 4, 2.0)]))
    e0, e1 = plain.simulation.extras["energy"][0], heavy.simulation.extras["energy"][0]
    assert np.array_equal(e1[:4], e0[:4]) and np.allclose(e1[4:], 2.0 * e0[4:], rtol=1e-9)
    assert np.allclose(states(heavy)[0], states(plain)[0])  # free fall does not depend on mass
    windy = falling.simulate(batch(rows, [edit("wind", "set", 2, 3.0)])).states
    vx = windy[0, :, 7]
    assert np.array_equal(windy[0, :2], states(plain)[0, :2])
    assert np.allclose(np.diff(vx)[1:], 3.0 / FPS) and np.all(np.diff(vx)[:1] == 0)


def test_wind_drag_and_friction_latents(falling):
    row = {**drop(z0=1.5, vx0=2.0), "wind": 0.0, "drag": 0.0}
    still, windy, draggy = falling.simulate(batch([row, {**row, "wind": 2.0}, {**row, "drag": 0.5}])).states
    assert np.array_equal(still, falling.simulate(batch([drop(z0=1.5, vx0=2.0)])).states[0])  # defaults are 0
    assert windy[-1, 7] > still[-1, 7] + 0.5 and draggy[-1, 7] < still[-1, 7] - 0.05
    # friction: a box sliding on the ground stops sooner with more friction (and a friction edit)
    slide = dict(shape=1, size=0.1, z0=0.1, vx0=2.0)
    rough, slick = falling.simulate(batch([{**drop(**slide), "friction": 0.8}, {**drop(**slide), "friction": 0.2}])).states
    assert rough[-1, 0] < slick[-1, 0]
    edited = falling.simulate(batch([{**drop(**slide), "friction": 0.2}], [edit("friction", "scale", 3, 4.0)])).states
    assert np.array_equal(edited[0, :3], slick[:3]) and edited[0, -1, 0] < slick[-1, 0]


def test_projectile_hits_wall_and_bounces_back():
    with ProjectileWorld(spec(ProjectileWorld, size=16, views=1, frames=12, fps=10, substeps=24, objects=1)) as w:
        row = flat({**GLOBAL, "restitution": 0.9, "wall.x": 0.5, "wall.height": 1.0},
                   [{**OBJ0, "size": 0.1, "x0": -0.5, "z0": 0.5, "vx0": 3.0, "vz0": 1.0}])
        out = w.render(batch([row, {**row, "wall.height": 0.0}]))
    x, vx = states(out)[:, :, 0], states(out)[:, :, 7]
    assert x[0].max() < 0.5 - 0.05 - 0.1 + 0.01 and vx[0, -1] < 0  # stopped by the wall, moving back
    assert x[1, -1] > 1.0  # no wall (height 0): flies on
    assert 1 in np.unique(out.outputs["segmentation"][0])


def test_collision_transfers_momentum():
    with CollisionWorld(spec(CollisionWorld, size=16, views=1, frames=12)) as w:
        out = w.render(batch([case(CollisionWorld)]))
    s = states(out)[0]
    vx0, vx1 = s[:, 7], s[:, N_STATE + 7]
    assert vx1[0] == 0.0 and vx1[-1] > 1.0 and vx0[-1] < vx0[0]
    # z0 defaults to size (resting on the table)
    row = case(CollisionWorld)
    del row["obj[0].z0"], row["obj[1].z0"]
    with CollisionWorld(spec(CollisionWorld, size=16, views=1, frames=2)) as w:
        st = w.simulate(batch([row])).states
    assert st[0, 0, 2] == pytest.approx(0.15) and abs(st[0, 1, 2] - 0.15) < 2e-3


def test_overlapping_start_fails_the_penetration_check():
    overlap = flat(GLOBAL, [{**OBJ0, "z0": 0.5}, {**OBJ0, "z0": 0.5, "x0": 0.1, "hue": 0.5}])
    apart = flat(GLOBAL, [{**OBJ0, "z0": 1.5}, {**OBJ0, "z0": 1.5, "x0": 0.6, "hue": 0.5}])
    with FallingWorld(spec(views=1, frames=12)) as w:
        b = batch([overlap, apart])
        sim = w.simulate(b)
        pen = sim.extras["max_penetration"]
        assert pen[0] > 0.2 and pen[1] == 0.0
        (check,) = [c for c in w.checks if c.name == "penetration"]
        problems = check.run(w, b, sim)
    assert len(problems) == 1 and problems[0].startswith("sample 0: objects interpenetrate by")


# --------------------------------------------------------------------------- helpers


def test_bullet_helpers():
    from crlgen.scenes.cameras import linear_depth

    assert pb.hsv_to_rgb(0.0) == pytest.approx((0.9, 0.225, 0.225))
    z = linear_depth(np.array([[0.0, 1.0]]), 0.1, 10.0, False, np.array([[False, True]]))
    assert z[0, 0] == pytest.approx(0.1) and z[0, 1] == 0.0
    lut = pb.segmentation_lut({0: 1, 1: 1, 3: 2})
    assert pb.map_segmentation(np.array([[-1, 0, 1, 2, 3, 9]]), lut).tolist() == [[0, 1, 1, 0, 2, 0]]
    q = pb.yaw_quaternion(0.7)
    r = pb.quaternion_matrix(q)
    assert np.allclose(r @ [1, 0, 0], [np.cos(0.7), np.sin(0.7), 0])


@pytest.mark.slow
def test_cycles_engine_same_states():
    rows = [drop(z0=0.8), drop(z0=0.5, shape=1, hue=0.3)]
    kw = dict(size=16, views=1, frames=3, objects=1)
    with FallingWorld(spec(engine="cycles", **kw), threads=1) as w:
        cyc = w.render(batch(rows))
    with FallingWorld(spec(**kw)) as w:
        tiny = w.render(batch(rows))
    px, seg, depth = (cyc.outputs[k] for k in ("frames", "segmentation", "depth"))
    assert px.shape == (2, 3, 1, 16, 16, 3) and px.dtype == np.uint8
    assert depth.shape == (2, 3, 1, 16, 16) and seg.shape == (2, 3, 1, 16, 16)
    assert np.array_equal(states(cyc), states(tiny)) and np.array_equal(cyc.outputs["states"], tiny.outputs["states"])
    assert np.array_equal(cyc.outputs["camera_to_world"], tiny.outputs["camera_to_world"])
    assert set(np.unique(seg).tolist()) <= {0, 1, 2} and 2 in np.unique(seg)
    assert np.all(depth[seg > 0] > 0)
    assert 20 < px.mean() < 250
    assert not np.array_equal(px[0, 0], px[0, -1])  # the object moved
