"""traffic/_idm, _mobil and _sim: the equations and the deterministic step."""

from __future__ import annotations

import numpy as np

from crlgen.scenes.traffic import _idm, _maps, _mobil, _sim


def test_idm_free_road_equilibrium_and_braking():
    v0, a, b, T = 14.0, 1.5, 2.0, 1.2
    assert _idm.idm_acceleration(0.0, v0, np.inf, 0.0, a, b, T) == a  # free road from rest: a_max
    assert abs(_idm.idm_acceleration(v0, v0, np.inf, 0.0, a, b, T)) < 1e-12  # at the desired speed: 0
    v = 10.0  # equilibrium gap of the IDM at speed v: s_e = (s0 + v T) / sqrt(1 - (v / v0)^4)
    s_e = (_idm.S0 + v * T) / np.sqrt(1.0 - (v / v0) ** 4)
    assert abs(_idm.idm_acceleration(v, v0, s_e, 0.0, a, b, T)) < 1e-12
    assert _idm.idm_acceleration(10.0, v0, 5.0, 10.0, a, b, T) == -_idm.MAX_BRAKE  # closing fast: full braking, clipped


def test_mobil_incentive_and_safety():
    z = np.zeros(2)
    want = _mobil.mobil_wants(np.array([-1.0, -1.0]), np.array([0.5, 0.5]), z, np.array([0.0, -5.0]), z, z, np.array([0.5, 0.5]))
    assert want.tolist() == [True, False]  # the second would make its new follower brake beyond b_safe
    polite = _mobil.mobil_wants(np.array([0.0]), np.array([0.3]), np.array([0.0]), np.array([-1.0]), np.zeros(1), np.zeros(1),
                                np.array([1.0]))
    assert not polite[0]  # gain 0.3 - 1.0 < threshold for an altruist


def _setup(m, n=6, seed=1):
    rng = np.random.default_rng(seed)  # test data only
    nl = len(m.lights)
    return _sim.Setup(present=np.ones(n, bool), route=np.arange(n) % len(m.routes), start=(np.arange(n) + 0.5) / n,
                      v0=rng.uniform(10, 20, n), headway=rng.uniform(1, 2, n), tau=rng.uniform(0.2, 1.2, n),
                      a_max=np.full(n, 1.5), b=np.full(n, 2.0), politeness=np.full(n, 0.2), ped_present=np.ones(2, bool),
                      ped_crossing=np.array([0, len(m.crosswalks) - 1]), ped_start=np.array([0.5, 1.0]),
                      ped_speed=np.array([1.3, 1.5]), offset=np.arange(nl) * 3.0, green=np.full(nl, 8.0))


def test_resimulation_is_bitwise_and_speeds_stay_valid():
    for code in range(5):
        m = _maps.get_map(code)
        net = _sim.Network.of(m)
        su = _setup(m)
        a = _sim.simulate(net, m, su, 60, 10.0, 2)
        b = _sim.simulate(net, m, su, 60, 10.0, 2)
        for k in a:
            assert np.array_equal(a[k], b[k]), (m.name, k)
        assert (a["speed"] >= 0).all() and np.isfinite(a["x"]).all()
        assert (a["speed"] <= su.v0[None, :] + 1e-9).all()
        assert set(np.unique(a["light"])) <= {0, 1, 2}
        on = a["lane"] >= 0
        assert (net.lane_limit[a["lane"][on].astype(int)] > 0).all()


def test_highway_cars_change_lanes_with_mobil():
    m = _maps.get_map(2)
    net = _sim.Network.of(m)
    n = 8
    su = _setup(m, n, seed=3)
    o = _sim.simulate(net, m, su, 100, 10.0, 2)
    changed = np.diff(o["route"], axis=0) != 0
    assert changed.any()
    # a car that changes lane lands on the neighbour of the lane it left, at the same arc
    f, i = np.argwhere(changed)[0]
    before, after = int(o["lane"][f, i]), int(o["lane"][f + 1, i])
    assert after in (net.lane_left[before], net.lane_right[before], *m.lanes[before].successors,
                     *(s for nb in (net.lane_left[before], net.lane_right[before]) if nb >= 0 for s in m.lanes[nb].successors))


def test_absent_agents_store_values_outside_every_domain_and_do_not_block():
    m = _maps.get_map(0)
    net = _sim.Network.of(m)
    su = _setup(m, 4)
    absent = _sim.Setup(**{**su.__dict__, "present": np.array([True, False, True, True]),
                           "ped_present": np.array([False, True])})
    o = _sim.simulate(net, m, absent, 30, 10.0, 1)
    for f in ("x", "y", "heading", "speed", "accel"):  # NaN, never a car parked at the origin
        assert np.isnan(o[f][:, 1]).all() and np.isfinite(o[f][:, [0, 2, 3]]).all(), f
    assert (o["lane"][:, 1] == -1).all() and (o["route"][:, 1] == -1).all() and (o["lane"][:, [0, 2, 3]] >= 0).all()
    assert np.isnan(o["ped_x"][:, 0]).all() and np.isnan(o["ped_y"][:, 0]).all() and (o["walking"][:, 0] == -1).all()
    assert np.isfinite(o["ped_x"][:, 1]).all() and set(np.unique(o["walking"][:, 1])) <= {0.0, 1.0}
    start, route = su.start.copy(), su.route.copy()
    start[1], route[1] = 0.9, (route[1] + 1) % len(m.routes)  # an absent car's latents change nothing
    moved = _sim.Setup(**{**absent.__dict__, "start": start, "route": route})
    again = _sim.simulate(net, m, moved, 30, 10.0, 1)
    for f in ("x", "y", "speed", "lane"):
        np.testing.assert_array_equal(o[f], again[f])


def test_schedule_cycles_green_amber_red():
    t = np.arange(0.0, 24.0, 0.5)
    s = np.array([_sim.schedule(x, np.array([2.0]), np.array([8.0]), 24.0)[0] for x in t])
    assert (s[(t >= 2) & (t < 10)] == 2).all() and (s[(t >= 10) & (t < 13)] == 1).all()
    assert (s[(t < 2) | (t >= 13)] == 0).all()
