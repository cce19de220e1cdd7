"""The deterministic traffic step, vectorised over vehicles in float64 numpy (no random numbers).

Per simulation step of ``dt = 1 / (fps * substeps)`` s, at time t:

1. **Signals** (fixed time): light k is green while ``(t - offset_k) mod C < green_k``, then amber for
   ``AMBER`` s, else red (``C`` the map's cycle). A temporal edit ``light[k].state = v`` forces the shown state
   from its frame's time on (until its end frame); ``inputs`` record the controller's own phase.
2. **Pedestrians** stand at a curb until ``t >= start_time`` and (unsignalised crosswalk, or their crosswalk's
   vehicle light is red), then walk across at their ``speed`` and stand at the far curb. An edit
   ``pedestrian[j].walking = 1`` makes one step out at its frame whatever the light (towards the other curb);
   ``= 0`` stops one where it is.
3. **Leaders** along each vehicle's route (its cyclic lane sequence) within ``LOOKAHEAD`` m: the nearest vehicle
   ahead (vehicles on lanes that lead into the route within ``MERGE_DEPTH`` lanes are projected onto it by their
   distance to the merge, so two cars approaching a merge from two branches follow each other by that distance; a car
   that has just turned off onto another branch stays a leader until its rear is ``DIVERGE_CLEAR`` m past the diverge),
   a red stop line (an amber or red one only if the driver can still stop: ``d > v^2 / (2 b)`` with ``b`` 3 m/s^2
   at amber, ``STOP_BRAKE`` at red), and the near edge of a crosswalk with a pedestrian on it: the latter two as
   standing obstacles of zero length.
4. **Reaction time** (Treiber, Kesting and Helbing 2006, "Delays, inaccuracies and anticipation in microscopic
   traffic models", Physica A 360:71, sec. 3.1-3.2, the Human Driver Model's delay with its constant-velocity
   gap anticipation): each driver sees the gap ``s``, the leader's speed and its own past speed as they were
   ``tau`` s ago (linear interpolation in a ring buffer of past steps), estimates the present gap as
   ``s(t - tau) - tau (v(t - tau) - v_l(t - tau))``, and feeds it with its own current speed and the delayed
   leader speed to the IDM (:mod:`._idm`). So a change ahead reaches a driver's acceleration between ``tau`` and
   ``tau + dt`` s later, never sooner.
5. **Desired speed**: ``min(v0, lane limit, sqrt(limit_ahead^2 + 2 b d))`` for the next lanes' limits ``d`` m
   ahead (slowing for turns and curves at the comfortable deceleration ``b``).
6. **Lane changes** (MOBIL, :mod:`._mobil`) once per frame, onto a parallel neighbour lane where the map has one,
   at least ``LANE_CHANGE_COOLDOWN`` s after the last change; the car jumps sideways (no lateral dynamics).
7. **Integration** (ballistic, Treiber and Kanagaraj 2015, Physica A 419:183): ``x += v dt + a dt^2 / 2``,
   ``v += a dt``; a car that would reverse stops where ``v`` reaches 0.

Vehicles loop along their routes; absent ones (``present`` 0) are not simulated. Their states lie outside every
state's domain (:data:`._names.ABSENT_FLOAT`, :data:`._names.ABSENT_INDEX`): NaN for the float states (x, y,
heading, speed, accel; pedestrians' x, y), -1 for the indices and flags (``lane``, ``route``, pedestrians'
``walking``), so an absent agent never reads as a car or a person at some place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._idm import idm_acceleration
from ._maps import AMBER, TrafficMap
from ._mobil import mobil_wants
from ._names import ABSENT_FLOAT, ABSENT_INDEX

#: Vehicle size (m): length, width, height (a compact car).
CAR_LENGTH, CAR_WIDTH, CAR_HEIGHT = 4.5, 1.8, 1.5
#: How far (m) a driver looks for a leader; braking (m/s^2) that decides whether an amber / red line is obeyed.
LOOKAHEAD, AMBER_BRAKE, STOP_BRAKE = 80.0, 3.0, 7.0
#: Longest reaction time (s) the delay buffer holds; seconds between two lane changes of one car.
MAX_REACTION, LANE_CHANGE_COOLDOWN = 2.0, 3.0
#: How many lanes before a merge a car on another branch is already seen (projected by its distance to the merge).
MERGE_DEPTH = 3
#: A car on a branch that left the route is still a leader until its rear is this far (m) past the diverge.
DIVERGE_CLEAR = 4.0
#: "No leader" in the delay buffer (m).
_FAR = 1.0e4


@dataclass(frozen=True)
class Network:
    """A map's routes as arrays: ``route_lanes`` (R, M) int (-1 padded), ``route_start`` (R, M) m (lane start
    along the route), ``route_len`` (R,) m, ``off`` (R, L) m (lane start along each route, NaN off route),
    ``off_any`` (R, L) (also lanes merging into the route, projected), ``off_div`` (R, L) (lanes branching off the
    route: where they start along it), ``lane_len``/``lane_limit`` (L,),
    ``lane_left``/``lane_right`` (L,) int, ``lane_route`` (L,) int (first route holding the lane, -1),
    ``polylines``: per route (points (P, 2) m, arc (P,) m)."""

    route_lanes: np.ndarray
    route_start: np.ndarray
    route_n: np.ndarray
    route_len: np.ndarray
    off: np.ndarray
    off_any: np.ndarray
    off_div: np.ndarray
    lane_len: np.ndarray
    lane_limit: np.ndarray
    lane_left: np.ndarray
    lane_right: np.ndarray
    lane_route: np.ndarray
    polylines: tuple[tuple[np.ndarray, np.ndarray], ...]

    @classmethod
    def of(cls, m: TrafficMap) -> "Network":
        L, R = len(m.lanes), len(m.routes)
        lane_len = np.array([ln.length for ln in m.lanes])
        M = max(len(r) for r in m.routes)
        route_lanes = np.full((R, M), -1, np.int64)
        route_start = np.full((R, M), np.inf)
        off = np.full((R, L), np.nan)
        polys = []
        for r, lanes in enumerate(m.routes):
            starts = np.concatenate([[0.0], np.cumsum(lane_len[list(lanes)])[:-1]])
            route_lanes[r, :len(lanes)] = lanes
            route_start[r, :len(lanes)] = starts
            off[r, list(lanes)] = starts
            pts = np.concatenate([m.lanes[lanes[0]].points[:1]] + [m.lanes[k].points[1:] for k in lanes])
            arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
            polys.append((pts, arc))
        route_len = np.array([float(lane_len[list(r)].sum()) for r in m.routes])
        off_any = off.copy()
        for _ in range(MERGE_DEPTH):  # lanes that lead into the route within MERGE_DEPTH lanes: projected onto it
            prev = off_any.copy()
            for r in range(R):
                for k, ln in enumerate(m.lanes):
                    if np.isnan(prev[r, k]):
                        on = [s for s in ln.successors if not np.isnan(prev[r, s])]
                        if on:
                            off_any[r, k] = prev[r, on[0]] - lane_len[k]
        off_div = np.full((R, L), np.nan)
        for k, ln in enumerate(m.lanes):
            for nxt in ln.successors:
                for r in range(R):
                    if not np.isnan(off[r, k]) and np.isnan(off[r, nxt]):
                        off_div[r, nxt] = off[r, k] + lane_len[k]
        lane_route = np.full(L, -1, np.int64)
        for r, lanes in reversed(list(enumerate(m.routes))):
            lane_route[list(lanes)] = r
        return cls(route_lanes, route_start, np.array([len(r) for r in m.routes]), route_len, off, off_any, off_div, lane_len,
                   np.array([ln.limit for ln in m.lanes]), np.array([ln.left for ln in m.lanes]),
                   np.array([ln.right for ln in m.lanes]), lane_route, tuple(polys))

    def locate(self, r: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lane (n,) int and arc along it (n,) m of route positions ``s`` (n,) m on routes ``r`` (n,)."""
        idx = np.sum(self.route_start[r] <= s[:, None], axis=1) - 1
        return self.route_lanes[r, idx], s - self.route_start[r, idx]

    def pose(self, r: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x, y (m) and heading (rad, from +x) of route positions (n,)."""
        x, y, h = np.zeros(len(r)), np.zeros(len(r)), np.zeros(len(r))
        for route in np.unique(r):
            sel = r == route
            pts, arc = self.polylines[route]
            q = np.mod(s[sel], self.route_len[route])
            x[sel], y[sel] = np.interp(q, arc, pts[:, 0]), np.interp(q, arc, pts[:, 1])
            a, b = np.mod(q - 0.75, arc[-1]), np.mod(q + 0.75, arc[-1])
            h[sel] = np.arctan2(np.interp(b, arc, pts[:, 1]) - np.interp(a, arc, pts[:, 1]),
                                np.interp(b, arc, pts[:, 0]) - np.interp(a, arc, pts[:, 0]))
        return x, y, h


@dataclass(frozen=True)
class Setup:
    """One sample: vehicles (NV,) ``present`` bool, ``route`` int, ``start`` (0..1 of the route), driver traits
    ``v0`` m/s, ``headway`` s, ``tau`` s, ``a_max`` m/s^2, ``b`` m/s^2, ``politeness``; pedestrians (NP,)
    ``ped_present`` bool, ``ped_crossing`` int, ``ped_start`` s, ``ped_speed`` m/s; lights (NL,) ``offset`` s,
    ``green`` s."""

    present: np.ndarray
    route: np.ndarray
    start: np.ndarray
    v0: np.ndarray
    headway: np.ndarray
    tau: np.ndarray
    a_max: np.ndarray
    b: np.ndarray
    politeness: np.ndarray
    ped_present: np.ndarray
    ped_crossing: np.ndarray
    ped_start: np.ndarray
    ped_speed: np.ndarray
    offset: np.ndarray
    green: np.ndarray


@dataclass(frozen=True)
class Edit:
    """A temporal edit for one sample: ``kind`` ("light", "walk", "v0", "headway"), object ``index``, ``op``
    ("set", "add", "scale"), ``start`` frame, ``end`` frame (None: open) and ``value``."""

    kind: str
    index: int
    op: str
    start: int
    end: int | None
    value: float


def schedule(t: float, offset: np.ndarray, green: np.ndarray, cycle: float) -> np.ndarray:
    """Fixed-time phase (NL,) int of each light at time t (s): 2 green, 1 amber, 0 red."""
    tc = np.mod(t - offset, cycle)
    return np.where(tc < green, 2, np.where(tc < green + AMBER, 1, 0))


def _apply(op: str, base: np.ndarray, value: float) -> np.ndarray:
    return np.full_like(base, value) if op == "set" else base + value if op == "add" else base * value


def initial_gaps(net: Network, setup: Setup) -> np.ndarray:
    """(NV, NV) bumper gaps (m) at the start between present vehicles that see each other ahead (inf otherwise)."""
    r = setup.route.astype(np.int64)
    s = setup.start * net.route_len[r]
    lane, arc = net.locate(r, s)
    D = np.mod(net.off_any[r[:, None], lane[None, :]] + arc[None, :] - s[:, None], net.route_len[r][:, None])
    ok = np.isfinite(D) & setup.present[:, None] & setup.present[None, :] & ~np.eye(len(r), dtype=bool)
    ok &= D < LOOKAHEAD
    return np.where(ok, D - CAR_LENGTH, np.inf)


def simulate(net: Network, m: TrafficMap, setup: Setup, n_frames: int, fps: float, substeps: int,
             edits: tuple[Edit, ...] = ()) -> dict[str, np.ndarray]:
    """Run one sample. Returns per frame (T = ``n_frames``): ``x``, ``y`` (T, NV) m (the car's centre), ``heading``
    rad, ``speed`` m/s, ``accel`` m/s^2 (of the last step into the frame), ``lane`` (int); ``ped_x``,
    ``ped_y`` (T, NP) m, ``walking`` (0/1); absent agents' columns hold NaN (floats) and -1 (``lane``, ``route``,
    ``walking``); ``light`` (T, NL) shown state and ``phase`` (T, NL) the controller's
    (0 red, 1 amber, 2 green); ``route`` (T, NV); ``min_gap`` () m, the smallest bumper gap any two present cars
    had (negative: they overlapped). Frame t is the state at t / fps s."""
    NV, NP, NL = len(setup.present), len(setup.ped_present), len(setup.offset)
    dt = 1.0 / (fps * substeps)
    pres = setup.present.astype(bool)
    r = setup.route.astype(np.int64).copy()
    s = setup.start * net.route_len[r]
    lane0, _ = net.locate(r, s)
    v = np.where(pres, 0.5 * np.minimum(setup.v0, net.lane_limit[lane0]), 0.0)
    a_eff = np.zeros(NV)
    since_change = np.full(NV, LANE_CHANGE_COOLDOWN)
    # pedestrians: position u (m) along the crosswalk from its end a, direction +1 / -1
    cws = m.crosswalks
    cw_len = np.array([c.length for c in cws]) if cws else np.zeros(0)
    pc = setup.ped_crossing.astype(np.int64)
    ped_pres = setup.ped_present.astype(bool)
    side = np.arange(NP) % 2
    u = np.where(side == 0, 0.0, cw_len[pc] if NP else 0.0)
    pdir = np.where(side == 0, 1.0, -1.0)
    walking = np.zeros(NP, bool)
    started = np.zeros(NP, bool)
    # edits by kind
    light_edits = [e for e in edits if e.kind == "light"]
    walk_edits = {}
    for e in edits:
        if e.kind == "walk":
            walk_edits.setdefault(e.start * substeps, []).append(e)
    trait_edits = [e for e in edits if e.kind in ("v0", "headway")]
    # delay buffer: gap, leader speed, own speed
    H = int(math.ceil(MAX_REACTION / dt)) + 2
    hist = np.zeros((H, NV, 3))
    cur = 0
    kf = setup.tau / dt
    lo = np.floor(kf).astype(np.int64)
    fr = kf - lo
    idx = np.arange(NV)
    out = {k: np.zeros((n_frames, NV)) for k in ("x", "y", "heading", "speed", "accel", "lane", "route")}
    out.update({k: np.zeros((n_frames, NP)) for k in ("ped_x", "ped_y", "walking")})
    out.update({k: np.zeros((n_frames, NL)) for k in ("light", "phase")})
    min_gap = np.inf
    stop_lanes = [np.array([ln for ln, _ in L.stops], np.int64) for L in m.lights]
    stop_arcs = [np.array([a for _, a in L.stops]) for L in m.lights]
    cw_lanes = [np.array([ln for ln, _ in c.lanes], np.int64) for c in cws]
    cw_arcs = [np.array([a for _, a in c.lanes]) for c in cws]
    total = (n_frames - 1) * substeps

    def shown(k: int) -> tuple[np.ndarray, np.ndarray]:
        t = k * dt
        phase = schedule(t, setup.offset, setup.green, m.cycle)
        state = phase.copy()
        frame = k / substeps
        for e in light_edits:
            if frame >= e.start and (e.end is None or frame < e.end):
                state[e.index] = int(round(e.value))
        return phase, state

    def traits(k: int) -> tuple[np.ndarray, np.ndarray]:
        v0, T = setup.v0.copy(), setup.headway.copy()
        frame = k / substeps
        for e in trait_edits:
            if frame >= e.start and (e.end is None or frame < e.end):
                arr = v0 if e.kind == "v0" else T
                arr[e.index] = _apply(e.op, arr[e.index:e.index + 1], e.value)[0]
        return v0, T

    def perceive(r: np.ndarray, s: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Current gap (NV,) m, leader speed (NV,) and leader index (-1 none) along each route."""
        lane, arc = net.locate(r, s)
        Lr = net.route_len[r]
        D = np.mod(net.off_any[r[:, None], lane[None, :]] + arc[None, :] - s[:, None], Lr[:, None])
        ok = np.isfinite(D) & pres[:, None] & pres[None, :] & ~np.eye(NV, dtype=bool) & (D > 0) & (D <= LOOKAHEAD)
        gaps = np.where(ok, D - CAR_LENGTH, np.inf)
        # and by the rear: a car whose front has turned off onto another branch still blocks the route with its rear, on a
        # route lane, or on the branch until the rear is DIVERGE_CLEAR m past the diverge
        lr, ar = net.locate(r, np.mod(s - CAR_LENGTH, Lr))
        Dr = np.mod(net.off[r[:, None], lr[None, :]] + ar[None, :] - s[:, None], Lr[:, None])
        Dd = np.mod(net.off_div[r[:, None], lr[None, :]] + ar[None, :] - s[:, None], Lr[:, None])
        Dd = np.where(ar[None, :] < DIVERGE_CLEAR, Dd, np.nan)
        Db = np.fmin(Dr, Dd)
        okb = np.isfinite(Db) & pres[:, None] & pres[None, :] & ~np.eye(NV, dtype=bool) & (Db > 0) & (Db <= LOOKAHEAD)
        gaps = np.where(okb, np.fmin(gaps, Db), gaps)
        lead = np.argmin(gaps, axis=1)
        gap = gaps[idx, lead]
        vl = np.where(np.isfinite(gap), v[lead], v)
        lead = np.where(np.isfinite(gap), lead, -1)
        obs_l, obs_a, brake = [], [], []
        for k in range(NL):
            if state[k] in (0, 1):
                obs_l.append(stop_lanes[k])
                obs_a.append(stop_arcs[k])
                brake.append(np.full(len(stop_lanes[k]), AMBER_BRAKE if state[k] == 1 else STOP_BRAKE))
        for c in range(len(cws)):
            on = ped_pres & (pc == c) & (walking | ((u > 1.0) & (u < cw_len[c] - 1.0)))
            if on.any():
                obs_l.append(cw_lanes[c])
                obs_a.append(cw_arcs[c])
                brake.append(np.full(len(cw_lanes[c]), np.inf))
        if obs_l:
            ol, oa, ob = np.concatenate(obs_l), np.concatenate(obs_a), np.concatenate(brake)
            Do = np.mod(net.off[r[:, None], ol[None, :]] + oa[None, :] - s[:, None], Lr[:, None])
            okd = np.isfinite(Do) & (Do > 0) & (Do <= LOOKAHEAD) & (Do > v[:, None] ** 2 / (2.0 * ob[None, :]))
            okd &= pres[:, None]
            go = np.min(np.where(okd, Do, np.inf), axis=1)
            closer = go < gap
            gap = np.where(closer, go, gap)
            vl = np.where(closer, 0.0, vl)
            lead = np.where(closer, -1, lead)
        return gap, vl, lead

    def accel(gap_now, vl_now, v0, T) -> np.ndarray:
        nonlocal cur
        cur = (cur + 1) % H
        hist[cur, :, 0] = np.where(np.isfinite(gap_now), gap_now, _FAR)
        hist[cur, :, 1] = vl_now
        hist[cur, :, 2] = v
        h0 = hist[(cur - lo) % H, idx]
        h1 = hist[(cur - lo - 1) % H, idx]
        p = (1.0 - fr)[:, None] * h0 + fr[:, None] * h1
        g, vl, vown = p[:, 0], p[:, 1], p[:, 2]
        s_est = np.where(g < LOOKAHEAD, g - setup.tau * (vown - vl), np.inf)
        return idm_acceleration(v, desired(r, s, v0), s_est, v - vl, setup.a_max, setup.b, T)

    def desired(r: np.ndarray, s: np.ndarray, v0: np.ndarray) -> np.ndarray:
        lane, _ = net.locate(r, s)
        return np.minimum(np.minimum(v0, net.lane_limit[lane]), _limit_ahead(net, r, s, setup.b))

    def now(r: np.ndarray, s: np.ndarray, state: np.ndarray, v0: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Undelayed IDM accelerations (NV,) and leaders (NV,) of a (hypothetical) configuration: MOBIL's view."""
        gap, vl, lead = perceive(r, s, state)
        return idm_acceleration(v, desired(r, s, v0), gap, v - vl, setup.a_max, setup.b, T), lead

    def lane_changes(r: np.ndarray, s: np.ndarray, state: np.ndarray, v0: np.ndarray, T: np.ndarray):
        """MOBIL (point 6): each car in index order may move to a neighbour lane; later cars see earlier moves."""
        r, s = r.copy(), s.copy()
        for i in range(NV):
            if not pres[i] or since_change[i] < LANE_CHANGE_COOLDOWN:
                continue
            lane, arc = net.locate(r[i:i + 1], s[i:i + 1])
            lane, arc = int(lane[0]), float(arc[0])
            if arc < 5.0 or arc > net.lane_len[lane] - 15.0:
                continue
            base, lead = now(r, s, state, v0, T)
            for nb in (net.lane_left[lane], net.lane_right[lane]):
                if nb < 0 or net.lane_route[nb] < 0:
                    continue
                r2, s2 = r.copy(), s.copy()
                r2[i] = net.lane_route[nb]
                s2[i] = net.off[r2[i], nb] + arc
                new, lead2 = now(r2, s2, state, v0, T)
                nf = pres & (lead2 == i) & (lead != i)
                of = pres & (lead == i) & (lead2 != i)
                nf[i] = of[i] = False
                n = int(np.flatnonzero(nf)[np.argmin(new[nf])]) if nf.any() else i  # the new follower (none: i, no term)
                o = int(np.flatnonzero(of)[0]) if of.any() else i
                z = np.zeros(1)
                want = mobil_wants(base[i:i + 1], new[i:i + 1], base[n:n + 1] if n != i else z, new[n:n + 1] if n != i else z,
                                   base[o:o + 1] if o != i else z, new[o:o + 1] if o != i else z, setup.politeness[i:i + 1])
                if want[0]:
                    r, s = r2, s2
                    since_change[i] = 0.0
                    break
        return r, s

    # prefill the delay buffer with the initial perception (drivers have watched the start for a while)
    changes = bool(np.any(net.lane_left >= 0) or np.any(net.lane_right >= 0))
    phase, state = shown(0)
    g0, vl0, _ = perceive(r, s, state)
    hist[:, :, 0] = np.where(np.isfinite(g0), g0, _FAR)
    hist[:, :, 1] = vl0
    hist[:, :, 2] = v
    for k in range(total + 1):
        phase, state = shown(k)
        for e in walk_edits.get(k, ()):
            j = e.index
            if ped_pres[j]:
                if e.value >= 0.5 and not walking[j]:
                    walking[j], started[j] = True, True
                    pdir[j] = 1.0 if u[j] < 0.5 * cw_len[pc[j]] else -1.0
                elif e.value < 0.5:
                    walking[j] = False
        if k % substeps == 0:
            f = k // substeps
            x, y, h = net.pose(r, s - CAR_LENGTH / 2)
            lane, _ = net.locate(r, np.mod(s - CAR_LENGTH / 2, net.route_len[r]))
            nan = ABSENT_FLOAT
            out["x"][f], out["y"][f], out["heading"][f] = np.where(pres, x, nan), np.where(pres, y, nan), np.where(pres, h, nan)
            out["speed"][f], out["accel"][f] = np.where(pres, v, nan), np.where(pres, a_eff, nan)
            out["lane"][f], out["route"][f] = np.where(pres, lane, ABSENT_INDEX), np.where(pres, r, ABSENT_INDEX)
            if NP:
                a_pts = np.array([c.a for c in cws])[pc]
                b_pts = np.array([c.b for c in cws])[pc]
                d = (b_pts - a_pts) / cw_len[pc][:, None]
                pos = a_pts + d * u[:, None]
                out["ped_x"][f], out["ped_y"][f] = np.where(ped_pres, pos[:, 0], nan), np.where(ped_pres, pos[:, 1], nan)
                out["walking"][f] = np.where(ped_pres, walking, ABSENT_INDEX)
            out["light"][f], out["phase"][f] = state, phase
            if changes and f < n_frames - 1:
                r, s = lane_changes(r, s, state, *traits(k))
        if k == total:
            break
        # pedestrians
        t = k * dt
        if NP:
            red = np.array([(cws[c].light < 0) or state[cws[c].light] == 0 for c in range(len(cws))], bool)
            go = ped_pres & ~walking & ~started & (t >= setup.ped_start) & red[pc]
            walking |= go
            started |= go
            u = u + np.where(walking, pdir * setup.ped_speed * dt, 0.0)
            end_b = walking & (pdir > 0) & (u >= cw_len[pc])
            end_a = walking & (pdir < 0) & (u <= 0.0)
            u = np.where(end_b, cw_len[pc], np.where(end_a, 0.0, u))
            pdir = np.where(end_b | end_a, -pdir, pdir)
            walking &= ~(end_b | end_a)
        v0, T = traits(k)
        gap, vl, _ = perceive(r, s, state)
        if pres.any():
            min_gap = min(min_gap, float(np.min(np.where(pres, gap, np.inf))))
        a = accel(gap, vl, v0, T)
        v_new = v + a * dt
        stop = v_new < 0.0
        ds = np.where(stop, -v * v / (2.0 * np.where(stop, a, -1.0)), v * dt + 0.5 * a * dt * dt)
        v_new = np.where(stop, 0.0, v_new)
        a_eff = np.where(pres, (v_new - v) / dt, 0.0)
        v = np.where(pres, v_new, 0.0)
        s = np.where(pres, np.mod(s + ds, net.route_len[r]), s)
        since_change += dt
    out["min_gap"] = np.array(min_gap)
    return out


def _limit_ahead(net: Network, r: np.ndarray, s: np.ndarray, b: np.ndarray, lanes_ahead: int = 3) -> np.ndarray:
    """(n,) m/s: the most speed from which each car can slow to every next lane's limit at deceleration ``b``."""
    n_r = net.route_n[r]
    idx = np.sum(net.route_start[r] <= s[:, None], axis=1) - 1
    out = np.full(len(r), np.inf)
    for j in range(1, lanes_ahead + 1):
        k = (idx + j) % n_r
        lane = net.route_lanes[r, k]
        d = np.mod(net.route_start[r, k] - s, net.route_len[r])
        out = np.minimum(out, np.sqrt(net.lane_limit[lane] ** 2 + 2.0 * b * d))
    return out
