"""``traffic/embedded``: road traffic on one of five procedural maps, simulated in numpy (:mod:`._sim`: IDM car
following with a reaction-time delay, MOBIL lane changes, fixed-time signals, pedestrians at crosswalks) and
filmed by a numpy top-down raster (:mod:`._raster`) and, for perspective cameras (the ego dashcam), PyBullet's
TinyRenderer (:mod:`._dashcam`).

Spec parameters: ``map`` (0 grid_town, 1 village, 2 highway_merge, 3 downtown, 4 urban_centre; :mod:`._maps`).
It is a parameter, not a latent: it fixes the number of lights, routes and crosswalks, and the scene is built
once per world. Objects: ``vehicle`` (NV, at most 32; vehicle[0] is the ego car), ``pedestrian`` (NP, at most 16)
and ``light`` (exactly the map's signal groups: grid_town 4, village 2, highway_merge 1, downtown 4,
urban_centre 8).

Latents (the world reads; units): per vehicle ``present`` (0/1: an absent car is not simulated, not drawn and
stores NaN and -1, below), ``desired_speed`` (m/s, IDM v0), ``time_headway`` (s, IDM T), ``reaction_time`` (s, the delay of
:mod:`._sim`), ``aggressiveness`` (0..1: IDM a_max = 1 + 1.5 a m/s^2, comfortable b = 1.5 + a m/s^2, MOBIL
politeness 0.5 (1 - a)), ``route`` (index into the map's routes), ``start`` (0..1 of the route's length: where its
front bumper starts), ``hue`` (0..1: where in vehicle[i]'s own hue band its paint lies, :func:`vehicle_rgb`); per pedestrian ``present``, ``crossing`` (crosswalk index), ``start_time``
(s), ``speed`` (m/s); per light ``offset`` (s) and ``green`` (s) of its fixed-time plan on the map's cycle.
Optional (the dashcam's image only; the top-down raster never shows weather): ``weather.fog`` (visibility, m;
default 10 km), ``weather.rain`` (0..1; default 0), ``weather.sun`` (daylight 0..1; default 1). Weather acts on
behaviour only through the spec's mechanisms (e.g. ``vehicle[i].desired_speed`` depending on ``weather.rain``).

States per frame (frame t = the simulation at t / fps s; the frame films exactly that state): ``vehicle[i].x``,
``.y`` (m, the car's centre, map frame), ``.heading`` (rad from +x), ``.speed`` (m/s), ``.accel`` (m/s^2, of the
last step into the frame), ``.lane`` (the lane's global id in the map's road graph, ``TrafficMap.lanes``: one id per
directed lane piece, each lane of a road between junctions and each connector through a junction; not a lane 0/1
of the road); ``pedestrian[j].x``, ``.y`` (m), ``.walking``
(0/1); ``light[k].state`` (0 red, 1 amber, 2 green: as shown). An absent car or pedestrian stores values outside
every state's domain in every frame (:data:`._names.ABSENT_FLOAT`, :data:`._names.ABSENT_INDEX`): NaN in its x, y,
heading, speed, accel, -1 in ``lane`` and ``walking``. Inputs per frame: ``light[k].phase``, the fixed-time
controller's own decision (equal to the state unless an edit forces the light).

Temporal edits (frame f acts from time f / fps on; nothing before frame f changes): ``light[k].state = 0|1|2``
(shown state forced until the edit's end), ``pedestrian[j].walking = 1`` (steps out at f towards the other curb,
whatever the light; ``= 0`` stops), ``vehicle[i].desired_speed`` and ``vehicle[i].time_headway`` (set/add/scale
while active).

Segmentation ids: 0 background (sky), 1 grass, 2 road, 3 lane marks and stop lines, 4 crosswalk, 5 sidewalk,
6 building, then ``light[k]`` (head and pole), ``pedestrian[j]``, ``vehicle[i]``. Cameras: ``topdown`` (the
raster; engine ``raster`` or ``tiny``), and with engine ``tiny`` ``mounted`` on ``vehicle[i]`` (body frame x forward,
y left, z up, on the top of the roof above the car's centre, 1.65 m above the ground; vehicle[0]'s is the ego dashcam)
and ``fixed`` (a pole camera in the map frame, e.g. over a junction: a traffic surveillance view).

Drawn sizes: a car is a 4.5 x 1.8 x 1.35 m body with a darker 2.2 x 1.6 m cabin set 0.3 m back (its heading shows
as the body's longer free front), painted in a hue band of its own index (:func:`vehicle_rgb`: the pixels show which
car is vehicle[i]); a pedestrian a 1.0 m radius disc (top-down: larger than a person, so that a 64 px
raster of ~120 m shows it as about one pixel) or a 0.5 x 0.4 x 1.75 m box, in a colour of its own index
(:func:`pedestrian_rgb`: the pixels show which one is pedestrian[j]); a signal head a 2.4 m lit cube on a 4.4 m pole
beside the stop line (larger than a real head, so that a 64 px top-down raster of ~120 m shows its state).
"""

