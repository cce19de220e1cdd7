"""``traffic/carla``: the traffic scenes on a CARLA 0.9.16 server (the optional ``crlgen[carla]`` extra).

The same latent names as the embedded ``traffic/embedded`` world (``scenes/traffic/world.py``), rendered
by a CARLA server that some other machine runs (a GPU host; ``docker/docker-compose.yml``'s ``carla``
profile). crlgen is the client: it connects to ``host:port``, puts the server in synchronous mode with a
fixed step, spawns the spec's vehicles and pedestrians, drives the vehicles with a seeded Traffic
Manager and the lights and pedestrians itself, and reads cameras matched to each tick. Nothing of this
ran here: no CARLA server can run on these machines; the client API is the real one (``carla`` 0.9.16)
and :mod:`._carla_map` (the mapping) is tested against it.

Server. ``CRLGEN_CARLA_HOST`` (default 127.0.0.1), ``CRLGEN_CARLA_PORT`` (else ``parameters.carla_port``,
else 2000) and ``CRLGEN_CARLA_TM_PORT`` (else ``parameters.carla_tm_port``, else the port + 6000: one
Traffic Manager per server). One render task takes the Ray resource ``{"carla": 1}`` so that tasks
never share a server (start Ray with one ``carla`` per server, or ``crlgen run --resource carla=1``).
When no server answers, :class:`CarlaUnavailable` says so in one line, naming host:port and what to
start (:meth:`CarlaWorld.preflight` asks before a run writes anything).

Spec parameters: ``town`` (:data:`._carla_map.TOWNS`, e.g. 10 = Town10HD_Opt; it fixes the store's
scene, so domains may not change it), optional ``carla_port`` / ``carla_tm_port``.

Latents (``vehicle[i]``, ``pedestrian[j]``, ``light[k]``; vehicle[0] is the ego car, always present):

- ``weather.fog`` (visibility, m), ``weather.rain`` (0..1), ``weather.sun`` (daylight 0..1):
  ``carla.WeatherParameters`` (:func:`._carla_map.weather`);
- ``vehicle[i].present`` (absent cars are not spawned; their float states are NaN and ``lane`` -1, as
  :data:`._names.ABSENT_FLOAT` / :data:`._names.ABSENT_INDEX`),
  ``vehicle[i].start`` (0..1: the spawn point, :func:`._carla_map.spawn_indices`), ``vehicle[i].hue``
  (paint), ``vehicle[i].desired_speed`` (m/s), ``vehicle[i].time_headway`` (s); optional
  ``vehicle[i].aggressiveness`` and ``vehicle[i].ignore_lights`` (0..1, default 0) and
  ``vehicle[i].model`` (an integer index into :data:`._carla_map.CARS`, 0..13, default 0): the
  Traffic Manager (:func:`._carla_map.tm_settings`);
- ``pedestrian[j].present``, ``pedestrian[j].crossing`` (which of the 8 crosswalks nearest the ego's
  start, nearest first), ``pedestrian[j].start_time`` (s), ``pedestrian[j].speed`` (m/s): the walker
  waits at the crosswalk's first end and walks straight across from ``start_time`` (``WalkerControl``;
  no AI controller, so nothing random);
- ``light[k].offset`` (s), ``light[k].green`` (s), optional ``light[k].red`` (s, default green + amber):
  the k-th light nearest the ego's start runs a fixed-time cycle green / amber 3 s / red
  (:func:`._carla_map.light_phase`), set with ``TrafficLight.set_state`` on frozen lights; every other
  light of the town is frozen green.

States per frame (``time_varying``; map frame, right-handed, see :mod:`._carla_map`):
``vehicle[i].x .y`` (m), ``.heading`` (rad), ``.speed`` (m/s) and ``.accel`` (m/s^2) along the car,
``.lane`` (index into the town's driving lanes sorted by (road, section, lane) id; -1 off them or absent),
``pedestrian[j].x .y`` (m), ``.walking`` (0/1; absent: NaN, NaN, -1), ``light[k].state`` (0 red, 1 amber, 2 green, read back
with ``TrafficLight.get_state``). Inputs per frame: ``light[k].phase``, the state crlgen commanded
(the fixed-time cycle, or an edit's value while the edit acts).
Frame t is the world after t + 1 ticks of ``1 / fps`` s (each of ``video.substeps`` physics sub-steps);
controls and edits for frame t are applied before its tick, so an edit at frame f leaves frames < f alone.

Temporal edits: ``light[i].state`` (force a light: 0 red, 1 amber, 2 green), ``pedestrian[i].walking``
(1: step out now; 0: stop), ``vehicle[i].desired_speed`` and ``vehicle[i].time_headway`` (the Traffic Manager's
settings change at the edit's frame) and the weather latents.

Cameras: ``fixed`` (map frame) and ``mounted`` on ``vehicle[0]`` (the dashcam; ``follow: pose``), each
filmed by CARLA's RGB camera and, with the annotations, its depth, semantic and instance segmentation
cameras at the same transform; ``camera_to_world`` is each RGB image's own sensor transform.
Outputs: ``frames``, ``depth`` (m, 0 for the sky), ``segmentation`` (:data:`._carla_map.CLASS_IDS`, then
vehicle[i] = 10 + i, then the pedestrians), ``semantic`` (CARLA's own tags), ``states``, ``inputs``.

Re-rendering is not bit-exact (CARLA is not; synchronous mode, a fixed step and a seeded Traffic
Manager make it repeatable up to the GPU and PhysX): validation compares a re-render with the
tolerances of :data:`RERENDER_TOLERANCE` (stated, not yet measured on a server). The world does not
implement ``simulate`` (validation's dynamics check compares re-simulated states bit for bit), so the
re-render check, with those tolerances, is what compares a second run with the stored one.
"""

