"""Robotic manipulation worlds: an arm on a table in a room, simulated with PyBullet and filmed
with TinyRenderer.

Small modules a mobile base or a button panel reuse:

- :mod:`._arms`: the arms shipped in ``pybullet_data`` (KUKA iiwa with a two-finger gripper of
  primitives, xArm6 with its gripper, Franka Panda) as data, and :class:`~._arms.Arm`, a
  loaded arm (joints, limits, gripper, end-effector pose);
- :mod:`._ik`: inverse kinematics with joint limits, ranges and rest poses;
- :mod:`._controllers`: scripted tasks (reach, push, pick and place, stack, press) as state
  machines over IK whose gains are latents;
- :mod:`._rooms`: rooms (open space, living room, kitchen, study room) built from primitives
  and ``pybullet_data`` props, and the work table;
- :mod:`.world`: :class:`~.world.ArmWorld` (``robotics/arm``).

Importing this package never imports ``pybullet``.
"""
