"""The life cycle every robotics world shares (:class:`BulletVideoWorld`): one PyBullet client and room
built once per world instance, a TinyRenderer film of the spec's cameras, the spec's latents and
temporal edits read per batch, boxes re-created per sample, and a step loop that applies the edits,
asks the world's controller for a command, steps the physics and records (then films) each frame.
Every ``REBUILD_EVERY`` samples the client is closed and the scene built again in a new one: a
removed box's collision and visual shapes stay in PyBullet until its client closes (~8 kB a box,
~17 MB per 1000 two-box samples measured), and a sample's result never depends on the samples
before it, so where a rebuild falls changes nothing (memory flat, results bitwise the same).

A world (``robotics/arm``, ``robotics/mobile``) sets its :class:`~crlgen.scenes.base.WorldInfo`, its
class constants and the hooks below; what it does not override is the same for all of them.

Frame semantics (the physics worlds', :mod:`crlgen.scenes.physics.simulation`): frame 0 is the
initial state; frame t the state after t / fps s of ``substeps`` fixed steps. An edit at frame f is in
force at frames f .. end - 1: at a frame t >= 1 it acts on the steps into frame t, at frame 0 on the
initial state before frame 0 is recorded (``states[:f]`` equal the unedited run bitwise, and frame f is
the first that can differ, frame 0 included): a velocity edit ``obj[i].vx|vy|vz`` once at the start of
frame f's steps (at frame 0 on the initial velocity, which ``states[0]`` then holds), ``obj[i].mass``
and the goal's coordinates while in force (at frame 0 the goal marker is filmed at the edited goal and
the controller steers to it from the first step). Each frame's states are read right after its last
step and the frame is filmed from that same simulator state (ground truth never lags the physics).
"""

from __future__ import annotations

import math
import re
from typing import Any, ClassVar, Mapping

import numpy as np

from ..base import BatchEdit, Output, Simulation, WorldBatch, WorldInfo, read_latents
from ..cameras import CameraRig
from ..engines import bullet as pb
from ..outputs import camera_outputs, declared_states, input_output, state_output
from ..physics.simulation import Edit, EditSchedule, sample_edits
from ..physics.worlds import SimulatedVideoWorld, object_landmarks
from . import _rooms

#: Per-object state columns (world frame: centre m, quaternion x y z w, linear velocity m/s).
OBJ_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw", "vx", "vy", "vz")
OBJ_UNITS = {f"obj[i].{f}": ("m" if f in "xyz" else "m/s" if f[0] == "v" else "1") for f in OBJ_FIELDS}
_OBJ = re.compile(r"^obj\[(\d+)\]\.([A-Za-z_][A-Za-z0-9_]*)$")
#: The light's elevation (rad); its azimuth is the ``light.azimuth`` latent.
LIGHT_ELEVATION = 0.9


def tiny_video_info(name: str, description: str, **fields) -> WorldInfo:
    """The :class:`~crlgen.scenes.base.WorldInfo` of a PyBullet video world filmed with TinyRenderer: colour, depth and
    segmentation from orbit, fixed, mounted and top-down cameras; ``fields`` give the rest (latents, ranges, states ...)."""
    return WorldInfo(name=name, kind="video", engine="pybullet", engines=("tiny",), description=description,
                     annotations=("depth", "segmentation"), camera_kinds=("orbit", "fixed", "mounted", "topdown"),
                     requires=("pybullet",), **fields)


def penetration(world: "BulletVideoWorld", batch: WorldBatch, sim: Simulation) -> list[str]:
    """The ``penetration`` check: the deepest contact of a sample's run stays under the world's
    ``RUN_PENETRATION_TOLERANCE`` (m)."""
    tol = type(world).RUN_PENETRATION_TOLERANCE
    pen = sim.extras["max_penetration"]
    return [f"sample {int(batch.index[i])}: bodies interpenetrate by {pen[i]:.3f} m (tolerance {tol} m)"
            for i in np.flatnonzero(pen > tol)]


