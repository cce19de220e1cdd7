"""``robotics/arm``: an arm on a table in a room manipulates cubes, simulated with PyBullet and filmed
with TinyRenderer.

Spec parameters (constants of a dataset, ``parameters:``): ``arm`` (0 kuka_iiwa, 1 xarm6, 2
franka_panda), ``task`` (0 reach, 1 push, 2 pick_and_place, 3 stack, 4 press) and ``room`` (0
open_space, 1 living_room, 2 kitchen, 3 study_room). They are parameters, not latents, because
they fix the store's layout: the arm fixes the joint states and the segmentation ids of its
links, the room and the arm are built once per world instance, and the task decides which
latents act. A spec that wants several arms makes one dataset per arm.

Latents (``obj[i]`` for i = 0..N-1, N = ``objects.obj``):

- stage: ``floor.hue``, ``table.hue`` (colours, HSV s 0.45 v 0.78 and 0.64 for the floor checker, s 0.3 v 0.72 for
  the table), ``table.friction`` (the table top's lateral friction); optional ``light.intensity``
  (diffuse coefficient multiplier, default 1) and ``light.azimuth`` (rad, direction the light
  comes from around z; default 0.6, elevation fixed at ~50 deg);
- controller (:mod:`._controllers`): ``ctrl.kp`` (position gain), ``ctrl.max_qd`` (rad/s),
  ``ctrl.speed`` (TCP m/s), ``ctrl.height`` (approach height, m), ``ctrl.grip_force`` (N);
- goal: ``goal.x``, ``goal.y``, ``goal.z`` (m, world frame; the TCP target of ``reach``, the
  target on the table of push / pick and place / press with ``goal.z`` the carry height), drawn
  as a white sphere at the goal and a white disc on the table below it;
- objects (cubes): ``obj[i].size`` (half side, m), ``obj[i].mass`` (kg), ``obj[i].friction``,
  ``obj[i].hue``, ``obj[i].x0``, ``obj[i].y0`` (m, resting on the table top); optional
  ``obj[i].yaw0`` (rad, default 0).

States per frame (:func:`state_names`): ``joint[k].q`` (rad), ``joint[k].qd`` (rad/s) in the URDF's
joint order (:data:`._arms.MODELS`), the TCP pose ``ee.x ee.y ee.z ee.qx ee.qy ee.qz ee.qw``, the
gripper's ``gripper.opening`` (1 open, 0 closed) and per object ``x y z qx qy qz qw vx vy vz``.
Frame 0 is the initial state; frame t the state after t / fps s of ``substeps`` fixed steps each.
Inputs per frame (:data:`INPUTS`): the TCP target the controller commanded for the steps into
that frame (``cmd.x cmd.y cmd.z``, m, and ``cmd.yaw``, rad about z), its gripper opening ``cmd.gripper`` and its phase code
``phase`` (:data:`._controllers.PHASES`); frame 0 holds the command before any step.

Temporal edits, with the physics worlds' frame semantics (an edit at frame f acts on the steps
into frames max(f, 1) .. end - 1, so ``states[:f]`` equal the unedited run bitwise):
``obj[i].vx|vy|vz`` (a one-shot velocity change at the start of frame f's steps: a push),
``obj[i].mass`` (changeDynamics while active) and ``goal.x|y|z`` (the controller and the goal
marker use the edited goal while active).

Ground truth never lags the physics: each frame's states are read right after its last step and
the frame is filmed from that same simulator state (the wrist camera from that frame's TCP pose).

The scene (room, table, arm, goal marker) is built once per world instance; per sample the
cubes are re-created (primitive boxes; their collision shapes are removed with the bodies), the
arm is reset to its rest pose and colours and frictions are set on the existing bodies.

Segmentation ids: 0 background, 1 room, 2 table, 3 goal marker, 4 + i object i, then one id per
arm link (``arm.<link name>``, base first). Cameras: orbit, fixed, top-down and ``mounted`` on
``ee`` (the TCP; z along the gripper's approach direction).
"""

from __future__ import annotations

import math
import re
from typing import ClassVar, Mapping

import numpy as np

from ..base import BatchEdit, Output, Rendered, Simulation, World, WorldBatch, WorldCheck, WorldInfo, check_latent_values
from ..cameras import CameraRig, pose_matrix
from ..engines import bullet as pb
from ..outputs import allocate, camera_outputs, declared_states, input_output, state_output
from . import _arms, _controllers, _ik, _rooms

