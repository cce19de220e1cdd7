"""The engine layer every domain shares: Blender (``bpy``) and PyBullet helpers.

- :mod:`.blender`: a private, deterministic Cycles scene rendering into numpy
  (colour, depth, object index), plus mesh, material, light and camera helpers;
- :mod:`.bullet`: a private PyBullet DIRECT client with body, camera and
  buffer-conversion helpers;
- :mod:`.quiet`: silencing engines that print from C code.

Importing any of these modules never imports ``bpy`` or ``pybullet``: each imports
its engine when first used, and says which ``crlgen`` extra to install when it is
missing (:class:`EngineMissing`).
"""

from __future__ import annotations

from .quiet import EngineMissing, quiet_output, require

__all__ = ["EngineMissing", "quiet_output", "require"]
