"""Five procedural road maps for the embedded traffic world, as pure data (numpy arrays, metres, map frame z up).

A map is lanes (centre polylines with a width, a speed limit and successor lanes), signal groups
(``light[k]``: the stop lines of the approaches one fixed-time signal head group controls), crosswalks
(a band across the road, optionally signalised: pedestrians walk when the vehicles' light is red),
ground quads (grass, sidewalks, road, lane marks, stop lines, crosswalk stripes) and buildings (boxes)
for the renderers, and *routes*: cyclic sequences of lanes the vehicles loop along.

Traffic drives on the right. Intersections offer straight-through and right turns only (so the
only conflicts at a junction are merges, which the simulator resolves by projection, and crossing
streams, which signals separate); a degree-2 node is a bend. Routes are generated deterministically
from turn patterns (``S`` straight, ``R`` right) and chosen greedily to cover the map.

Map codes (``parameters.map``): 0 grid_town, 1 village, 2 highway_merge, 3 downtown, 4 urban_centre.
Each fits in about 120 m so that a 64 px top-down raster of ~120 m shows a 4.5 m car as 2-3 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MAP_NAMES = ("grid_town", "village", "highway_merge", "downtown", "urban_centre")
#: Fixed-time signal timing (s): amber after green, all-red clearance between conflicting groups.
AMBER, ALL_RED = 3.0, 1.0
#: Segmentation ids of the static scene (vehicles, pedestrians and lights follow, see ``segmentation_ids``).
BACKGROUND_ID, GRASS_ID, ROAD_ID, MARK_ID, CROSSWALK_ID, SIDEWALK_ID, BUILDING_ID = range(7)
FIRST_LIGHT_ID = 7
#: Ground layers (drawn over lower ones).
GRASS_LAYER, SIDEWALK_LAYER, ROAD_LAYER, MARK_LAYER = 0, 1, 2, 3
GRASS_RGB, ROAD_RGB, MARK_RGB, SIDEWALK_RGB = (0.36, 0.55, 0.28), (0.27, 0.27, 0.29), (0.92, 0.92, 0.88), (0.66, 0.64, 0.60)
CROSSWALK_RGB = (0.95, 0.95, 0.93)
#: Distances (m) from a signalised node's clear box edge along an arm: crosswalk band, stop line.
CROSS_NEAR, CROSS_FAR, STOP_BACK = 0.5, 3.5, 4.5
SIDEWALK = 2.5


@dataclass(frozen=True)
class Lane:
    """One lane: centre polyline ``points`` (P, 2) m in travel order, ``width`` m, ``limit`` m/s,
    ``successors`` (lane indices), ``left`` / ``right`` neighbour lane (-1: none; same length, parallel)."""

    points: np.ndarray
    width: float
    limit: float
    successors: tuple[int, ...] = ()
    left: int = -1
    right: int = -1

    @property
    def length(self) -> float:
        return float(np.sum(np.linalg.norm(np.diff(self.points, axis=0), axis=1)))


@dataclass(frozen=True)
class Light:
    """Signal head group ``light[k]``: ``stops`` ((lane, arc m) of each stop line it controls) and
    ``heads`` (k, 2) the head positions (m) drawn beside the stop lines; ``node`` the junction (-1 mid-block)."""

    stops: tuple[tuple[int, float], ...]
    heads: np.ndarray
    node: int = -1


@dataclass(frozen=True)
class Crosswalk:
    """A crosswalk from curb ``a`` to curb ``b`` (m), ``width`` m; ``lanes`` ((lane, arc m of its near edge));
    ``light``: the vehicles' light whose red lets pedestrians walk (-1: unsignalised zebra)."""

    a: np.ndarray
    b: np.ndarray
    width: float
    lanes: tuple[tuple[int, float], ...]
    light: int = -1

    @property
    def length(self) -> float:
        return float(np.linalg.norm(self.b - self.a))