OBJ_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw", "vx", "vy", "vz")
EE_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw")
INPUTS = ("cmd.x", "cmd.y", "cmd.z", "cmd.yaw", "cmd.gripper", "phase")
INPUT_UNITS = {"cmd.x": "m", "cmd.y": "m", "cmd.z": "m", "cmd.yaw": "rad", "cmd.gripper": "1", "phase": "1"}
STATE_UNITS = {"joint[i].q": "rad", "joint[i].qd": "rad/s", **{f"ee.{f}": ("m" if f in "xyz" else "1") for f in EE_FIELDS},
               "gripper.opening": "1", **{f"obj[i].{f}": ("m" if f in "xyz" else "m/s" if f[0] == "v" else "1")
                                          for f in OBJ_FIELDS}}

GLOBAL_LATENTS = ("floor.hue", "table.hue", "table.friction", "ctrl.kp", "ctrl.max_qd", "ctrl.speed", "ctrl.height",
                  "ctrl.grip_force", "goal.x", "goal.y", "goal.z")
OBJECT_LATENTS = ("obj[i].size", "obj[i].mass", "obj[i].friction", "obj[i].hue", "obj[i].x0", "obj[i].y0")
OPTIONAL = ("light.intensity", "light.azimuth", "obj[i].yaw0")
DEFAULTS = {"light.intensity": 1.0, "light.azimuth": 0.6, "obj[i].yaw0": 0.0}

#: Valid ranges: what the arms reach and the cameras frame (m, kg, N, rad, rad/s).
RANGES: dict[str, tuple[float, float]] = {
    "floor.hue": (0.0, 1.0), "table.hue": (0.0, 1.0), "table.friction": (0.05, 2.0),
    "ctrl.kp": (0.01, 1.0), "ctrl.max_qd": (0.2, 3.0), "ctrl.speed": (0.05, 1.0), "ctrl.height": (0.03, 0.3),
    "ctrl.grip_force": (1.0, 500.0),
    "goal.x": (-0.2, 0.35), "goal.y": (-0.35, 0.35), "goal.z": (_rooms.TABLE_TOP + 0.02, _rooms.TABLE_TOP + 0.5),
    "obj[i].size": (0.012, 0.035), "obj[i].mass": (0.01, 10.0), "obj[i].friction": (0.05, 2.0), "obj[i].hue": (0.0, 1.0),
    "obj[i].x0": (-0.2, 0.35), "obj[i].y0": (-0.35, 0.35), "obj[i].yaw0": (-math.pi, math.pi),
    "light.intensity": (0.2, 2.0), "light.azimuth": (-math.pi, math.pi),
}
EDIT_TARGETS = ("obj[i].vx", "obj[i].vy", "obj[i].vz", "obj[i].mass", "goal.x", "goal.y", "goal.z")

#: Finger motor force (N or N m) while the gripper moves, and while it closes on a cube (it touches without squeezing).
FINGER_FORCE = 40.0
TOUCH_FORCE = 3.0
#: Two bodies whose closest points lie deeper than this (m) interpenetrate (:meth:`ArmWorld.feasible`).
PENETRATION_TOLERANCE = 1e-3
#: Deepest contact (m) a plausible run may show (the ``penetration`` check): a grasped cube pressed by the fingers.
RUN_PENETRATION_TOLERANCE = 0.02

ROOM_ID, TABLE_ID, GOAL_ID, FIRST_OBJECT_ID = 1, 2, 3, 4
MAX_OBJECTS = 16
_OBJ = re.compile(r"^obj\[(\d+)\]\.([A-Za-z_][A-Za-z0-9_]*)$")
_GOAL_RGB = (0.97, 0.97, 0.97)
_LIGHT_ELEVATION = 0.9  # rad


def _param(spec, name: str) -> float:
    if name not in spec.parameters:
        raise ValueError(f"robotics/arm needs the parameter {name!r} (see the world's description)")
    return spec.parameters[name]


def state_names(n_joints: int, n_objects: int) -> tuple[str, ...]:
    """Every simulated state column: joints (q then qd per joint), TCP pose, gripper, objects (object-major)."""
    out = [f"joint[{k}].{f}" for k in range(n_joints) for f in ("q", "qd")]
    out += [f"ee.{f}" for f in EE_FIELDS] + ["gripper.opening"]
    out += [f"obj[{k}].{f}" for k in range(n_objects) for f in OBJ_FIELDS]
    return tuple(out)


