"""Physics video worlds: N rigid objects simulated with PyBullet and filmed from every camera.

Three scenes share one simulator (:class:`PhysicsWorld`) and differ in framing,
scenery and which latents they require:

- ``physics/falling`` (:class:`FallingWorld`): objects dropped onto the ground;
  initial velocities and yaw are optional (default 0).
- ``physics/projectile`` (:class:`ProjectileWorld`): objects thrown along +x,
  optionally against a static wall (``wall.x``, ``wall.height``), with wind and
  quadratic drag.
- ``physics/collision`` (:class:`CollisionWorld`): objects sliding into each
  other on a table top; they start resting on it (``z0`` defaults to ``size``),
  and ``friction`` defaults to a slippery 0.1.

Latents (``batch.latents``; ``obj[i]`` for i = 0..N-1, N = the number of
``obj[i].mass`` entries):

- global: ``gravity`` (m/s^2 along -z), ``friction`` (lateral friction of the
  ground and default of the objects), ``restitution`` (ground, and default of
  the objects); optional ``light`` (intensity multiplier, 1), ``wind`` (m/s^2
  along +x, 0), ``drag`` (k in kg/m, force -k|v|v, 0), and for the projectile
  world ``wall.x`` / ``wall.height`` (a wall across x at ``wall.x``; no wall
  when absent or when the height is <= 0).
- per object: ``shape`` (0 sphere, 1 box, 2 cylinder), ``size`` (radius,
  half-extent, or radius with height 2*size), ``mass``, ``hue`` (colour, HSV
  with s=0.75, v=0.9), ``x0 y0 z0`` (centre), ``yaw0`` (rad), ``vx0 vy0 vz0``;
  optional ``restitution`` and ``friction`` overriding the globals. Bullet
  combines the two bodies' coefficients of a contact by multiplication.

States (:meth:`PhysicsWorld.simulate`, (n, T, 13 N) float64, see :func:`state_names`):
per object, in index order, ``x y z qx qy qz qw vx vy vz wx wy wz`` (centre,
orientation quaternion, linear and angular velocity, world frame). The store's
``states`` output holds the ones a spec declares ``time_varying``, in the spec graph's
order (object-major; within an object, as the spec declares them), the same list as the
graph sidecar's states. Frame 0 is
the initial state; frame t is the state after simulating t / fps seconds with
``substeps`` fixed steps of 1 / (fps * substeps) per frame.

Temporal edits (``batch.edits``): frame ``f`` (per sample, -1 = not applied)
is in force at frames ``f .. end - 1`` (``end`` exclusive, -1 = to the end):
at a frame t >= 1 it acts on the steps that lead *into* frame t, and at frame
0 on the initial state before frame 0 is recorded (and filmed). So
``states[f]`` is the first frame that can differ and ``states[:f]`` equal the
unedited run bitwise, frame 0 included: ``states[0]`` holds an edit at frame 0.

- ``obj[i].vx|vy|vz``: instantaneous; at the start of frame f's step (at
  frame 0: on the initial velocity, so ``states[0]`` shows the new velocity and
  the positions follow from frame 1) the velocity component is set / increased
  (an impulse) / scaled once; ``end_frame`` does not apply.
- ``gravity``, ``friction`` (every body's lateral friction), ``wind``,
  ``obj[i].mass`` (changeDynamics, inertia rescaled): the value is set / added /
  scaled while the edit is active and restored afterwards (an edit at frame 0
  is in force from the first step, and frame 0's ``energy`` counts it); several
  edits on one target fold in batch order.

World checks (run by validation, reported by name): ``penetration`` (the deepest
contact over all steps, and at the start, stays under ``PENETRATION_TOLERANCE``;
resting contacts sink ~1e-3 m) and ``energy`` (without edits or wind, the total
0.5 m v^2 + 0.5 w.I w + m g z never grows by more than ``ENERGY_TOLERANCE`` of its
start; I from the solid shape, the inertia the simulator uses).

Cameras: orbit, fixed, top-down (orthographic), and mounted on ``obj[i]`` (the
camera rides on object i, turning with it or only following its position).

Rendering: ``render.engine`` None or ``"tiny"`` draws each frame with PyBullet's
TinyRenderer as the simulation runs (no shadows: TinyRenderer's shadow map
only darkens a band of the ground); ``"cycles"`` simulates identically and
renders the recorded poses with Blender Cycles (soft sun shadows). Depth is
z in camera coordinates (m), 0 on the background; segmentation ids are 0
background, 1 ground and walls, i + 2 object i (the key is stored with the array).
"""

