"""traffic/embedded's causal mechanisms, measured in the simulator and the world.

- A light forced red: the lead car's braking starts its reaction time after the change (to within one step) and the
  follower's starts its own reaction time after the leader's, never before (the delay of Treiber, Kesting, Helbing 2006).
- A pedestrian who steps out makes the approaching car yield: it stops before the crosswalk and waits.
- Fog changes the dashcam's pixels, not the trajectories, nor the top-down raster (the spec links fog to nothing).
- The stored state of frame t is the state filmed in frame t, right after an edit too.
"""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.pipeline import load_spec
from crlgen.scenes import build_world
from crlgen.scenes.base import BatchEdit, WorldBatch
from crlgen.scenes.cameras import project
from crlgen.scenes.testing import _batch
from crlgen.scenes.traffic import _maps, _sim
from crlgen.scenes.traffic.world import LIGHT_RGB

FPS, DT = 20.0, 0.05  # one step per frame: the onsets are read off frame by frame


def setup(n: int, route: np.ndarray, start: np.ndarray, tau: np.ndarray, offset, green, peds=None) -> _sim.Setup:
    z = np.zeros(0)
    p = peds or {}
    return _sim.Setup(present=np.ones(n, bool), route=route, start=start, v0=np.full(n, 12.0), headway=np.full(n, 1.2),
                      tau=tau, a_max=np.full(n, 1.5), b=np.full(n, 2.0), politeness=np.full(n, 0.3),
                      ped_present=p.get("present", np.zeros(0, bool)), ped_crossing=p.get("crossing", np.zeros(0, np.int64)),
                      ped_start=p.get("start", z), ped_speed=p.get("speed", z), offset=np.asarray(offset, float),
                      green=np.asarray(green, float))


def queue_at(net: _sim.Network, lane: int, arc: float, behind: list[float]) -> tuple[int, np.ndarray]:
    """A route through ``lane`` and start shares of cars whose fronts are ``behind`` m before (lane, arc)."""
    r = int(np.flatnonzero(np.isfinite(net.off[:, lane]))[0])
    s = net.off[r, lane] + arc - np.asarray(behind)
    return r, np.mod(s, net.route_len[r]) / net.route_len[r]


def onset(a: np.ndarray, b: np.ndarray) -> int:
    """First frame where two acceleration series differ."""
    d = np.flatnonzero(a != b)
    return int(d[0]) if d.size else -1


@pytest.mark.parametrize("tau", [(0.53, 0.73, 1.07), (1.21, 0.38, 0.66)])
def test_red_light_queue_brakes_after_each_reaction_time(tau):
    m = _maps.get_map(0)
    net = _sim.Network.of(m)
    lane, stop = m.lights[0].stops[0]
    r, start = queue_at(net, lane, stop, [45.0, 60.0, 75.0])
    tau = np.array(tau)
    su = setup(3, np.full(3, r), start, tau, offset=[0.0, 0.0, 0.0, 0.0], green=[20.0, 2.0, 20.0, 2.0])
    f = 30
    plain = _sim.simulate(net, m, su, 240, FPS, 1)
    red = _sim.simulate(net, m, su, 240, FPS, 1, (_sim.Edit("light", 0, "set", f, None, 0.0),))
    assert plain["light"][f, 0] == 2 and red["light"][f, 0] == 0 and red["light"][f - 1, 0] == 2
    on = [onset(plain["accel"][:, i], red["accel"][:, i]) for i in range(3)]
    # accel[k] is the step into frame k: a step decided at frame j shows at j + 1
    lead_delay = (on[0] - 1 - f) * DT
    assert tau[0] <= lead_delay + 1e-9 <= tau[0] + DT + 1e-9, (on, lead_delay)
    for i in (1, 2):  # each follower: its own reaction time after the car ahead changed speed
        delay = (on[i] - on[i - 1]) * DT
        assert tau[i] < delay + 1e-9 <= tau[i] + DT + 1e-9, (i, on, delay)
    for i in range(3):  # and they do brake: to a stop behind the line, the leader before it
        assert red["accel"][on[i]:, i].min() < -0.5
        assert red["speed"][on[i]:, i].min() < 1.0
    lane_end = net.off[r, lane] + stop
    front = (start[0] * net.route_len[r]) + np.cumsum(red["speed"][:, 0]) * DT  # distance covered (approx. by speeds)
    assert front[-1] < lane_end + 0.5