from __future__ import annotations

import math
import os
import queue
import re
import socket
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Mapping

import numpy as np

from ..base import Compare, Output, Rendered, Resources, World, WorldBatch, WorldInfo, WorldUnavailable, check_latent_values
from ..cameras import CameraRig
from ..engines.quiet import require
from ..outputs import allocate, camera_outputs, declared_states, input_output, state_output
from . import _carla_map as cm
from ._names import ABSENT_FLOAT, ABSENT_INDEX, DISCRETE, EDIT_RANGES, EDIT_TARGETS as _SHARED_EDITS, INPUTS, STATE_LEVELS, STATE_UNITS, STATES, VEHICLE_STATES, WEATHER

ENV_HOST, ENV_PORT, ENV_TM_PORT = "CRLGEN_CARLA_HOST", "CRLGEN_CARLA_PORT", "CRLGEN_CARLA_TM_PORT"
DEFAULT_HOST, DEFAULT_PORT, TM_PORT_OFFSET = "127.0.0.1", 2000, 6000
#: Seconds to wait for a TCP answer, for an RPC (a map load takes longer), and for a camera's image.
CONNECT_TIMEOUT, RPC_TIMEOUT, LOAD_TIMEOUT, SENSOR_TIMEOUT = 5.0, 30.0, 300.0, 30.0
START_HINT = ("start one on a GPU host with `docker compose -f docker/docker-compose.yml --profile carla up -d carla`, "
              f"or point {ENV_HOST} / {ENV_PORT} at a running CARLA 0.9.16 server")

#: How a re-render is compared with the stored one (CARLA is not bit-exact). Stated, not measured here.
RERENDER_TOLERANCE: dict[str, Compare] = {
    "frames": Compare(exact=False, atol=12.0, max_fraction=0.02),       # 0..255 sRGB
    "depth": Compare(exact=False, rtol=0.01, atol=0.05, max_fraction=0.02),  # m
    "segmentation": Compare(exact=False, atol=0.0, max_fraction=0.02),  # ids equal but at edges
    "semantic": Compare(exact=False, atol=0.0, max_fraction=0.02),
    "camera_to_world": Compare(exact=False, atol=0.05, max_fraction=0.0),  # m and rotation entries
    "states": Compare(exact=False, atol=0.05, max_fraction=0.02),       # m, rad, m/s, m/s^2, ids
}

GLOBAL_LATENTS = WEATHER
VEHICLE_LATENTS = ("vehicle[i].present", "vehicle[i].start", "vehicle[i].hue", "vehicle[i].desired_speed",
                   "vehicle[i].time_headway")
PEDESTRIAN_LATENTS = ("pedestrian[i].present", "pedestrian[i].crossing", "pedestrian[i].start_time", "pedestrian[i].speed")
LIGHT_LATENTS = ("light[i].offset", "light[i].green")
DEFAULTS = {"vehicle[i].aggressiveness": 0.0, "vehicle[i].ignore_lights": 0.0, "vehicle[i].model": 0.0}
RANGES: dict[str, tuple[float, float]] = {
    "weather.fog": (cm.FOG_VISIBILITY_MIN, 1.0e6), "weather.rain": (0.0, 1.0), "weather.sun": (0.0, 1.0),
    "vehicle[i].present": (0.0, 1.0), "vehicle[i].start": (0.0, 1.0), "vehicle[i].hue": (0.0, 1.0),
    "vehicle[i].desired_speed": (0.0, 40.0), "vehicle[i].time_headway": (0.1, 5.0),
    "vehicle[i].aggressiveness": (0.0, 1.0), "vehicle[i].ignore_lights": (0.0, 1.0),
    "vehicle[i].model": (0.0, len(cm.CARS) - 1.0),
    "pedestrian[i].present": (0.0, 1.0), "pedestrian[i].crossing": (0.0, cm.NEAR_CROSSWALKS - 1.0),
    "pedestrian[i].start_time": (0.0, 3600.0), "pedestrian[i].speed": (0.1, 3.0),
    "light[i].offset": (0.0, 3600.0), "light[i].green": (1.0, 300.0), "light[i].red": (1.0, 300.0),
}
EDIT_TARGETS = (*_SHARED_EDITS, *GLOBAL_LATENTS)
MAX_OBJECTS = {"vehicle": 64, "pedestrian": 32, "light": 16}
#: Physics sub-steps CARLA allows per tick (``max_substeps``).
MAX_SUBSTEPS = 16
#: Walkers spawn this high (m) above the crosswalk (their origin is at the hips) and stop this close (m) to its far end.
WALKER_LIFT, ARRIVED = 1.0, 0.5
_NAME = re.compile(r"^(vehicle|pedestrian|light)\[(\d+)\]\.([a-z_]+)$")