from __future__ import annotations

import math
import re
from typing import ClassVar, Mapping

import numpy as np

from ..base import (BatchEdit, Output, Rendered, Resources, Simulation, World, WorldBatch, WorldCheck, WorldInfo,
                    check_latent_values)
from ..cameras import CameraRig
from ..engines import bullet as pb
from ..outputs import allocate, camera_outputs, declared_states, state_output
from .scene import N_STATE, STATE_FIELDS, Body, Scene, Stage
from .simulation import Edit, Simulator, sample_edits

OBJECT_FIELDS = ("shape", "size", "mass", "hue", "x0", "y0", "z0", "yaw0", "vx0", "vy0", "vz0")
GLOBAL_LATENTS = ("gravity", "friction", "restitution")
GLOBAL_OPTIONAL = ("light", "wind", "drag")
OBJECT_OPTIONAL = ("restitution", "friction")
WALL_LATENTS = ("wall.x", "wall.height")
EDIT_TARGETS = ("obj[i].vx", "obj[i].vy", "obj[i].vz", "obj[i].mass", "gravity", "friction", "wind")

#: Valid range of every latent the worlds read: what the simulation and the cameras handle
#: faithfully (positions in metres, velocities in m/s, angles in radians, masses in kg).
RANGES: dict[str, tuple[float, float]] = {
    "gravity": (0.0, 50.0), "friction": (0.0, 2.0), "restitution": (0.0, 1.0), "light": (0.0, 3.0),
    "wind": (-50.0, 50.0), "drag": (0.0, 10.0), "wall.x": (-1.5, 1.5), "wall.height": (-1.0, 1.5),
    "obj[i].shape": (0.0, 2.0), "obj[i].size": (0.01, 0.5), "obj[i].mass": (1e-3, 1e4), "obj[i].hue": (0.0, 1.0),
    "obj[i].x0": (-10.0, 10.0), "obj[i].y0": (-10.0, 10.0), "obj[i].z0": (0.0, 20.0),
    "obj[i].yaw0": (-2 * math.pi, 2 * math.pi), "obj[i].vx0": (-30.0, 30.0), "obj[i].vy0": (-30.0, 30.0),
    "obj[i].vz0": (-30.0, 30.0), "obj[i].restitution": (0.0, 1.0), "obj[i].friction": (0.0, 2.0),
}
#: Valid range of a velocity edit (m/s; a kick's change, a set's value): the speeds the worlds accept for a start
#: (``obj[i].vx0`` .. ``vz0``). Not derived from the step and the smallest object (0.01 m at 1 / 240 s would give
#: 2.4 m/s) because the worlds already simulate starts at up to 30 m/s faithfully (``PENETRATION_TOLERANCE``).
EDIT_RANGES: dict[str, tuple[float, float]] = {f"obj[i].{v}": RANGES[f"obj[i].{v}0"] for v in ("vx", "vy", "vz")}
STATE_UNITS = {"x": "m", "y": "m", "z": "m", "qx": "1", "qy": "1", "qz": "1", "qw": "1", "vx": "m/s", "vy": "m/s",
               "vz": "m/s", "wx": "rad/s", "wy": "rad/s", "wz": "rad/s"}

#: Largest contact penetration (m) a plausible simulation may show; hard impacts at 8 substeps reach ~4 cm.
PENETRATION_TOLERANCE = 0.06
#: Energy may not grow by more than this share of the initial energy (plus 1 mJ) without an edit or wind.
ENERGY_TOLERANCE = 0.05

_OBJ = re.compile(r"^obj\[(\d+)\]\.([A-Za-z_][A-Za-z0-9_]*)$")


def state_names(n_objects: int) -> tuple[str, ...]:
    """Names of the simulated state columns for ``n_objects`` objects, object-major."""
    return tuple(f"obj[{i}].{f}" for i in range(int(n_objects)) for f in STATE_FIELDS)


def object_count(latents: Mapping[str, object]) -> int:
    """N: how many ``obj[i].mass`` latents there are (they must be obj[0] .. obj[N-1])."""
    idx = sorted(int(m.group(1)) for k in latents if (m := _OBJ.match(k)) and m.group(2) == "mass")
    if idx != list(range(len(idx))):
        raise KeyError(f"object latents must be numbered obj[0] .. obj[N-1]; found mass for objects {idx}")
    return len(idx)