from __future__ import annotations

import colorsys
import math
import re
from typing import ClassVar

import numpy as np

from ..base import Output, Rendered, Simulation, World, WorldBatch, WorldCheck, WorldInfo, read_latents
from ..cameras import CameraRig
from ..outputs import allocate, camera_outputs, declared_states, input_output, state_output
from . import _maps, _raster, _sim
from ._names import DISCRETE, EDIT_RANGES, EDIT_TARGETS, INPUTS, STATE_LEVELS, STATE_UNITS, STATES, VEHICLE_STATES, WEATHER

VEHICLE_LATENTS = ("present", "desired_speed", "time_headway", "reaction_time", "aggressiveness", "route", "start", "hue")
PED_LATENTS = ("present", "crossing", "start_time", "speed")
LIGHT_LATENTS = ("offset", "green")
DEFAULTS = {"weather.fog": 10000.0, "weather.rain": 0.0, "weather.sun": 1.0}
RANGES: dict[str, tuple[float, float]] = {
    "vehicle[i].present": (0.0, 1.0), "vehicle[i].desired_speed": (1.0, 35.0), "vehicle[i].time_headway": (0.5, 3.0),
    "vehicle[i].reaction_time": (0.0, _sim.MAX_REACTION), "vehicle[i].aggressiveness": (0.0, 1.0),
    "vehicle[i].route": (0.0, 7.0), "vehicle[i].start": (0.0, 1.0), "vehicle[i].hue": (0.0, 1.0),
    "pedestrian[i].present": (0.0, 1.0), "pedestrian[i].crossing": (0.0, 15.0), "pedestrian[i].start_time": (0.0, 600.0),
    "pedestrian[i].speed": (0.5, 3.0), "light[i].offset": (0.0, 60.0), "light[i].green": (2.0, 50.0),
    "weather.fog": (10.0, 10000.0), "weather.rain": (0.0, 1.0), "weather.sun": (0.0, 1.0),
}
MAX_VEHICLES, MAX_PEDESTRIANS = 32, 16
LIGHT_RGB = {0: (0.95, 0.08, 0.06), 1: (1.0, 0.72, 0.0), 2: (0.1, 0.85, 0.2)}
POLE_RGB = (0.35, 0.35, 0.37)
#: Two cars whose centres come closer than this (m) collide (a rear-end overlap; adjacent lanes are >= 3.2 m apart).
COLLISION_DISTANCE = 3.0
#: Cars must start at least this far apart (m, centre to centre; :meth:`TrafficWorld.feasible`).
START_DISTANCE = 6.0
_OBJ = re.compile(r"^(vehicle|pedestrian|light)\[(\d+)\]\.([a-z_]+)$")
#: Car body and cabin half extents (m) and centre heights (m); cabin offset along the heading (m).
BODY, BODY_Z = (2.25, 0.9, 0.6), 0.75
CABIN, CABIN_Z, CABIN_BACK = (1.1, 0.8, 0.15), 1.5, -0.3
HEAD_HALF, HEAD_Z, POLE_HALF = 1.2, 5.6, 0.15
PED_RADIUS, PED_TOP = 1.0, 1.75
#: Top-down colour samples lie at most this far apart (m; colour is their mean per pixel): a pedestrian (2 m across)
#: always covers several, so it tints its pixel even at ~2 m per pixel.
RASTER_SPACING = 0.6


