"""The wheeled robot of ``robotics/mobile`` (Clearpath Husky, ``husky/husky.urdf`` from ``pybullet_data``)
and its scripted push controller.

The Husky is a four-wheeled skid-steer base (wheel radius 0.178 m, wheels 0.571 m apart across). The
controller commands a forward speed v (m/s) and a turn rate w (rad/s), the unicycle model of a
differential drive (Siegwart, Nourbakhsh & Scaramuzza 2011, "Introduction to Autonomous Mobile Robots",
ch. 3): the left wheels turn at (v - w B / 2) / r, the right ones at (v + w B / 2) / r, under velocity
control with at most ``torque`` N m per wheel. ``B`` is the effective track of a skid-steer base, wider
than the wheels' (Mandow et al. 2007, "Experimental kinematics for wheeled skid-steer mobile robots",
IROS: 1.5-2 times); :data:`TRACK` is its measured value here.

Push task (phases :data:`PHASES`): ``approach`` a point ``STANDOFF`` m behind obj[0] on the line from
the goal through the box, ``align`` (turn on the spot to face along that line), ``push`` (drive at the
box-goal line, turned towards the box by ``LATERAL_GAIN`` rad per m the box's centre lies off the
robot's axis, so the bumper stays under it), until the box's centre is within ``DONE`` m of the goal along that line or the phase times out,
then ``retreat`` (back off for ``RETREAT`` s) and ``done``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

URDF = "husky/husky.urdf"
WHEELS = ("front_left_wheel", "front_right_wheel", "rear_left_wheel", "rear_right_wheel")
LEFT = (True, False, True, False)
WHEEL_RADIUS = 0.17775
#: Effective track (m) of the skid-steer base for the unicycle model (the wheels stand 0.571 m apart).
TRACK = 1.4
#: Half the base's length (m) from its centre to the front bumper, and half its width.
HALF_LENGTH, HALF_WIDTH = 0.5, 0.34
PHASES = ("approach", "align", "push", "retreat", "done")
_P = {n: k for k, n in enumerate(PHASES)}
#: Distance (m) behind the box's face where the approach ends; heading error (rad) that ends ``align``;
#: distance (m) to the goal along the pushing line that ends ``push``; seconds of backing off.
STANDOFF = 0.25
ALIGNED = 0.08
DONE = 0.06
#: Pushing: heading correction (rad per m of the box's offset from the robot's axis) and its cap (rad).
LATERAL_GAIN, LATERAL_MAX = 3.0, 0.7
RETREAT = 1.0
#: Longest (s) a phase lasts before the controller moves on (push: twice this).
TIMEOUT = 6.0
#: Positions (m) within this count as reached.
REACHED = 0.1


def _wrap(a: float) -> float:
    return (a + math.pi) % (2 * math.pi) - math.pi


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else np.array([1.0, 0.0])


@dataclass(frozen=True)
class DriveGains:
    """Controller latents: cruise speed ``speed`` (m/s), heading gain ``kp`` (1/s: turn rate per rad of heading
    error), wheel torque cap ``torque`` (N m per wheel)."""

    speed: float
    kp: float
    torque: float


@dataclass(frozen=True)
class DriveCommand:
    """One frame's command: forward speed ``v`` (m/s), turn rate ``w`` (rad/s), phase code."""

    v: float
    w: float
    phase: int


def wheel_speeds(v: float, w: float) -> np.ndarray:
    """Wheel angular velocities (rad/s, :data:`WHEELS` order) for a unicycle command (m/s, rad/s)."""
    left, right = (v - 0.5 * w * TRACK) / WHEEL_RADIUS, (v + 0.5 * w * TRACK) / WHEEL_RADIUS
    return np.array([left if s else right for s in LEFT])


class PushController:
    """The push state machine of one sample (see the module docstring); ``fps`` frames per second."""

    def __init__(self, gains: DriveGains, fps: float) -> None:
        self.g, self.fps = gains, float(fps)
        self.phase = _P["approach"]
        self.frames = 0
        self.v = self.w = 0.0

    def _steer(self, pose: np.ndarray, point: np.ndarray, speed: float) -> tuple[float, float, float]:
        """(v, w, heading error) driving from ``pose`` (x, y, yaw) towards ``point`` (x, y)."""
        d = point - pose[:2]
        err = _wrap(math.atan2(d[1], d[0]) - pose[2])
        w = max(-1.5, min(1.5, self.g.kp * err))
        v = speed * max(0.0, math.cos(err)) ** 3
        return v, w, err

    def step(self, pose: np.ndarray, box: np.ndarray, half: float, goal: np.ndarray) -> DriveCommand:
        """The command for the steps into the next frame, from this frame's base pose (x, y, yaw: m, rad), the
        box's centre (x, y m) and half side (m), and the goal (x, y m)."""
        line = _unit(goal - box)
        behind = box - line * (half + HALF_LENGTH + STANDOFF)
        limit = TIMEOUT * self.fps
        for _ in range(3):
            ph = PHASES[self.phase]
            if ph == "approach":
                if np.linalg.norm(pose[:2] - behind) < REACHED or self.frames >= limit:
                    self.phase, self.frames = _P["align"], 0
                    continue
                v, w, _ = self._steer(pose, behind, self.g.speed)
            elif ph == "align":
                err = _wrap(math.atan2(line[1], line[0]) - pose[2])
                if abs(err) < ALIGNED or self.frames >= limit:
                    self.phase, self.frames = _P["push"], 0
                    continue
                v, w = 0.0, max(-1.5, min(1.5, self.g.kp * err))
            elif ph == "push":
                left = float((goal - box) @ line)
                if left < DONE or self.frames >= 2 * limit:
                    self.phase, self.frames = _P["retreat"], 0
                    continue
                # head along the box-goal line, turned towards the box's side by its lateral offset from the
                # robot's axis (so the bumper stays under the box's centre)
                heading = np.array([math.cos(pose[2]), math.sin(pose[2])])
                off = float(heading[0] * (box[1] - pose[1]) - heading[1] * (box[0] - pose[0]))
                want = math.atan2(line[1], line[0]) + max(-LATERAL_MAX, min(LATERAL_MAX, LATERAL_GAIN * off))
                err = _wrap(want - pose[2])
                w = max(-1.5, min(1.5, self.g.kp * err))
                v = self.g.speed * min(1.0, max(0.3, left / 0.4)) * max(0.0, math.cos(err)) ** 3
            elif ph == "retreat":
                if self.frames >= RETREAT * self.fps:
                    self.phase, self.frames = _P["done"], 0
                    continue
                v, w = -0.3 * self.g.speed, 0.0
            else:
                v, w = 0.0, 0.0
            break
        self.frames += 1
        self.v, self.w = v, w
        return DriveCommand(v, w, self.phase)
