"""``robotics/mobile``: a wheeled robot (Clearpath Husky from ``pybullet_data``) drives to a box on the
floor of a room and pushes it onto a goal disc; PyBullet, filmed with TinyRenderer. Robot model and
controller in :mod:`._mobile`; rooms (without the work table), cameras and film shared with
``robotics/arm`` (:mod:`._rooms`, :mod:`._view`), with the same frame and edit semantics.

Spec parameters: ``room`` (0 open_space, 1 living_room, 2 kitchen, 3 study_room).
``objects: {obj: N, wheel: 4}``: obj[0] is pushed; the others stand where they are drawn (obstacles
the robot may hit).

Latents: ``floor.hue``; controller (:class:`._mobile.DriveGains`) ``ctrl.speed`` (m/s), ``ctrl.kp``
(1/s) and ``ctrl.torque`` (N m per wheel); ``goal.x``, ``goal.y`` (m, a white disc on the floor);
the robot's start ``robot.x0``, ``robot.y0`` (m), ``robot.yaw0`` (rad); per box ``obj[i].size`` (half
side, m), ``obj[i].mass`` (kg), ``obj[i].friction`` (the floor's is 1; Bullet multiplies them),
``obj[i].hue``, ``obj[i].x0``, ``obj[i].y0`` (m); optional ``light.intensity``, ``light.azimuth`` and
``obj[i].yaw0`` (rad).

States per frame: the base pose and velocity ``base.x base.y base.z`` (m), ``base.yaw`` (rad),
``base.vx base.vy`` (m/s), ``base.wz`` (rad/s), the wheels' ``wheel[k].qd`` (rad/s, :data:`._mobile.WHEELS`
order) and per box ``x y z qx qy qz qw vx vy vz``. Inputs: ``cmd.v`` (m/s), ``cmd.w`` (rad/s) and
``phase`` (:data:`._mobile.PHASES`). Temporal edits: ``obj[i].vx|vy`` (a kick), ``obj[i].mass``,
``goal.x|y``.

Segmentation ids: 0 background, 1 room, 2 goal, 3 + i obj[i], then one id per robot link
(``robot.<link>``, base first). Cameras: orbit, fixed, top-down and ``mounted`` on ``robot`` (the base
frame: x forward, y left, z up, at floor level).
"""

from __future__ import annotations

import math
import re
from typing import ClassVar, Mapping

import numpy as np

from ..base import Output, Rendered, Simulation, World, WorldBatch, WorldCheck, WorldInfo, check_latent_values
from ..cameras import CameraRig, pose_matrix
from ..engines import bullet as pb
from ..outputs import allocate, camera_outputs, declared_states, input_output, state_output
from . import _mobile, _rooms
from .world import _apply

BASE_FIELDS = ("x", "y", "z", "yaw", "vx", "vy", "wz")
OBJ_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw", "vx", "vy", "vz")
INPUTS = ("cmd.v", "cmd.w", "phase")
INPUT_UNITS = {"cmd.v": "m/s", "cmd.w": "rad/s", "phase": "1"}
STATE_UNITS = {"base.x": "m", "base.y": "m", "base.z": "m", "base.yaw": "rad", "base.vx": "m/s", "base.vy": "m/s",
               "base.wz": "rad/s", "wheel[i].qd": "rad/s",
               **{f"obj[i].{f}": ("m" if f in "xyz" else "m/s" if f[0] == "v" else "1") for f in OBJ_FIELDS}}
LATENTS = ("floor.hue", "ctrl.speed", "ctrl.kp", "ctrl.torque", "goal.x", "goal.y", "robot.x0", "robot.y0", "robot.yaw0",
           "obj[i].size", "obj[i].mass", "obj[i].friction", "obj[i].hue", "obj[i].x0", "obj[i].y0")