def test_pedestrian_stepping_out_makes_the_approaching_car_yield():
    m = _maps.get_map(1)  # village: crosswalk 2 is an unsignalised zebra on the cross street
    net = _sim.Network.of(m)
    cw = m.crosswalks[2]
    assert cw.light < 0
    lane, near = cw.lanes[0]
    r, start = queue_at(net, lane, near, [40.0])
    peds = {"present": np.ones(1, bool), "crossing": np.array([2]), "start": np.array([500.0]), "speed": np.array([1.2])}
    su = setup(1, np.array([r]), start, np.array([0.83]), [0.0, 0.0], [10.0, 10.0], peds)
    f = 20
    plain = _sim.simulate(net, m, su, 260, FPS, 1)
    walk = _sim.simulate(net, m, su, 260, FPS, 1, (_sim.Edit("walk", 0, "set", f, None, 1.0),))
    assert plain["walking"].max() == 0 and walk["walking"][f - 1, 0] == 0 and walk["walking"][f, 0] == 1
    # without the pedestrian the car drives over the crosswalk; with it the car stops short of it until the pedestrian is off
    cx, cy = 0.5 * (cw.a + cw.b)
    dist = lambda o: np.hypot(o["x"][:, 0] - cx, o["y"][:, 0] - cy)
    assert dist(plain).min() < 2.0
    walking = np.flatnonzero(walk["walking"][:, 0] == 1)
    assert walking.size > 40
    on = onset(plain["accel"][:, 0], walk["accel"][:, 0])
    assert 0.83 <= (on - 1 - f) * DT <= 0.83 + DT + 1e-9
    assert walk["speed"][walking[-1], 0] < 0.5  # it has come (almost) to a stop
    assert dist(walk)[walking].min() > 2.25 + 1.5  # the car's front stays before the crosswalk's near edge
    assert walk["speed"][-1, 0] > 1.0  # and drives on once the pedestrian has crossed


@pytest.fixture(scope="module")
def scene():
    spec = load_spec("traffic/grid_town")
    render = {**spec.render.model_dump(mode="json"), "size": 64}
    spec = spec.replace(samples=3, video={"fps": 10, "frames": 24, "substeps": 1}, render=render, temporal_edits=[],
                        counterfactuals=None)
    with build_world(spec, threads=1) as w:
        yield spec, w, _batch(spec, 0, 3, w)


def test_fog_changes_the_dashcam_pixels_not_the_trajectories(scene):
    spec, w, b = scene
    one = b.take(slice(0, 1))
    clear = {**one.latents, "weather.fog": np.array([5000.0])}
    foggy = {**one.latents, "weather.fog": np.array([40.0])}
    r0 = w.render(WorldBatch(one.index, clear, one.seeds, ()))
    r1 = w.render(WorldBatch(one.index, foggy, one.seeds, ()))
    assert np.array_equal(r0.simulation.states, r1.simulation.states)
    assert np.array_equal(r0.outputs["states"], r1.outputs["states"])
    names = [c.name for c in w.rig.cameras]
    top, dash = names.index("top"), names.index("dashcam")
    assert np.array_equal(r0.outputs["frames"][:, :, top], r1.outputs["frames"][:, :, top])
    assert not np.array_equal(r0.outputs["frames"][:, :, dash], r1.outputs["frames"][:, :, dash])
    assert np.array_equal(r0.outputs["depth"][:, :, dash], r1.outputs["depth"][:, :, dash])  # fog is colour only
    # the catalogue links rain, not fog, to behaviour: rain changes the trajectories
    wet = {**one.latents, "weather.rain": np.array([1.0])}
    model_rain = w.render(WorldBatch(one.index, wet, one.seeds, ()))
    assert np.array_equal(model_rain.simulation.states, r0.simulation.states)  # the world reads rain only for pixels


