"""The physics domain's scene as data (Kubric's scene/view split): what the PyBullet
simulation builds and what the Blender view draws, with no engine in sight.

- :class:`Stage`: a world's fixed framing and scenery (camera aim point and
  distance, the checkered ground);
- :class:`Scene` and :class:`Body`: one sample's global parameters and rigid bodies;
- the state layout (:data:`STATE_FIELDS`) and the shared lighting constants.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Per-object state columns, in order: centre (m), orientation quaternion (x, y, z, w),
#: linear velocity (m/s) and angular velocity (rad/s), world frame.
STATE_FIELDS = ("x", "y", "z", "qx", "qy", "qz", "qw", "vx", "vy", "vz", "wx", "wy", "wz")
N_STATE = len(STATE_FIELDS)

#: Direction towards the light (TinyRenderer's lightDirection, Blender's sun).
LIGHT_DIRECTION = (0.5, -0.8, 1.1)
#: TinyRenderer shading: ambient is fixed, diffuse and specular scale with ``light``.
AMBIENT, DIFFUSE, SPECULAR = 0.55, 0.5, 0.05
#: Blender sun strength at ``light = 1``.
SUN_STRENGTH = 3.0

#: Wall of the projectile world: thickness (m) and width across y (m), colour (sRGB).
WALL_THICKNESS = 0.1
WALL_WIDTH = 3.0
WALL_RGB = (0.55, 0.5, 0.45)


@dataclass(frozen=True)
class Stage:
    """A world's fixed framing and scenery.

    ``target`` (m) is the point cameras look at and ``base_distance`` (m) the
    distance a camera of ``distance: 1`` keeps from it; the ground is a checker
    of ``tiles`` x ``tiles`` squares over ``[-half, half]^2`` (m) in two sRGB
    ``colors``, carried to ``outer`` (m) by a plain band of their mean colour.
    """

    target: tuple[float, float, float] = (0.0, 0.0, 0.5)
    base_distance: float = 4.0
    ground_half: float = 4.0
    ground_tiles: int = 16
    ground_colors: tuple[tuple[float, float, float], ...] = ((0.80, 0.80, 0.78), (0.62, 0.62, 0.60))
    ground_outer: float = 40.0


@dataclass(frozen=True)
class Body:
    """One rigid body of a sample: shape code (0 sphere, 1 box, 2 cylinder), size (m), mass (kg),
    colour (sRGB), initial pose and velocity, and its contact coefficients."""

    shape: int
    size: float
    mass: float
    rgb: tuple[float, float, float]
    position: tuple[float, float, float]
    orientation: tuple[float, float, float, float]
    velocity: tuple[float, float, float]
    friction: float
    restitution: float


@dataclass(frozen=True)
class Scene:
    """One sample: gravity (m/s^2), ground friction and restitution, light multiplier, wind
    (m/s^2 along +x), drag (kg/m), an optional wall (x, height) in m, and the bodies."""

    gravity: float
    friction: float
    restitution: float
    light: float
    wind: float
    drag: float
    wall: tuple[float, float] | None
    bodies: tuple[Body, ...]