def _count(n: int, noun: str) -> str:
    """``"1 signal group"``, ``"4 signal groups"``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    return colorsys.hsv_to_rgb(float(h) % 1.0, s, v)


def pedestrian_rgb(j: int, n: int) -> tuple[float, float, float]:
    """sRGB of pedestrian[j] of ``n``: saturated hues evenly spread over cyan to pink, 0.45 + 0.5 (j + 0.5) / n, away from
    the signal heads' red, amber and green (a fixed colour per index, not a latent: per-pedestrian states are only
    readable from pixels when the pedestrians look different)."""
    return _rgb(0.45 + 0.5 * (j + 0.5) / max(n, 1), 1.0, 1.0)


#: Each car index owns a hue band of width ``CAR_BAND / n`` in the middle of its slot ``[i / n, (i + 1) / n)`` of the
#: colour circle (gaps of the same width between neighbours), so vehicle[i] is identifiable in the pixels.
CAR_BAND = 0.5


def vehicle_rgb(i: int, n: int, hue: float) -> tuple[float, float, float]:
    """sRGB of vehicle[i]'s body (of ``n`` cars) for its ``hue`` latent in [0, 1]: hue ``(i + (1 - CAR_BAND) / 2 +
    CAR_BAND * hue) / n``, saturation 0.8, value 0.9. The index fixes the band (as :func:`pedestrian_rgb` fixes a
    pedestrian's colour: per-object states are only readable from pixels when the objects look different); the
    latent moves the hue within it. Its cabin is a dark shade of the body (0.35 body + 0.05)."""
    return _rgb((i + (1.0 - CAR_BAND) / 2 + CAR_BAND * float(hue)) / max(n, 1), 0.8, 0.9)


def state_names(nv: int, np_: int, nl: int) -> tuple[str, ...]:
    """Every simulated state column, object-major: vehicles, pedestrians, lights."""
    return (*(f"vehicle[{i}].{f}" for i in range(nv) for f in VEHICLE_STATES),
            *(f"pedestrian[{j}].{f}" for j in range(np_) for f in ("x", "y", "walking")),
            *(f"light[{k}].state" for k in range(nl)))


def segmentation_ids(nv: int, np_: int, nl: int) -> dict[int, str]:
    """Instance id -> what it marks."""
    ids = {_maps.BACKGROUND_ID: "background", _maps.GRASS_ID: "grass", _maps.ROAD_ID: "road", _maps.MARK_ID: "lane_mark",
           _maps.CROSSWALK_ID: "crosswalk", _maps.SIDEWALK_ID: "sidewalk", _maps.BUILDING_ID: "building"}
    ids.update({_maps.FIRST_LIGHT_ID + k: f"light[{k}]" for k in range(nl)})
    ids.update({_maps.FIRST_LIGHT_ID + nl + j: f"pedestrian[{j}]" for j in range(np_)})
    ids.update({_maps.FIRST_LIGHT_ID + nl + np_ + i: f"vehicle[{i}]" for i in range(nv)})
    return ids


def _topdown_outside(spec, m: _maps.TrafficMap) -> list[str]:
    """One line per top-down view whose ground rectangle misses every road of map ``m`` (it would film grass)."""
    x0, x1, y0, y1 = m.road_bounds
    out = []
    for k, cam in enumerate(spec.render.cameras()):
        if cam.kind != "topdown":
            continue
        w, h = spec.render.camera_size(cam)
        hx, hy = cam.extent / 2, cam.extent * h / w / 2
        cx, cy = cam.center
        if cx + hx < x0 or cx - hx > x1 or cy + hy < y0 or cy - hy > y1:
            out.append(f"render.views[{k}].center: top-down view {cam.name!r} covers x {cx - hx:g}..{cx + hx:g} m, "
                       f"y {cy - hy:g}..{cy + hy:g} m, which misses map {m.name}'s roads (x {x0:.0f}..{x1:.0f} m, "
                       f"y {y0:.0f}..{y1:.0f} m)")
    return out


def _collisions(world: "TrafficWorld", batch: WorldBatch, sim: Simulation) -> list[str]:
    d = sim.extras["min_distance"]
    return [f"sample {int(batch.index[i])}: two cars' centres came {d[i]:.2f} m close (a collision; limit {COLLISION_DISTANCE} m)"
            for i in np.flatnonzero(d < COLLISION_DISTANCE)]


_INFO = WorldInfo(
    name="traffic/embedded",
    kind="video",
    engine="numpy",
    engines=("raster", "tiny"),
    description="Road traffic on five procedural maps (grid town, village, highway loop with merge, downtown, urban "
                "centre): IDM car following with reaction times, MOBIL lane changes, fixed-time signals, pedestrians; "
                "a numpy top-down raster and a TinyRenderer ego dashcam with fog, rain and daylight.",
    latents=tuple(f"vehicle[i].{f}" for f in VEHICLE_LATENTS) + tuple(f"pedestrian[i].{f}" for f in PED_LATENTS)
    + tuple(f"light[i].{f}" for f in LIGHT_LATENTS),
    optional_latents=WEATHER,
    ranges=RANGES,
    discrete=(*DISCRETE, "vehicle[i].route"),
    states=STATES,
    state_units=STATE_UNITS,
    inputs=INPUTS,
    edit_targets=EDIT_TARGETS,
    edit_ranges=EDIT_RANGES,
    annotations=("depth", "segmentation"),
    camera_kinds=("topdown", "fixed", "mounted"),
    mounts=("vehicle[i]",),
    max_objects={"vehicle": MAX_VEHICLES, "pedestrian": MAX_PEDESTRIANS, "light": 8},
    engine_requires=(("tiny", ("pybullet",)),),
)


class TrafficWorld(World):
    """``traffic/embedded`` (see the module docstring)."""

    info: ClassVar[WorldInfo] = _INFO
    checks = (WorldCheck("collisions", f"no two cars' centres come closer than {COLLISION_DISTANCE} m", _collisions),)
    TARGET = (0.0, 0.0, 0.0)
    BASE_DISTANCE = 120.0
    SCENE_RADIUS = 100.0

    @classmethod
    def rig(cls, spec) -> CameraRig:
        return CameraRig.from_settings(spec.render, cls.TARGET, cls.BASE_DISTANCE, cls.SCENE_RADIUS)

    @classmethod
    def _map(cls, spec) -> _maps.TrafficMap:
        if "map" not in spec.parameters:
            raise ValueError("parameters.map: traffic/embedded needs it (" +
                             ", ".join(f"{i} {n}" for i, n in enumerate(_maps.MAP_NAMES)) + ")")
        try:
            return _maps.get_map(spec.parameters["map"])
        except ValueError as e:
            raise ValueError(f"parameters.map: {e}") from None

    @classmethod
    def check_objects(cls, spec) -> list[str]:
        """The map and the object counts it allows, one line each (before any per-object latent is looked for:
        a light count that does not match the map would otherwise show as missing ``light[k]`` latents)."""
        try:
            m = cls._map(spec)
        except ValueError as e:
            return [str(e)]
        out = []
        nl = spec.object_count("light") or 0
        if nl != len(m.lights):
            out.append(f"objects.light: map {m.name} has {_count(len(m.lights), 'signal group')} "
                       f"({'light[0]' if len(m.lights) == 1 else f'light[0..{len(m.lights) - 1}]'}), the spec asks for {nl}; "
                       f"set `light: {len(m.lights)}`")
        nv = spec.object_count("vehicle") or 0
        if not 1 <= nv <= MAX_VEHICLES:
            out.append(f"objects.vehicle: world traffic/embedded simulates 1..{MAX_VEHICLES} vehicles (vehicle[0] is the "
                       f"ego car, which the dashcam rides), the spec asks for {nv}")
        return out

    @classmethod
    def check(cls, spec) -> list[str]:
        out = cls.check_objects(spec)
        if out:
            return out
        m = cls._map(spec)
        for dname, dom in spec.domains.items():
            if "map" in dom.parameters:
                out.append(f"domains.{dname}.parameters.map: the map fixes the scene and the object counts; make one dataset per map")
        out += _topdown_outside(spec, m)
        perspective = [c.name for c in spec.render.cameras() if c.kind != "topdown"]
        if perspective and spec.render.engine != "tiny":
            out.append(f"render.engine: the perspective cameras {perspective} need engine 'tiny' (PyBullet TinyRenderer); "
                       f"got {spec.render.engine!r}")
        graph = spec.graph
        for template, n in (("vehicle[i].route", len(m.routes)), ("pedestrian[i].crossing", len(m.crosswalks))):
            for name in spec.expand_names(template):
                if name in graph.names:
                    lo, hi = graph.node(name).variable.bounds()
                    if lo < 0 or hi > n - 1:
                        out.append(f"variables.{graph.node(name).template}: map {m.name} has "
                                   f"{_count(n, 'route' if 'route' in template else 'crosswalk')}; keep the range inside [0, {n - 1}]")
                        break
        edits = list(spec.temporal_edits) + ([spec.counterfactuals.edit] if spec.counterfactuals and spec.counterfactuals.edit else [])
        for i, e in enumerate(edits):
            path = f"temporal_edits[{i}]" if i < len(spec.temporal_edits) else "counterfactuals.edit"
            if e.target.endswith(".state") or e.target.endswith(".walking"):
                allowed = (0.0, 1.0, 2.0) if e.target.endswith(".state") else (0.0, 1.0)
                if e.op != "set" or not isinstance(e.value, float) or e.value not in allowed:
                    out.append(f"{path}: {e.target} can only be set to one of {', '.join(f'{a:g}' for a in allowed)} "
                               f"(`do: \"{e.target} = {allowed[0]:g}\"`)")
        return list(dict.fromkeys(out))

    @classmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        nv, np_, nl = (spec.object_count(p) or 0 for p in ("vehicle", "pedestrian", "light"))
        out = camera_outputs(spec, cls.rig(spec), rgb="frames", segmentation_ids=segmentation_ids(nv, np_, nl))
        names = declared_states(spec, cls.info.states)
        if names:
            out.append(state_output(spec, names, {n: STATE_UNITS[re.sub(r"\[\d+\]", "[i]", n)] for n in names}, STATE_LEVELS))
        phases = tuple(f"light[{k}].phase" for k in range(nl))
        out.append(input_output(spec, phases, dict.fromkeys(phases, "1")))
        return tuple(out)

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        problems = type(self).check(spec)
        if problems:
            raise ValueError(problems[0])
        if spec.video is None:
            raise ValueError("traffic/embedded renders videos; the spec needs `video: {fps: 10, frames: 100}`")
        self.map = type(self)._map(spec)
        self.net = _sim.Network.of(self.map)
        self.nv, self.np, self.nl = (spec.object_count(p) or 0 for p in ("vehicle", "pedestrian", "light"))
        self.fps, self.substeps, self.n_frames = float(spec.video.fps), int(spec.video.substeps), int(spec.video.n_frames)
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        self._full = state_names(self.nv, self.np, self.nl)
        self._stored = [self._full.index(s) for s in declared_states(spec, self.info.states)]
        self._first_ped = _maps.FIRST_LIGHT_ID + self.nl
        self._first_car = self._first_ped + self.np
        self._static: dict[int, tuple[_raster.Grid, _raster.Canvas]] = {}
        self._dashcam = None
        for c, cam in enumerate(self.rig.cameras):
            if cam.orthographic:
                self._static[c] = self._topdown_background(cam)
        if any(not cam.orthographic for cam in self.rig.cameras):
            self._dashcam = self._build_dashcam()

    # ---------------------------------------------------------------- scene pieces

    def _buildings(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        b = self.map.buildings
        centre = np.c_[b[:, 0], b[:, 1], b[:, 4] / 2]
        half = np.c_[b[:, 2], b[:, 3], b[:, 4] / 2]
        rgb = np.array([_rgb(h, 0.12, 0.66) for h in b[:, 5]]).reshape(-1, 3)
        return centre, half, rgb, np.full(len(b), _maps.BUILDING_ID, np.int32)

    def _topdown_background(self, cam) -> tuple[_raster.Grid, _raster.Canvas]:
        ss = int(math.ceil(1.0 / (float(cam.K[0, 0]) * RASTER_SPACING)))  # samples per pixel side: odd, spacing <= RASTER_SPACING
        grid = _raster.Grid.of(cam.K, cam.pose, cam.width, cam.height, ss=ss + (ss % 2 == 0))
        canvas = _raster.blank(grid)
        m = self.map
        _raster.paint_quads(canvas, grid, m.quads, m.quad_rgb, m.quad_ids, m.quad_layer)
        centre, half, rgb, ids = self._buildings()
        _raster.paint_boxes(canvas, grid, centre, np.zeros(len(centre)), half, rgb, ids)
        return grid, canvas.freeze(grid)

    def _build_dashcam(self):
        try:
            from . import _dashcam  # noqa: PLC0415 - imports pybullet
        except ImportError as e:  # the renderer module is written separately (issue 14's render helper)
            raise ValueError(f"render.views: perspective cameras (the dashcam) need crlgen.scenes.traffic._dashcam, "
                             f"which cannot be imported here ({e}); use topdown cameras only") from None
        m = self.map
        ground = _dashcam.Ground(m.quads, m.quad_rgb, m.quad_ids, m.quad_layer)
        centre, half, rgb, ids = self._buildings()
        static = _dashcam.Boxes(centre, np.zeros(len(centre)), half, rgb, ids)
        n_dyn = 2 * self.nv + self.np + sum(2 * len(L.heads) for L in m.lights)
        self._dc = _dashcam
        return _dashcam.Dashcam(None, ground, static, max(n_dyn, 1))

    def _dynamic(self, lat, i: int, frame: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Boxes (centre (n, 3), yaw, half (n, 3), rgb, ids, emissive) and discs of one frame of sample ``i``."""
        pres = frame["present"]
        x, y, h = frame["x"][pres], frame["y"][pres], frame["heading"][pres]
        idx = np.flatnonzero(pres)
        body_rgb = np.array([vehicle_rgb(k, self.nv, lat[f"vehicle[{k}].hue"][i]) for k in idx]).reshape(-1, 3)
        cabin_rgb = 0.35 * body_rgb + 0.05
        n = len(idx)
        cx, cy = x + CABIN_BACK * np.cos(h), y + CABIN_BACK * np.sin(h)
        centre = np.concatenate([np.c_[x, y, np.full(n, BODY_Z)], np.c_[cx, cy, np.full(n, CABIN_Z)]])
        half = np.concatenate([np.tile(BODY, (n, 1)), np.tile(CABIN, (n, 1))]).reshape(-1, 3)
        yaw = np.concatenate([h, h])
        rgb = np.concatenate([body_rgb, cabin_rgb]).reshape(-1, 3)
        ids = np.concatenate([self._first_car + idx, self._first_car + idx]).astype(np.int32)
        emissive = np.zeros(2 * n, bool)
        heads = []
        for k, L in enumerate(self.map.lights):
            col = LIGHT_RGB[int(frame["light"][k])]
            for p in L.heads:
                heads.append((p[0], p[1], col, _maps.FIRST_LIGHT_ID + k))
        if heads:
            hp = np.array([[a, b] for a, b, _, _ in heads])
            hc = np.array([c for _, _, c, _ in heads])
            hid = np.array([s for _, _, _, s in heads], np.int32)
            nh = len(heads)
            centre = np.concatenate([centre, np.c_[hp, np.full(nh, HEAD_Z)], np.c_[hp, np.full(nh, (HEAD_Z - HEAD_HALF) / 2)]])
            half = np.concatenate([half, np.tile([HEAD_HALF] * 3, (nh, 1)),
                                   np.tile([POLE_HALF, POLE_HALF, (HEAD_Z - HEAD_HALF) / 2], (nh, 1))])
            yaw = np.concatenate([yaw, np.zeros(2 * nh)])
            rgb = np.concatenate([rgb, hc, np.tile(POLE_RGB, (nh, 1))])
            ids = np.concatenate([ids, hid, hid])
            emissive = np.concatenate([emissive, np.ones(nh, bool), np.zeros(nh, bool)])
        pp = frame["ped_present"]
        pxy = np.c_[frame["ped_x"][pp], frame["ped_y"][pp]]
        pids = (self._first_ped + np.flatnonzero(pp)).astype(np.int32)
        prgb = np.array([pedestrian_rgb(j, self.np) for j in np.flatnonzero(pp)]).reshape(-1, 3)
        return {"centre": centre, "yaw": yaw, "half": half, "rgb": rgb, "ids": ids, "emissive": emissive,
                "ped_xy": pxy, "ped_ids": pids, "ped_rgb": prgb}

    # ---------------------------------------------------------------- latents and edits

    def _latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        need = ([f"vehicle[{i}].{f}" for i in range(self.nv) for f in VEHICLE_LATENTS]
                + [f"pedestrian[{j}].{f}" for j in range(self.np) for f in PED_LATENTS]
                + [f"light[{k}].{f}" for k in range(self.nl) for f in LIGHT_LATENTS])
        lat = read_latents(self.info, batch.latents, len(batch), need, DEFAULTS)
        for name, limit in (("vehicle[{}].route", len(self.map.routes)), ("pedestrian[{}].crossing", len(self.map.crosswalks))):
            for k in range(self.nv if name.startswith("v") else self.np):
                a = lat[name.format(k)]
                bad = (a != np.round(a)) | (a < 0) | (a > limit - 1)
                if bad.any():
                    raise ValueError(f"latent {name.format(k)!r} must be an integer in [0, {limit - 1}] on map {self.map.name}, "
                                     f"got {a[bad][:3].tolist()}")
        return lat

    def _setup(self, lat, i: int) -> _sim.Setup:
        def col(t: str, n: int) -> np.ndarray:
            return np.array([lat[t.format(k)][i] for k in range(n)], np.float64)

        aggr = col("vehicle[{}].aggressiveness", self.nv)
        return _sim.Setup(
            present=col("vehicle[{}].present", self.nv) > 0.5, route=col("vehicle[{}].route", self.nv).astype(np.int64),
            start=np.mod(col("vehicle[{}].start", self.nv), 1.0), v0=col("vehicle[{}].desired_speed", self.nv),
            headway=col("vehicle[{}].time_headway", self.nv), tau=col("vehicle[{}].reaction_time", self.nv),
            a_max=1.0 + 1.5 * aggr, b=1.5 + aggr, politeness=0.5 * (1.0 - aggr),
            ped_present=col("pedestrian[{}].present", self.np) > 0.5,
            ped_crossing=col("pedestrian[{}].crossing", self.np).astype(np.int64),
            ped_start=col("pedestrian[{}].start_time", self.np), ped_speed=col("pedestrian[{}].speed", self.np),
            offset=col("light[{}].offset", self.nl), green=col("light[{}].green", self.nl))

    def _edits(self, batch: WorldBatch) -> list[tuple[_sim.Edit, ...]]:
        out: list[list[_sim.Edit]] = [[] for _ in range(len(batch))]
        kinds = {"state": "light", "walking": "walk", "desired_speed": "v0", "time_headway": "headway"}
        counts = {"light": self.nl, "pedestrian": self.np, "vehicle": self.nv}
        for e in batch.edits:
            m = _OBJ.match(e.target)
            ok = m is not None and m.group(3) in kinds and int(m.group(2)) < counts[m.group(1)] and \
                {"state": "light", "walking": "pedestrian"}.get(m.group(3), "vehicle") == m.group(1)
            if not ok:
                raise ValueError(f"traffic/embedded cannot edit {e.target!r}; expected one of {', '.join(EDIT_TARGETS)}")
            kind, k = kinds[m.group(3)], int(m.group(2))
            for i in range(len(batch)):
                f = int(e.frame[i])
                if f < 0:
                    continue
                v = float(e.value[i])
                if not math.isfinite(v):
                    raise ValueError(f"temporal edit on {e.target!r}: non-finite value for sample {i}")
                if kind in ("light", "walk") and (e.op != "set" or v not in ((0.0, 1.0, 2.0) if kind == "light" else (0.0, 1.0))):
                    raise ValueError(f"temporal edit on {e.target!r}: only `= 0`, `= 1`{', `= 2`' if kind == 'light' else ''} "
                                     f"are states it can take, got {e.op} {v:g}")
                stop = int(e.end_frame[i])
                out[i].append(_sim.Edit(kind, k, e.op, f, None if stop < 0 else stop, v))
        return [tuple(x) for x in out]

    # ---------------------------------------------------------------- feasibility

    def feasible(self, batch: WorldBatch) -> np.ndarray:
        """(n,) bool: False where two conflicting signal groups of a junction show green or amber at once, or two
        cars start less than 1 m apart along a lane or with centres closer than ``START_DISTANCE`` (on crossing
        paths in a junction, say); :meth:`explain_infeasible` says which."""
        return np.array([r == "" for r in self.explain_infeasible(batch)], dtype=bool)

    def explain_infeasible(self, batch: WorldBatch) -> list[str]:
        """One reason per sample ("" where feasible): the first conflicting pair of lights (checked every 0.05 s over a
        cycle), or a pair of cars that start less than 1 m apart along a lane, or with centres closer than
        ``START_DISTANCE`` m."""
        lat = self._latents(batch)
        out = []
        t = np.arange(0.0, self.map.cycle, 0.05)
        for i in range(len(batch)):
            su = self._setup(lat, i)
            reason = ""
            for a, b in self.map.conflicts:
                sa = np.array([_sim.schedule(x, su.offset, su.green, self.map.cycle) for x in t])
                both = (sa[:, a] > 0) & (sa[:, b] > 0)
                if both.any():
                    reason = f"light[{a}] and light[{b}] (one junction) are both green or amber at t = {t[both][0]:.2f} s of the cycle"
                    break
            if not reason:
                g = _sim.initial_gaps(self.net, su)
                if np.any(g < 1.0):
                    a, b = np.unravel_index(np.argmin(g), g.shape)
                    reason = f"vehicle[{a}] starts {g[a, b]:.2f} m behind vehicle[{b}] (at least 1 m needed)"
            if not reason and su.present.sum() > 1:  # cars on crossing or merging paths: keep their centres apart
                p = np.flatnonzero(su.present)
                x, y, _ = self.net.pose(su.route[p], np.mod(su.start[p] * self.net.route_len[su.route[p]] - _sim.CAR_LENGTH / 2,
                                                           self.net.route_len[su.route[p]]))
                d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) + np.diag(np.full(len(p), np.inf))
                if d.min() < START_DISTANCE:
                    a, b = np.unravel_index(np.argmin(d), d.shape)
                    reason = f"vehicle[{p[a]}] and vehicle[{p[b]}] start {d[a, b]:.2f} m apart (centres; at least {START_DISTANCE} m)"
            out.append(reason)
        return out

    # ---------------------------------------------------------------- simulate and film

    def _run(self, batch: WorldBatch) -> tuple[Simulation, list[dict]]:
        lat = self._latents(batch)
        edits = self._edits(batch)
        n, T = len(batch), self.n_frames
        states = np.zeros((n, T, len(self._full)))
        inputs = np.zeros((n, T, self.nl))
        min_d = np.full(n, np.inf)
        frames = []
        for i in range(n):
            su = self._setup(lat, i)
            o = _sim.simulate(self.net, self.map, su, T, self.fps, self.substeps, edits[i])
            veh = np.stack([o[f] for f in VEHICLE_STATES], axis=2).reshape(T, -1)
            ped = np.stack([o["ped_x"], o["ped_y"], o["walking"]], axis=2).reshape(T, -1)
            states[i] = np.concatenate([veh, ped, o["light"]], axis=1)
            inputs[i] = o["phase"]
            pres = su.present
            if pres.sum() > 1:
                x, y = o["x"][:, pres], o["y"][:, pres]
                d = np.hypot(x[:, :, None] - x[:, None, :], y[:, :, None] - y[:, None, :])
                d[:, np.arange(d.shape[1]), np.arange(d.shape[1])] = np.inf
                min_d[i] = float(d.min())
            frames.append({**o, "present": pres, "ped_present": su.ped_present, "setup": su})
        return Simulation(states, self._full, inputs, extras={"min_distance": min_d}), frames

    def simulate(self, batch: WorldBatch) -> Simulation:
        """States (n, T, S) and inputs (n, T, NL) float64 without filming, bitwise equal to what ``render`` films."""
        return self._run(batch)[0]

    def _mount_pose(self, x: float, y: float, h: float) -> np.ndarray:
        m = np.eye(4)
        c, s = math.cos(h), math.sin(h)
        m[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        m[:3, 3] = (x, y, CABIN_Z + CABIN[2])
        return m

    def render(self, batch: WorldBatch) -> Rendered:
        out = allocate(self._outputs, len(batch))
        sim, frames = self._run(batch)
        lat = self._latents(batch)
        n, T = len(batch), self.n_frames
        for i in range(n):
            o = frames[i]
            su = o["setup"]
            start_pose = self.net.pose(su.route, np.mod(su.start * self.net.route_len[su.route] - _sim.CAR_LENGTH / 2,
                                                        self.net.route_len[su.route]))
            weather = (float(lat["weather.fog"][i]), float(lat["weather.rain"][i]), float(lat["weather.sun"][i]))
            for t in range(T):
                fr = {k: (o[k][t] if k in ("x", "y", "heading", "light", "ped_x", "ped_y") else o[k])
                      for k in ("x", "y", "heading", "light", "ped_x", "ped_y", "present", "ped_present")}
                dyn = self._dynamic(lat, i, fr)
                mounts = {}
                for c in self.rig.cameras:
                    if c.mount is not None:
                        k = int(re.match(r"vehicle\[(\d+)\]", c.mount).group(1))
                        if su.present[k]:
                            mounts[c.mount] = self._mount_pose(o["x"][t, k], o["y"][t, k], o["heading"][t, k])
                        else:
                            mounts[c.mount] = self._mount_pose(start_pose[0][k], start_pose[1][k], start_pose[2][k])
                poses = self.rig.poses(mounts)
                self._film(out, i, t, dyn, poses, weather)
        if "states" in out:
            out["states"][:] = sim.states[:, :, self._stored]
        out["inputs"][:] = sim.inputs
        centres, ids, radius = self._landmarks(sim, frames)
        return Rendered(out, landmarks=centres, landmark_ids=ids, landmark_radius=radius, simulation=sim)

    def _film(self, out: dict, i: int, t: int, dyn: dict, poses: np.ndarray, weather: tuple) -> None:
        ann = self.spec.render.annotations
        for g in self.rig.groups:
            for j, c in enumerate(g.indices):
                cam = self.rig.cameras[c]
                if cam.orthographic:
                    grid, bg = self._static[c]
                    canvas = bg.copy()
                    _raster.paint_boxes(canvas, grid, dyn["centre"], dyn["yaw"], dyn["half"], dyn["rgb"], dyn["ids"])
                    npd = len(dyn["ped_ids"])
                    _raster.paint_discs(canvas, grid, dyn["ped_xy"], np.full(npd, PED_RADIUS), np.full(npd, PED_TOP),
                                        dyn["ped_rgb"], dyn["ped_ids"])
                    rgb, depth, seg = canvas.finish(grid)
                else:
                    dc = self._dc
                    npd = len(dyn["ped_ids"])
                    boxes = dc.Boxes(np.concatenate([dyn["centre"], np.c_[dyn["ped_xy"], np.full(npd, PED_TOP / 2)]]),
                                     np.concatenate([dyn["yaw"], np.zeros(npd)]),
                                     np.concatenate([dyn["half"], np.tile([0.25, 0.2, PED_TOP / 2], (npd, 1))]),
                                     np.concatenate([dyn["rgb"], dyn["ped_rgb"]]),
                                     np.concatenate([dyn["ids"], dyn["ped_ids"]]).astype(np.int32),
                                     np.concatenate([dyn["emissive"], np.zeros(npd, bool)]))
                    view = dc.View.from_camera(cam, poses[c])
                    fog, rain, sun = weather
                    rgb, depth, seg = self._dashcam.render(boxes, view, dc.Weather(visibility=fog, rain=rain, daylight=sun))
                out[f"frames{g.suffix}"][i, t, j] = rgb
                if "depth" in ann:
                    out[f"depth{g.suffix}"][i, t, j] = depth
                if "segmentation" in ann:
                    out[f"segmentation{g.suffix}"][i, t, j] = seg
                out[f"camera_to_world{g.suffix}"][i, t, j] = poses[c]

    def _landmarks(self, sim: Simulation, frames: list[dict]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Known centres (n, T, 2 NV, 3) m: every car's body then every car's cabin (absent cars far away), their ids
        (2 NV,) and radii (n, 2 NV, 2) m (a ball inside the box, one holding it)."""
        n, T, nv = len(frames), self.n_frames, self.nv
        centres = np.full((n, T, 2 * nv, 3), 1.0e6)
        for i, o in enumerate(frames):
            p = np.flatnonzero(o["present"])
            h = o["heading"][:, p]
            for part, (z, back) in enumerate(((BODY_Z, 0.0), (CABIN_Z, CABIN_BACK))):
                centres[i, :, part * nv + p, 0] = (o["x"][:, p] + back * np.cos(h)).T
                centres[i, :, part * nv + p, 1] = (o["y"][:, p] + back * np.sin(h)).T
                centres[i, :, part * nv + p, 2] = z
        body = [min(BODY), float(np.linalg.norm(BODY))]
        cabin = [min(CABIN), float(np.linalg.norm(CABIN))]
        radius = np.tile(np.array([body] * nv + [cabin] * nv), (n, 1, 1))
        ids = self._first_car + np.concatenate([np.arange(nv), np.arange(nv)])
        return centres, ids, radius

    def close(self) -> None:
        dc = getattr(self, "_dashcam", None)
        if dc is not None:
            dc.close()
            self._dashcam = None