@dataclass(frozen=True)
class TrafficMap:
    """A whole map (see the module docstring). ``quads`` (n, 4, 2) m with ``quad_rgb`` (n, 3) sRGB,
    ``quad_ids`` (n,) and ``quad_layer`` (n,); ``buildings`` (m, 6): centre x, y, half x, half y, height (m), hue;
    ``routes``: lane index tuples (cyclic); ``cycle`` s: the signal cycle; ``extent`` m: the map's width."""

    name: str
    lanes: tuple[Lane, ...]
    lights: tuple[Light, ...]
    crosswalks: tuple[Crosswalk, ...]
    routes: tuple[tuple[int, ...], ...]
    quads: np.ndarray
    quad_rgb: np.ndarray
    quad_ids: np.ndarray
    quad_layer: np.ndarray
    buildings: np.ndarray
    cycle: float
    extent: float
    conflicts: tuple[tuple[int, int], ...] = field(default=())

    @property
    def road_bounds(self) -> tuple[float, float, float, float]:
        """(x min, x max, y min, y max) m of every lane's centre line: the part of the map where agents move."""
        pts = np.concatenate([lane.points for lane in self.lanes])
        return float(pts[:, 0].min()), float(pts[:, 0].max()), float(pts[:, 1].min()), float(pts[:, 1].max())


# --------------------------------------------------------------------------- geometry helpers