class BulletVideoWorld(SimulatedVideoWorld):
    """A PyBullet video world filmed with TinyRenderer (see the module docstring).

    Hooks a world implements: :meth:`_configure` (its parameters), :meth:`_state_names`,
    :meth:`_segmentation_ids`, :meth:`_build_scene` (its bodies, after the room), :meth:`_setup_agent`
    (its robot and controller values per sample), :meth:`_controller`, :meth:`_command` (one frame's
    command), :meth:`_record` (one frame's states) and :meth:`_segments` (segmentation lookup);
    optionally :meth:`_setup_stage`, :meth:`_after_steps`, :meth:`_end_sample`, :meth:`_obstacles`,
    :meth:`_explain_extra`, :meth:`_check_latents`, :meth:`_landmarks`.

    ``simulate`` returns states (n, T, S) and inputs (n, T, len(INPUTS)) float64 with ``extras["max_penetration"]``
    (n,) m, the deepest contact of each run (the ``penetration`` check).
    """

    #: Per-frame inputs (the controller's commands) and their units.
    INPUTS: ClassVar[tuple[str, ...]]
    INPUT_UNITS: ClassVar[Mapping[str, str]]
    #: Latents the world reads (``[i]`` per object) and defaults of optional ones.
    REQUIRED: ClassVar[tuple[str, ...]]
    DEFAULTS: ClassVar[Mapping[str, float]] = {}
    #: Camera aim point (m), the distance a camera of ``distance: 1`` keeps (m), the scene radius (m).
    TARGET: ClassVar[tuple[float, float, float]]
    BASE_DISTANCE: ClassVar[float]
    SCENE_RADIUS: ClassVar[float]
    #: An example ``video`` setting for the error a spec without one gets.
    VIDEO_EXAMPLE: ClassVar[str] = "{fps: 10, frames: 40}"
    #: Parameters that fix the store's layout or the scene built once (a domain may not change them).
    LAYOUT_PARAMETERS: ClassVar[tuple[str, ...]] = ("room",)
    #: Whether the room has the work table; the boxes' resting height (m) and spinning friction.
    TABLE: ClassVar[bool] = True
    BOX_FLOOR: ClassVar[float] = 0.0
    BOX_SPINNING_FRICTION: ClassVar[float] = 0.0
    #: Goal axes and velocity axes a temporal edit may target (``goal.x``, ``obj[i].vx`` ...).
    GOAL_AXES: ClassVar[str] = "xyz"
    VELOCITY_AXES: ClassVar[str] = "xyz"
    #: Segmentation id of obj[0]; closest-point depth (m) that makes a start infeasible; deepest contact a run may show.
    FIRST_OBJECT_ID: ClassVar[int]
    PENETRATION_TOLERANCE: ClassVar[float] = 1e-3
    RUN_PENETRATION_TOLERANCE: ClassVar[float]
    #: Samples set up on one PyBullet client before a new one is built. Each sample's boxes leave their collision and
    #: visual shapes in the server (PyBullet cannot remove a shape a removed body used, nor resize one), ~8 kB a box;
    #: closing the client frees them, so memory stays flat over a long shard. A sample's result does not depend on
    #: the samples before it on the same client, so it does not depend on where a rebuild falls (tested bitwise).
    REBUILD_EVERY: ClassVar[int] = 100

    # ---------------------------------------------------------------- declared without an engine

    @classmethod
    def edit_ranges(cls, spec) -> tuple[Mapping[str, tuple[float, float]], str]:
        """Velocity edits (``obj[i].vx`` ...; a kick's change, a set's value, m/s) bounded by the spec's own simulation
        step dt = 1 / (``video.fps`` x ``video.substeps``): at most the smallest half side ``obj[i].size`` can
        have, per step, so that a kicked body cannot pass through a finger, another body or the table within one
        step (the tunnelling of discrete collision detection; Ericson 2004, Real-Time Collision Detection, ch. 9).
        ``info.edit_ranges`` holds the bound at the catalogue's dt = 1/240 s; a coarser step lowers it."""
        video = getattr(spec, "video", None)
        if video is None or not cls.info.edit_ranges:
            return cls.info.edit_ranges, ""
        rate = float(video.fps) * int(video.substeps)
        size = cls.info.ranges["obj[i].size"][0]
        kick = size * rate
        ranges = {name: (-kick, kick) for name in cls.info.edit_ranges}
        return ranges, (f"a kick may move a body at most {size:g} m, the smallest half side, per simulation step of "
                        f"1/{rate:g} s (video.fps x video.substeps)")

    @classmethod
    def rig(cls, spec) -> CameraRig:
        """The spec's cameras around this world's aim point."""
        return CameraRig.from_settings(spec.render, cls.TARGET, cls.BASE_DISTANCE, cls.SCENE_RADIUS)

    @classmethod
    def _common_problems(cls, spec) -> list[str]:
        """The render engine (TinyRenderer only) and domains that would change a layout parameter."""
        name = cls.info.name
        out = []
        if spec.render.engine not in (None, "tiny"):
            out.append(f"render.engine: {name} renders with 'tiny' (PyBullet TinyRenderer), got {spec.render.engine!r}")
        for dname, dom in spec.domains.items():
            for p in cls.LAYOUT_PARAMETERS:
                if p in dom.parameters:
                    out.append(f"domains.{dname}.parameters.{p}: the {p} fixes the store's layout and scene; "
                               f"make one dataset per {p}")
        return out

    @classmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        n_obj = spec.object_count("obj") or 0
        out = camera_outputs(spec, cls.rig(spec), rgb="frames", segmentation_ids=cls._segmentation_ids(spec, n_obj))
        names = declared_states(spec, cls.info.states)
        if names:
            units = {n: cls.info.state_units[re.sub(r"\[\d+\]", "[i]", n)] for n in names}
            out.append(state_output(spec, names, units))
        out.append(input_output(spec, cls.INPUTS, cls.INPUT_UNITS))
        return tuple(out)

    @classmethod
    def _segmentation_ids(cls, spec, n_objects: int) -> dict[int, str]:
        """Instance id -> what it marks (raises ValueError naming a bad parameter)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- life cycle

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        problems = type(self).check(spec)
        if problems:
            raise ValueError(problems[0])
        video = getattr(spec, "video", None)
        if video is None:
            raise ValueError(f"{self.info.name} renders videos; the spec needs `video: {self.VIDEO_EXAMPLE}`")
        self.room_model = _rooms.room_model(spec.parameters["room"])
        self.fps, self.substeps, self.n_frames = float(video.fps), int(video.substeps), int(video.n_frames)
        self.dt = 1.0 / (self.fps * self.substeps)
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        self.n_obj = spec.object_count("obj") or 0
        self._configure(spec)
        self._full = self._state_names()
        self._stored = [self._full.index(s) for s in declared_states(spec, self.info.states)]
        #: Column of obj[0].x in a state row (objects follow, 10 columns each).
        self._obj_base = self._full.index("obj[0].x") if self.n_obj else len(self._full)
        self._objects: list[int] = []
        self.client: pb.BulletScene | None = None
        try:
            self._connect()
        except BaseException:
            self.close()
            raise

    def _configure(self, spec) -> None:
        """Read the world's own parameters (after the common ones, before the state names and the engine)."""

    def _state_names(self) -> tuple[str, ...]:
        """Every simulated state column, in order."""
        raise NotImplementedError

    def _connect(self) -> None:
        """A new PyBullet client with the scene built and a film of it."""
        from ._view import TinyFilm  # noqa: PLC0415

        self.client = pb.BulletScene()
        self._build()
        ann = self.spec.render.annotations
        self._film = TinyFilm(self.client.bc, self.client.p, self.rig, rgb="frames", depth="depth" in ann,
                              segmentation="segmentation" in ann)
        self._setups = 0

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
            self.client = None

    # ---------------------------------------------------------------- the scene, built once

    def _build(self) -> None:
        import pybullet_data  # noqa: PLC0415 - ships with pybullet

        bc, p = self.client.bc, self.client.p
        data = pybullet_data.getDataPath()
        bc.resetSimulation()
        bc.setPhysicsEngineParameter(fixedTimeStep=self.dt, numSubSteps=1, deterministicOverlappingPairs=1)
        bc.setGravity(0.0, 0.0, -9.81)
        self._room = _rooms.build_room(bc, p, self.room_model, data, table=self.TABLE)
        self._build_scene(bc, p, data)

    def _build_scene(self, bc, p, data: str) -> None:
        """Add the world's own bodies (robot, goal marker, panel) after the room."""
        raise NotImplementedError

    def _lut(self) -> np.ndarray:
        from ._view import segmentation_lut  # noqa: PLC0415

        return segmentation_lut(*self._segments())

    def _segments(self) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
        """Instance ids per (body, link) and per whole body, for :func:`._view.segmentation_lut`."""
        raise NotImplementedError

    # ---------------------------------------------------------------- latents and edits

    def _latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        """The batch's latents as float64 (n,) arrays, checked against the world's ranges, defaults filled in."""
        need = [name.replace("[i]", f"[{k}]") for name in self.REQUIRED for k in range(self._count(name))]
        defaults = {name.replace("[i]", f"[{k}]"): d for name, d in self.DEFAULTS.items() for k in range(self._count(name))}
        try:
            lat = read_latents(self.info, batch.latents, len(batch), need, defaults)
        except KeyError as e:
            raise KeyError(f"{e.args[0]} (objects: {self.n_obj})") from None
        self._check_latents(lat)
        return lat

    def _count(self, template: str) -> int:
        """How many latents a template names: objects for ``obj[i]``, 1 for a global."""
        return self.n_obj if "[i]" in template else 1

    def _check_latents(self, lat: Mapping[str, np.ndarray]) -> None:
        """A world's own checks of latent values (raise ValueError naming the latent)."""

    def _edits(self, batch: WorldBatch) -> list[list[Edit]]:
        """Per sample: the temporal edits in step terms (:func:`..physics.simulation.sample_edits`)."""
        return sample_edits(batch, self._edit_key)

    def _edit_key(self, e: BatchEdit) -> tuple:
        m = _OBJ.match(e.target)
        goal = [f"goal.{a}" for a in self.GOAL_AXES]
        if e.target in goal:
            return ("goal", self.GOAL_AXES.index(e.target[-1]))
        moves = {f"v{a}" for a in self.VELOCITY_AXES}
        if m and (m.group(2) in moves or m.group(2) == "mass") and int(m.group(1)) < self.n_obj:
            k = int(m.group(1))
            return ("mass", k) if m.group(2) == "mass" else ("v", k, self.VELOCITY_AXES.index(m.group(2)[1]))
        raise ValueError(f"{self.info.name} cannot edit {e.target!r}; expected one of {', '.join(self.info.edit_targets)} "
                         f"(i < {self.n_obj})")

    # ---------------------------------------------------------------- one sample's set-up

    def _clear(self) -> None:
        for body in self._objects:
            self.client.bc.removeBody(body)
        # the boxes' primitive shapes stay until the client closes (see REBUILD_EVERY)
        self._objects = []

    def _setup(self, lat: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
        """Reset the scene to sample ``i``'s initial configuration; returns its per-sample values (``sizes``,
        ``masses``, ``frictions`` of the boxes, ``goal``, ``light`` direction, ``diffuse`` and the world's own)."""
        self._clear()
        self._setups += 1
        if self._setups > self.REBUILD_EVERY:  # frees the shapes of the boxes before (see REBUILD_EVERY)
            self.close()
            self._connect()
            self._setups = 1
        bc = self.client.bc
        for body, rgba in zip(self._room.floor, _rooms.floor_colours(lat["floor.hue"][i])):
            bc.changeVisualShape(body, -1, rgbaColor=rgba)
        self._setup_stage(lat, i)
        cfg = self._add_boxes(lat, i)
        cfg.update(self._setup_agent(lat, i))
        az = float(lat["light.azimuth"][i])
        cfg["light"] = (math.cos(az) * math.cos(LIGHT_ELEVATION), math.sin(az) * math.cos(LIGHT_ELEVATION),
                        math.sin(LIGHT_ELEVATION))
        cfg["diffuse"] = float(lat["light.intensity"][i]) * 0.55
        return cfg

    def _setup_stage(self, lat: Mapping[str, np.ndarray], i: int) -> None:
        """Per-sample scenery besides the floor's colours (the table's colour and friction)."""

    def _add_boxes(self, lat: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
        """Create sample ``i``'s boxes (``obj[k].size`` half side m, ``mass`` kg, ``friction``, ``hue``, ``x0``, ``y0``,
        ``yaw0`` rad), resting at ``BOX_FLOOR``; returns their ``sizes`` (array), ``masses`` and ``frictions``."""
        bc, p = self.client.bc, self.client.p
        sizes, masses, frictions = [], [], []
        for k in range(self.n_obj):
            s, m = float(lat[f"obj[{k}].size"][i]), float(lat[f"obj[{k}].mass"][i])
            col = bc.createCollisionShape(p.GEOM_BOX, halfExtents=[s, s, s])
            vis = bc.createVisualShape(p.GEOM_BOX, halfExtents=[s, s, s],
                                       rgbaColor=(*pb.hsv_to_rgb(lat[f"obj[{k}].hue"][i]), 1.0))
            pos = [float(lat[f"obj[{k}].x0"][i]), float(lat[f"obj[{k}].y0"][i]), self.BOX_FLOOR + s]
            body = bc.createMultiBody(m, col, vis, basePosition=pos, baseOrientation=pb.yaw_quaternion(lat[f"obj[{k}].yaw0"][i]))
            bc.changeDynamics(body, -1, lateralFriction=float(lat[f"obj[{k}].friction"][i]), restitution=0.0,
                              rollingFriction=0.0, spinningFriction=self.BOX_SPINNING_FRICTION, linearDamping=0.0,
                              angularDamping=0.0, localInertiaDiagonal=list(pb.inertia_diagonal(pb.BOX, s, m)),
                              activationState=p.ACTIVATION_STATE_DISABLE_SLEEPING)
            self._objects.append(body)
            sizes.append(s)
            masses.append(m)
            frictions.append(float(lat[f"obj[{k}].friction"][i]))
        return {"sizes": np.array(sizes), "masses": masses, "frictions": frictions}

    def _setup_agent(self, lat: Mapping[str, np.ndarray], i: int) -> dict[str, Any]:
        """Reset the robot and place the goal for sample ``i``; returns ``goal`` (m) and the controller's values."""
        raise NotImplementedError

    def _place_goal(self, goal: np.ndarray) -> None:
        """Move the goal marker to ``goal`` (m)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- feasibility

    def feasible(self, batch: WorldBatch) -> np.ndarray:
        """(n,) bool: False where a sample's initial configuration interpenetrates (see :meth:`explain_infeasible`)."""
        return np.array([r == "" for r in self.explain_infeasible(batch)], dtype=bool)

    def explain_infeasible(self, batch: WorldBatch) -> list[str]:
        """One reason per sample ("" where feasible): the first pair of bodies whose PyBullet closest points
        (``getClosestPoints``) lie deeper than ``PENETRATION_TOLERANCE`` m, a box with a later box or with one of
        the world's :meth:`_obstacles`, and how deep (``"obj[0] and obj[1] interpenetrate by 0.012 m"``); else the
        world's own reason (:meth:`_explain_extra`)."""
        lat = self._latents(batch)
        out = []
        for i in range(len(batch)):
            cfg = self._setup(lat, i)
            bc = self.client.bc
            obstacles = self._obstacles()
            reason = ""
            for k, body in enumerate(self._objects):
                others = [(b, f"obj[{k + 1 + m}]") for m, b in enumerate(self._objects[k + 1:])] + obstacles
                for other, name in others:
                    pts = bc.getClosestPoints(body, other, distance=0.0)
                    depth = -min(pt[8] for pt in pts) if pts else 0.0
                    if depth > self.PENETRATION_TOLERANCE and not reason:
                        reason = f"obj[{k}] and {name} interpenetrate by {depth:.3f} m"
            out.append(reason or self._explain_extra(lat, i, cfg))
        self._clear()
        return out

    def _obstacles(self) -> list[tuple[int, str]]:
        """Bodies a box may not start inside, with their names."""
        return []

    def _explain_extra(self, lat: Mapping[str, np.ndarray], i: int, cfg: dict[str, Any]) -> str:
        """A world's own reason why sample ``i`` cannot start ("" where it can)."""
        return ""

    # ---------------------------------------------------------------- simulate and film

    def _sample(self, lat, i: int, edits: list[Edit], out: dict[str, np.ndarray] | None) -> tuple:
        """Simulate (and, with ``out``, film) sample ``i``: (states (T, S), inputs (T, len(INPUTS)), deepest penetration m)."""
        T = self.n_frames
        cfg = self._setup(lat, i)
        bc = self.client.bc
        states = np.zeros((T, len(self._full)), dtype=np.float64)
        inputs = np.zeros((T, len(self.INPUTS)), dtype=np.float64)
        lut = self._lut() if out is not None else None
        sched = EditSchedule(edits)

        def record(t: int) -> None:
            row = states[t]
            mounts = self._record(row, cfg)
            for k, body in enumerate(self._objects):
                bp, bq = bc.getBasePositionAndOrientation(body)
                lin, _ = bc.getBaseVelocity(body)
                r = row[self._obj_base + k * 10:self._obj_base + (k + 1) * 10]
                r[0:3], r[3:7], r[7:10] = bp, bq, lin
            self._record_late(row, cfg)
            if out is not None:
                self._film.frame(out, i, t, mounts, lut, cfg["light"], cfg["diffuse"])

        ctrl = self._controller(cfg)
        cfg["goal_now"] = cfg["goal"].copy()
        mass = list(cfg["masses"])
        shapes = [pb.BOX] * self.n_obj
        min_d = math.inf
        bc.performCollisionDetection()
        self._put_edits(sched, cfg, mass, shapes, 0)
        record(0)
        inputs[0] = self._first_inputs(ctrl)
        for t in range(1, T):
            self._put_edits(sched, cfg, mass, shapes, t)
            inputs[t] = self._command(ctrl, states, t, cfg)
            for _ in range(self.substeps):
                bc.stepSimulation()
                pts = bc.getContactPoints()
                if pts:
                    min_d = min(min_d, min(pt[8] for pt in pts))
            self._after_steps(cfg)
            record(t)
        self._end_sample()
        pen = 0.0 if not math.isfinite(min_d) else max(0.0, -min_d)
        return states, inputs, pen

    def _put_edits(self, sched: EditSchedule, cfg: dict[str, Any], mass: list[float], shapes: list[int],
                   t: int) -> None:
        """Put the edits in force at frame ``t`` into the simulator, before the steps into frame t (frame 0: before
        the initial state is recorded): the goal (``cfg["goal_now"]`` and its marker), the boxes' masses (``mass``
        holds those in force and is updated) and the one-shot velocity edits of frame t."""
        goal0 = cfg["goal"]
        goal = np.array([sched.value(goal0[a], ("goal", a), t) for a in range(len(goal0))])
        if not np.array_equal(goal, cfg["goal_now"]):
            cfg["goal_now"] = goal
            self._place_goal(goal)
        sched.masses(self.client, self._objects, shapes, cfg["sizes"], cfg["masses"], mass, t)
        sched.kick(self.client, self._objects, t)

    def _controller(self, cfg: dict[str, Any]):
        """The scripted controller of one sample (``cfg`` from :meth:`_setup`)."""
        raise NotImplementedError

    def _first_inputs(self, ctrl) -> list[float]:
        """Frame 0's inputs: the command before any step."""
        raise NotImplementedError

    def _command(self, ctrl, states: np.ndarray, t: int, cfg: dict[str, Any]) -> list[float]:
        """Command the robot for the steps into frame ``t`` from the states recorded up to frame t - 1 (``cfg["goal_now"]``
        is the goal in force); returns frame t's inputs."""
        raise NotImplementedError

    def _after_steps(self, cfg: dict[str, Any]) -> None:
        """After the steps into a frame, before it is recorded."""

    def _record(self, row: np.ndarray, cfg: dict[str, Any]) -> dict[str, np.ndarray]:
        """Write the robot's state columns of a frame into ``row``; returns the mount poses (4x4) to film it with."""
        raise NotImplementedError

    def _record_late(self, row: np.ndarray, cfg: dict[str, Any]) -> None:
        """After the boxes' columns, before filming: a world's own bodies and columns."""

    def _end_sample(self) -> None:
        """After a sample's last frame."""

    def _run(self, batch: WorldBatch, out: dict[str, np.ndarray] | None) -> Simulation:
        lat = self._latents(batch)
        edits = self._edits(batch)
        n, T = len(batch), self.n_frames
        states = np.zeros((n, T, len(self._full)), dtype=np.float64)
        inputs = np.zeros((n, T, len(self.INPUTS)), dtype=np.float64)
        pen = np.zeros(n, dtype=np.float64)
        for i in range(n):
            states[i], inputs[i], pen[i] = self._sample(lat, i, edits[i], out)
        self._clear()
        return Simulation(states, self._full, inputs, extras={"max_penetration": pen})

    def _landmarks(self, batch: WorldBatch, sim: Simulation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Known centres (n, T, K, 3) m, their segmentation ids (K,) and radii (n, K, 2) m (inner, outer): the boxes."""
        return object_landmarks(batch, sim.states, self.n_obj, self.FIRST_OBJECT_ID, self._obj_base, len(OBJ_FIELDS))
