"""traffic/_maps: the five procedural maps are consistent road networks."""

from __future__ import annotations

import numpy as np
import pytest

from crlgen.scenes.traffic import _maps


@pytest.fixture(params=range(len(_maps.MAP_NAMES)), ids=_maps.MAP_NAMES)
def m(request) -> _maps.TrafficMap:
    return _maps.get_map(request.param)


def test_lanes_join_their_successors_and_routes_are_cycles(m):
    for k, lane in enumerate(m.lanes):
        assert lane.length > 0 and lane.limit > 0 and lane.width > 2.5
        for s in lane.successors:
            assert np.linalg.norm(m.lanes[s].points[0] - lane.points[-1]) < 1e-6, (k, s)
    assert 1 <= len(m.routes) <= 8
    for r in m.routes:
        assert len(set(r)) == len(r)
        for a, b in zip(r, r[1:] + r[:1]):
            assert b in m.lanes[a].successors


def test_neighbour_lanes_are_parallel_and_equally_long(m):
    for k, lane in enumerate(m.lanes):
        for nb in (lane.left, lane.right):
            if nb >= 0:
                other = m.lanes[nb]
                assert abs(other.length - lane.length) < 1e-6
                d = other.points[0] - lane.points[0]
                assert 2.5 < np.linalg.norm(d) < 4.0
                assert (lane.right if nb == lane.left else lane.left) != nb


def test_signals_crosswalks_and_buildings(m):
    on_route = {k for r in m.routes for k in r}
    for light in m.lights:
        assert light.stops and len(light.heads)
        for lane, arc in light.stops:
            assert 0 < arc <= m.lanes[lane].length
        assert any(lane in on_route for lane, _ in light.stops)  # some car can meet every light
    for a, b in m.conflicts:
        assert m.lights[a].node == m.lights[b].node >= 0
    for cw in m.crosswalks:
        assert 5.0 < cw.length < 20.0 and cw.lanes and -1 <= cw.light < len(m.lights)
    # buildings stand off the roads: no lane point inside a building box
    pts = np.concatenate([lane.points for lane in m.lanes])
    for cx, cy, hx, hy, h, _ in m.buildings:
        assert h > 0 and not np.any((np.abs(pts[:, 0] - cx) < hx) & (np.abs(pts[:, 1] - cy) < hy))
    assert m.quads.shape[1:] == (4, 2) and len(m.quads) == len(m.quad_rgb) == len(m.quad_ids) == len(m.quad_layer)
    # small enough for a ~120 m top-down view: every lane within 70 m of the centre
    assert np.abs(pts).max() < 70.0


def test_map_codes_are_checked():
    assert _maps.get_map(2).name == "highway_merge" and _maps.get_map(2.0) is _maps.get_map(2)
    for bad in (5, -1, 1.5):
        with pytest.raises(ValueError, match="map code"):
            _maps.get_map(bad)