def segmentation_ids(model: _arms.ArmModel, n_objects: int) -> dict[int, str]:
    """Instance id -> what it marks, for an arm and object count."""
    ids = {pb.BACKGROUND_ID: "background", ROOM_ID: "room", TABLE_ID: "table", GOAL_ID: "goal"}
    ids.update({FIRST_OBJECT_ID + k: f"obj[{k}]" for k in range(n_objects)})
    first = FIRST_OBJECT_ID + n_objects
    ids.update({first + k: f"arm.{name}" for k, name in enumerate(model.links)})
    return ids


def _penetration(world: "ArmWorld", batch: WorldBatch, sim: Simulation) -> list[str]:
    pen = sim.extras["max_penetration"]
    return [f"sample {int(batch.index[i])}: bodies interpenetrate by {pen[i]:.3f} m (tolerance {RUN_PENETRATION_TOLERANCE} m)"
            for i in np.flatnonzero(pen > RUN_PENETRATION_TOLERANCE)]


def _joint_limits(world: "ArmWorld", batch: WorldBatch, sim: Simulation) -> list[str]:
    """Joint positions stay within the URDF's limits (plus 0.02 rad of solver slack)."""
    out = []
    arm = world._arm
    J = len(arm.joint_ids)
    q = sim.states[:, :, 0:2 * J:2]
    bad = (q < arm.lower - 0.02) | (q > arm.upper + 0.02)
    for i in np.flatnonzero(bad.any(axis=(1, 2))):
        out.append(f"sample {int(batch.index[i])}: a joint leaves its limits")
    return out


_INFO = WorldInfo(
    name="robotics/arm",
    kind="video",
    engine="pybullet",
    engines=("tiny",),
    description="An arm (KUKA iiwa, xArm6 or Franka Panda) on a table in a room reaches, pushes, picks and places, "
                "stacks or presses, driven by a scripted IK state machine; PyBullet, filmed with TinyRenderer.",
    latents=GLOBAL_LATENTS + OBJECT_LATENTS,
    optional_latents=OPTIONAL,
    ranges=RANGES,
    states=("joint[i].q", "joint[i].qd", *(f"ee.{f}" for f in EE_FIELDS), "gripper.opening",
            *(f"obj[i].{f}" for f in OBJ_FIELDS)),
    state_units=STATE_UNITS,
    inputs=INPUTS,
    edit_targets=EDIT_TARGETS,
    annotations=("depth", "segmentation"),
    camera_kinds=("orbit", "fixed", "mounted", "topdown"),
    mounts=("ee",),
    max_objects={"obj": MAX_OBJECTS, "joint": 7},
    requires=("pybullet",),
)