class CarlaUnavailable(WorldUnavailable):
    """No CARLA server answers at the world's host:port (one line: where, why, what to start)."""


@dataclass(frozen=True)
class ServerAddress:
    """Where the CARLA server and its Traffic Manager listen."""

    host: str
    port: int
    tm_port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _port(value: Any, what: str) -> int:
    try:
        port = int(str(value).strip()) if not isinstance(value, float) else int(value)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535 or (isinstance(value, float) and value != port):
        raise ValueError(f"{what}: expected a TCP port 1..65535, got {value!r}")
    return port


def server_address(spec) -> ServerAddress:
    """The server of ``spec``: the environment first (``CRLGEN_CARLA_HOST``, ``_PORT``, ``_TM_PORT``), then
    ``parameters.carla_port`` / ``carla_tm_port``, then 127.0.0.1:2000 (Traffic Manager: port + 6000).
    Raises ValueError naming the variable or parameter that is not a port."""
    params = getattr(spec, "parameters", {}) or {}
    host = os.environ.get(ENV_HOST, "").strip() or DEFAULT_HOST
    if os.environ.get(ENV_PORT, "").strip():
        port = _port(os.environ[ENV_PORT], ENV_PORT)
    else:
        port = _port(params["carla_port"], "parameters.carla_port") if "carla_port" in params else DEFAULT_PORT
    if os.environ.get(ENV_TM_PORT, "").strip():
        tm = _port(os.environ[ENV_TM_PORT], ENV_TM_PORT)
    elif "carla_tm_port" in params:
        tm = _port(params["carla_tm_port"], "parameters.carla_tm_port")
    else:
        tm = _port(port + TM_PORT_OFFSET if port + TM_PORT_OFFSET <= 65535 else port - TM_PORT_OFFSET, "the Traffic Manager port")
    return ServerAddress(host, port, tm)


