"""Physics video worlds: rigid objects simulated with PyBullet, filmed from every camera.

- :mod:`scenes.physics.bullet`: engine helpers (a private PyBullet client per
  world, body creation, camera matrices, image/depth/segmentation conversion);
  ``pybullet`` is imported lazily, only when a world is built.
- :mod:`scenes.physics.worlds`: :class:`~scenes.physics.worlds.PhysicsWorld`
  (the shared simulator) and its three scenes ``physics/falling``,
  ``physics/projectile`` and ``physics/collision``.

Importing this package never imports ``pybullet`` or ``bpy``.
"""

from __future__ import annotations

__all__ = ["bullet", "worlds"]
