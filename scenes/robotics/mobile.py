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
from typing import ClassVar, Mapping

import numpy as np

from ..base import WorldCheck, WorldInfo
from ..cameras import pose_matrix
from ..engines import bullet as pb
from . import _mobile, _rooms
from ._skeleton import OBJ_FIELDS, OBJ_UNITS, BulletVideoWorld, penetration, tiny_video_info

BASE_FIELDS = ("x", "y", "z", "yaw", "vx", "vy", "wz")
INPUTS = ("cmd.v", "cmd.w", "phase")
INPUT_UNITS = {"cmd.v": "m/s", "cmd.w": "rad/s", "phase": "1"}
STATE_UNITS = {"base.x": "m", "base.y": "m", "base.z": "m", "base.yaw": "rad", "base.vx": "m/s", "base.vy": "m/s",
               "base.wz": "rad/s", "wheel[i].qd": "rad/s", **OBJ_UNITS}
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
#: Simulation step (s) of the catalogue's mobile scene (``fps: 10``, ``substeps: 24``).
EDIT_STEP = 1.0 / 240.0
#: Valid range of a velocity edit (m/s; a kick's change, a set's value) at the catalogue's step: at most the smallest
#: box's half side (``obj[i].size`` >= 0.08 m) per step, 0.08 * 240 = 19.2 m/s, so that a pushed box cannot tunnel
#: through the robot, another box or a wall within one step. ``crlgen check`` holds an edit to the bound at the spec's
#: own step (``BulletVideoWorld.edit_ranges``).
MAX_KICK = RANGES["obj[i].size"][0] / EDIT_STEP
EDIT_RANGES: dict[str, tuple[float, float]] = {f"obj[i].v{a}": (-MAX_KICK, MAX_KICK) for a in "xy"}
#: Robot links, base first (``husky/husky.urdf``; checked when loaded).
LINKS = ("base_footprint", "base_link", "imu_link", "front_left_wheel_link", "front_right_wheel_link", "rear_left_wheel_link",
         "rear_right_wheel_link", "top_plate_link", "user_rail_link", "front_bumper_link", "rear_bumper_link")
ROOM_ID, GOAL_ID, FIRST_OBJECT_ID = 1, 2, 3
MAX_OBJECTS = 8
PENETRATION_TOLERANCE = 1e-3
RUN_PENETRATION_TOLERANCE = 0.03
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


_INFO = tiny_video_info(
    "robotics/mobile",
    "A wheeled robot (Clearpath Husky) drives to a box on the floor of a room and pushes it onto a goal, "
    "driven by a scripted unicycle controller; PyBullet, filmed with TinyRenderer.",
    latents=LATENTS,
    optional_latents=OPTIONAL,
    ranges=RANGES,
    states=(*(f"base.{f}" for f in BASE_FIELDS), "wheel[i].qd", *(f"obj[i].{f}" for f in OBJ_FIELDS)),
    state_units=STATE_UNITS,
    inputs=INPUTS,
    edit_targets=EDIT_TARGETS,
    edit_ranges=EDIT_RANGES,
    mounts=("robot",),
    max_objects={"obj": MAX_OBJECTS, "wheel": len(_mobile.WHEELS)},
)


