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
- :mod:`._skeleton`: :class:`~._skeleton.BulletVideoWorld`, the life cycle every robotics world
  shares (PyBullet client and room, TinyRenderer film, latents, temporal edits, boxes, the step
  loop that records and films each frame); each world below keeps only its own hooks;
- :mod:`.world`: :class:`~.world.ArmWorld` (``robotics/arm``); :mod:`.buttons` (``robotics/buttons``,
  a variant of it) and :mod:`.mobile` (``robotics/mobile``).

Importing this package never imports ``pybullet``.
"""
