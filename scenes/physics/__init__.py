"""Physics video worlds: rigid objects simulated with PyBullet, filmed from every camera.

- :mod:`.scene`: the scene as data (stage, bodies, state layout, lighting), read by both
  the simulation and the Blender view;
- :mod:`.worlds`: :class:`~.worlds.PhysicsWorld` (the PyBullet simulation, filmed with
  TinyRenderer) and its three scenes ``physics/falling``, ``physics/projectile`` and
  ``physics/collision``;
- :mod:`.cycles_view`: the same recorded states filmed with Blender Cycles.

Engine helpers live in :mod:`crlgen.scenes.engines`; importing this package never
imports ``pybullet`` or ``bpy``.
"""