def _bezier(p0, d0, p3, d3, n: int = 10) -> np.ndarray:
    """Cubic Bezier (n + 1, 2) from p0 leaving along d0 to p3 arriving along d3 (handles 0.4 chord)."""
    h = 0.4 * float(np.linalg.norm(p3 - p0))
    p1, p2 = p0 + h * d0, p3 - h * d3
    t = np.linspace(0.0, 1.0, n + 1)[:, None]
    return (1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t ** 2 * p2 + t ** 3 * p3


def _segment_quad(a, b, width: float) -> np.ndarray:
    d = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
    n = np.array([-d[1], d[0]]) * width / 2.0
    return np.array([a + n, b + n, b - n, a - n])


def _box_quad(cx, cy, hx, hy) -> np.ndarray:
    return np.array([[cx - hx, cy - hy], [cx + hx, cy - hy], [cx + hx, cy + hy], [cx - hx, cy + hy]], dtype=np.float64)


def _rot(d: np.ndarray, right: bool) -> np.ndarray:
    return np.array([d[1], -d[0]]) if right else np.array([-d[1], d[0]])


# --------------------------------------------------------------------------- builder


class _Builder:
    """Builds a map from nodes (x, y) and two-way edges with ``n`` lanes per direction."""

    def __init__(self, name: str, lane_width: float, cycle: float) -> None:
        self.name, self.w, self.cycle = name, lane_width, cycle
        self.lanes: list[dict] = []
        self.lights: list[Light] = []
        self.crosswalks: list[Crosswalk] = []
        self.quads: list[tuple[np.ndarray, tuple, int, int]] = []
        self.buildings: list[tuple] = []
        self.conflicts: list[tuple[int, int]] = []

    def lane(self, points, limit: float, width: float | None = None) -> int:
        self.lanes.append({"points": np.asarray(points, np.float64), "width": width or self.w, "limit": limit,
                           "succ": [], "left": -1, "right": -1})
        return len(self.lanes) - 1

    def link(self, a: int, b: int) -> None:
        if b not in self.lanes[a]["succ"]:
            self.lanes[a]["succ"].append(b)

    def quad(self, corners, rgb, sid: int, layer: int) -> None:
        self.quads.append((np.asarray(corners, np.float64), tuple(rgb), sid, layer))

    # ----- grid-like networks
    def network(self, nodes: list[tuple[float, float]], edges: list[tuple[int, int]], n_lanes: int, limit: float,
                signalised: set[int], turn_limit: float = 7.0, midblock: dict[int, bool] | None = None) -> None:
        """Two-way roads along ``edges``; junctions with straight and right-turn connectors, bends at degree-2 nodes;
        signal groups (two per signalised node, by arm axis) with stop lines, heads and crosswalks on every arm;
        ``midblock``: edge index -> signalised? for a mid-block crosswalk at the edge's middle."""
        P = np.asarray(nodes, np.float64)
        w, n = self.w, n_lanes
        half = n * w
        arms: dict[int, list[tuple[int, np.ndarray]]] = {i: [] for i in range(len(P))}
        for e, (a, b) in enumerate(edges):
            d = (P[b] - P[a]) / np.linalg.norm(P[b] - P[a])
            arms[a].append((e, d))
            arms[b].append((e, -d))
        deg = {i: len(v) for i, v in arms.items()}

        def clear(node: int) -> float:
            if deg[node] <= 2:
                return half + 0.5
            return half + 1.0

        def margin(node: int) -> float:  # where lanes start/end from the node: beyond crosswalk and stop line
            return clear(node) + (STOP_BACK + 0.5 if node in signalised else 0.0)

        lanes_dir: dict[tuple[int, int], list[int]] = {}  # (edge, 0: a->b, 1: b->a) -> lanes, rightmost first
        for e, (a, b) in enumerate(edges):
            for sense, (u, v) in enumerate(((a, b), (b, a))):
                d = (P[v] - P[u]) / np.linalg.norm(P[v] - P[u])
                right = _rot(d, True)
                ids = []
                for k in range(n):
                    off = (n - k - 0.5) * w
                    start = P[u] + d * margin(u) + right * off
                    end = P[v] - d * margin(v) + right * off
                    ids.append(self.lane([start, end], limit))
                for k in range(n - 1):
                    self.lanes[ids[k]]["left"], self.lanes[ids[k + 1]]["right"] = ids[k + 1], ids[k]
                lanes_dir[(e, sense)] = ids
            # road surface, centre mark, sidewalks
            d = (P[b] - P[a]) / np.linalg.norm(P[b] - P[a])
            ra, rb = P[a] + d * clear(a), P[b] - d * clear(b)
            self.quad(_segment_quad(P[a], P[b], 2 * half), ROAD_RGB, ROAD_ID, ROAD_LAYER)
            nrm = _rot(d, False)
            for s in (-1, 1):
                c = nrm * s * (half + SIDEWALK / 2)
                self.quad(_segment_quad(P[a] + c - d * (half + SIDEWALK) * (deg[a] > 1),
                                        P[b] + c + d * (half + SIDEWALK) * (deg[b] > 1), SIDEWALK), SIDEWALK_RGB,
                          SIDEWALK_ID, SIDEWALK_LAYER)
            L = float(np.linalg.norm(rb - ra))
            for t0 in np.arange(1.0, L - 1.0, 6.0):  # dashed centre line, 3 m dashes
                t1 = min(t0 + 3.0, L - 1.0)
                self.quad(_segment_quad(ra + d * t0, ra + d * t1, 0.25), MARK_RGB, MARK_ID, MARK_LAYER)
        for i in range(len(P)):
            self.quad(_box_quad(P[i][0], P[i][1], half, half), ROAD_RGB, ROAD_ID, ROAD_LAYER)
        # connectors
        for node in range(len(P)):
            incoming = []  # (edge, sense, direction of travel into the node)
            outgoing = []
            for e, d_out in arms[node]:
                a, b = edges[e]
                sense_in = 0 if b == node else 1
                incoming.append((e, sense_in, -d_out))
                outgoing.append((e, 1 - sense_in, d_out))
            for e_in, s_in, d_in in incoming:
                for e_out, s_out, d_out in outgoing:
                    if e_out == e_in:
                        continue
                    straight = float(np.dot(d_in, d_out)) > 0.99
                    right = float(np.dot(_rot(d_in, True), d_out)) > 0.99
                    if deg[node] == 2:
                        pairs = list(zip(lanes_dir[(e_in, s_in)], lanes_dir[(e_out, s_out)]))
                    elif straight:
                        pairs = list(zip(lanes_dir[(e_in, s_in)], lanes_dir[(e_out, s_out)]))
                    elif right:
                        pairs = [(lanes_dir[(e_in, s_in)][0], lanes_dir[(e_out, s_out)][0])]
                    else:
                        continue
                    for li, lo in pairs:
                        p0, p3 = self.lanes[li]["points"][-1], self.lanes[lo]["points"][0]
                        pts = np.array([p0, p3]) if straight else _bezier(p0, d_in, p3, d_out)
                        c = self.lane(pts, limit if straight else turn_limit)
                        self.link(li, c)
                        self.link(c, lo)
            if node in signalised:
                self._signals(node, P[node], incoming, outgoing, lanes_dir, half, clear(node))
        for e, signal in (midblock or {}).items():
            self._midblock(edges[e], P, lanes_dir, e, half, signal)

    def _signals(self, node, p, incoming, outgoing, lanes_dir, half, clear) -> None:
        groups: dict[int, list] = {0: [], 1: []}
        for e_in, s_in, d_in in incoming:
            groups[0 if abs(d_in[1]) > abs(d_in[0]) else 1].append((e_in, s_in, d_in))
        ids = []
        for g in (0, 1):
            if not groups[g]:
                continue
            stops, heads = [], []
            for e_in, s_in, d_in in groups[g]:
                right = _rot(d_in, True)
                for li in lanes_dir[(e_in, s_in)]:
                    lane = self.lanes[li]
                    L = float(np.linalg.norm(lane["points"][-1] - lane["points"][0]))
                    stops.append((li, L - 0.5))
                    a = lane["points"][-1] - d_in * 0.5
                    self.quad(_segment_quad(a + right * lane["width"] / 2, a - right * lane["width"] / 2, 0.4),
                              MARK_RGB, MARK_ID, MARK_LAYER)
                heads.append(p - d_in * (clear + STOP_BACK) + right * (half + 1.2))
            self.lights.append(Light(tuple(stops), np.array(heads), node))
            ids.append(len(self.lights) - 1)
        if len(ids) == 2:
            self.conflicts.append((ids[0], ids[1]))
        light_of = {}
        for g, k in zip([g for g in (0, 1) if groups[g]], ids):
            for e_in, s_in, d_in in groups[g]:
                light_of[e_in] = k
        for e_out, _, d_out in outgoing:  # one crosswalk per arm
            mid = p + d_out * (clear + (CROSS_NEAR + CROSS_FAR) / 2)
            nrm = _rot(d_out, False)
            a, b = mid + nrm * (half + 1.0), mid - nrm * (half + 1.0)
            self._crosswalk(a, b, lanes_dir, e_out, light_of.get(e_out, -1))

    def _crosswalk(self, a, b, lanes_dir, e, light: int, width: float = 3.0) -> None:
        lanes = []
        for sense in (0, 1):
            for li in lanes_dir.get((e, sense), []):
                pts = self.lanes[li]["points"]
                d = (pts[-1] - pts[0]) / np.linalg.norm(pts[-1] - pts[0])
                mid = 0.5 * (a + b)
                t = float(np.dot(mid - pts[0], d))  # arc of the crosswalk's centre along the lane
                lanes.append((li, t - width / 2))  # < 0 or > the lane's length: on a connector before or after it
        self.crosswalks.append(Crosswalk(np.asarray(a), np.asarray(b), width, tuple(lanes), light))
        d = (b - a) / np.linalg.norm(b - a)
        L = float(np.linalg.norm(b - a))
        for t0 in np.arange(0.3, L - 0.3, 1.0):  # zebra stripes 0.5 m wide across the walking direction
            c = a + d * (t0 + 0.25)
            self.quad(_segment_quad(c - _rot(d, True) * width / 2, c + _rot(d, True) * width / 2, 0.5),
                      CROSSWALK_RGB, CROSSWALK_ID, MARK_LAYER)

    def _midblock(self, edge, P, lanes_dir, e, half, signal: bool) -> None:
        a, b = edge
        d = (P[b] - P[a]) / np.linalg.norm(P[b] - P[a])
        mid = 0.5 * (P[a] + P[b])
        nrm = _rot(d, False)
        k = -1
        if signal:
            stops, heads = [], []
            for sense, dd in ((0, d), (1, -d)):
                right = _rot(dd, True)
                for li in lanes_dir[(e, sense)]:
                    pts = self.lanes[li]["points"]
                    t = float(np.dot(mid - pts[0], dd))
                    stops.append((li, t - 1.5 - 2.0))
                    c = pts[0] + dd * (t - 1.5 - 2.0)
                    self.quad(_segment_quad(c + right * self.w / 2, c - right * self.w / 2, 0.4), MARK_RGB, MARK_ID, MARK_LAYER)
                heads.append(mid - dd * 3.5 + right * (half + 1.2))
            self.lights.append(Light(tuple(stops), np.array(heads), -1))
            k = len(self.lights) - 1
        self._crosswalk(mid + nrm * (half + 1.0), mid - nrm * (half + 1.0), lanes_dir, e, k)

    def blocks(self, xs, ys, road_half: float, seed: int, split: int, heights: tuple[float, float]) -> None:
        """Buildings filling the cells between consecutive grid lines ``xs`` x ``ys`` (inset from the roads)."""
        rng = np.random.default_rng(seed)  # map generation only: fixed per map, never per sample
        inset = road_half + SIDEWALK + 1.0
        for i in range(len(xs) - 1):
            for j in range(len(ys) - 1):
                x0, x1, y0, y1 = xs[i] + inset, xs[i + 1] - inset, ys[j] + inset, ys[j + 1] - inset
                if x1 - x0 < 4 or y1 - y0 < 4:
                    continue
                nx = split if x1 - x0 > 16 else 1
                for a in range(nx):
                    for c in range(2 if y1 - y0 > 16 and split > 1 else 1):
                        cw, ch = (x1 - x0) / nx, (y1 - y0) / (2 if y1 - y0 > 16 and split > 1 else 1)
                        cx, cy = x0 + (a + 0.5) * cw, y0 + (c + 0.5) * ch
                        self.buildings.append((cx, cy, cw / 2 - 0.6, ch / 2 - 0.6, float(rng.uniform(*heights)),
                                               float(rng.uniform(0, 1))))

    def build(self, extent: float, patterns=("S", "R", "SR", "RS", "SSR", "SRR", "RSS", "SRS"), max_routes: int = 8) -> TrafficMap:
        lanes = tuple(Lane(l["points"], l["width"], l["limit"], tuple(l["succ"]), l["left"], l["right"]) for l in self.lanes)
        big = extent * 2
        quads = [(_box_quad(0, 0, big, big), GRASS_RGB, GRASS_ID, GRASS_LAYER)] + self.quads
        return TrafficMap(self.name, lanes, tuple(self.lights), tuple(self.crosswalks), _routes(lanes, patterns, max_routes),
                          np.stack([q[0] for q in quads]), np.array([q[1] for q in quads]), np.array([q[2] for q in quads], np.int32),
                          np.array([q[3] for q in quads], np.int64), np.array(self.buildings, np.float64).reshape(-1, 6),
                          self.cycle, extent, tuple(self.conflicts))


def _routes(lanes: tuple[Lane, ...], patterns, max_routes: int) -> tuple[tuple[int, ...], ...]:
    """Cyclic routes: from every lane and turn pattern, follow successors (``S`` the straightest, ``R`` the rightmost
    at a choice) until a (lane, pattern step) repeats; keep cycles that visit each lane once; pick greedily those
    that add the most lanes not yet covered."""

    def choose(lane: int, c: str) -> int:
        succ = lanes[lane].successors
        if len(succ) == 1:
            return succ[0]
        p = lanes[lane].points
        d = (p[-1] - p[-2]) / max(float(np.linalg.norm(p[-1] - p[-2])), 1e-9)

        def turn(s: int) -> float:  # lateral offset of the successor's far end: > 0 left, < 0 right (m)
            q = lanes[s].points[-1] - p[-1]
            return float(d[0] * q[1] - d[1] * q[0])

        return min(succ, key=lambda s: (abs(turn(s)) if c == "S" else turn(s), s))

    found: dict[frozenset, tuple[int, ...]] = {}
    for start in range(len(lanes)):
        for pat in patterns:
            seen: dict[tuple[int, int], int] = {}
            seq: list[int] = []
            lane, k = start, 0
            while (lane, k) not in seen and len(seq) < 4 * len(lanes):
                seen[(lane, k)] = len(seq)
                seq.append(lane)
                if not lanes[lane].successors:
                    break
                nxt = choose(lane, pat[k % len(pat)])
                if len(lanes[lane].successors) > 1:
                    k = (k + 1) % len(pat)
                lane = nxt
            if (lane, k) not in seen:
                continue
            cyc = seq[seen[(lane, k)]:]
            if len(set(cyc)) != len(cyc):
                continue
            key = frozenset(cyc)
            if key not in found:
                i0 = cyc.index(min(cyc))
                found[key] = tuple(cyc[i0:] + cyc[:i0])
    cands = sorted(found.values(), key=lambda c: (-len(c), c))
    chosen: list[tuple[int, ...]] = []
    covered: set[int] = set()
    while cands and len(chosen) < max_routes:
        best = max(cands, key=lambda c: (len(set(c) - covered), -cands.index(c)))
        if not set(best) - covered and chosen:
            break
        chosen.append(best)
        covered |= set(best)
        cands.remove(best)
    return tuple(chosen)


# --------------------------------------------------------------------------- the five maps


def _grid(name: str, xs, ys, n_lanes: int, limit: float, signal_all: bool, cycle: float, seed: int, split: int,
          heights, midblock=None) -> _Builder:
    b = _Builder(name, 3.5 if n_lanes == 1 else 3.2, cycle)
    nodes = [(x, y) for y in ys for x in xs]
    idx = {(i, j): j * len(xs) + i for j in range(len(ys)) for i in range(len(xs))}
    edges = [(idx[(i, j)], idx[(i + 1, j)]) for j in range(len(ys)) for i in range(len(xs) - 1)]
    edges += [(idx[(i, j)], idx[(i, j + 1)]) for j in range(len(ys) - 1) for i in range(len(xs))]
    deg = {k: 0 for k in range(len(nodes))}
    for a, c in edges:
        deg[a] += 1
        deg[c] += 1
    signalised = {k for k, d in deg.items() if d == 4 or (signal_all and d == 3)}
    b.network(nodes, edges, n_lanes, limit, signalised, midblock=midblock)
    b.blocks(xs, ys, n_lanes * b.w, seed, split, heights)
    return b


def grid_town() -> TrafficMap:
    """A small grid town: 4 x 3 nodes 35 m apart, one lane per direction, 50 km/h; two signalised crossings."""
    return _grid("grid_town", [-52.5, -17.5, 17.5, 52.5], [-35.0, 0.0, 35.0], 1, 13.9, False, 24.0, 1, 2, (5, 12)).build(125.0)


def village() -> TrafficMap:
    """A two-lane village: a loop street with a cross street, 40 km/h, two signalised mid-block crosswalks
    (south and north street) and an unsignalised zebra on the cross street; small houses."""
    b = _Builder("village", 3.5, 20.0)
    nodes = [(-50.0, -35.0), (0.0, -35.0), (50.0, -35.0), (50.0, 35.0), (0.0, 35.0), (-50.0, 35.0)]
    edges = [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0), (1, 4)]
    b.network(nodes, edges, 1, 11.1, set(), midblock={0: True, 3: True, 6: False})
    b.blocks([-50.0, 0.0, 50.0], [-35.0, 35.0], 3.5, 2, 2, (4, 7))
    for (cx, cy) in ((-30, -55), (20, -55), (-20, 55), (30, 55), (-68, 0), (68, 0)):  # houses outside the loop
        b.buildings.append((float(cx), float(cy), 5.0, 4.0, 5.0, 0.08))
    return b.build(125.0)


