"""Scripted controllers: small state machines over IK, one per task, with latent gains.

Every frame (before the physics steps that lead into it) :meth:`Controller.step` reads the
TCP position, the objects' poses and the goal, advances its phase when the phase's target is
reached (within ``REACHED`` m) or its time is up, and returns a :class:`Command`: the TCP
target for this frame (the phase's target approached at most ``speed / fps`` m per frame, a
straight-line Cartesian path), the gripper opening (1 open, 0 closed), the phase code and the
grasp action. The world turns the TCP target into joint targets with IK and drives the joints
by position control with gain ``kp`` and joint speed at most ``max_qd``.

Tasks (``parameters.task``), with the phases each walks through (:data:`PHASES` codes):

- 0 ``reach``: move the TCP to the goal (goal.x, goal.y, goal.z); hold.
- 1 ``push``: approach behind obj[0] (on the far side from the goal, ``height`` m above the
  table), descend with closed fingers, push: each frame aim ``PUSH_LEAD`` m past the cube's
  back face along the pushing line (re-aimed at (goal.x, goal.y) while the cube is farther than
  2 ``PUSH_LEAD`` m from it), until the cube's centre is within ``PUSH_DONE`` m of the goal along
  that line; retreat upwards.
- 2 ``pick_and_place``: approach above obj[0], descend, grasp, lift to goal.z, move above
  (goal.x, goal.y), place on the table, release, retreat.
- 3 ``stack``: as pick and place, placing obj[0] on top of obj[1] (wherever obj[1] is).
- 4 ``press``: approach above (goal.x, goal.y), press the closed fingers onto the table there
  for ``HOLD`` s, retreat.

Grasping: closing the gripper on an object whose centre lies between the fingers (within the
object's half size plus ``GRASP_MARGIN`` of the TCP) holds it by a fixed constraint between the
TCP link and the object (as in Ravens' suction gripper, Zeng et al. 2020, "Transporter
Networks"), whose force is capped at what two Coulomb friction contacts squeezed with the
``grip_force`` latent hold, :func:`hold_force` = 2 mu F (Mason 2001, "Mechanics of Robotic
Manipulation", ch. 5; mu is the object's friction, the fingers' is 1.5 times larger): an object
heavier than that sags away from the fingers, and when it has slipped ``SLIP`` m the grasp breaks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TASK_NAMES = ("reach", "push", "pick_and_place", "stack", "press")
PHASES = ("approach", "descend", "grasp", "lift", "move", "place", "release", "retreat", "done", "push", "press")
_P = {name: k for k, name in enumerate(PHASES)}

#: A phase's target counts as reached within this distance (m).
REACHED = 0.012
#: Longest a moving phase may last (s) before the controller moves on.
TIMEOUT = 3.0
#: How long (s) closing or opening the gripper, or pressing, takes.
HOLD = 0.5
#: How far (m) beyond an object's half size its centre may be from the TCP for a grasp to hold it.
GRASP_MARGIN = 0.02
#: A held object that has slipped this far (m) from where it was grasped is dropped.
SLIP = 0.03
#: Height of the TCP above the table top while pushing or pressing (m): fingertips just above it.
PUSH_HEIGHT = 0.03
PRESS_HEIGHT = 0.012
#: Gripper opening (fraction) while pushing: the two fingertips, about 3.5 cm apart, push a cube face at two points.
PUSH_OPENING = 0.3
#: Most yaw rate of the gripper (rad/s).
YAW_RATE = 2.0
#: How far ahead of the cube's contact point the pusher aims (m), and how close the cube must come to the
#: goal (m) for the push to end.
PUSH_LEAD = 0.04
PUSH_DONE = 0.008


def _nearest(angle: float, current: float, period: float) -> float:
    """``angle + k period`` nearest ``current``."""
    return angle + period * round((current - angle) / period)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


def hold_force(grip_force: float, friction: float) -> float:
    """Most force (N) a parallel grasp squeezing with ``grip_force`` N holds through two friction contacts."""
    return 2.0 * float(friction) * float(grip_force)


def task_code(code: float) -> int:
    """The task of parameter code 0..4 (see :data:`TASK_NAMES`); ValueError otherwise."""
    k = int(round(float(code)))
    if abs(float(code) - k) > 1e-9 or not 0 <= k < len(TASK_NAMES):
        choices = ", ".join(f"{i} ({n})" for i, n in enumerate(TASK_NAMES))
        raise ValueError(f"expected one of {choices}, got {code!r}")
    return k


@dataclass(frozen=True)
class Gains:
    """Controller latents: joint position gain ``kp`` (PyBullet positionGain, 1), joint speed cap
    ``max_qd`` (rad/s), TCP speed ``speed`` (m/s), approach height above the table or object
    ``height`` (m), grasp force cap ``grip_force`` (N)."""

    kp: float
    max_qd: float
    speed: float
    height: float
    grip_force: float


@dataclass(frozen=True)
class Command:
    """One frame's command: TCP target (m), gripper yaw about world z (rad), gripper opening (1 open, 0 closed), phase code, and
    ``grasp`` (+1 attach the object under the TCP, -1 let go, 0 nothing)."""

    target: np.ndarray
    yaw: float
    opening: float
    phase: int
    grasp: int


class Controller:
    """The state machine of one task for one sample (see the module docstring).

    ``table_top`` (m) is the table's height, ``fps`` the frame rate, ``start`` the TCP's
    initial position (m).
    """

    def __init__(self, task: int, gains: Gains, table_top: float, fps: float, start: np.ndarray) -> None:
        self.task, self.g, self.top, self.fps = task, gains, float(table_top), float(fps)
        self.cmd = np.asarray(start, dtype=np.float64).copy()
        self.yaw = 0.0
        self.opening = 1.0
        self.phase = _P["move"] if task == 0 else _P["approach"]
        self.frames_in_phase = 0
        self.direction: np.ndarray | None = None
        self.holding = False

    # ------------------------------------------------------------------ targets

    def _target(self, tcp: np.ndarray, objs: np.ndarray, sizes: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The current phase's TCP target (m); ``objs`` (N, 3) object centres, ``sizes`` (N,) half sizes."""
        ph, top, h = PHASES[self.phase], self.top, self.g.height
        if self.task == 0:
            return goal.copy()
        if self.task == 4:  # press (needs no object)
            if ph == "approach":
                return np.array([goal[0], goal[1], top + h])
            if ph == "press":
                return np.array([goal[0], goal[1], top + PRESS_HEIGHT])
            return np.array([goal[0], goal[1], top + h])
        o, s = objs[0], sizes[0]
        if self.task == 1:  # push
            if self.direction is None:
                self.direction = _unit(goal[:2] - o[:2])
            d = self.direction
            behind = o[:2] - d * (s + 0.04)
            if ph == "approach":
                return np.array([behind[0], behind[1], top + 2 * s + h])
            if ph == "descend":
                return np.array([behind[0], behind[1], top + PUSH_HEIGHT])
            if ph == "push":  # closed loop: stay behind the cube on its line to the goal, lead by up to PUSH_LEAD m
                left = float((goal[:2] - o[:2]) @ d)
                if left > 2 * PUSH_LEAD:  # far from the goal: steer along the cube's current line to it
                    self.direction = d = _unit(goal[:2] - o[:2])
                p = o[:2] - d * (s + 0.015) + d * min(max(left, 0.0), PUSH_LEAD)
                return np.array([p[0], p[1], top + PUSH_HEIGHT])
            return np.array([self.cmd[0], self.cmd[1], top + 2 * s + h])
        # pick and place, stack
        if self.task == 3:
            place = np.array([objs[1][0], objs[1][1], objs[1][2] + sizes[1] + s + 0.004])
            carry = max(float(goal[2]), place[2] + 0.05)
        else:
            place = np.array([goal[0], goal[1], top + s + 0.004])
            carry = float(goal[2])
        if ph == "approach":
            return np.array([o[0], o[1], o[2] + s + h])
        if ph in ("descend", "grasp"):
            return np.array([o[0], o[1], o[2]]) if ph == "descend" else self.cmd.copy()
        if ph == "lift":
            return np.array([self.cmd[0], self.cmd[1], carry])
        if ph == "move":
            return np.array([place[0], place[1], carry])
        if ph == "place":
            return place
        if ph == "release":
            return self.cmd.copy()
        return np.array([self.cmd[0], self.cmd[1], place[2] + s + h])

    def _yaw_target(self, yaws: np.ndarray) -> float:
        """Pushing: the fingers across the pushing line; picking: the fingers across the cube's faces. Of the
        equivalent yaws (every pi, or pi / 2 for a cube's faces) the one nearest the current yaw."""
        ph = PHASES[self.phase]
        if self.task == 1 and self.direction is not None and ph in ("approach", "descend", "push"):
            return _nearest(math.atan2(self.direction[1], self.direction[0]), self.yaw, math.pi)
        if self.task in (2, 3) and ph in ("approach", "descend", "grasp"):
            return _nearest(float(yaws[0]), self.yaw, 0.5 * math.pi)
        return self.yaw

    def _next(self) -> int:
        ph = PHASES[self.phase]
        order = {1: ("approach", "descend", "push", "retreat", "done"),
                 2: ("approach", "descend", "grasp", "lift", "move", "place", "release", "retreat", "done"),
                 3: ("approach", "descend", "grasp", "lift", "move", "place", "release", "retreat", "done"),
                 4: ("approach", "press", "retreat", "done")}.get(self.task, ("move", "done"))
        if ph == "done" or ph not in order:
            return self.phase
        return _P[order[order.index(ph) + 1]] if self.task != 0 else self.phase

    # ------------------------------------------------------------------ one frame

    def step(self, tcp: np.ndarray, objs: np.ndarray, yaws: np.ndarray, sizes: np.ndarray, goal: np.ndarray,
             held: bool) -> Command:
        """The command for the steps into the next frame, given this frame's TCP position (m), object
        centres (N, 3) and yaws (N,) (rad), half sizes (N,), goal (3,) and whether the object is held."""
        grasp = 0
        if self.holding and not held:  # the grasp broke (slip): carry on as if released
            self.holding = False
        for _ in range(3):  # advance through phases whose targets are already reached
            target = self._target(tcp, objs, sizes, goal)
            ph = PHASES[self.phase]
            timed = ph in ("grasp", "release", "press")
            hold_frames = max(1, int(round(HOLD * self.fps)))
            if timed:
                done = self.frames_in_phase >= hold_frames and (ph != "press" or np.linalg.norm(tcp - target) < 2 * REACHED
                                                               or self.frames_in_phase >= 3 * hold_frames)
            elif ph == "push":
                done = float((goal[:2] - objs[0][:2]) @ self.direction) < PUSH_DONE or self.frames_in_phase >= 2 * TIMEOUT * self.fps
            else:
                done = (np.linalg.norm(self.cmd - target) < 1e-4 and np.linalg.norm(tcp - target) < REACHED) or \
                    self.frames_in_phase >= TIMEOUT * self.fps
            if not done or ph == "done" or self.task == 0:
                break
            if ph == "grasp":
                grasp = 1
                self.holding = True
            if ph == "release":
                grasp = -1
                self.holding = False
            self.phase = self._next()
            self.frames_in_phase = 0
        target = self._target(tcp, objs, sizes, goal)
        ph = PHASES[self.phase]
        step = self.g.speed / self.fps
        if ph == "push":  # slow down towards the goal so the cube does not slide past it
            left = float((goal[:2] - objs[0][:2]) @ self.direction)
            step *= min(1.0, max(0.3, left / (2 * PUSH_LEAD)))
        dyaw = self._yaw_target(yaws) - self.yaw
        self.yaw += max(-YAW_RATE / self.fps, min(YAW_RATE / self.fps, dyaw))
        delta = target - self.cmd
        dist = float(np.linalg.norm(delta))
        self.cmd = target.copy() if dist <= step else self.cmd + delta * (step / dist)
        if ph in ("grasp", "lift", "move", "place") and self.task in (2, 3):
            self.opening = 0.0
        elif ph in ("descend", "push") and self.task == 1:
            self.opening = PUSH_OPENING
        elif ph == "press" and self.task == 4:
            self.opening = 0.0
        elif ph in ("release", "retreat", "approach", "done") and self.task in (2, 3):
            self.opening = 1.0
        self.frames_in_phase += 1
        return Command(self.cmd.copy(), self.yaw, self.opening, self.phase, grasp)
