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
- arm: optional ``arm.twist`` (rad, default 0), the rest angle of a 7-joint arm's upper-arm roll
  joint (``joint[2]``), which the IK's null space follows (:func:`._ik.rest_pose`): how the arm's
  redundancy is resolved, and so where its elbow and forearm swing, from the start pose (the TCP at
  the home pose's TCP, pointing down, :func:`._ik.start_pose`) to the end; refused for the 6-joint xArm6;
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

Temporal edits, with the physics worlds' frame semantics (an edit at frame f is in force at frames
f .. end - 1: at a frame t >= 1 on the steps into frame t, at frame 0 on the initial state before frame
0 is recorded; so ``states[:f]`` equal the unedited run bitwise and frame f is the first that can
differ, frame 0 included): ``obj[i].vx|vy|vz`` (a one-shot velocity change at the start of frame f's
steps: a push; at frame 0 on the initial velocity, which ``states[0]`` holds), ``obj[i].mass``
(changeDynamics while in force) and ``goal.x|y|z`` (the controller and the goal marker use the
edited goal while in force; at frame 0 the marker is filmed there already).

Ground truth never lags the physics: each frame's states are read right after its last step and
the frame is filmed from that same simulator state (the wrist camera from that frame's TCP pose).

The scene (room, table, arm, goal marker) is built once per PyBullet client; per sample the
cubes are re-created (primitive boxes), the arm is reset to its rest pose and colours and
frictions are set on the existing bodies. A new client is built every ``REBUILD_EVERY`` samples
(:class:`._skeleton.BulletVideoWorld`): PyBullet keeps a removed box's shapes until its client
closes, so memory stays flat over a long shard.

Segmentation ids: 0 background, 1 room, 2 table, 3 goal marker, 4 + i object i, then one id per
arm link (``arm.<link name>``, base first). Cameras: orbit, fixed, top-down and ``mounted`` on
``ee`` (the TCP; z along the gripper's approach direction).
"""

from __future__ import annotations

import math
from typing import ClassVar, Mapping

import numpy as np

from ..base import Simulation, WorldBatch, WorldCheck, WorldInfo
from ..cameras import pose_matrix
from ..engines import bullet as pb
from . import _arms, _controllers, _ik, _rooms
from ._skeleton import OBJ_FIELDS, OBJ_UNITS, BulletVideoWorld, penetration, tiny_video_info

EE_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw")
INPUTS = ("cmd.x", "cmd.y", "cmd.z", "cmd.yaw", "cmd.gripper", "phase")
INPUT_UNITS = {"cmd.x": "m", "cmd.y": "m", "cmd.z": "m", "cmd.yaw": "rad", "cmd.gripper": "1", "phase": "1"}
STATE_UNITS = {"joint[i].q": "rad", "joint[i].qd": "rad/s", **{f"ee.{f}": ("m" if f in "xyz" else "1") for f in EE_FIELDS},
               "gripper.opening": "1", **OBJ_UNITS}

GLOBAL_LATENTS = ("floor.hue", "table.hue", "table.friction", "ctrl.kp", "ctrl.max_qd", "ctrl.speed", "ctrl.height",
                  "ctrl.grip_force", "goal.x", "goal.y", "goal.z")
OBJECT_LATENTS = ("obj[i].size", "obj[i].mass", "obj[i].friction", "obj[i].hue", "obj[i].x0", "obj[i].y0")
OPTIONAL = ("light.intensity", "light.azimuth", "obj[i].yaw0", "arm.twist")
DEFAULTS = {"light.intensity": 1.0, "light.azimuth": 0.6, "obj[i].yaw0": 0.0, "arm.twist": 0.0}

#: Valid ranges: what the arms reach and the cameras frame (m, kg, N, rad, rad/s). A cube's half side goes up to 0.045 m:
#: the KUKA gripper opens 11.2 cm (two fingers of 5.6 cm). The Panda's opens 8 cm (two of 4 cm), so a Panda spec keeps the
#: half side under about 0.036 m for a grasp to close around the cube; the xArm6's opening is not measured here.
RANGES: dict[str, tuple[float, float]] = {
    "floor.hue": (0.0, 1.0), "table.hue": (0.0, 1.0), "table.friction": (0.05, 2.0),
    "ctrl.kp": (0.01, 1.0), "ctrl.max_qd": (0.2, 3.0), "ctrl.speed": (0.05, 1.0), "ctrl.height": (0.03, 0.3),
    "ctrl.grip_force": (1.0, 500.0),
    "goal.x": (-0.2, 0.35), "goal.y": (-0.35, 0.35), "goal.z": (_rooms.TABLE_TOP + 0.02, _rooms.TABLE_TOP + 0.5),
    "obj[i].size": (0.012, 0.045), "obj[i].mass": (0.01, 20.0), "obj[i].friction": (0.05, 2.0), "obj[i].hue": (0.0, 1.0),
    "obj[i].x0": (-0.2, 0.35), "obj[i].y0": (-0.35, 0.35), "obj[i].yaw0": (-math.pi, math.pi),
    "light.intensity": (0.2, 2.0), "light.azimuth": (-math.pi, math.pi), "arm.twist": (-1.5, 1.5),
}
EDIT_TARGETS = ("obj[i].vx", "obj[i].vy", "obj[i].vz", "obj[i].mass", "goal.x", "goal.y", "goal.z")
#: Simulation step (s) of the catalogue's arm scenes (``fps: 10``, ``substeps: 24``).
EDIT_STEP = 1.0 / 240.0
#: Valid range of a velocity edit (m/s; a kick's change, a set's value) at the catalogue's step: at most the smallest
#: cube's half side (``obj[i].size`` >= 0.012 m) per step, 0.012 * 240 = 2.88 m/s, so that a pushed cube cannot
#: tunnel through a finger, another cube or the table top within one step. ``crlgen check`` holds an edit to the
#: bound at the spec's own step (``BulletVideoWorld.edit_ranges``).
MAX_KICK = RANGES["obj[i].size"][0] / EDIT_STEP
EDIT_RANGES: dict[str, tuple[float, float]] = {f"obj[i].v{a}": (-MAX_KICK, MAX_KICK) for a in "xyz"}

#: Finger motor force (N or N m) while the gripper moves, and while it closes on a cube (it touches without squeezing).
FINGER_FORCE = 40.0
TOUCH_FORCE = 3.0
#: Two bodies whose closest points lie deeper than this (m) interpenetrate (:meth:`ArmWorld.feasible`).
PENETRATION_TOLERANCE = 1e-3
#: Deepest contact (m) a plausible run may show (the ``penetration`` check): a grasped cube pressed by the fingers.
RUN_PENETRATION_TOLERANCE = 0.02

ROOM_ID, TABLE_ID, GOAL_ID, FIRST_OBJECT_ID = 1, 2, 3, 4
MAX_OBJECTS = 16
_GOAL_RGB = (0.97, 0.97, 0.97)


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


_INFO = tiny_video_info(
    "robotics/arm",
    "An arm (KUKA iiwa, xArm6 or Franka Panda) on a table in a room reaches, pushes, picks and places, "
    "stacks or presses, driven by a scripted IK state machine; PyBullet, filmed with TinyRenderer.",
    latents=GLOBAL_LATENTS + OBJECT_LATENTS,
    optional_latents=OPTIONAL,
    ranges=RANGES,
    states=("joint[i].q", "joint[i].qd", *(f"ee.{f}" for f in EE_FIELDS), "gripper.opening",
            *(f"obj[i].{f}" for f in OBJ_FIELDS)),
    state_units=STATE_UNITS,
    inputs=INPUTS,
    edit_targets=EDIT_TARGETS,
    edit_ranges=EDIT_RANGES,
    mounts=("ee",),
    max_objects={"obj": MAX_OBJECTS, "joint": 7},
)


class ArmWorld(BulletVideoWorld):
    """``robotics/arm`` (see the module docstring); the shared life cycle is :class:`._skeleton.BulletVideoWorld`."""

    info: ClassVar[WorldInfo] = _INFO
    checks = (WorldCheck("penetration", "contacts never sink deeper than RUN_PENETRATION_TOLERANCE", penetration),
              WorldCheck("joint_limits", "every joint stays within its URDF limits", _joint_limits))
    INPUTS, INPUT_UNITS = INPUTS, INPUT_UNITS
    REQUIRED = GLOBAL_LATENTS + OBJECT_LATENTS
    DEFAULTS = DEFAULTS
    TARGET = (0.0, 0.0, _rooms.TABLE_TOP + 0.1)
    BASE_DISTANCE = 1.8
    SCENE_RADIUS = 6.0
    VIDEO_EXAMPLE = "{fps: 10, frames: 40}"
    LAYOUT_PARAMETERS = ("arm", "task", "room")
    TABLE, BOX_FLOOR, BOX_SPINNING_FRICTION = True, _rooms.TABLE_TOP, 0.001
    FIRST_OBJECT_ID = FIRST_OBJECT_ID
    PENETRATION_TOLERANCE, RUN_PENETRATION_TOLERANCE = PENETRATION_TOLERANCE, RUN_PENETRATION_TOLERANCE

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
        out += cls._joint_problems(spec) + cls._twist_problems(spec)
        n = spec.object_count("obj") or 0
        task = _controllers.task_code(spec.parameters["task"])
        if n < (2 if task == 3 else 1):
            out.append(f"objects.obj: the {_controllers.TASK_NAMES[task]} task needs at least {2 if task == 3 else 1} objects, got {n}")
        return out + cls._common_problems(spec)

    @classmethod
    def optional_latents_for(cls, spec) -> tuple[str, ...]:
        """Without ``arm.twist`` for an arm that has no redundancy to resolve (the 6-joint xArm6)."""
        try:
            twist = _arms.arm_model(spec.parameters["arm"]).twist_joint is not None
        except (KeyError, ValueError):  # no or a bad parameters.arm: check says so
            twist = True
        return tuple(n for n in cls.info.optional_latents if twist or n != "arm.twist")

    @classmethod
    def _twist_problems(cls, spec) -> list[str]:
        """``arm.twist`` on an arm without redundancy (``parameters.arm`` already checked)."""
        model = _arms.arm_model(spec.parameters["arm"])
        if model.twist_joint is None and "arm.twist" in spec.graph.names:
            return [f"variables.arm.twist: the {model.name} has {len(model.joints)} joints and no redundancy for "
                    "arm.twist to resolve; it needs a 7-joint arm (parameters.arm 0 kuka_iiwa or 2 franka_panda)"]
        return []

    @classmethod
    def _joint_problems(cls, spec) -> list[str]:
        """``objects.joint`` against the arm's joints (``parameters.arm`` already checked)."""
        model = _arms.arm_model(spec.parameters["arm"])
        nj = spec.object_count("joint")
        if nj is not None and nj != len(model.joints):
            return [f"objects.joint: the {model.name} has {len(model.joints)} joints, the spec asks for {nj}"]
        return []

    @classmethod
    def _segmentation_ids(cls, spec, n_objects: int) -> dict[int, str]:
        """Instance id -> what it marks (a variant adds its own bodies after the arm's links)."""
        try:
            model = _arms.arm_model(_param(spec, "arm"))
        except ValueError as e:
            raise ValueError(f"parameters.arm: {e}") from None
        return segmentation_ids(model, n_objects)

    def _task(self, spec) -> int:
        """The task code (``parameters.task``; a variant may fix it)."""
        return _controllers.task_code(spec.parameters["task"])

    def _configure(self, spec) -> None:
        self.model = _arms.arm_model(spec.parameters["arm"])
        self.task = self._task(spec)
        self._weld: int | None = None
        self._finger_hold: np.ndarray | None = None
        self._unfiltered: list[tuple[int, int]] = []

    def _state_names(self) -> tuple[str, ...]:
        return state_names(len(self.model.joints), self.n_obj)

    # ---------------------------------------------------------------- the scene, built once

    def _build_scene(self, bc, p, data: str) -> None:
        self._arm = _arms.Arm(bc, p, self.model, _rooms.ARM_BASE, data)
        loaded = [self._arm.link_names[j] for j in range(-1, self._arm.n_all)]
        if tuple(loaded) != self.model.links:
            raise RuntimeError(f"{self.model.urdf}: links {loaded} differ from the model's {list(self.model.links)}")
        sphere = bc.createVisualShape(p.GEOM_SPHERE, radius=0.018, rgbaColor=(*_GOAL_RGB, 1.0))
        disc = bc.createVisualShape(p.GEOM_CYLINDER, radius=0.045, length=0.002, rgbaColor=(*_GOAL_RGB, 1.0))
        self._goal = bc.createMultiBody(0.0, -1, sphere, basePosition=[0.0, 0.0, 1.0])
        self._goal_disc = bc.createMultiBody(0.0, -1, disc, basePosition=[0.0, 0.0, _rooms.TABLE_TOP + 0.001])
        self._arm.reset(_ik.home(self._arm), 1.0)
        self._home_tcp = self._arm.tcp_pose()[0].copy()  # every clip starts with the TCP here
        # TCP frame -> mount frame: undo the arm's own "down" orientation, apply the canonical one (pi about x)
        self._down_to_mount = pb.quaternion_matrix(self.model.down).T @ np.diag([1.0, -1.0, -1.0])

    def _segments(self) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
        whole = {b: ROOM_ID for b in self._room.scenery}
        whole.update({b: TABLE_ID for b in self._room.table})
        whole.update({self._goal: GOAL_ID, self._goal_disc: GOAL_ID})
        whole.update({b: FIRST_OBJECT_ID + k for k, b in enumerate(self._objects)})
        whole.update(self._extra_ids())
        first = FIRST_OBJECT_ID + self.n_obj
        links = {(self._arm.body, j): first + j + 1 for j in range(-1, self._arm.n_all)}
        return links, whole

    def _extra_ids(self) -> dict[int, int]:
        """Body -> segmentation id of a variant's own bodies."""
        return {}

    # ---------------------------------------------------------------- one sample's set-up

    def _clear(self) -> None:
        bc = self.client.bc
        self._release()
        self._finger_hold = None
        for body, link in self._unfiltered:  # collisions between the gripper and a cube it held
            bc.setCollisionFilterPair(self._arm.body, body, link, -1, 1)
        self._unfiltered = []
        super()._clear()

    def _setup_stage(self, lat: Mapping[str, np.ndarray], i: int) -> None:
        bc = self.client.bc
        bc.changeVisualShape(self._room.table_top, -1, rgbaColor=(*pb.hsv_to_rgb(lat["table.hue"][i], 0.3, 0.72), 1.0))
        bc.changeDynamics(self._room.table_top, -1, lateralFriction=float(lat["table.friction"][i]), restitution=0.0)

    def _setup_agent(self, lat: Mapping[str, np.ndarray], i: int) -> dict:
        twist = float(lat["arm.twist"][i]) if "arm.twist" in lat else 0.0  # a variant without the latent: 0
        rest = _ik.rest_pose(self.model, twist)
        self._arm.reset(_ik.start_pose(self._arm, self._home_tcp, rest), 1.0)
        goal = np.array([lat["goal.x"][i], lat["goal.y"][i], lat["goal.z"][i]])
        self._place_goal(goal)
        gains = _controllers.Gains(kp=float(lat["ctrl.kp"][i]), max_qd=float(lat["ctrl.max_qd"][i]),
                                   speed=float(lat["ctrl.speed"][i]), height=float(lat["ctrl.height"][i]),
                                   grip_force=float(lat["ctrl.grip_force"][i]))
        return {"goal": goal, "gains": gains, "rest": rest}

    def _place_goal(self, goal: np.ndarray) -> None:
        bc = self.client.bc
        bc.resetBasePositionAndOrientation(self._goal, [float(x) for x in goal], [0, 0, 0, 1])
        bc.resetBasePositionAndOrientation(self._goal_disc, [float(goal[0]), float(goal[1]), _rooms.TABLE_TOP + 0.001],
                                           [0, 0, 0, 1])

    # ---------------------------------------------------------------- feasibility

    def _obstacles(self) -> list[tuple[int, str]]:
        return [(self._arm.body, "the arm"), (self._room.table_top, "the table top")]

    # ---------------------------------------------------------------- simulate and film

    def _controller(self, cfg: dict) -> _controllers.Controller:
        cfg["held_at"] = None
        return _controllers.Controller(self.task, cfg["gains"], _rooms.TABLE_TOP, self.fps, self._arm.tcp_pose()[0])

    def _first_inputs(self, ctrl) -> list[float]:
        return [*ctrl.cmd, ctrl.yaw, ctrl.opening, ctrl.phase]

    def _command(self, ctrl, states: np.ndarray, t: int, cfg: dict) -> list[float]:
        J, N, base = len(self.model.joints), self.n_obj, self._obj_base
        sizes = cfg["sizes"]
        tcp = states[t - 1, 2 * J:2 * J + 3]
        rows = states[t - 1, base:base + 10 * N].reshape(N, 10)
        q = rows[:, 3:7]  # yaw of each cube from its quaternion (x, y, z, w)
        yaws = np.arctan2(2 * (q[:, 3] * q[:, 2] + q[:, 0] * q[:, 1]), 1 - 2 * (q[:, 1] ** 2 + q[:, 2] ** 2))
        cmd = ctrl.step(tcp, rows[:, 0:3], yaws, sizes, cfg["goal_now"], self._weld is not None)
        if cmd.grasp > 0 and N:
            self._grasp(tcp, sizes[0], _controllers.hold_force(cfg["gains"].grip_force, cfg["frictions"][0]))
            cfg["held_at"] = None
        elif cmd.grasp < 0:
            self._release()
        touch = cmd.phase == _controllers.PHASES.index("grasp")
        self._arm.command(_ik.solve(self._arm, cmd.target, cmd.yaw, cfg.get("rest")), cmd.opening, cfg["gains"].kp, cfg["gains"].max_qd,
                          finger_force=TOUCH_FORCE if touch else FINGER_FORCE,
                          fingers=self._finger_hold if self._weld is not None else None)
        return [*cmd.target, cmd.yaw, cmd.opening, cmd.phase]

    def _after_steps(self, cfg: dict) -> None:
        if self._weld is not None:  # a grasp slips when the object has moved SLIP m from where it was held
            rel = self._relative_object()
            if cfg["held_at"] is None:
                cfg["held_at"] = rel
            elif float(np.linalg.norm(rel - cfg["held_at"])) > _controllers.SLIP:
                self._release()

    def _record(self, row: np.ndarray, cfg: dict) -> dict[str, np.ndarray]:
        arm, J = self._arm, len(self.model.joints)
        q, qd = arm.joint_state()
        row[0:2 * J:2], row[1:2 * J:2] = q, qd
        pos, orn = arm.tcp_pose()
        row[2 * J:2 * J + 3], row[2 * J + 3:2 * J + 7] = pos, orn
        row[2 * J + 7] = arm.opening()
        cfg["tcp"] = np.asarray(pos)
        return {"ee": self.mount_pose(pos, orn)}

    def _end_sample(self) -> None:
        self._release()

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