@pytest.mark.parametrize("name", ["grid_town", "village", "highway_merge", "downtown", "urban_centre"])
def test_the_drawn_fog_shows_on_the_dashcam_over_its_whole_range(name):
    """The catalogue draws visibility where the dashcam's pixels still answer to it: at the top of the drawn range a
    visibility 20 % lower changes the dashcam frame by at least one grey level on average (the view ends within
    ~35 m for most pixels; the earlier draws up to 800 m changed it by 0.4-0.8 levels there, which a probe cannot read)."""
    spec = load_spec(f"traffic/{name}")
    render = {**spec.render.model_dump(mode="json"), "size": 64}
    spec = spec.replace(samples=1, video={"fps": 10, "frames": 12, "substeps": 1}, render=render, temporal_edits=[],
                        counterfactuals=None)
    top = spec.graph.node("weather.fog").variable.noise.support()[1]
    with build_world(spec, threads=1) as w:
        one = _batch(spec, 0, 1, w)
        dash = [c.name for c in w.rig.cameras].index("dashcam")

        def frames(visibility: float) -> np.ndarray:
            r = w.render(WorldBatch(one.index, {**one.latents, "weather.fog": np.array([visibility])}, one.seeds, ()))
            return r.outputs["frames"][:, :, dash].astype(np.float64)

        assert np.abs(frames(top) - frames(0.8 * top)).mean() >= 1.0


def test_the_state_stored_for_frame_t_is_the_state_filmed_in_frame_t(scene):
    spec, w, b = scene
    one = b.take(slice(0, 1))
    one = WorldBatch(one.index, {**one.latents, "light[0].offset": np.array([0.0])}, one.seeds, ())  # green at frame 7
    f = 7
    edits = (BatchEdit("light[0].state", "set", np.array([f]), np.array([-1]), np.array([0.0])),
             BatchEdit("pedestrian[0].walking", "set", np.array([f]), np.array([-1]), np.array([1.0])))
    r = w.render(WorldBatch(one.index, one.latents, one.seeds, edits))
    states = r.outputs["states"][0]
    names = list(next(o for o in w.outputs(spec) if o.name == "states").coords["state"][1])
    cam = [c.name for c in w.rig.cameras].index("top")
    K = next(o for o in w.outputs(spec) if o.name == "intrinsics").value[cam]
    seg, rgb = r.outputs["segmentation"][0, :, cam], r.outputs["frames"][0, :, cam]
    pose = r.outputs["camera_to_world"][0, 0, cam]
    light = states[:, names.index("light[0].state")]
    assert light[f] == 0 and light[f - 1] != 0
    for t in range(spec.video.n_frames):
        # pixels whose centre a light[0] head covers: green heads have green as their strongest channel, red and amber red
        want = int(np.argmax(LIGHT_RGB[int(light[t])]))
        px = rgb[t][seg[t] == 7]
        assert len(px) and all(int(np.argmax(c)) == want for c in px), (t, px, light[t])
        for i in range(spec.object_count("vehicle")):
            if b.latents[f"vehicle[{i}].present"][0] < 0.5:
                continue
            x, y = states[t, names.index(f"vehicle[{i}].x")], states[t, names.index(f"vehicle[{i}].y")]
            uv, _ = project(np.array([[x, y, 0.75]]), K, pose, True)
            rows, cols = np.nonzero(seg[t] == w._first_car + i)  # every pixel filmed as this car lies on the stored car
            reach = 2.5 * K[0, 0] + 0.71  # its half-diagonal (m) in pixels, plus half a pixel's diagonal
            assert np.all(np.hypot(cols - uv[0, 0], rows - uv[0, 1]) <= reach), (t, i)
    walking = states[:, names.index("pedestrian[0].walking")]
    assert walking[f] == 1 and walking[f - 1] == 0