def highway_merge() -> TrafficMap:
    """A highway loop: a one-way two-lane stadium (60 m straights, 24 m end radius, 80 km/h straights, 45 km/h
    curves) with a lay-by on the south straight whose exit merges back into the right lane past a ramp meter
    (``light[0]``); two unsignalised crosswalks across the lay-by."""
    b = _Builder("highway_merge", 3.6, 20.0)
    w, R, X = 3.6, 24.0, 30.0
    loops = []
    for k in range(2):  # k=0 right (outer) lane, k=1 left (inner)
        r = R + (1 - k) * w + w / 2
        south = b.lane([[-X, -r], [X, -r]], 22.0)
        th = np.linspace(-math.pi / 2, math.pi / 2, 13)
        east = b.lane(np.stack([X + r * np.cos(th), r * np.sin(th)], 1), 12.5)
        north = b.lane([[X, r], [-X, r]], 22.0)
        th2 = np.linspace(math.pi / 2, 3 * math.pi / 2, 13)
        west = b.lane(np.stack([-X + r * np.cos(th2), r * np.sin(th2)], 1), 12.5)
        for a, c in ((south, east), (east, north), (north, west), (west, south)):
            b.link(a, c)
        loops.append((south, east, north, west, r))
    (s0, e0, n0, w0, r0), (s1, e1, n1, w1, r1) = loops
    for a, c in ((s0, s1), (n0, n1)):
        b.lanes[a]["left"], b.lanes[c]["right"] = c, a
    # lay-by: split the outer south straight at x -30 / +30 into [before, main, after]; the lay-by leaves and rejoins
    pts = b.lanes[s0]["points"]
    y = pts[0][1]
    b.lanes[s0]["points"] = np.array([[-X, y], [-25.0, y]])
    main = b.lane([[-25.0, y], [25.0, y]], 22.0)
    after = b.lane([[25.0, y], [X, y]], 22.0)
    b.lanes[s0]["succ"] = [main]
    b.lanes[s0]["left"] = -1
    b.lanes[s1]["right"] = -1
    b.link(main, after)
    b.link(after, e0)
    yl = y - 8.0
    exit_ = b.lane(_bezier(np.array([-25.0, y]), np.array([1.0, 0.0]), np.array([-12.0, yl]), np.array([1.0, 0.0]), 8), 10.0)
    bay = b.lane([[-12.0, yl], [12.0, yl]], 10.0)
    entry = b.lane(_bezier(np.array([12.0, yl]), np.array([1.0, 0.0]), np.array([25.0, y]), np.array([1.0, 0.0]), 8), 14.0)
    b.link(s0, exit_)
    b.link(exit_, bay)
    b.link(bay, entry)
    b.link(entry, after)
    b.lights.append(Light(((bay, 24.0 - 1.0),), np.array([[12.0, yl - 3.0]]), -1))
    for xc in (0.0, -7.0):  # two zebras across the lay-by
        b.crosswalks.append(Crosswalk(np.array([xc, yl - 3.0]), np.array([xc, yl + 3.0]), 3.0, ((bay, 12.0 + xc - 1.5),), -1))
    # surfaces
    for lane in b.lanes:
        p = lane["points"]
        for i in range(len(p) - 1):
            b.quad(_segment_quad(p[i], p[i + 1], lane["width"] + 0.3), ROAD_RGB, ROAD_ID, ROAD_LAYER)
    for li in (s1, n1):  # dashed line between the two lanes on the straights
        p = b.lanes[li]["points"]
        d = (p[-1] - p[0]) / np.linalg.norm(p[-1] - p[0])
        off = _rot(d, True) * w / 2
        L = float(np.linalg.norm(p[-1] - p[0]))
        for t0 in np.arange(1.0, L - 1.0, 8.0):
            b.quad(_segment_quad(p[0] + off + d * t0, p[0] + off + d * min(t0 + 4.0, L), 0.25), MARK_RGB, MARK_ID, MARK_LAYER)
    for xc in (0.0, -7.0):
        for t0 in np.arange(-1.8, 1.8, 1.0):
            b.quad(_box_quad(xc, yl + t0 + 0.25, 1.5, 0.25), CROSSWALK_RGB, CROSSWALK_ID, MARK_LAYER)
    b.quad(_box_quad(0.0, yl - 3.0 - 1.2, 16.0, 1.2), SIDEWALK_RGB, SIDEWALK_ID, SIDEWALK_LAYER)
    b.quad(_segment_quad(np.array([12.0, yl + 1.9]), np.array([12.0, yl - 1.9]), 0.4), MARK_RGB, MARK_ID, MARK_LAYER)
    for (cx, cy, hx, hy, h) in ((0.0, 0.0, 22.0, 8.0, 4.0), (0.0, -50.0, 8.0, 3.0, 3.5)):
        b.buildings.append((cx, cy, hx, hy, h, 0.3))
    return b.build(125.0, patterns=("S", "R", "SR", "RS"), max_routes=4)