def probe(address: ServerAddress, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise :class:`CarlaUnavailable` unless something accepts a TCP connection at ``address`` within ``timeout`` s."""
    try:
        socket.create_connection((address.host, address.port), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise CarlaUnavailable(f"no CARLA server answers at {address} ({why.lower()}); {START_HINT}") from None


def connect(carla, address: ServerAddress, timeout: float = RPC_TIMEOUT):
    """A ``carla.Client`` talking to a CARLA server of the client's own version at ``address``.

    Raises :class:`CarlaUnavailable` when nothing listens, when the server does not answer RPCs within
    ``timeout`` s, or when its version differs from the client's (CARLA refuses mixed versions).
    """
    probe(address)
    client = carla.Client(address.host, address.port)
    client.set_timeout(timeout)
    try:
        server = client.get_server_version()
    except RuntimeError as e:
        raise CarlaUnavailable(f"the CARLA server at {address} does not answer ({' '.join(str(e).split())}); "
                               f"{START_HINT}") from None
    mine = client.get_client_version()
    if server.split("-")[0] != mine.split("-")[0]:
        raise CarlaUnavailable(f"the CARLA server at {address} runs {server}, crlgen's client is {mine}: "
                               f"run a {mine} server (carlasim/carla:{mine})")
    return client


def _param(spec, name: str) -> float:
    if name not in spec.parameters:
        raise ValueError(f"traffic/carla needs the parameter {name!r} (see the world's description)")
    return spec.parameters[name]


_INFO = WorldInfo(
    name="traffic/carla",
    kind="video",
    engine="carla",
    engines=("carla",),
    description="Traffic in a CARLA 0.9.16 town (optional extra crlgen[carla]; needs a CARLA server): synchronous "
                "mode, a seeded Traffic Manager, fixed-time lights and crossing pedestrians driven by crlgen, "
                "weather from the latents, RGB, depth, semantic and instance cameras on the ego car.",
    latents=GLOBAL_LATENTS + VEHICLE_LATENTS + PEDESTRIAN_LATENTS + LIGHT_LATENTS,
    optional_latents=(*DEFAULTS, "light[i].red"),
    ranges=RANGES,
    discrete=(*DISCRETE, "vehicle[i].model"),
    states=STATES,
    state_units=STATE_UNITS,
    inputs=INPUTS,
    edit_targets=EDIT_TARGETS,
    edit_ranges=EDIT_RANGES,
    annotations=("depth", "segmentation"),
    camera_kinds=("fixed", "mounted"),
    mounts=("vehicle[0]",),
    max_objects=MAX_OBJECTS,
    requires=("carla",),
    resources=Resources(cpus=1.0, custom={"carla": 1.0}),
    exact=False,
)


class CarlaWorld(World):
    """``traffic/carla`` (see the module docstring)."""

    info: ClassVar[WorldInfo] = _INFO
    #: Camera framing for :class:`CameraRig`: aim point (m), base distance (m), scene radius (m, bounds clip planes).
    TARGET, BASE_DISTANCE, SCENE_RADIUS = (0.0, 0.0, 0.0), 10.0, 500.0

    @classmethod
    def rig(cls, spec) -> CameraRig:
        return CameraRig.from_settings(spec.render, cls.TARGET, cls.BASE_DISTANCE, cls.SCENE_RADIUS)

    @classmethod
    def check(cls, spec) -> list[str]:
        out = []
        try:
            cm.town_name(_param(spec, "town"))
        except ValueError as e:
            out.append(f"parameters.town: {e}")
        for name in ("carla_port", "carla_tm_port"):
            if name in spec.parameters:
                try:
                    _port(spec.parameters[name], f"parameters.{name}")
                except ValueError as e:
                    out.append(str(e))
        for dname, dom in spec.domains.items():
            for p in ("town", "carla_port", "carla_tm_port"):
                if p in dom.parameters:
                    out.append(f"domains.{dname}.parameters.{p}: the {p} fixes the scene (and the server); make one dataset per {p}")
        if not spec.object_count("vehicle"):
            out.append("objects.vehicle: traffic/carla needs at least one vehicle (vehicle[0] is the ego car)")
        video = spec.video
        if video is not None and video.substeps > MAX_SUBSTEPS:
            out.append(f"video.substeps: CARLA runs at most {MAX_SUBSTEPS} physics sub-steps per tick, got {video.substeps}")
        if spec.render.engine not in (None, "carla"):
            out.append(f"render.engine: traffic/carla renders with 'carla' (the CARLA server), got {spec.render.engine!r}")
        for j, cam in enumerate(spec.render.cameras()):
            if cam.kind == "mounted" and cam.follow != "pose":
                out.append(f"render.views[{j}].follow: CARLA cameras ride rigidly on their car; expected 'pose'")
        return out

    @classmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        rig = cls.rig(spec)
        ids = cls.segmentation_ids(spec)
        out = camera_outputs(spec, rig, rgb="frames", segmentation_ids=ids, compare=RERENDER_TOLERANCE["frames"],
                             depth_compare=RERENDER_TOLERANCE["depth"])
        tol = {o.name: RERENDER_TOLERANCE[k] for o in out for k in ("segmentation", "camera_to_world")
               if o.name.startswith(k)}
        out = [replace(o, compare=tol[o.name]) if o.name in tol else o for o in out]
        if "segmentation" in spec.render.annotations:
            for o in [o for o in out if o.kind == "segmentation"]:
                out.append(replace(o, name=o.name.replace("segmentation", "semantic", 1), compare=RERENDER_TOLERANCE["semantic"],
                                   description="CARLA's semantic tag of the visible surface (carla.CityObjectLabel; see ids)",
                                   attrs={**o.attrs, "ids": {str(v): k for k, v in _LABELS.items()}}))
        names = declared_states(spec, cls.info.states)
        if names:
            units = {n: STATE_UNITS[re.sub(r"\[\d+\]", "[i]", n)] for n in names}
            out.append(replace(state_output(spec, names, units, STATE_LEVELS), compare=RERENDER_TOLERANCE["states"]))
        inputs = cls.input_names(spec)
        if inputs:
            out.append(input_output(spec, inputs, dict.fromkeys(inputs, "1")))
        return tuple(out)

    @classmethod
    def input_names(cls, spec) -> tuple[str, ...]:
        """``light[k].phase`` for every light of the spec."""
        return tuple(spec.expand_all(cls.info.inputs))

    @classmethod
    def segmentation_ids(cls, spec) -> dict[int, str]:
        """Segmentation id -> what it marks: the classes, then vehicle[i], then pedestrian[j]."""
        nv, npd = spec.object_count("vehicle") or 0, spec.object_count("pedestrian") or 0
        ids = dict(cm.CLASS_IDS)
        ids.update({cm.FIRST_OBJECT_ID + i: f"vehicle[{i}]" for i in range(nv)})
        ids.update({cm.FIRST_OBJECT_ID + nv + j: f"pedestrian[{j}]" for j in range(npd)})
        return ids

    @classmethod
    def preflight(cls, spec) -> None:
        """Before a run writes anything: raise :class:`CarlaUnavailable` (one line) unless a CARLA server of the
        client's version answers at the spec's address (:func:`server_address`)."""
        carla = require("carla", needed_by="world traffic/carla")
        connect(carla, server_address(spec), timeout=CONNECT_TIMEOUT * 2)

    # ------------------------------------------------------------------ the server, set up once

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        problems = type(self).check(spec)
        if problems:
            raise ValueError(problems[0])
        if spec.video is None:
            raise ValueError("traffic/carla renders videos; the spec needs `video: {fps: 10, frames: 100, substeps: 10}`")
        self.carla = require("carla", needed_by="world traffic/carla")
        self.address = server_address(spec)
        self.fps, self.substeps, self.n_frames = float(spec.video.fps), int(spec.video.substeps), int(spec.video.n_frames)
        self.dt = 1.0 / self.fps
        self.nv = spec.object_count("vehicle") or 0
        self.np = spec.object_count("pedestrian") or 0
        self.nl = spec.object_count("light") or 0
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        self._full = self._state_names()
        self._stored = [self._full.index(s) for s in declared_states(spec, self.info.states)]
        self._annotations = set(spec.render.annotations)
        self._actors: list[Any] = []
        self._sensors: list[Any] = []
        self._original_settings = None
        self.client = connect(self.carla, self.address)
        try:
            self._setup_server(cm.town_name(spec.parameters["town"]))
        except BaseException:
            self.close()
            raise

    def _state_names(self) -> tuple[str, ...]:
        out = [f"vehicle[{i}].{f}" for i in range(self.nv) for f in VEHICLE_STATES]
        out += [f"pedestrian[{j}].{f}" for j in range(self.np) for f in ("x", "y", "walking")]
        out += [f"light[{k}].state" for k in range(self.nl)]
        return tuple(out)

    def _setup_server(self, town: str) -> None:
        carla = self.carla
        self.client.set_timeout(LOAD_TIMEOUT)
        self.client.load_world_if_different(town)
        self.client.set_timeout(RPC_TIMEOUT)
        self.world = self.client.get_world()
        self._original_settings = self.world.get_settings()
        settings = self.world.get_settings()
        settings.synchronous_mode = True
        settings.fixed_delta_seconds = self.dt
        settings.substepping = True
        settings.max_substeps = self.substeps
        settings.max_substep_delta_time = self.dt / self.substeps
        settings.deterministic_ragdolls = True
        settings.no_rendering_mode = False
        self.world.apply_settings(settings)
        self.tm = self.client.get_trafficmanager(self.address.tm_port)
        self.tm.set_synchronous_mode(True)
        self.tm.set_hybrid_physics_mode(False)
        self.tm.set_respawn_dormant_vehicles(False)
        library = self.world.get_blueprint_library()
        self._blueprints = {}
        for bp_id in (*cm.CARS, *(cm.walker_blueprint(j) for j in range(min(self.np, cm.WALKER_MODELS))), *cm.SENSORS):
            try:
                self._blueprints[bp_id] = library.find(bp_id)
            except (IndexError, RuntimeError):
                raise RuntimeError(f"the CARLA server at {self.address} has no blueprint {bp_id!r}; expected CARLA 0.9.16's library") from None
        for bp_id in cm.CARS:
            if not self._blueprints[bp_id].has_attribute("color"):
                raise RuntimeError(f"blueprint {bp_id!r} of the CARLA server at {self.address} has no 'color' attribute")
        cmap = self.world.get_map()
        self._map = cmap
        self._spawn = list(cmap.get_spawn_points())
        if not self._spawn:
            raise RuntimeError(f"{town} on {self.address} offers no spawn points")
        self._spawn_xy = np.array([[t.location.x, -t.location.y] for t in self._spawn])
        self._crosswalks = cm.crosswalk_polygons([(p.x, p.y, p.z) for p in cmap.get_crosswalks()])
        driving = carla.LaneType.Driving
        keys = {(w.road_id, w.section_id, w.lane_id) for w in cmap.generate_waypoints(2.0) if w.lane_type == driving}
        self._lanes = {k: n for n, k in enumerate(sorted(keys))}
        self._lights = sorted(self.world.get_actors().filter("traffic.traffic_light"), key=lambda a: a.id)
        if len(self._lights) < self.nl:
            raise RuntimeError(f"{town} has {len(self._lights)} traffic lights, the spec asks for {self.nl}")
        self._lights_xy = np.array([[a.get_location().x, -a.get_location().y] for a in self._lights]).reshape(-1, 2)
        self._lut = cm.semantic_lut({k: int(v) for k, v in carla.CityObjectLabel.names.items()})

    # ------------------------------------------------------------------ latents and edits

    def _latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        lat = {k: np.asarray(v, dtype=np.float64) for k, v in batch.latents.items()}
        n = len(batch)
        check_latent_values(self.info, lat)
        for name, default in DEFAULTS.items():
            for k in range(self.nv):
                lat.setdefault(name.replace("[i]", f"[{k}]"), np.full(n, default))
        need = [*GLOBAL_LATENTS, *(t.replace("[i]", f"[{k}]") for k in range(self.nv) for t in VEHICLE_LATENTS),
                *(t.replace("[i]", f"[{k}]") for k in range(self.np) for t in PEDESTRIAN_LATENTS),
                *(t.replace("[i]", f"[{k}]") for k in range(self.nl) for t in LIGHT_LATENTS)]
        missing = [k for k in need if k not in lat]
        if missing:
            raise KeyError(f"traffic/carla needs latents {missing[:6]}")
        for k in range(self.nl):
            lat.setdefault(f"light[{k}].red", lat[f"light[{k}].green"] + cm.AMBER_TIME)
        return lat

    def _edits(self, batch: WorldBatch) -> list[list[tuple]]:
        """Per sample: (target, op, start frame, end frame or None, value)."""
        out: list[list[tuple]] = [[] for _ in range(len(batch))]
        counts = {"vehicle": self.nv, "pedestrian": self.np, "light": self.nl}
        allowed = {"light": ("state",), "pedestrian": ("walking",), "vehicle": ("desired_speed", "time_headway")}
        for e in batch.edits:
            m = _NAME.match(e.target)
            ok = e.target in GLOBAL_LATENTS or (m and m.group(3) in allowed[m.group(1)] and int(m.group(2)) < counts[m.group(1)])
            if not ok or e.op not in ("set", "add", "scale"):
                raise ValueError(f"traffic/carla cannot edit {e.target!r} ({e.op}); expected one of {', '.join(EDIT_TARGETS)}")
            for i in range(len(batch)):
                f = int(e.frame[i])
                if f >= 0:
                    stop = int(e.end_frame[i])
                    out[i].append((e.target, e.op, f, None if stop < 0 else stop, float(e.value[i])))
        return out

    # ------------------------------------------------------------------ one sample

    def render(self, batch: WorldBatch) -> Rendered:
        lat = self._latents(batch)
        edits = self._edits(batch)
        out = allocate(self._outputs, len(batch))
        states = np.zeros((len(batch), self.n_frames, len(self._full)), dtype=np.float64)
        for i in range(len(batch)):
            try:
                states[i] = self._sample(lat, i, int(batch.seeds[i]), edits[i], out)
            finally:
                self._clear()
        if "states" in out:
            out["states"][:] = states[:, :, self._stored]
        return Rendered(out)

    def _sample(self, lat: Mapping[str, np.ndarray], i: int, seed: int, edits: list[tuple], out: dict) -> np.ndarray:
        carla, world, tm = self.carla, self.world, self.tm
        T = self.n_frames

        def value(name: str, t: int, base: float | None = None) -> float:
            """``name`` at frame t: its latent (or ``base``, for a state) with the edits active at t folded in."""
            v = float(lat[name][i]) if base is None else base
            for target, op, start, end, x in edits:
                if target == name and start <= t and (end is None or t < end):
                    v = x if op == "set" else v + x if op == "add" else v * x
            return v

        def edited(name: str, t: int) -> bool:
            return any(target == name and start <= t and (end is None or t < end) for target, _, start, end, _ in edits)

        def weather_at(t: int):
            return cm.weather(carla, value("weather.fog", t), value("weather.rain", t), value("weather.sun", t))

        current_weather = weather_at(0)
        world.set_weather(current_weather)
        tm.set_random_device_seed(seed % (2 ** 31))
        world.reset_all_traffic_lights()
        world.freeze_all_traffic_lights(True)
        present = np.array([lat[f"vehicle[{k}].present"][i] >= 0.5 for k in range(self.nv)])
        spawn = cm.spawn_indices(self._spawn_xy, np.array([lat[f"vehicle[{k}].start"][i] for k in range(self.nv)]), present)
        vehicles: dict[int, Any] = {}
        for k in np.flatnonzero(present):
            bp = self._blueprints[cm.car_blueprint(lat[f"vehicle[{k}].model"][i])]
            bp.set_attribute("color", cm.car_colour(lat[f"vehicle[{k}].hue"][i]))
            bp.set_attribute("role_name", "hero" if k == 0 else f"vehicle{k}")
            actor = world.try_spawn_actor(bp, self._spawn[spawn[k]])
            if actor is None:
                raise RuntimeError(f"sample {i}: vehicle[{k}] could not be spawned at spawn point {spawn[k]} (occupied)")
            self._actors.append(actor)
            vehicles[int(k)] = actor
        ego = vehicles[0]
        origin = self._spawn_xy[spawn[0]]
        for k, actor in vehicles.items():
            actor.set_autopilot(True, self.address.tm_port)
            # an edit in force at frame 0 acts from the first tick, like one at frame t from tick t
            settings = cm.tm_settings(value(f"vehicle[{k}].desired_speed", 0), value(f"vehicle[{k}].time_headway", 0),
                                      lat[f"vehicle[{k}].aggressiveness"][i], lat[f"vehicle[{k}].ignore_lights"][i])
            for method, arg in settings.items():
                getattr(tm, method)(actor, arg)
        # pedestrians wait at the first end of their crosswalk
        walkers: dict[int, tuple[Any, np.ndarray, np.ndarray]] = {}
        near_cw = cm.nearest(np.array([[p[:, 0].mean(), -p[:, 1].mean()] for p in self._crosswalks]).reshape(-1, 2),
                             origin, cm.NEAR_CROSSWALKS)
        for j in range(self.np):
            if lat[f"pedestrian[{j}].present"][i] < 0.5:
                continue
            c = int(round(lat[f"pedestrian[{j}].crossing"][i]))
            if c >= len(near_cw):
                raise RuntimeError(f"sample {i}: pedestrian[{j}].crossing {c}, but the town has {len(near_cw)} crosswalks near the ego")
            a, b = cm.crossing_ends(self._crosswalks[near_cw[c]])
            bp = self._blueprints[cm.walker_blueprint(j)]
            if bp.has_attribute("is_invincible"):
                bp.set_attribute("is_invincible", "false")
            tf = carla.Transform(carla.Location(x=float(a[0]), y=float(a[1]), z=float(a[2]) + WALKER_LIFT))
            actor = world.try_spawn_actor(bp, tf)
            if actor is None:
                raise RuntimeError(f"sample {i}: pedestrian[{j}] could not be spawned at crosswalk {c}'s end")
            self._actors.append(actor)
            walkers[j] = (actor, a, b)
        # lights: the nearest to the ego's start are ours, the rest stay green
        ours = [self._lights[k] for k in cm.nearest(self._lights_xy, origin, self.nl)] if self.nl else []
        for tl in self._lights:
            tl.set_state(carla.TrafficLightState.Green)
        phases = np.stack([cm.light_phase(np.arange(T) * self.dt, lat[f"light[{k}].offset"][i], lat[f"light[{k}].green"][i],
                                          lat[f"light[{k}].red"][i]) for k in range(self.nl)], axis=1) if self.nl else \
            np.zeros((T, 0), np.int64)
        cams = self._spawn_cameras(ego)
        ids = {a.id: cm.FIRST_OBJECT_ID + k for k, a in vehicles.items()}
        ids.update({w[0].id: cm.FIRST_OBJECT_ID + self.nv + j for j, w in walkers.items()})
        states = np.zeros((T, len(self._full)), dtype=np.float64)
        walking = {j: False for j in walkers}
        arrived = {j: False for j in walkers}
        speeds = {k: None for k in vehicles}
        for t in range(T):
            # controls for frame t, then its tick
            w_now = weather_at(t)
            if w_now != current_weather:
                world.set_weather(w_now)
                current_weather = w_now
            for k, actor in vehicles.items():
                drive = (value(f"vehicle[{k}].desired_speed", t), value(f"vehicle[{k}].time_headway", t))
                if speeds[k] is not None and drive != speeds[k]:
                    s = cm.tm_settings(*drive)
                    tm.set_desired_speed(actor, s["set_desired_speed"])
                    tm.distance_to_leading_vehicle(actor, s["distance_to_leading_vehicle"])
                speeds[k] = drive
            for j, (actor, a, b) in walkers.items():
                name = f"pedestrian[{j}].walking"
                if edited(name, t):
                    walking[j] = value(name, t, float(walking[j])) >= 0.5 and not arrived[j]
                elif not walking[j] and not arrived[j] and t * self.dt >= lat[f"pedestrian[{j}].start_time"][i]:
                    walking[j] = True
                loc = actor.get_location()
                if walking[j] and math.hypot(b[0] - loc.x, b[1] - loc.y) < ARRIVED:
                    walking[j], arrived[j] = False, True
                d = b - a
                d = d / max(float(np.linalg.norm(d[:2])), 1e-9)
                speed = float(lat[f"pedestrian[{j}].speed"][i]) if walking[j] else 0.0
                actor.apply_control(carla.WalkerControl(direction=carla.Vector3D(x=float(d[0]), y=float(d[1]), z=0.0), speed=speed))
            for k, tl in enumerate(ours):
                name = f"light[{k}].state"
                if edited(name, t):
                    phases[t, k] = int(min(2, max(0, round(value(name, t, float(phases[t, k]))))))
                tl.set_state(carla.TrafficLightState.values[int(phases[t, k])])
            frame = world.tick()
            self._record(states[t], vehicles, walkers, walking, ours)
            self._film(cams, frame, out, i, t, ids)
        if "inputs" in out:
            out["inputs"][i] = phases
        return states

    def _record(self, row: np.ndarray, vehicles: Mapping[int, Any], walkers: Mapping[int, tuple], walking: Mapping[int, bool],
                lights: list) -> None:
        """Write one frame's states (in :meth:`_state_names`' order) into ``row``."""
        driving = self.carla.LaneType.Driving
        for k in range(self.nv):
            base = k * len(VEHICLE_STATES)
            actor = vehicles.get(k)
            if actor is None:
                row[base:base + len(VEHICLE_STATES)] = (*(ABSENT_FLOAT,) * 5, ABSENT_INDEX)  # outside each state's domain
                continue
            tf = actor.get_transform()
            v, a = actor.get_velocity(), actor.get_acceleration()
            row[base:base + 5] = cm.kinematics(np.array(tf.get_matrix()), (v.x, v.y, v.z), (a.x, a.y, a.z))
            wp = self._map.get_waypoint(tf.location, project_to_road=False, lane_type=driving)
            row[base + 5] = -1.0 if wp is None else float(self._lanes.get((wp.road_id, wp.section_id, wp.lane_id), -1))
        base = self.nv * len(VEHICLE_STATES)
        for j in range(self.np):
            if j in walkers:
                loc = walkers[j][0].get_location()
                row[base + 3 * j:base + 3 * j + 3] = (loc.x, -loc.y, 1.0 if walking[j] else 0.0)
            else:
                row[base + 3 * j:base + 3 * j + 3] = (ABSENT_FLOAT, ABSENT_FLOAT, ABSENT_INDEX)
        base += 3 * self.np
        for k, tl in enumerate(lights):
            row[base + k] = float(int(tl.get_state()))

    # ------------------------------------------------------------------ cameras

    def _spawn_cameras(self, ego) -> list[dict[str, Any]]:
        """Per crlgen camera, its CARLA sensors (one per needed type) with a queue each."""
        carla, world = self.carla, self.world
        cams = []
        for cam in self.rig.cameras:
            entry: dict[str, Any] = {"camera": cam}
            local = cam.local if cam.mount is not None else cam.pose
            tf = cm.sensor_transform(carla, local)
            for bp_id, needs in cm.SENSORS.items():
                if needs is not None and needs not in self._annotations:
                    continue
                bp = self._blueprints[bp_id]
                kind = bp_id.rsplit(".", 1)[1]
                for key, val in cm.camera_attributes(cam.width, cam.height, cam.fov, kind).items():
                    if bp.has_attribute(key):
                        bp.set_attribute(key, val)
                sensor = world.spawn_actor(bp, tf, attach_to=ego) if cam.mount is not None else world.spawn_actor(bp, tf)
                q: queue.Queue = queue.Queue()
                sensor.listen(q.put)
                self._sensors.append(sensor)
                entry[kind] = q
            cams.append(entry)
        return cams

    def _film(self, cams: list[dict[str, Any]], frame: int, out: dict[str, np.ndarray], i: int, t: int,
              actor_ids: Mapping[int, int]) -> None:
        for v, entry in enumerate(cams):
            cam = entry["camera"]
            g = next(g for g in self.rig.groups if v in g.indices)
            slot, sfx = g.indices.index(v), g.suffix
            image = _read(entry["rgb"], frame, cam.name)
            px = cm.bgra(image.raw_data, cam.height, cam.width)
            out[f"frames{sfx}"][i, t, slot] = cm.rgb(px)
            out[f"camera_to_world{sfx}"][i, t, slot] = cm.camera_to_world(np.array(image.transform.get_matrix()))
            if "depth" in entry:
                out[f"depth{sfx}"][i, t, slot] = cm.depth(cm.bgra(_read(entry["depth"], frame, cam.name).raw_data, cam.height, cam.width))
            if "semantic_segmentation" in entry:
                sem = cm.semantic_tags(cm.bgra(_read(entry["semantic_segmentation"], frame, cam.name).raw_data, cam.height, cam.width))
                inst = cm.bgra(_read(entry["instance_segmentation"], frame, cam.name).raw_data, cam.height, cam.width)
                out[f"semantic{sfx}"][i, t, slot] = sem
                out[f"segmentation{sfx}"][i, t, slot] = cm.segmentation(sem, cm.instance_ids(inst), self._lut, actor_ids)

    # ------------------------------------------------------------------ clean-up

    def _clear(self) -> None:
        """Destroy this sample's sensors and actors (sensors first) and let the server apply it with one tick."""
        if not self._sensors and not self._actors:
            return
        for s in self._sensors:
            try:
                s.stop()
            except RuntimeError:
                pass
        cmds = [self.carla.command.DestroyActor(a.id) for a in (*self._sensors, *self._actors)]
        self._sensors, self._actors = [], []
        self.client.apply_batch_sync(cmds, True)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is None:
            return
        try:
            self._clear()
            if getattr(self, "tm", None) is not None:
                self.tm.set_synchronous_mode(False)
            if self._original_settings is not None:
                self.world.freeze_all_traffic_lights(False)
                self.world.apply_settings(self._original_settings)
        except RuntimeError:
            pass  # the server went away: nothing left to restore
        finally:
            self.client = None