class ArmWorld(World):
    """``robotics/arm`` (see the module docstring)."""

    info: ClassVar[WorldInfo] = _INFO
    checks = (WorldCheck("penetration", "contacts never sink deeper than RUN_PENETRATION_TOLERANCE", _penetration),
              WorldCheck("joint_limits", "every joint stays within its URDF limits", _joint_limits))
    #: Camera aim point (m), the distance a camera of ``distance: 1`` keeps (m), and the scene radius (m).
    TARGET = (0.0, 0.0, _rooms.TABLE_TOP + 0.1)
    BASE_DISTANCE = 1.8
    SCENE_RADIUS = 6.0

    @classmethod
    def rig(cls, spec) -> CameraRig:
        return CameraRig.from_settings(spec.render, cls.TARGET, cls.BASE_DISTANCE, cls.SCENE_RADIUS)

    @classmethod
    def check(cls, spec) -> list[str]:
        out = []
        for name, fn in (("arm", _arms.arm_model), ("task", _controllers.task_code), ("room", _rooms.room_model)):
            try:
                fn(_param(spec, name))
            except ValueError as e:
                out.append(f"parameters.{name}: {e}")
        if out:
            return out
        model = _arms.arm_model(spec.parameters["arm"])
        nj = spec.object_count("joint")
        if nj is not None and nj != len(model.joints):
            out.append(f"objects.joint: the {model.name} has {len(model.joints)} joints, the spec asks for {nj}")
        n = spec.object_count("obj") or 0
        task = _controllers.task_code(spec.parameters["task"])
        if n < (2 if task == 3 else 1):
            out.append(f"objects.obj: the {_controllers.TASK_NAMES[task]} task needs at least {2 if task == 3 else 1} objects, got {n}")
        if spec.render.engine not in (None, "tiny"):
            out.append(f"render.engine: robotics/arm renders with 'tiny' (PyBullet TinyRenderer), got {spec.render.engine!r}")
        for dname, dom in spec.domains.items():
            for p in ("arm", "task", "room"):
                if p in dom.parameters:
                    out.append(f"domains.{dname}.parameters.{p}: the {p} fixes the store's layout and scene; make one dataset per {p}")
        return out

    @classmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        try:
            model = _arms.arm_model(_param(spec, "arm"))
        except ValueError as e:
            raise ValueError(f"parameters.arm: {e}") from None
        n_obj = spec.object_count("obj") or 0
        out = camera_outputs(spec, cls.rig(spec), rgb="frames", segmentation_ids=cls._segmentation_ids(spec, model, n_obj))
        names = declared_states(spec, cls.info.states)
        if names:
            units = {n: cls.info.state_units[re.sub(r"\[\d+\]", "[i]", n)] for n in names}
            out.append(state_output(spec, names, units))
        out.append(input_output(spec, INPUTS, INPUT_UNITS))
        return tuple(out)

    @classmethod
    def _segmentation_ids(cls, spec, model: _arms.ArmModel, n_objects: int) -> dict[int, str]:
        """Instance id -> what it marks (a variant adds its own bodies after the arm's links)."""
        return segmentation_ids(model, n_objects)

    def _task(self, spec) -> int:
        """The task code (``parameters.task``; a variant may fix it)."""
        return _controllers.task_code(spec.parameters["task"])

    def _extra_state_names(self) -> tuple[str, ...]:
        """State columns a variant appends after the arm's and the objects' (filled by :meth:`_record_extra`)."""
        return ()

    def _record_extra(self, row: np.ndarray, tcp: np.ndarray, cfg: dict) -> None:
        """A variant's hook, called each frame after the physics steps and before filming: update its own bodies
        from the frame's TCP position ``tcp`` (m) and write its state columns into ``row[len(arm states):]``."""

    def _controller(self, cfg: dict) -> _controllers.Controller:
        """The scripted controller of one sample (``cfg`` from :meth:`_setup`)."""
        return _controllers.Controller(self.task, cfg["gains"], _rooms.TABLE_TOP, self.fps, self._arm.tcp_pose()[0])

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        problems = type(self).check(spec)
        if problems:
            raise ValueError(problems[0])
        video = getattr(spec, "video", None)
        if video is None:
            raise ValueError("robotics/arm renders videos; the spec needs `video: {fps: 10, frames: 40}`")
        self.model = _arms.arm_model(spec.parameters["arm"])
        self.task = self._task(spec)
        self.room_model = _rooms.room_model(spec.parameters["room"])
        self.fps, self.substeps, self.n_frames = float(video.fps), int(video.substeps), int(video.n_frames)
        self.dt = 1.0 / (self.fps * self.substeps)
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        self.n_obj = spec.object_count("obj") or 0
        self._full = state_names(len(self.model.joints), self.n_obj) + self._extra_state_names()
        self._stored = [self._full.index(s) for s in declared_states(spec, self.info.states)]
        self._objects: list[int] = []
        self._weld: int | None = None
        self._finger_hold: np.ndarray | None = None
        self._unfiltered: list[tuple[int, int]] = []
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

        bc, p = self.client.bc, self.client.p
        data = pybullet_data.getDataPath()
        bc.resetSimulation()
        bc.setPhysicsEngineParameter(fixedTimeStep=self.dt, numSubSteps=1, deterministicOverlappingPairs=1)
        bc.setGravity(0.0, 0.0, -9.81)
        self._room = _rooms.build_room(bc, p, self.room_model, data)
        self._arm = _arms.Arm(bc, p, self.model, _rooms.ARM_BASE, data)
        loaded = [self._arm.link_names[j] for j in range(-1, self._arm.n_all)]
        if tuple(loaded) != self.model.links:
            raise RuntimeError(f"{self.model.urdf}: links {loaded} differ from the model's {list(self.model.links)}")
        sphere = bc.createVisualShape(p.GEOM_SPHERE, radius=0.018, rgbaColor=(*_GOAL_RGB, 1.0))
        disc = bc.createVisualShape(p.GEOM_CYLINDER, radius=0.045, length=0.002, rgbaColor=(*_GOAL_RGB, 1.0))
        self._goal = bc.createMultiBody(0.0, -1, sphere, basePosition=[0.0, 0.0, 1.0])
        self._goal_disc = bc.createMultiBody(0.0, -1, disc, basePosition=[0.0, 0.0, _rooms.TABLE_TOP + 0.001])
        self._home = _ik.home(self._arm)
        # TCP frame -> mount frame: undo the arm's own "down" orientation, apply the canonical one (pi about x)
        self._down_to_mount = pb.quaternion_matrix(self.model.down).T @ np.diag([1.0, -1.0, -1.0])

    # ---------------------------------------------------------------- latents

    def _latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        lat = {k: np.asarray(v, dtype=np.float64) for k, v in batch.latents.items()}
        n = len(batch)
        need = list(GLOBAL_LATENTS) + [f"obj[{k}].{f.split('.', 1)[1]}" for k in range(self.n_obj) for f in OBJECT_LATENTS]
        missing = [k for k in need if k not in lat]
        if missing:
            raise KeyError(f"robotics/arm needs latents {missing[:6]} (objects: {self.n_obj})")
        for key, arr in lat.items():
            if arr.shape != (n,):
                raise ValueError(f"latent {key!r} has shape {arr.shape}, expected ({n},)")
        check_latent_values(self.info, lat)
        for name, default in DEFAULTS.items():
            if name.startswith("obj[i]."):
                for k in range(self.n_obj):
                    lat.setdefault(name.replace("[i]", f"[{k}]"), np.full(n, default))
            else:
                lat.setdefault(name, np.full(n, default))
        return lat

    def _edits(self, batch: WorldBatch) -> list[list[tuple]]:
        """Per sample: (kind, index, axis, op, start, end, value) with start = max(frame, 1), end None = open."""
        n = len(batch)
        out: list[list[tuple]] = [[] for _ in range(n)]
        for e in batch.edits:
            if e.op not in ("set", "add", "scale"):
                raise ValueError(f"temporal edit on {e.target!r}: unknown op {e.op!r}; expected set, add or scale")
            m = _OBJ.match(e.target)
            if e.target in ("goal.x", "goal.y", "goal.z"):
                key = ("goal", "xyz".index(e.target[-1]))
            elif m and m.group(2) in ("vx", "vy", "vz", "mass") and int(m.group(1)) < self.n_obj:
                k = int(m.group(1))
                key = ("mass", k) if m.group(2) == "mass" else ("v", k, "xyz".index(m.group(2)[1]))
            else:
                raise ValueError(f"robotics/arm cannot edit {e.target!r}; expected one of {', '.join(EDIT_TARGETS)} "
                                 f"(i < {self.n_obj})")
            for i in range(n):
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
        bc = self.client.bc
        self._release()
        self._finger_hold = None
        for body, link in self._unfiltered:  # collisions between the gripper and a cube it held
            bc.setCollisionFilterPair(self._arm.body, body, link, -1, 1)
        self._unfiltered = []
        for body in self._objects:
            bc.removeBody(body)
        # the cubes' collision and visual shapes stay (PyBullet refuses to remove a shape a removed body used):
        # two small primitive shapes per sample, measured flat in tests/scenes/test_robot_world.py
        self._objects = []

    def _setup(self, lat: Mapping[str, np.ndarray], i: int) -> dict:
        """Reset the scene to sample ``i``'s initial configuration; returns its per-sample values."""
        bc, p = self.client.bc, self.client.p
        self._clear()
        for body, rgba in zip(self._room.floor, _rooms.floor_colours(lat["floor.hue"][i])):
            bc.changeVisualShape(body, -1, rgbaColor=rgba)
        bc.changeVisualShape(self._room.table_top, -1, rgbaColor=(*pb.hsv_to_rgb(lat["table.hue"][i], 0.3, 0.72), 1.0))
        bc.changeDynamics(self._room.table_top, -1, lateralFriction=float(lat["table.friction"][i]), restitution=0.0)
        sizes, masses, frictions = [], [], []
        for k in range(self.n_obj):
            s, m = float(lat[f"obj[{k}].size"][i]), float(lat[f"obj[{k}].mass"][i])
            col = bc.createCollisionShape(p.GEOM_BOX, halfExtents=[s, s, s])
            vis = bc.createVisualShape(p.GEOM_BOX, halfExtents=[s, s, s],
                                       rgbaColor=(*pb.hsv_to_rgb(lat[f"obj[{k}].hue"][i]), 1.0))
            pos = [float(lat[f"obj[{k}].x0"][i]), float(lat[f"obj[{k}].y0"][i]), _rooms.TABLE_TOP + s]
            body = bc.createMultiBody(m, col, vis, basePosition=pos, baseOrientation=pb.yaw_quaternion(lat[f"obj[{k}].yaw0"][i]))
            bc.changeDynamics(body, -1, lateralFriction=float(lat[f"obj[{k}].friction"][i]), restitution=0.0,
                              rollingFriction=0.0, spinningFriction=0.001, linearDamping=0.0, angularDamping=0.0,
                              localInertiaDiagonal=list(pb.inertia_diagonal(pb.BOX, s, m)),
                              activationState=p.ACTIVATION_STATE_DISABLE_SLEEPING)
            self._objects.append(body)
            sizes.append(s)
            masses.append(m)
            frictions.append(float(lat[f"obj[{k}].friction"][i]))
        self._arm.reset(self._home, 1.0)
        goal = np.array([lat["goal.x"][i], lat["goal.y"][i], lat["goal.z"][i]])
        self._place_goal(goal)
        gains = _controllers.Gains(kp=float(lat["ctrl.kp"][i]), max_qd=float(lat["ctrl.max_qd"][i]),
                                   speed=float(lat["ctrl.speed"][i]), height=float(lat["ctrl.height"][i]),
                                   grip_force=float(lat["ctrl.grip_force"][i]))
        az = float(lat["light.azimuth"][i])
        light = (math.cos(az) * math.cos(_LIGHT_ELEVATION), math.sin(az) * math.cos(_LIGHT_ELEVATION), math.sin(_LIGHT_ELEVATION))
        return {"sizes": np.array(sizes), "masses": masses, "frictions": frictions, "goal": goal, "gains": gains, "light": light,
                "diffuse": float(lat["light.intensity"][i]) * 0.55}

    def _place_goal(self, goal: np.ndarray) -> None:
        bc = self.client.bc
        bc.resetBasePositionAndOrientation(self._goal, [float(x) for x in goal], [0, 0, 0, 1])
        bc.resetBasePositionAndOrientation(self._goal_disc, [float(goal[0]), float(goal[1]), _rooms.TABLE_TOP + 0.001],
                                           [0, 0, 0, 1])

    def _lut(self) -> np.ndarray:
        from ._view import segmentation_lut  # noqa: PLC0415

        whole = {b: ROOM_ID for b in self._room.scenery}
        whole.update({b: TABLE_ID for b in self._room.table})
        whole.update({self._goal: GOAL_ID, self._goal_disc: GOAL_ID})
        whole.update({b: FIRST_OBJECT_ID + k for k, b in enumerate(self._objects)})
        whole.update(self._extra_ids())
        first = FIRST_OBJECT_ID + self.n_obj
        links = {(self._arm.body, j): first + j + 1 for j in range(-1, self._arm.n_all)}
        return segmentation_lut(links, whole)

    def _extra_ids(self) -> dict[int, int]:
        """Body -> segmentation id of a variant's own bodies."""
        return {}

    # ---------------------------------------------------------------- feasibility

    def feasible(self, batch: WorldBatch) -> np.ndarray:
        """(n,) bool: False where a sample's initial configuration interpenetrates.

        Two bodies interpenetrate when PyBullet's closest points between them (``getClosestPoints``)
        lie deeper than ``PENETRATION_TOLERANCE`` m: objects with each other, with any arm link,
        and with the table top. Cubes start resting on the table (distance 0), so only overlaps count.
        """
        return np.array([r == "" for r in self.explain_infeasible(batch)], dtype=bool)

    def explain_infeasible(self, batch: WorldBatch) -> list[str]:
        """One reason per sample ("" where feasible): the first pair of bodies that interpenetrate (see :meth:`feasible`)
        and how deep (m), e.g. ``"obj[0] and obj[1] interpenetrate by 0.012 m"``."""
        lat = self._latents(batch)
        bc = self.client.bc
        out = []
        for i in range(len(batch)):
            self._setup(lat, i)
            names = {self._arm.body: "the arm", self._room.table_top: "the table top"}
            names.update({b: f"obj[{k}]" for k, b in enumerate(self._objects)})
            reason = ""
            for k, body in enumerate(self._objects):
                for other in [*self._objects[k + 1:], self._arm.body, self._room.table_top]:
                    pts = bc.getClosestPoints(body, other, distance=0.0)
                    depth = -min(pt[8] for pt in pts) if pts else 0.0
                    if depth > PENETRATION_TOLERANCE and not reason:
                        reason = f"obj[{k}] and {names[other]} interpenetrate by {depth:.3f} m"
            out.append(reason or self._explain_extra(lat, i))
        self._clear()
        return out

    def _explain_extra(self, lat: Mapping[str, np.ndarray], i: int) -> str:
        """A variant's own reason why sample ``i`` cannot start ("" where it can)."""
        return ""

    # ---------------------------------------------------------------- simulate and film

    def _sample(self, lat, i: int, edits: list[tuple], out: dict[str, np.ndarray] | None) -> tuple:
        """Simulate (and, with ``out``, film) sample ``i``: (states (T, S), inputs (T, 6), deepest penetration m)."""
        bc, p, arm = self.client.bc, self.client.p, self._arm
        T, J, N = self.n_frames, len(self.model.joints), self.n_obj
        cfg = self._setup(lat, i)
        sizes, goal0 = cfg["sizes"], cfg["goal"]
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
            q, qd = arm.joint_state()
            row = states[t]
            row[0:2 * J:2], row[1:2 * J:2] = q, qd
            pos, orn = arm.tcp_pose()
            row[2 * J:2 * J + 3], row[2 * J + 3:2 * J + 7] = pos, orn
            row[2 * J + 7] = arm.opening()
            base = 2 * J + 8
            for k, body in enumerate(self._objects):
                bp, bq = bc.getBasePositionAndOrientation(body)
                lin, _ = bc.getBaseVelocity(body)
                r = row[base + k * 10:base + (k + 1) * 10]
                r[0:3], r[3:7], r[7:10] = bp, bq, lin
            self._record_extra(row, np.asarray(pos), cfg)
            if out is not None:
                self._film.frame(out, i, t, {"ee": self.mount_pose(pos, orn)}, lut, cfg["light"], cfg["diffuse"])

        def objects_now(t: int) -> tuple[np.ndarray, np.ndarray]:
            base = 2 * J + 8
            rows = states[t, base:base + 10 * N].reshape(N, 10)
            q = rows[:, 3:7]  # yaw of each cube from its quaternion (x, y, z, w)
            yaw = np.arctan2(2 * (q[:, 3] * q[:, 2] + q[:, 0] * q[:, 1]), 1 - 2 * (q[:, 1] ** 2 + q[:, 2] ** 2))
            return rows[:, 0:3], yaw

        ctrl = self._controller(cfg)
        mass = list(cfg["masses"])
        goal = goal0.copy()
        min_d = math.inf
        held_at: np.ndarray | None = None
        bc.performCollisionDetection()
        record(0)
        inputs[0] = [*ctrl.cmd, ctrl.yaw, ctrl.opening, ctrl.phase]
        for t in range(1, T):
            new_goal = np.array([fold(goal0[a], ("goal", a), t) for a in range(3)])
            if not np.array_equal(new_goal, goal):
                goal = new_goal
                self._place_goal(goal)
            for k in range(N):
                if ("mass", k) in by_key:
                    m = fold(cfg["masses"][k], ("mass", k), t)
                    if m <= 0 or not math.isfinite(m):
                        raise ValueError(f"temporal edit made obj[{k}].mass {m} at frame {t}; mass must stay > 0")
                    if m != mass[k]:
                        bc.changeDynamics(self._objects[k], -1, mass=m, localInertiaDiagonal=list(pb.inertia_diagonal(pb.BOX, sizes[k], m)))
                        mass[k] = m
            for (key, op, _, _, value) in impulses.get(t, ()):
                _, k, axis = key
                lin, ang = bc.getBaseVelocity(self._objects[k])
                lin = list(lin)
                lin[axis] = _apply(op, lin[axis], value)
                bc.resetBaseVelocity(self._objects[k], linearVelocity=lin, angularVelocity=list(ang))
            tcp = states[t - 1, 2 * J:2 * J + 3]
            centres, yaws = objects_now(t - 1)
            cmd = ctrl.step(tcp, centres, yaws, sizes, goal, self._weld is not None)
            if cmd.grasp > 0 and N:
                self._grasp(tcp, sizes[0], _controllers.hold_force(cfg["gains"].grip_force, cfg["frictions"][0]))
                held_at = None
            elif cmd.grasp < 0:
                self._release()
            touch = cmd.phase == _controllers.PHASES.index("grasp")
            arm.command(_ik.solve(arm, cmd.target, cmd.yaw), cmd.opening, cfg["gains"].kp, cfg["gains"].max_qd,
                        finger_force=TOUCH_FORCE if touch else FINGER_FORCE,
                        fingers=self._finger_hold if self._weld is not None else None)
            inputs[t] = [*cmd.target, cmd.yaw, cmd.opening, cmd.phase]
            for _ in range(self.substeps):
                bc.stepSimulation()
                pts = bc.getContactPoints()
                if pts:
                    min_d = min(min_d, min(pt[8] for pt in pts))
            if self._weld is not None:  # a grasp slips when the object has moved SLIP m from where it was held
                rel = self._relative_object()
                if held_at is None:
                    held_at = rel
                elif float(np.linalg.norm(rel - held_at)) > _controllers.SLIP:
                    self._release()
            record(t)
        self._release()
        pen = 0.0 if not math.isfinite(min_d) else max(0.0, -min_d)
        return states, inputs, pen

    def mount_pose(self, position: np.ndarray, orientation: np.ndarray) -> np.ndarray:
        """The ``ee`` mount's pose (4x4): at the TCP, axes the same for every arm (x along +x world, y along -y,
        z down when the gripper points down) and turning with the wrist."""
        m = pose_matrix(position, orientation)
        m[:3, :3] = m[:3, :3] @ self._down_to_mount
        return m

    def _relative_object(self) -> np.ndarray:
        bc = self.client.bc
        pos, orn = self._arm.tcp_pose()
        op, _ = bc.getBasePositionAndOrientation(self._objects[0])
        return pb.quaternion_matrix(orn).T @ (np.asarray(op) - pos)

    def _grasp(self, tcp: np.ndarray, size: float, force: float) -> None:
        """Hold obj[0] with a fixed constraint from the IK link (at most ``force`` N), if its centre lies between the fingers."""
        bc, p, arm = self.client.bc, self.client.p, self._arm
        op, oq = bc.getBasePositionAndOrientation(self._objects[0])
        if float(np.linalg.norm(np.asarray(op) - tcp)) > size + _controllers.GRASP_MARGIN:
            return
        ls = bc.getLinkState(arm.body, arm.ee, computeForwardKinematics=True)
        inv_pos, inv_orn = bc.invertTransform(ls[4], ls[5])
        rel_pos, rel_orn = bc.multiplyTransforms(inv_pos, inv_orn, op, oq)
        self._weld = bc.createConstraint(arm.body, arm.ee, self._objects[0], -1, p.JOINT_FIXED, [0, 0, 0], rel_pos, [0, 0, 0],
                                         rel_orn, [0, 0, 0, 1])
        bc.changeConstraint(self._weld, maxForce=float(force))
        # the weld alone holds the cube: the fingers stay where they touched it and stop colliding with it
        # (for the rest of the sample), so their own friction adds nothing to the hold law
        self._finger_hold = arm.finger_positions()
        for link in arm.gripper_links():
            bc.setCollisionFilterPair(arm.body, self._objects[0], link, -1, 0)
            self._unfiltered.append((self._objects[0], link))

    def _release(self) -> None:
        if self._weld is not None:
            self.client.bc.removeConstraint(self._weld)
            self._weld = None

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
        """States (n, T, S) and inputs (n, T, 6) float64 without filming, bitwise equal to what ``render`` films."""
        return self._run(batch, None)

    def render(self, batch: WorldBatch) -> Rendered:
        out = allocate(self._outputs, len(batch))
        sim = self._run(batch, out)
        if "states" in out:
            out["states"][:] = sim.states[:, :, self._stored]
        out["inputs"][:] = sim.inputs
        centres, ids, radius = self._landmarks(batch, sim)
        return Rendered(out, landmarks=centres, landmark_ids=ids, landmark_radius=radius, simulation=sim)

    def _landmarks(self, batch: WorldBatch, sim: Simulation) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Known centres (n, T, K, 3) m, their segmentation ids (K,) and radii (n, K, 2) m (inner, outer): the cubes."""
        J, N = len(self.model.joints), self.n_obj
        base = 2 * J + 8
        centres = sim.states[:, :, base:base + 10 * N].reshape(len(batch), self.n_frames, N, 10)[..., 0:3]
        sizes = np.stack([np.asarray(batch.latents[f"obj[{k}].size"], dtype=np.float64) for k in range(N)], axis=1)
        radius = np.stack([sizes, sizes * math.sqrt(3.0)], axis=-1)
        return centres.copy(), FIRST_OBJECT_ID + np.arange(N), radius

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
            self.client = None


def _apply(op: str, current: float, value: float) -> float:
    if op == "set":
        return value
    if op == "add":
        return current + value
    return current * value