def downtown() -> TrafficMap:
    """A multi-lane downtown grid: 4 x 3 nodes 40 m apart, two lanes per direction, 50 km/h, two signalised
    crossings; tall blocks."""
    return _grid("downtown", [-60.0, -20.0, 20.0, 60.0], [-40.0, 0.0, 40.0], 2, 13.9, False, 24.0, 4, 2, (15, 35)).build(125.0)


def urban_centre() -> TrafficMap:
    """A dense urban centre: 4 x 4 nodes 32 m apart, one lane per direction, 30 km/h, four signalised crossings,
    buildings on every block."""
    return _grid("urban_centre", [-48.0, -16.0, 16.0, 48.0], [-48.0, -16.0, 16.0, 48.0], 1, 8.3, False, 20.0, 5, 2,
                 (8, 25)).build(120.0)


_CACHE: dict[int, TrafficMap] = {}
_MAKERS = (grid_town, village, highway_merge, downtown, urban_centre)


def get_map(code) -> TrafficMap:
    """The map with code 0..4 (``MAP_NAMES``); built once per process. Raises ValueError for another code."""
    c = int(code) if float(code) == int(code) else -1
    if not 0 <= c < len(_MAKERS):
        got = f"{code:g}" if isinstance(code, (int, float)) else repr(code)  # 9.0 (a YAML number) reads as 9
        raise ValueError(f"expected a map code 0..{len(_MAKERS) - 1} ({', '.join(f'{i} {n}' for i, n in enumerate(MAP_NAMES))}), got {got}")
    if c not in _CACHE:
        _CACHE[c] = _MAKERS[c]()
    return _CACHE[c]