def object_landmarks(batch: WorldBatch, states: np.ndarray, n_obj: int, first_id: int, base: int = 0,
                     stride: int = N_STATE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objects as landmarks: centres (n, T, N, 3) m read from ``states`` (n, T, S) where object k's x y z stand at
    columns ``base + stride * k`` on, their segmentation ids ``first_id + k`` (N,), and radii (n, N, 2) m from the
    ``obj[k].size`` latents: every shape holds a ball of radius size and lies in one of radius size * sqrt(3) (a
    cube's corner)."""
    n, T = states.shape[:2]
    centres = states[:, :, base:base + stride * n_obj].reshape(n, T, n_obj, stride)[..., 0:3].copy()
    sizes = np.stack([np.asarray(batch.latents[f"obj[{k}].size"], dtype=np.float64) for k in range(n_obj)], axis=1)
    radius = np.stack([sizes, sizes * math.sqrt(3.0)], axis=-1)
    return centres, first_id + np.arange(n_obj), radius


def _penetration(world: "PhysicsWorld", batch: WorldBatch, sim: Simulation) -> list[str]:
    pen = sim.extras["max_penetration"]
    return [f"sample {int(batch.index[i])}: objects interpenetrate by {pen[i]:.3f} m (tolerance {PENETRATION_TOLERANCE} m)"
            for i in np.flatnonzero(pen > PENETRATION_TOLERANCE)]


def _energy(world: "PhysicsWorld", batch: WorldBatch, sim: Simulation) -> list[str]:
    out = []
    wind = batch.latents.get("wind", np.zeros(len(batch)))
    for i in range(len(batch)):
        if any(int(e.frame[i]) >= 0 for e in batch.edits) or float(wind[i]) != 0.0:
            continue  # edits and wind add energy by design
        energy = sim.extras["energy"][i]
        limit = energy[0] + ENERGY_TOLERANCE * abs(energy[0]) + 1e-3
        if energy.max() > limit:
            out.append(f"sample {int(batch.index[i])}: energy grows from {energy[0]:.4g} J to {energy.max():.4g} J without an edit")
    return out


def _info(name: str, description: str, *, optional: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> WorldInfo:
    required = GLOBAL_LATENTS + tuple(f"obj[i].{f}" for f in OBJECT_FIELDS)
    return WorldInfo(
        name=name,
        kind="video",
        engine="pybullet",
        engines=("tiny", "cycles"),
        description=description,
        latents=tuple(n for n in required if n not in drop),
        optional_latents=tuple(drop) + GLOBAL_OPTIONAL + tuple(f"obj[i].{f}" for f in OBJECT_OPTIONAL) + optional,
        ranges=RANGES,
        discrete=("obj[i].shape",),
        states=tuple(f"obj[i].{f}" for f in STATE_FIELDS),
        state_units={f"obj[i].{f}": u for f, u in STATE_UNITS.items()},
        edit_targets=EDIT_TARGETS,
        edit_ranges=EDIT_RANGES,
        annotations=("depth", "segmentation"),
        camera_kinds=("orbit", "fixed", "mounted", "topdown"),
        mounts=("obj[i]",),
        max_objects={"obj": pb.MAX_OBJECTS},
        requires=("pybullet",),
        engine_requires=(("cycles", ("bpy", "OpenEXR")),),
    )


class SimulatedVideoWorld(World):
    """A video world that simulates state series and films them as it goes (the physics and robotics worlds).

    A subclass sets ``self._outputs`` (its declared outputs) and ``self._stored`` (the columns of the simulated
    states the store keeps) and implements ``_run(batch, out)``: simulate every sample and, with ``out`` (the
    allocated output arrays), film it; and ``_landmarks(batch, sim)``: known centres (n, T, K, 3) m, their
    segmentation ids (K,) and radii (n, K, 2) m. An ``inputs`` output, where declared, takes ``sim.inputs``.
    """

    _outputs: tuple[Output, ...]
    _stored: list[int]

    def _run(self, batch: WorldBatch, out: dict[str, np.ndarray] | None) -> Simulation:
        raise NotImplementedError

    def _landmarks(self, batch: WorldBatch, sim: Simulation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError

    def simulate(self, batch: WorldBatch) -> Simulation:
        """The state series (n, T, S) float64 (and inputs, extras) without filming, bitwise equal to what ``render`` films."""
        return self._run(batch, None)

    def render(self, batch: WorldBatch) -> Rendered:
        out = allocate(self._outputs, len(batch))
        sim = self._run(batch, out)
        if "states" in out:
            out["states"][:] = sim.states[:, :, self._stored]
        if "inputs" in out:
            out["inputs"][:] = sim.inputs
        centres, ids, radius = self._landmarks(batch, sim)
        return Rendered(out, landmarks=centres, landmark_ids=ids, landmark_radius=radius, simulation=sim)


class PhysicsWorld(SimulatedVideoWorld):
    """The shared simulator world; subclasses set ``info``, the stage (framing, scenery) and defaults.

    ``simulate`` returns every object's state series (n, T, 13 N) float64 with ``extras`` ``energy`` (n, T) joules
    and ``max_penetration`` (n,) metres, for the world's checks.

    Simulation (:mod:`.simulation`) and the two views (TinyRenderer in :mod:`.views`, Blender in
    :mod:`.cycles_view`) share the scene data of :mod:`.scene`; none imports another's engine.
    """

    info: ClassVar[WorldInfo]
    checks = (WorldCheck("penetration", "contacts never sink deeper than PENETRATION_TOLERANCE", _penetration),
              WorldCheck("energy", "no energy appears without an edit or wind", _energy))
    #: Framing and scenery (camera aim point and distance, ground).
    STAGE: ClassVar[Stage] = Stage()
    #: Defaults of optional latents (per object without the ``obj[i].`` prefix).
    DEFAULTS: ClassVar[dict[str, float]] = {"light": 1.0, "wind": 0.0, "drag": 0.0}
    OBJECT_DEFAULTS: ClassVar[dict[str, float]] = {}
    HAS_WALL: ClassVar[bool] = False

    @classmethod
    def rig(cls, spec) -> CameraRig:
        """The spec's cameras on this world's stage."""
        st = cls.STAGE
        return CameraRig.from_settings(spec.render, st.target, st.base_distance, st.ground_outer)

    @classmethod
    def resources(cls, spec) -> Resources:
        """One CPU per task, and one GPU when Cycles films on ``device: gpu``."""
        gpu = spec.render.engine == "cycles" and spec.render.device == "gpu"
        return Resources(cpus=1.0, gpus=1.0 if gpu else 0.0)

    @classmethod
    def segmentation_ids(cls, n_objects: int) -> dict[int, str]:
        ids = {pb.BACKGROUND_ID: "background", pb.SCENERY_ID: "ground and walls"}
        ids.update({pb.FIRST_OBJECT_ID + k: f"obj[{k}]" for k in range(n_objects)})
        return ids

    @classmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        n_obj = spec.object_count("obj") or 0
        out = camera_outputs(spec, cls.rig(spec), rgb="frames", segmentation_ids=cls.segmentation_ids(n_obj))
        names = declared_states(spec, cls.info.states)
        if names:
            units = {n: STATE_UNITS[n.rsplit(".", 1)[1]] for n in names}
            out.append(state_output(spec, names, units))
        return tuple(out)

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        rs = spec.render
        name = self.info.name
        if rs.engine not in (None, "tiny", "cycles"):
            raise ValueError(f"{name} renders with engine 'tiny' (PyBullet TinyRenderer) or 'cycles', got {rs.engine!r}")
        video = getattr(spec, "video", None)
        if video is None:
            raise ValueError(f"{name} renders videos; the spec needs `video: {{fps: 30, frames: 60}}`")
        self.engine = rs.engine or "tiny"
        self.n_frames = int(video.n_frames)
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        n_obj = spec.object_count("obj") or 0
        full = state_names(n_obj)
        self._stored = [full.index(s) for s in declared_states(spec, self.info.states)]
        self.sim = Simulator(self.STAGE, video.fps, video.substeps, self.n_frames)
        self.client = self.sim.client
        self._cycles = self._tiny = None
        try:
            want = dict(depth="depth" in rs.annotations, segmentation="segmentation" in rs.annotations)
            if self.engine == "cycles":
                from .cycles_view import CyclesView  # noqa: PLC0415 - Blender only when asked for

                self._cycles = CyclesView(self.STAGE, self.rig, name, rs, threads, rgb="frames")
            else:
                from .views import TinyView  # noqa: PLC0415

                self._tiny = TinyView(self.client, self.rig, rgb="frames", **want)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- latents

    def _scenes(self, batch: WorldBatch) -> list[Scene]:
        lat = {k: np.asarray(v, dtype=np.float64) for k, v in batch.latents.items()}
        n = len(batch)
        name = self.info.name
        n_obj = object_count(lat)
        if n_obj == 0:
            raise KeyError(f"{name} needs at least one object: latents obj[0].mass, obj[0].size, ...")
        if n_obj > pb.MAX_OBJECTS:
            raise ValueError(f"{name} supports at most {pb.MAX_OBJECTS} objects, got {n_obj}")
        wanted = [g for g in self.info.latents if not g.startswith("obj[")]
        for k in range(n_obj):
            wanted += [f"obj[{k}].{f}" for f in OBJECT_FIELDS if f"obj[i].{f}" in self.info.latents]
        missing = [w for w in wanted if w not in lat]
        if missing:
            raise KeyError(f"{name} needs latents {missing} (objects: {n_obj})")
        for key, arr in lat.items():
            if (key in RANGES or _OBJ.match(key)) and arr.shape != (n,):
                raise ValueError(f"latent {key!r} has shape {arr.shape}, expected ({n},)")
        check_latent_values(self.info, lat)
        if self.HAS_WALL and (("wall.x" in lat) != ("wall.height" in lat)):
            raise KeyError(f"{name}: give both wall.x and wall.height, or neither")

        def glob(key: str) -> np.ndarray:
            return lat[key] if key in lat else np.full(n, float(self.DEFAULTS[key]))

        def obj(k: int, f: str, default: np.ndarray | None = None) -> np.ndarray:
            key = f"obj[{k}].{f}"
            if key in lat:
                return lat[key]
            if f in self.OBJECT_DEFAULTS:
                return np.full(n, float(self.OBJECT_DEFAULTS[f]))
            if default is not None:
                return default
            raise KeyError(f"{name} needs latent {key!r}")

        g, fr, rest = glob("gravity"), glob("friction"), glob("restitution")
        light, wind, drag = glob("light"), glob("wind"), glob("drag")
        cols = []
        for k in range(n_obj):
            shape = obj(k, "shape")
            code = np.rint(shape)
            if not np.all(np.abs(shape - code) < 1e-6):
                raise ValueError(f"obj[{k}].shape must be 0 (sphere), 1 (box) or 2 (cylinder)")
            size = obj(k, "size")
            cols.append({
                "shape": code.astype(int), "size": size, "mass": obj(k, "mass"), "hue": obj(k, "hue"),
                "x0": obj(k, "x0"), "y0": obj(k, "y0"), "z0": obj(k, "z0", default=size),
                "yaw0": obj(k, "yaw0"), "vx0": obj(k, "vx0"), "vy0": obj(k, "vy0"), "vz0": obj(k, "vz0"),
                "friction": obj(k, "friction", default=fr), "restitution": obj(k, "restitution", default=rest),
            })
        out = []
        for i in range(n):
            wall = None
            if self.HAS_WALL and "wall.x" in lat and lat["wall.height"][i] > 0:
                wall = (float(lat["wall.x"][i]), float(lat["wall.height"][i]))
            bodies = tuple(
                Body(shape=int(c["shape"][i]), size=float(c["size"][i]), mass=float(c["mass"][i]), rgb=pb.hsv_to_rgb(c["hue"][i]),
                     position=(float(c["x0"][i]), float(c["y0"][i]), float(c["z0"][i])), orientation=pb.yaw_quaternion(c["yaw0"][i]),
                     velocity=(float(c["vx0"][i]), float(c["vy0"][i]), float(c["vz0"][i])),
                     friction=float(c["friction"][i]), restitution=float(c["restitution"][i]))
                for c in cols
            )
            out.append(Scene(gravity=float(g[i]), friction=float(fr[i]), restitution=float(rest[i]), light=float(light[i]),
                             wind=float(wind[i]), drag=float(drag[i]), wall=wall, bodies=bodies))
        return out

    def _edits(self, batch: WorldBatch, n_obj: int) -> list[list[Edit]]:
        return sample_edits(batch, lambda e: self._edit_key(e, n_obj))

    def _edit_key(self, e: BatchEdit, n_obj: int) -> tuple:
        t = e.target
        if t in ("gravity", "friction", "wind"):
            return (t,)
        m = _OBJ.match(t)
        if m and m.group(2) in ("vx", "vy", "vz", "mass"):
            k = int(m.group(1))
            if k >= n_obj:
                raise ValueError(f"temporal edit targets {t!r} but the batch has {n_obj} objects")
            if m.group(2) == "mass":
                return ("mass", k)
            return ("v", k, "xyz".index(m.group(2)[1]))
        raise ValueError(f"{self.info.name} cannot edit {t!r}; expected one of {', '.join(EDIT_TARGETS)} (i = object index)")

    # ---------------------------------------------------------------- simulate and film

    def _run(self, batch: WorldBatch, out: dict[str, np.ndarray] | None) -> Simulation:
        scenes = self._scenes(batch)
        n, T = len(batch), self.n_frames
        n_obj = len(scenes[0].bodies)
        edits = self._edits(batch, n_obj)
        states = np.zeros((n, T, n_obj * N_STATE), dtype=np.float64)
        energy = np.zeros((n, T), dtype=np.float64)
        pen = np.zeros(n, dtype=np.float64)
        for i, scene in enumerate(scenes):
            cb = self._tiny.callback(scene, out, i) if out is not None and self._tiny is not None else None
            res = self.sim.run(scene, edits[i], cb)
            states[i], energy[i], pen[i] = res.states, res.energy, res.max_penetration
            if out is not None and self._cycles is not None:
                self._cycles.render_sample(scene, res.states, out, i)
        return Simulation(states, state_names(n_obj), extras={"energy": energy, "max_penetration": pen})

    def _landmarks(self, batch: WorldBatch, sim: Simulation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return object_landmarks(batch, sim.states, sim.states.shape[2] // N_STATE, pb.FIRST_OBJECT_ID)

    def close(self) -> None:
        for attr in ("_cycles",):
            view = getattr(self, attr, None)
            if view is not None:
                view.close()
                setattr(self, attr, None)
        sim = getattr(self, "sim", None)
        if sim is not None:
            sim.close()
            self.sim = None


class FallingWorld(PhysicsWorld):
    """Objects dropped onto a grey checkered floor.

    Framed (ring views, 40 deg fov) for x0, y0 in [-0.6, 0.6] and tops up to ~1.8 m.
    """

    info: ClassVar[WorldInfo] = _info(
        "physics/falling",
        "N rigid objects (spheres, boxes, cylinders) fall under gravity onto the ground, bounce and settle.",
        drop=("obj[i].yaw0", "obj[i].vx0", "obj[i].vy0", "obj[i].vz0"),
    )
    STAGE = Stage(target=(0.0, 0.0, 0.7), base_distance=3.5)
    OBJECT_DEFAULTS = {"yaw0": 0.0, "vx0": 0.0, "vy0": 0.0, "vz0": 0.0}


class ProjectileWorld(PhysicsWorld):
    """Objects thrown along +x over a green field, optionally against a wall, with wind and drag.

    Framed (ring views, 40 deg fov) for x in [-1.6, 1.6] (front view) and apex below ~1.7 m.
    """

    info: ClassVar[WorldInfo] = _info(
        "physics/projectile",
        "N rigid objects are thrown along +x under gravity, wind and quadratic drag, optionally hit a wall, and land.",
        optional=WALL_LATENTS,
    )
    STAGE = Stage(target=(0.0, 0.0, 0.5), base_distance=5.0, ground_half=6.0, ground_tiles=24,
                  ground_colors=((0.70, 0.78, 0.66), (0.56, 0.64, 0.52)))
    HAS_WALL = True


class CollisionWorld(PhysicsWorld):
    """Objects sliding into each other on a slippery table top (framed for |x|, |y| <= ~0.9 m)."""

    info: ClassVar[WorldInfo] = _info(
        "physics/collision",
        "N rigid objects slide and collide on a low-friction table top; momentum passes between them on impact.",
        drop=("friction", "obj[i].z0", "obj[i].yaw0", "obj[i].vz0"),
    )
    STAGE = Stage(target=(0.0, 0.0, 0.05), base_distance=2.6, ground_half=3.0, ground_tiles=20,
                  ground_colors=((0.78, 0.70, 0.60), (0.66, 0.57, 0.47)))
    DEFAULTS = {**PhysicsWorld.DEFAULTS, "friction": 0.1}
    OBJECT_DEFAULTS = {"yaw0": 0.0, "vz0": 0.0}  # z0 defaults to size: resting on the table