OPTIONAL = ("light.intensity", "light.azimuth", "obj[i].yaw0")
DEFAULTS = {"light.intensity": 1.0, "light.azimuth": 0.6, "obj[i].yaw0": 0.0}
#: The free floor the robot drives on (m): furniture stands beyond it along the walls.
AREA = 1.7
RANGES = {"floor.hue": (0.0, 1.0), "ctrl.speed": (0.1, 1.2), "ctrl.kp": (0.3, 6.0), "ctrl.torque": (1.0, 80.0),
          "goal.x": (-AREA, AREA), "goal.y": (-AREA, AREA), "robot.x0": (-AREA, AREA), "robot.y0": (-AREA, AREA),
          "robot.yaw0": (-math.pi, math.pi), "obj[i].size": (0.08, 0.3), "obj[i].mass": (0.2, 1000.0),
          "obj[i].friction": (0.05, 1.5), "obj[i].hue": (0.0, 1.0), "obj[i].x0": (-AREA, AREA), "obj[i].y0": (-AREA, AREA),
          "obj[i].yaw0": (-math.pi, math.pi), "light.intensity": (0.2, 2.0), "light.azimuth": (-math.pi, math.pi)}
EDIT_TARGETS = ("obj[i].vx", "obj[i].vy", "obj[i].mass", "goal.x", "goal.y")
#: Robot links, base first (``husky/husky.urdf``; checked when loaded).
LINKS = ("base_footprint", "base_link", "imu_link", "front_left_wheel_link", "front_right_wheel_link", "rear_left_wheel_link",
         "rear_right_wheel_link", "top_plate_link", "user_rail_link", "front_bumper_link", "rear_bumper_link")
ROOM_ID, GOAL_ID, FIRST_OBJECT_ID = 1, 2, 3
MAX_OBJECTS = 8
PENETRATION_TOLERANCE = 1e-3
RUN_PENETRATION_TOLERANCE = 0.03
_OBJ = re.compile(r"^obj\[(\d+)\]\.([A-Za-z_][A-Za-z0-9_]*)$")
_LIGHT_ELEVATION = 0.9
_GOAL_RGB = (0.97, 0.97, 0.97, 1.0)
GOAL_RADIUS = 0.2
#: Half the goal disc's thickness (m): thick enough that TinyRenderer's depth test keeps it above the floor at 4 m.
GOAL_LIFT = 0.012
#: The floor's lateral friction (a contact takes the product with the other body's: wheels 1.0, boxes obj[i].friction).
FLOOR_FRICTION = 0.5


def state_names(n_objects: int) -> tuple[str, ...]:
    """Every simulated state column: base, wheels, then the boxes (object-major)."""
    return (*(f"base.{f}" for f in BASE_FIELDS), *(f"wheel[{k}].qd" for k in range(len(_mobile.WHEELS))),
            *(f"obj[{k}].{f}" for k in range(n_objects) for f in OBJ_FIELDS))


def segmentation_ids(n_objects: int) -> dict[int, str]:
    """Instance id -> what it marks."""
    ids = {pb.BACKGROUND_ID: "background", ROOM_ID: "room", GOAL_ID: "goal"}
    ids.update({FIRST_OBJECT_ID + k: f"obj[{k}]" for k in range(n_objects)})
    ids.update({FIRST_OBJECT_ID + n_objects + k: f"robot.{name}" for k, name in enumerate(LINKS)})
    return ids


def _penetration(world: "MobileWorld", batch: WorldBatch, sim: Simulation) -> list[str]:
    pen = sim.extras["max_penetration"]
    return [f"sample {int(batch.index[i])}: bodies interpenetrate by {pen[i]:.3f} m (tolerance {RUN_PENETRATION_TOLERANCE} m)"
            for i in np.flatnonzero(pen > RUN_PENETRATION_TOLERANCE)]


