"""Inverse kinematics for the TCP pointing down, always with joint limits, ranges and rest poses.

PyBullet's ``calculateInverseKinematics`` (damped least squares, Buss 2004, "Introduction to
inverse kinematics with Jacobian transpose, pseudoinverse and damped least squares methods")
uses its null-space variant only when it is given lower and upper limits, joint ranges and rest
poses; without them the Panda's solution leaves its joint range (measured for crlgen's design
notes). The solution covers every movable joint (fingers too); only the arm's joints are kept,
and they are clipped to the limits PyBullet reports (the null-space method keeps them inside up
to its tolerance; clipping removes the residue, it never moves a joint by more than that).
"""

from __future__ import annotations

import math

import numpy as np

from ._arms import Arm

#: IK iterations and residual threshold (m) per call.
IK_ITERATIONS = 100
IK_THRESHOLD = 1e-4


def down_orientation(arm: Arm, yaw: float) -> tuple[float, float, float, float]:
    """The IK link's (x, y, z, w) orientation pointing down, turned by ``yaw`` (rad) about world z."""
    h = 0.5 * float(yaw)
    qz = (0.0, 0.0, math.sin(h), math.cos(h))
    return tuple(arm.p.multiplyTransforms((0, 0, 0), qz, (0, 0, 0), arm.model.down)[1])


def solve(arm: Arm, tcp_position: np.ndarray, yaw: float = 0.0, rest: np.ndarray | None = None) -> np.ndarray:
    """Arm joint positions (rad, within limits) that put the TCP at ``tcp_position`` (m), pointing down and
    turned by ``yaw`` (rad) about world z (the fingers close along (-sin yaw, cos yaw, 0)). ``rest`` (rad, one
    per arm joint; default the model's) is the pose the null space is pulled towards: on a 7-joint arm it
    decides how the redundancy is resolved (:func:`rest_pose`)."""
    bc, m = arm.bc, arm.model
    rest_q = m.rest if rest is None else rest
    movable = arm.movable
    lower, upper, rest = [], [], []
    for j in movable:
        if j in arm.joint_ids:
            k = arm.joint_ids.index(j)
            lo, hi = float(arm.lower[k]), float(arm.upper[k])
            lower.append(lo)
            upper.append(hi)
            rest.append(float(rest_q[k]))
        else:
            f = arm.finger_ids.index(j) if j in arm.finger_ids else None
            lo = float(min(arm.finger_open[f], arm.finger_closed[f])) if f is not None else 0.0
            hi = float(max(arm.finger_open[f], arm.finger_closed[f])) if f is not None else 0.0
            lower.append(lo)
            upper.append(hi)
            rest.append(lo)
    ranges = [max(hi - lo, 1e-3) for lo, hi in zip(lower, upper)]
    target = arm.link_target(tcp_position)
    sol = bc.calculateInverseKinematics(arm.body, arm.ee, [float(x) for x in target], list(down_orientation(arm, yaw)),
                                        lowerLimits=lower, upperLimits=upper, jointRanges=ranges, restPoses=rest,
                                        maxNumIterations=IK_ITERATIONS, residualThreshold=IK_THRESHOLD)
    q = np.array([sol[movable.index(j)] for j in arm.joint_ids], dtype=np.float64)
    return np.clip(q, arm.lower, arm.upper)


def rest_pose(model, twist: float = 0.0) -> np.ndarray:
    """The rest pose (rad, one per arm joint) of ``model`` with its upper arm's roll joint
    (``model.twist_joint``) at ``twist`` rad: the redundancy a 7-joint arm's IK resolves towards
    (Siciliano et al. 2009, Robotics, ch. 3.5: null-space motion). Raises ValueError for a non-zero
    ``twist`` on an arm without that joint (the 6-joint xArm6 has no redundancy)."""
    rest = np.asarray(model.rest, dtype=np.float64).copy()
    if twist:
        if model.twist_joint is None:
            raise ValueError(f"the {model.name} has {len(model.joints)} joints and no redundancy: arm.twist needs a "
                             "7-joint arm (kuka_iiwa, franka_panda)")
        rest[model.twist_joint] = float(twist)
    return rest


def home(arm: Arm, rest: np.ndarray | None = None) -> np.ndarray:
    """The arm's rest pose (rad; ``rest`` or the model's), inside its limits."""
    return np.clip(np.asarray(arm.model.rest if rest is None else rest, dtype=np.float64), arm.lower, arm.upper)


#: IK rounds that bring the start pose's TCP to the home TCP (each starts from the last; 0.2 mm after three).
START_ROUNDS = 3


def start_pose(arm: Arm, tcp_position: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Joint positions (rad) of a clip's first frame: the TCP at ``tcp_position`` (m, the home pose's TCP),
    pointing down, the redundancy resolved towards ``rest`` (:func:`rest_pose`). Solved from ``rest`` itself,
    never from the arm's previous state, so a sample's start does not depend on the samples before it.
    Leaves the arm at the result."""
    q = home(arm, rest)
    for _ in range(START_ROUNDS):
        arm.reset(q, 1.0)
        q = solve(arm, tcp_position, 0.0, rest)
    return q