def _read(q: queue.Queue, frame: int, camera: str):
    """The sensor reading of tick ``frame`` from a sensor's queue (older ones dropped); RuntimeError if none comes."""
    while True:
        try:
            data = q.get(timeout=SENSOR_TIMEOUT)
        except queue.Empty:
            raise RuntimeError(f"camera {camera!r}: no image for tick {frame} within {SENSOR_TIMEOUT:g} s") from None
        if data.frame == frame:
            return data
        if data.frame > frame:
            raise RuntimeError(f"camera {camera!r}: got the image of tick {data.frame} while waiting for tick {frame}")


def _labels() -> dict[str, int]:
    """CARLA 0.9.16's semantic tags (``carla.CityObjectLabel``, name -> value) for the ``semantic`` key, without
    importing ``carla`` (the table is checked against the real enum in tests/scenes/test_traffic_carla.py)."""
    return {"NONE": 0, "Roads": 1, "Sidewalks": 2, "Buildings": 3, "Walls": 4, "Fences": 5, "Poles": 6, "TrafficLight": 7,
            "TrafficSigns": 8, "Vegetation": 9, "Terrain": 10, "Sky": 11, "Pedestrians": 12, "Rider": 13, "Car": 14,
            "Truck": 15, "Bus": 16, "Train": 17, "Motorcycle": 18, "Bicycle": 19, "Static": 20, "Dynamic": 21, "Other": 22,
            "Water": 23, "RoadLines": 24, "Ground": 25, "Bridge": 26, "RailTrack": 27, "GuardRail": 28}


_LABELS = _labels()
