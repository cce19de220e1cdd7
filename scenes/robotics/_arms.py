"""The arms shipped in ``pybullet_data``, as data (:class:`ArmModel`), and a loaded arm (:class:`Arm`).

- ``kuka_iiwa`` (code 0): ``kuka_iiwa/model.urdf``, 7 revolute joints. The URDF has no gripper, so
  :func:`kuka_with_gripper_urdf` appends a two-finger parallel gripper of primitives (a palm box
  and two prismatic finger boxes, 0..6 cm each) and a ``tcp`` link between the fingertips.
- ``xarm6`` (code 1): ``xarm/xarm6_with_gripper.urdf``, 6 revolute joints and the xArm gripper
  (six coupled revolute joints 0..0.85 rad; URDF mimic joints are not simulated by PyBullet, so
  all six are driven to the same angle).
- ``franka_panda`` (code 2): ``franka_panda/panda.urdf``, 7 revolute joints, two prismatic
  fingers 0..4 cm; its IK leaves the joint range unless limits and rest poses are given
  (:mod:`._ik` always gives them).

The tool centre point (TCP) is the point between the fingertips where an object is held; the
controllers command it and the wrist camera rides on it. The gripper opening is stored as a
fraction: 1 fully open, 0 closed.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass

import numpy as np

ARM_NAMES = ("kuka_iiwa", "xarm6", "franka_panda")


@dataclass(frozen=True)
class ArmModel:
    """An arm as data, no engine.

    ``joints``: the arm's revolute joint names (the order of ``joint[i]`` states); ``fingers``:
    the gripper's joint names with their open and closed positions (rad or m) and a sign;
    ``tcp_link``: the link whose origin is the TCP, or ``ee_link`` plus ``tcp_offset`` (m, along
    the ee link's z axis); ``down``: the (x, y, z, w) orientation of that link when the gripper
    points down (-z) with the fingers closing along y; ``rest``: rest pose (rad) for IK and the
    home configuration; ``links``: every link name (segmentation ids, in link-index order, the
    base first); ``reach``: horizontal reach (m) from the base; ``twist_joint``: index of the upper
    arm's roll joint whose rest angle the ``arm.twist`` latent sets (None: a 6-joint arm, whose IK
    has no redundancy to resolve).
    """

    name: str
    urdf: str
    joints: tuple[str, ...]
    fingers: tuple[tuple[str, float, float], ...]
    ee_link: str
    tcp_offset: float
    down: tuple[float, float, float, float]
    rest: tuple[float, ...]
    links: tuple[str, ...]
    reach: float
    max_force: float
    twist_joint: int | None = None


_KUKA_LINKS = ("lbr_iiwa_link_0",) + tuple(f"lbr_iiwa_link_{k}" for k in range(1, 8)) + (
    "gripper_palm", "finger_left", "finger_right", "tcp")
_XARM_LINKS = ("world", "link_base", "link1", "link2", "link3", "link4", "link5", "link6", "xarm_gripper_base_link",
               "left_outer_knuckle", "left_finger", "left_inner_knuckle", "right_outer_knuckle", "right_finger",
               "right_inner_knuckle")
_PANDA_LINKS = ("panda_link0",) + tuple(f"panda_link{k}" for k in range(1, 9)) + (
    "panda_hand", "panda_leftfinger", "panda_rightfinger", "panda_grasptarget")

MODELS: dict[str, ArmModel] = {
    "kuka_iiwa": ArmModel(
        name="kuka_iiwa", urdf="kuka_iiwa/model.urdf", joints=tuple(f"lbr_iiwa_joint_{k}" for k in range(1, 8)),
        fingers=(("finger_left_joint", 0.056, 0.0), ("finger_right_joint", 0.056, 0.0)),
        ee_link="tcp", tcp_offset=0.0, down=(0.0, 1.0, 0.0, 0.0),
        rest=(0.0, 0.4, 0.0, -1.6, 0.0, 1.1, 0.0), links=_KUKA_LINKS, reach=0.8, max_force=300.0, twist_joint=2),
    "xarm6": ArmModel(
        name="xarm6", urdf="xarm/xarm6_with_gripper.urdf", joints=tuple(f"joint{k}" for k in range(1, 7)),
        fingers=tuple((j, 0.0, 0.85) for j in ("drive_joint", "left_finger_joint", "left_inner_knuckle_joint",
                                                  "right_outer_knuckle_joint", "right_finger_joint",
                                                  "right_inner_knuckle_joint")),
        ee_link="link6", tcp_offset=0.17, down=(1.0, 0.0, 0.0, 0.0),
        rest=(0.0, -0.3, -1.0, 0.0, 1.3, 0.0), links=_XARM_LINKS, reach=0.65, max_force=50.0),
    "franka_panda": ArmModel(
        name="franka_panda", urdf="franka_panda/panda.urdf", joints=tuple(f"panda_joint{k}" for k in range(1, 8)),
        fingers=(("panda_finger_joint1", 0.04, 0.0), ("panda_finger_joint2", 0.04, 0.0)),
        ee_link="panda_grasptarget", tcp_offset=0.0, down=(1.0, 0.0, 0.0, 0.0),
        rest=(0.0, -0.2, 0.0, -2.2, 0.0, 2.0, 0.785), links=_PANDA_LINKS, reach=0.75, max_force=87.0,
        twist_joint=2),
}

#: The gripper the kuka URDF lacks: palm box, two prismatic finger boxes, a TCP between the fingertips.
_KUKA_GRIPPER = """
  <joint name="gripper_mount" type="fixed"><parent link="lbr_iiwa_link_7"/><child link="gripper_palm"/>
    <origin xyz="0 0 0.045" rpy="0 0 0"/></joint>
  <link name="gripper_palm">
    <inertial><origin xyz="0 0 0.015"/><mass value="0.3"/><inertia ixx="5e-4" ixy="0" ixz="0" iyy="1e-4" iyz="0" izz="5e-4"/></inertial>
    <visual><origin xyz="0 0 0.015"/><geometry><box size="0.05 0.16 0.03"/></geometry>
      <material name="gripper_dark"><color rgba="0.15 0.15 0.17 1"/></material></visual>
    <collision><origin xyz="0 0 0.015"/><geometry><box size="0.05 0.16 0.03"/></geometry></collision>
  </link>
  <joint name="finger_left_joint" type="prismatic"><parent link="gripper_palm"/><child link="finger_left"/>
    <origin xyz="0 0 0.03"/><axis xyz="0 1 0"/><limit lower="0" upper="0.06" effort="60" velocity="0.3"/></joint>
  <link name="finger_left">
    <inertial><origin xyz="0 0.006 0.045"/><mass value="0.05"/><inertia ixx="1e-5" ixy="0" ixz="0" iyy="1e-5" iyz="0" izz="1e-5"/></inertial>
    <visual><origin xyz="0 0.006 0.045"/><geometry><box size="0.03 0.012 0.09"/></geometry>
      <material name="finger_light"><color rgba="0.85 0.85 0.88 1"/></material></visual>
    <collision><origin xyz="0 0.006 0.045"/><geometry><box size="0.03 0.012 0.09"/></geometry></collision>
  </link>
  <joint name="finger_right_joint" type="prismatic"><parent link="gripper_palm"/><child link="finger_right"/>
    <origin xyz="0 0 0.03"/><axis xyz="0 -1 0"/><limit lower="0" upper="0.06" effort="60" velocity="0.3"/></joint>
  <link name="finger_right">
    <inertial><origin xyz="0 -0.006 0.045"/><mass value="0.05"/><inertia ixx="1e-5" ixy="0" ixz="0" iyy="1e-5" iyz="0" izz="1e-5"/></inertial>
    <visual><origin xyz="0 -0.006 0.045"/><geometry><box size="0.03 0.012 0.09"/></geometry>
      <material name="finger_light"><color rgba="0.85 0.85 0.88 1"/></material></visual>
    <collision><origin xyz="0 -0.006 0.045"/><geometry><box size="0.03 0.012 0.09"/></geometry></collision>
  </link>
  <joint name="tcp_joint" type="fixed"><parent link="gripper_palm"/><child link="tcp"/><origin xyz="0 0 0.105"/></joint>
  <link name="tcp"><inertial><mass value="0.001"/><inertia ixx="1e-7" ixy="0" ixz="0" iyy="1e-7" iyz="0" izz="1e-7"/></inertial></link>