_INFO = WorldInfo(
    name="robotics/mobile",
    kind="video",
    engine="pybullet",
    engines=("tiny",),
    description="A wheeled robot (Clearpath Husky) drives to a box on the floor of a room and pushes it onto a goal, "
                "driven by a scripted unicycle controller; PyBullet, filmed with TinyRenderer.",
    latents=LATENTS,
    optional_latents=OPTIONAL,
    ranges=RANGES,
    states=(*(f"base.{f}" for f in BASE_FIELDS), "wheel[i].qd", *(f"obj[i].{f}" for f in OBJ_FIELDS)),
    state_units=STATE_UNITS,
    inputs=INPUTS,
    edit_targets=EDIT_TARGETS,
    annotations=("depth", "segmentation"),
    camera_kinds=("orbit", "fixed", "mounted", "topdown"),
    mounts=("robot",),
    max_objects={"obj": MAX_OBJECTS, "wheel": len(_mobile.WHEELS)},
    requires=("pybullet",),
)


class MobileWorld(World):
    """``robotics/mobile`` (see the module docstring)."""

    info: ClassVar[WorldInfo] = _INFO
    checks = (WorldCheck("penetration", "contacts never sink deeper than RUN_PENETRATION_TOLERANCE", _penetration),)
    TARGET = (0.0, 0.0, 0.2)
    BASE_DISTANCE = 4.0
    SCENE_RADIUS = 8.0

    @classmethod
    def rig(cls, spec) -> CameraRig:
        return CameraRig.from_settings(spec.render, cls.TARGET, cls.BASE_DISTANCE, cls.SCENE_RADIUS)

    @classmethod
    def check(cls, spec) -> list[str]:
        out = []
        if "room" not in spec.parameters:
            out.append("parameters.room: robotics/mobile needs it (0 open_space, 1 living_room, 2 kitchen, 3 study_room)")
        else:
            try:
                _rooms.room_model(spec.parameters["room"])
            except ValueError as e:
                out.append(f"parameters.room: {e}")
        if not (spec.object_count("obj") or 0) >= 1:
            out.append(f"objects.obj: the push task needs at least 1 box, got {spec.object_count('obj')}")
        if spec.object_count("wheel") not in (None, len(_mobile.WHEELS)):
            out.append(f"objects.wheel: the Husky has {len(_mobile.WHEELS)} wheels, the spec asks for {spec.object_count('wheel')}")
        if spec.render.engine not in (None, "tiny"):
            out.append(f"render.engine: robotics/mobile renders with 'tiny' (PyBullet TinyRenderer), got {spec.render.engine!r}")
        for dname, dom in spec.domains.items():
            if "room" in dom.parameters:
                out.append(f"domains.{dname}.parameters.room: the room is built once per world; make one dataset per room")
        return out

    @classmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        n_obj = spec.object_count("obj") or 0
        out = camera_outputs(spec, cls.rig(spec), rgb="frames", segmentation_ids=segmentation_ids(n_obj))
        names = declared_states(spec, cls.info.states)
        if names:
            out.append(state_output(spec, names, {n: STATE_UNITS[re.sub(r"\[\d+\]", "[i]", n)] for n in names}))
        out.append(input_output(spec, INPUTS, INPUT_UNITS))
        return tuple(out)

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        problems = type(self).check(spec)
        if problems:
            raise ValueError(problems[0])
        video = getattr(spec, "video", None)
        if video is None:
            raise ValueError("robotics/mobile renders videos; the spec needs `video: {fps: 10, frames: 60}`")
        self.room_model = _rooms.room_model(spec.parameters["room"])
        self.fps, self.substeps, self.n_frames = float(video.fps), int(video.substeps), int(video.n_frames)
        self.dt = 1.0 / (self.fps * self.substeps)
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        self.n_obj = spec.object_count("obj") or 0
        self._full = state_names(self.n_obj)
        self._stored = [self._full.index(s) for s in declared_states(spec, self.info.states)]
        self._objects: list[int] = []
        self.client = pb.BulletScene()
        try:
            self._build()
            from ._view import TinyFilm  # noqa: PLC0415

            ann = spec.render.annotations
            self._film = TinyFilm(self.client.bc, self.client.p, self.rig, rgb="frames", depth="depth" in ann,
                                  segmentation="segmentation" in ann)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- the scene, built once

    def _build(self) -> None:
        import pybullet_data  # noqa: PLC0415 - ships with pybullet

        from ..engines.quiet import quiet_output  # noqa: PLC0415

        bc, p = self.client.bc, self.client.p
        data = pybullet_data.getDataPath()
        bc.resetSimulation()
        bc.setPhysicsEngineParameter(fixedTimeStep=self.dt, numSubSteps=1, deterministicOverlappingPairs=1)
        bc.setGravity(0.0, 0.0, -9.81)
        self._room = _rooms.build_room(bc, p, self.room_model, data, table=False)
        bc.changeDynamics(self._room.floor[0], -1, lateralFriction=FLOOR_FRICTION, restitution=0.0)
        with quiet_output((1, 2)):  # the URDF's massless links print warnings
            self._robot = bc.loadURDF(f"{data}/{_mobile.URDF}", [0.0, 0.0, 0.0], [0, 0, 0, 1])
        links = [bc.getBodyInfo(self._robot)[0].decode()] + [bc.getJointInfo(self._robot, j)[12].decode()
                                                             for j in range(bc.getNumJoints(self._robot))]
        if tuple(links) != LINKS:
            raise RuntimeError(f"{_mobile.URDF}: links {links} differ from {list(LINKS)}")
        names = [bc.getJointInfo(self._robot, j)[1].decode() for j in range(bc.getNumJoints(self._robot))]
        self._wheels = [names.index(w) for w in _mobile.WHEELS]
        for j in self._wheels:
            bc.changeDynamics(self._robot, j, lateralFriction=1.0, rollingFriction=0.0, spinningFriction=0.0)
        disc = bc.createVisualShape(p.GEOM_CYLINDER, radius=GOAL_RADIUS, length=2 * GOAL_LIFT, rgbaColor=_GOAL_RGB)
        self._goal = bc.createMultiBody(0.0, -1, disc, basePosition=[0.0, 0.0, GOAL_LIFT])

    # ---------------------------------------------------------------- latents and edits

    def _latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        lat = {k: np.asarray(v, dtype=np.float64) for k, v in batch.latents.items()}
        n = len(batch)
        need = [name.replace("[i]", f"[{k}]") for name in LATENTS for k in range(self.n_obj if "[i]" in name else 1)]
        missing = [k for k in need if k not in lat]
        if missing:
            raise KeyError(f"robotics/mobile needs latents {missing[:6]} (objects: {self.n_obj})")
        for key, arr in lat.items():
            if arr.shape != (n,):
                raise ValueError(f"latent {key!r} has shape {arr.shape}, expected ({n},)")
        check_latent_values(self.info, lat)
        for name, default in DEFAULTS.items():
            for k in range(self.n_obj if "[i]" in name else 1):
                lat.setdefault(name.replace("[i]", f"[{k}]"), np.full(n, default))
        return lat

    def _edits(self, batch: WorldBatch) -> list[list[tuple]]:
        """Per sample: (key, op, start = max(frame, 1), end (None: open), value)."""
        out: list[list[tuple]] = [[] for _ in range(len(batch))]
        for e in batch.edits:
            if e.op not in ("set", "add", "scale"):
                raise ValueError(f"temporal edit on {e.target!r}: unknown op {e.op!r}; expected set, add or scale")
            m = _OBJ.match(e.target)
            if e.target in ("goal.x", "goal.y"):
                key = ("goal", "xy".index(e.target[-1]))
            elif m and m.group(2) in ("vx", "vy", "mass") and int(m.group(1)) < self.n_obj:
                k = int(m.group(1))
                key = ("mass", k) if m.group(2) == "mass" else ("v", k, "xy".index(m.group(2)[1]))
            else:
                raise ValueError(f"robotics/mobile cannot edit {e.target!r}; expected one of {', '.join(EDIT_TARGETS)} "
                                 f"(i < {self.n_obj})")
            for i in range(len(batch)):
                f = int(e.frame[i])
                if f < 0:
                    continue
                v = float(e.value[i])
                if not math.isfinite(v):
                    raise ValueError(f"temporal edit on {e.target!r}: non-finite value for sample {i}")
                stop = int(e.end_frame[i])
                out[i].append((key, e.op, max(f, 1), None if stop < 0 else stop, v))
        return out

    # ---------------------------------------------------------------- one sample's set-up

    def _clear(self) -> None:
        for body in self._objects:
            self.client.bc.removeBody(body)
        # the boxes' primitive shapes stay (PyBullet refuses to remove a shape a removed body used), as in robotics/arm
        self._objects = []

    def _setup(self, lat: Mapping[str, np.ndarray], i: int) -> dict:
        bc, p = self.client.bc, self.client.p
        self._clear()
        for body, rgba in zip(self._room.floor, _rooms.floor_colours(lat["floor.hue"][i])):
            bc.changeVisualShape(body, -1, rgbaColor=rgba)
        sizes, masses = [], []
        for k in range(self.n_obj):
            s, m = float(lat[f"obj[{k}].size"][i]), float(lat[f"obj[{k}].mass"][i])
            col = bc.createCollisionShape(p.GEOM_BOX, halfExtents=[s, s, s])
            vis = bc.createVisualShape(p.GEOM_BOX, halfExtents=[s, s, s], rgbaColor=(*pb.hsv_to_rgb(lat[f"obj[{k}].hue"][i]), 1.0))
            body = bc.createMultiBody(m, col, vis, basePosition=[float(lat[f"obj[{k}].x0"][i]), float(lat[f"obj[{k}].y0"][i]), s],
                                      baseOrientation=pb.yaw_quaternion(lat[f"obj[{k}].yaw0"][i]))
            bc.changeDynamics(body, -1, lateralFriction=float(lat[f"obj[{k}].friction"][i]), restitution=0.0, rollingFriction=0.0,
                              spinningFriction=0.0, linearDamping=0.0, angularDamping=0.0,
                              localInertiaDiagonal=list(pb.inertia_diagonal(pb.BOX, s, m)),
                              activationState=p.ACTIVATION_STATE_DISABLE_SLEEPING)
            self._objects.append(body)
            sizes.append(s)
            masses.append(m)
        bc.resetBasePositionAndOrientation(self._robot, [float(lat["robot.x0"][i]), float(lat["robot.y0"][i]), 0.0],
                                           pb.yaw_quaternion(lat["robot.yaw0"][i]))
        bc.resetBaseVelocity(self._robot, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
        for j in range(bc.getNumJoints(self._robot)):
            bc.resetJointState(self._robot, j, 0.0, 0.0)
        goal = np.array([lat["goal.x"][i], lat["goal.y"][i]])
        self._place_goal(goal)
        gains = _mobile.DriveGains(speed=float(lat["ctrl.speed"][i]), kp=float(lat["ctrl.kp"][i]),
                                   torque=float(lat["ctrl.torque"][i]))
        az = float(lat["light.azimuth"][i])
        light = (math.cos(az) * math.cos(_LIGHT_ELEVATION), math.sin(az) * math.cos(_LIGHT_ELEVATION), math.sin(_LIGHT_ELEVATION))
        return {"sizes": np.array(sizes), "masses": masses, "goal": goal, "gains": gains, "light": light,
                "diffuse": float(lat["light.intensity"][i]) * 0.55}

    def _place_goal(self, goal: np.ndarray) -> None:
        self.client.bc.resetBasePositionAndOrientation(self._goal, [float(goal[0]), float(goal[1]), GOAL_LIFT], [0, 0, 0, 1])

    def _lut(self) -> np.ndarray:
        from ._view import segmentation_lut  # noqa: PLC0415

        whole = {b: ROOM_ID for b in self._room.scenery}
        whole[self._goal] = GOAL_ID
        whole.update({b: FIRST_OBJECT_ID + k for k, b in enumerate(self._objects)})
        first = FIRST_OBJECT_ID + self.n_obj
        links = {(self._robot, j): first + j + 1 for j in range(-1, len(LINKS) - 1)}
        return segmentation_lut(links, whole)

    # ---------------------------------------------------------------- feasibility

    def feasible(self, batch: WorldBatch) -> np.ndarray:
        """(n,) bool: False where a sample's start interpenetrates: boxes with each other or with the robot, deeper than
        ``PENETRATION_TOLERANCE`` m (PyBullet's closest points), or a box standing on the goal disc already."""
        return np.array([r == "" for r in self.explain_infeasible(batch)], dtype=bool)

    def explain_infeasible(self, batch: WorldBatch) -> list[str]:
        """One reason per sample ("" where feasible), e.g. ``"obj[0] and the robot interpenetrate by 0.120 m"``."""
        lat = self._latents(batch)
        bc = self.client.bc
        out = []
        for i in range(len(batch)):
            cfg = self._setup(lat, i)
            reason = ""
            for k, body in enumerate(self._objects):
                others = [(b, f"obj[{k + 1 + m}]") for m, b in enumerate(self._objects[k + 1:])] + [(self._robot, "the robot")]
                for other, name in others:
                    pts = bc.getClosestPoints(body, other, distance=0.0)
                    depth = -min(pt[8] for pt in pts) if pts else 0.0
                    if depth > PENETRATION_TOLERANCE and not reason:
                        reason = f"obj[{k}] and {name} interpenetrate by {depth:.3f} m"
            if not reason:
                box = np.array([lat["obj[0].x0"][i], lat["obj[0].y0"][i]])
                d = float(np.linalg.norm(box - cfg["goal"]))
                if d < GOAL_RADIUS:
                    reason = f"obj[0] starts on the goal ({d:.3f} m from it, the disc's radius is {GOAL_RADIUS} m)"
            out.append(reason)
        self._clear()
        return out

    # ---------------------------------------------------------------- simulate and film

    def _sample(self, lat, i: int, edits: list[tuple], out: dict[str, np.ndarray] | None) -> tuple:
        bc, p = self.client.bc, self.client.p
        T, N, W = self.n_frames, self.n_obj, len(_mobile.WHEELS)
        cfg = self._setup(lat, i)
        states = np.zeros((T, len(self._full)), dtype=np.float64)
        inputs = np.zeros((T, len(INPUTS)), dtype=np.float64)
        lut = self._lut() if out is not None else None
        by_key: dict[tuple, list[tuple]] = {}
        impulses: dict[int, list[tuple]] = {}
        for e in edits:
            by_key.setdefault(e[0], []).append(e)
            if e[0][0] == "v":
                impulses.setdefault(e[2], []).append(e)

        def fold(base: float, key: tuple, t: int) -> float:
            v = base
            for _, op, start, end, value in by_key.get(key, ()):
                if start <= t and (end is None or t < end):
                    v = _apply(op, v, value)
            return v

        def record(t: int) -> None:
            row = states[t]
            pos, orn = bc.getBasePositionAndOrientation(self._robot)
            lin, ang = bc.getBaseVelocity(self._robot)
            yaw = bc.getEulerFromQuaternion(orn)[2]
            row[0:7] = [*pos, yaw, lin[0], lin[1], ang[2]]
            row[7:7 + W] = [bc.getJointState(self._robot, j)[1] for j in self._wheels]
            base = 7 + W
            for k, body in enumerate(self._objects):
                bp, bq = bc.getBasePositionAndOrientation(body)
                blin, _ = bc.getBaseVelocity(body)
                r = row[base + 10 * k:base + 10 * (k + 1)]
                r[0:3], r[3:7], r[7:10] = bp, bq, blin
            if out is not None:
                self._film.frame(out, i, t, {"robot": pose_matrix(np.asarray(pos), np.asarray(orn))}, lut, cfg["light"],
                                 cfg["diffuse"])

        ctrl = _mobile.PushController(cfg["gains"], self.fps)
        goal0, goal = cfg["goal"], cfg["goal"].copy()
        mass = list(cfg["masses"])
        min_d = math.inf
        bc.performCollisionDetection()
        record(0)
        inputs[0] = [0.0, 0.0, ctrl.phase]
        base = 7 + W
        for t in range(1, T):
            new_goal = np.array([fold(goal0[a], ("goal", a), t) for a in range(2)])
            if not np.array_equal(new_goal, goal):
                goal = new_goal
                self._place_goal(goal)
            for k in range(N):
                if ("mass", k) in by_key:
                    m = fold(cfg["masses"][k], ("mass", k), t)
                    if m <= 0 or not math.isfinite(m):
                        raise ValueError(f"temporal edit made obj[{k}].mass {m} at frame {t}; mass must stay > 0")
                    if m != mass[k]:
                        bc.changeDynamics(self._objects[k], -1, mass=m,
                                          localInertiaDiagonal=list(pb.inertia_diagonal(pb.BOX, cfg["sizes"][k], m)))
                        mass[k] = m
            for (key, op, _, _, value) in impulses.get(t, ()):
                _, k, axis = key
                lin, ang = bc.getBaseVelocity(self._objects[k])
                lin = list(lin)
                lin[axis] = _apply(op, lin[axis], value)
                bc.resetBaseVelocity(self._objects[k], linearVelocity=lin, angularVelocity=list(ang))
            prev = states[t - 1]
            cmd = ctrl.step(prev[[0, 1, 3]], prev[base:base + 2], float(cfg["sizes"][0]), goal)
            speeds = _mobile.wheel_speeds(cmd.v, cmd.w)
            bc.setJointMotorControlArray(self._robot, self._wheels, p.VELOCITY_CONTROL, targetVelocities=list(speeds),
                                         forces=[cfg["gains"].torque] * W)
            inputs[t] = [cmd.v, cmd.w, cmd.phase]
            for _ in range(self.substeps):
                bc.stepSimulation()
                pts = bc.getContactPoints()
                if pts:
                    min_d = min(min_d, min(pt[8] for pt in pts))
            record(t)
        pen = 0.0 if not math.isfinite(min_d) else max(0.0, -min_d)
        return states, inputs, pen

    def _run(self, batch: WorldBatch, out: dict[str, np.ndarray] | None) -> Simulation:
        lat = self._latents(batch)
        edits = self._edits(batch)
        n, T = len(batch), self.n_frames
        states = np.zeros((n, T, len(self._full)), dtype=np.float64)
        inputs = np.zeros((n, T, len(INPUTS)), dtype=np.float64)
        pen = np.zeros(n, dtype=np.float64)
        for i in range(n):
            states[i], inputs[i], pen[i] = self._sample(lat, i, edits[i], out)
        self._clear()
        return Simulation(states, self._full, inputs, extras={"max_penetration": pen})

    def simulate(self, batch: WorldBatch) -> Simulation:
        """States (n, T, S) and inputs (n, T, 3) float64 without filming, bitwise equal to what ``render`` films."""
        return self._run(batch, None)

    def render(self, batch: WorldBatch) -> Rendered:
        out = allocate(self._outputs, len(batch))
        sim = self._run(batch, out)
        if "states" in out:
            out["states"][:] = sim.states[:, :, self._stored]
        out["inputs"][:] = sim.inputs
        N, base = self.n_obj, 7 + len(_mobile.WHEELS)
        centres = sim.states[:, :, base:base + 10 * N].reshape(len(batch), self.n_frames, N, 10)[..., 0:3]
        sizes = np.stack([np.asarray(batch.latents[f"obj[{k}].size"], dtype=np.float64) for k in range(N)], axis=1)
        radius = np.stack([sizes, sizes * math.sqrt(3.0)], axis=-1)
        return Rendered(out, landmarks=centres.copy(), landmark_ids=FIRST_OBJECT_ID + np.arange(N), landmark_radius=radius,
                        simulation=sim)

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
            self.client = None