class MobileWorld(BulletVideoWorld):
    """``robotics/mobile`` (see the module docstring); the shared life cycle is :class:`._skeleton.BulletVideoWorld`."""

    info: ClassVar[WorldInfo] = _INFO
    checks = (WorldCheck("penetration", "contacts never sink deeper than RUN_PENETRATION_TOLERANCE", penetration),)
    INPUTS, INPUT_UNITS = INPUTS, INPUT_UNITS
    REQUIRED = LATENTS
    DEFAULTS = DEFAULTS
    TARGET = (0.0, 0.0, 0.2)
    BASE_DISTANCE = 4.0
    SCENE_RADIUS = 8.0
    VIDEO_EXAMPLE = "{fps: 10, frames: 60}"
    TABLE, BOX_FLOOR, BOX_SPINNING_FRICTION = False, 0.0, 0.0
    GOAL_AXES = VELOCITY_AXES = "xy"
    FIRST_OBJECT_ID = FIRST_OBJECT_ID
    PENETRATION_TOLERANCE, RUN_PENETRATION_TOLERANCE = PENETRATION_TOLERANCE, RUN_PENETRATION_TOLERANCE

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
        return out + cls._common_problems(spec)

    @classmethod
    def _segmentation_ids(cls, spec, n_objects: int) -> dict[int, str]:
        return segmentation_ids(n_objects)

    def _state_names(self) -> tuple[str, ...]:
        return state_names(self.n_obj)

    # ---------------------------------------------------------------- the scene, built once

    def _build_scene(self, bc, p, data: str) -> None:
        from ..engines.quiet import quiet_output  # noqa: PLC0415

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

    def _segments(self) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
        whole = {b: ROOM_ID for b in self._room.scenery}
        whole[self._goal] = GOAL_ID
        whole.update({b: FIRST_OBJECT_ID + k for k, b in enumerate(self._objects)})
        first = FIRST_OBJECT_ID + self.n_obj
        links = {(self._robot, j): first + j + 1 for j in range(-1, len(LINKS) - 1)}
        return links, whole

    # ---------------------------------------------------------------- one sample's set-up

    def _setup_agent(self, lat: Mapping[str, np.ndarray], i: int) -> dict:
        bc = self.client.bc
        bc.resetBasePositionAndOrientation(self._robot, [float(lat["robot.x0"][i]), float(lat["robot.y0"][i]), 0.0],
                                           pb.yaw_quaternion(lat["robot.yaw0"][i]))
        bc.resetBaseVelocity(self._robot, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0])
        for j in range(bc.getNumJoints(self._robot)):
            bc.resetJointState(self._robot, j, 0.0, 0.0)
        goal = np.array([lat["goal.x"][i], lat["goal.y"][i]])
        self._place_goal(goal)
        gains = _mobile.DriveGains(speed=float(lat["ctrl.speed"][i]), kp=float(lat["ctrl.kp"][i]),
                                   torque=float(lat["ctrl.torque"][i]))
        return {"goal": goal, "gains": gains}

    def _place_goal(self, goal: np.ndarray) -> None:
        self.client.bc.resetBasePositionAndOrientation(self._goal, [float(goal[0]), float(goal[1]), GOAL_LIFT], [0, 0, 0, 1])

    # ---------------------------------------------------------------- feasibility

    def _obstacles(self) -> list[tuple[int, str]]:
        return [(self._robot, "the robot")]

    def _explain_extra(self, lat: Mapping[str, np.ndarray], i: int, cfg: dict) -> str:
        """A box standing on the goal disc already (boxes inside each other or the robot: :meth:`explain_infeasible`)."""
        box = np.array([lat["obj[0].x0"][i], lat["obj[0].y0"][i]])
        d = float(np.linalg.norm(box - cfg["goal"]))
        if d < GOAL_RADIUS:
            return f"obj[0] starts on the goal ({d:.3f} m from it, the disc's radius is {GOAL_RADIUS} m)"
        return ""

    # ---------------------------------------------------------------- simulate and film

    def _controller(self, cfg: dict) -> _mobile.PushController:
        return _mobile.PushController(cfg["gains"], self.fps)

    def _first_inputs(self, ctrl) -> list[float]:
        return [0.0, 0.0, ctrl.phase]

    def _command(self, ctrl, states: np.ndarray, t: int, cfg: dict) -> list[float]:
        prev, base = states[t - 1], self._obj_base
        cmd = ctrl.step(prev[[0, 1, 3]], prev[base:base + 2], float(cfg["sizes"][0]), cfg["goal_now"])
        speeds = _mobile.wheel_speeds(cmd.v, cmd.w)
        self.client.bc.setJointMotorControlArray(self._robot, self._wheels, self.client.p.VELOCITY_CONTROL,
                                                 targetVelocities=list(speeds), forces=[cfg["gains"].torque] * len(self._wheels))
        return [cmd.v, cmd.w, cmd.phase]

    def _record(self, row: np.ndarray, cfg: dict) -> dict[str, np.ndarray]:
        bc = self.client.bc
        pos, orn = bc.getBasePositionAndOrientation(self._robot)
        lin, ang = bc.getBaseVelocity(self._robot)
        yaw = bc.getEulerFromQuaternion(orn)[2]
        row[0:7] = [*pos, yaw, lin[0], lin[1], ang[2]]
        row[7:7 + len(self._wheels)] = [bc.getJointState(self._robot, j)[1] for j in self._wheels]
        return {"robot": pose_matrix(np.asarray(pos), np.asarray(orn))}