"""


def kuka_with_gripper_urdf(data_path: str) -> str:
    """The text of ``kuka_iiwa/model.urdf`` with the primitive gripper appended and its mesh paths made absolute."""
    with open(os.path.join(data_path, "kuka_iiwa", "model.urdf")) as f:
        text = f.read()
    mesh_dir = os.path.join(data_path, "kuka_iiwa", "meshes")
    text = re.sub(r'filename="meshes/', f'filename="{mesh_dir}/', text)
    return text.replace("</robot>", _KUKA_GRIPPER + "</robot>")


def arm_model(code: float) -> ArmModel:
    """The arm of parameter code 0 (kuka_iiwa), 1 (xarm6) or 2 (franka_panda); ValueError otherwise."""
    k = int(round(float(code)))
    if abs(float(code) - k) > 1e-9 or not 0 <= k < len(ARM_NAMES):
        raise ValueError(f"expected 0 (kuka_iiwa), 1 (xarm6) or 2 (franka_panda), got {code!r}")
    return MODELS[ARM_NAMES[k]]


class Arm:
    """An arm loaded into a PyBullet client, fixed at ``base`` (m) facing +x.

    ``bc`` is a bound client (:class:`pybullet_utils.bullet_client.BulletClient`), ``p`` the module.
    Attributes: ``body`` (body id), ``joint_ids`` (arm joint indices), ``lower``/``upper`` (joint
    limits, rad), ``max_velocity`` (rad/s, from the URDF), ``finger_ids``, ``ee`` (link index IK
    targets), ``link_names`` (link index + 1 -> name; index 0 is the base).
    """

    def __init__(self, bc, p, model: ArmModel, base: tuple[float, float, float], data_path: str) -> None:
        self.bc, self.p, self.model = bc, p, model
        flags = p.URDF_USE_SELF_COLLISION_EXCLUDE_PARENT
        if model.name == "kuka_iiwa":
            fd, path = tempfile.mkstemp(suffix=".urdf", prefix="crlgen_kuka_")
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(kuka_with_gripper_urdf(data_path))
                self.body = bc.loadURDF(path, list(base), [0, 0, 0, 1], useFixedBase=True, flags=flags)
            finally:
                os.unlink(path)
        else:
            self.body = bc.loadURDF(os.path.join(data_path, model.urdf), list(base), [0, 0, 0, 1], useFixedBase=True,
                                    flags=flags)
        names, links = {}, {}
        self.n_all = bc.getNumJoints(self.body)
        info = [bc.getJointInfo(self.body, j) for j in range(self.n_all)]
        for j, ji in enumerate(info):
            names[ji[1].decode()] = j
            links[ji[12].decode()] = j
        self.joint_ids = [names[n] for n in model.joints]
        self.lower = np.array([info[j][8] for j in self.joint_ids])
        self.upper = np.array([info[j][9] for j in self.joint_ids])
        self.max_velocity = np.array([info[j][11] for j in self.joint_ids])
        self.finger_ids = [names[n] for n, _, _ in model.fingers]
        self.finger_open = np.array([o for _, o, _ in model.fingers])
        self.finger_closed = np.array([c for _, _, c in model.fingers])
        self.ee = links[model.ee_link]
        self.movable = [j for j, ji in enumerate(info) if ji[2] != p.JOINT_FIXED]
        self.link_names = {-1: model.links[0], **{j: info[j][12].decode() for j in range(self.n_all)}}
        for j in range(-1, self.n_all):
            bc.changeDynamics(self.body, j, linearDamping=0.0, angularDamping=0.0, lateralFriction=1.0)
        for j in self.finger_ids:
            bc.changeDynamics(self.body, j, lateralFriction=1.5)

    # ---------------------------------------------------------------- state

    def reset(self, q: np.ndarray, opening: float) -> None:
        """Joint positions ``q`` (rad), gripper ``opening`` (fraction), every velocity zero, motors holding them."""
        for j, v in zip(self.joint_ids, q):
            self.bc.resetJointState(self.body, j, float(v), 0.0)
        for j in self.movable:
            if j not in self.joint_ids:
                self.bc.resetJointState(self.body, j, 0.0, 0.0)
        for j, v in zip(self.finger_ids, self.finger_position(opening)):
            self.bc.resetJointState(self.body, j, float(v), 0.0)

    def finger_position(self, opening: float) -> np.ndarray:
        """Finger joint positions for an opening fraction (1 open, 0 closed)."""
        return self.finger_closed + float(opening) * (self.finger_open - self.finger_closed)

    def opening(self) -> float:
        """The gripper's opening fraction, from the first finger joint."""
        q = self.bc.getJointState(self.body, self.finger_ids[0])[0]
        o, c = self.finger_open[0], self.finger_closed[0]
        return float((q - c) / (o - c))

    def joint_state(self) -> tuple[np.ndarray, np.ndarray]:
        """Arm joint positions (rad) and velocities (rad/s)."""
        st = self.bc.getJointStates(self.body, self.joint_ids)
        return np.array([s[0] for s in st]), np.array([s[1] for s in st])

    def tcp_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """The TCP's world position (m) and orientation (x, y, z, w) as this step left them."""
        ls = self.bc.getLinkState(self.body, self.ee, computeForwardKinematics=True)
        pos, orn = np.array(ls[4]), np.array(ls[5])
        if self.model.tcp_offset:
            pos = pos + _rotate(orn, (0.0, 0.0, self.model.tcp_offset))
        return pos, orn

    def command(self, q: np.ndarray, opening: float, gain: float, max_qd: float, finger_force: float = 40.0,
                fingers: np.ndarray | None = None) -> None:
        """Joint position control towards ``q`` with position gain ``gain`` and joint speed at most ``max_qd``
        (rad/s); the fingers towards ``opening`` (or the finger joint positions ``fingers``) with at most
        ``finger_force`` (N or N m)."""
        bc, p = self.bc, self.p
        for j, v, vmax in zip(self.joint_ids, q, self.max_velocity):
            bc.setJointMotorControl2(self.body, j, p.POSITION_CONTROL, targetPosition=float(v), positionGain=float(gain),
                                     velocityGain=1.0, force=self.model.max_force, maxVelocity=float(min(max_qd, vmax)))
        target = self.finger_position(opening) if fingers is None else fingers
        for j, v in zip(self.finger_ids, target):
            bc.setJointMotorControl2(self.body, j, p.POSITION_CONTROL, targetPosition=float(v), positionGain=0.1,
                                     force=float(finger_force), maxVelocity=1.0)

    def finger_positions(self) -> np.ndarray:
        """The finger joints' positions now (m or rad)."""
        return np.array([s[0] for s in self.bc.getJointStates(self.body, self.finger_ids)])

    def gripper_links(self) -> list[int]:
        """Link indices of the gripper (every link after the arm's last joint)."""
        last = max(self.joint_ids)
        return [j for j in range(self.n_all) if j > last]

    def link_target(self, tcp_position: np.ndarray) -> np.ndarray:
        """Where the IK link must go for the TCP to reach ``tcp_position`` pointing down."""
        return np.asarray(tcp_position, dtype=np.float64) - _rotate(self.model.down, (0.0, 0.0, self.model.tcp_offset))


def _rotate(q, v) -> np.ndarray:
    x, y, z, w = (float(c) for c in q)
    u = np.array([x, y, z])
    v = np.asarray(v, dtype=np.float64)
    return v + 2.0 * w * np.cross(u, v) + 2.0 * np.cross(u, np.cross(u, v))

