"""The six procedural shape classes of static/objects_light, as vertex/face lists (pure Python, no bpy).

Every shape lives in its own object frame, centred near the origin, inside the unit ball
(bounding radius <= 1), so one scale (``OBJECT_SIZE`` in the world) sizes them all alike. The
world paints the object's +x half in its hue and the -x half in a dark shade of it (the marking that makes the
rotation visible on every class, the sphere included), so the shapes need no texture of their own.

Each entry of :data:`SHAPES` gives the mesh data (vertices, faces, per-face smooth flags), a point
inside the solid (the landmark the contract's camera-geometry check projects; the object's
origin except for the torus, which lies flat and whose origin is its hole), the distance from that point to the
nearest surface (inner radius) and the bounding radius around it (outer radius), both in object
units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..engines.blender import box_data, cylinder_data, uv_sphere_data

Mesh = tuple[list, list, list]


@dataclass(frozen=True)
class ShapeClass:
    """One shape class: mesh data in object units, a point inside it and its inner/outer radii there."""

    name: str
    mesh: Mesh
    landmark: tuple[float, float, float]
    inner: float
    outer: float


def _scaled(data: Mesh, s: tuple[float, float, float], t: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> Mesh:
    verts, faces, smooth = data
    return [(v[0] * s[0] + t[0], v[1] * s[1] + t[1], v[2] * s[2] + t[2]) for v in verts], list(faces), list(smooth)


def _merge(*parts: Mesh) -> Mesh:
    """Concatenate meshes (overlapping solids render as their union in a ray tracer)."""
    verts, faces, smooth = [], [], []
    for v, f, s in parts:
        base = len(verts)
        verts += v
        faces += [tuple(base + i for i in face) for face in f]
        smooth += s
    return verts, faces, smooth


def cone_data(radius: float, z0: float, z1: float, segments: int = 48) -> Mesh:
    """A cone: base disc of ``radius`` at z0, apex at z1 (smooth side, flat base)."""
    ring = [(radius * math.cos(2 * math.pi * i / segments), radius * math.sin(2 * math.pi * i / segments), z0)
            for i in range(segments)]
    verts = ring + [(0.0, 0.0, z1)] + ring
    apex = segments
    faces = [(i, (i + 1) % segments, apex) for i in range(segments)]
    smooth = [True] * segments
    base = segments + 1
    faces.append(tuple(base + i for i in reversed(range(segments))))
    smooth.append(False)
    return verts, faces, smooth


def torus_data(major: float, minor: float, segments: int = 48, sides: int = 20) -> Mesh:
    """A torus in the x-z plane (its axis along y) with ring radius ``major`` and tube radius ``minor``."""
    verts = []
    for i in range(segments):
        a = 2 * math.pi * i / segments
        for j in range(sides):
            b = 2 * math.pi * j / sides
            r = major + minor * math.cos(b)
            verts.append((r * math.cos(a), minor * math.sin(b), r * math.sin(a)))
    faces = []
    for i in range(segments):
        for j in range(sides):
            i2, j2 = (i + 1) % segments, (j + 1) % sides
            faces.append((i * sides + j, i * sides + j2, i2 * sides + j2, i2 * sides + j))
    return verts, faces, [True] * len(faces)


def _tilted_cylinder(radius: float, length: float, start: tuple[float, float, float], angle: float) -> Mesh:
    """A cylinder of ``radius`` and ``length`` from ``start``, its axis in the x-z plane ``angle`` rad above +x."""
    v, f, s = cylinder_data(24, True, (0.0, 1.0))
    ca, sa = math.cos(angle), math.sin(angle)
    out = []
    for x, y, z in v:  # axis along local z -> direction (ca, 0, sa); local x -> (-sa, 0, ca)
        px, py, pz = radius * x, radius * y, length * z
        out.append((start[0] + pz * ca - px * sa, start[1] + py, start[2] + pz * sa + px * ca))
    return out, f, s


def _lying(data: Mesh) -> Mesh:
    """``data`` turned a quarter turn about +x (y -> z): a torus in the x-z plane comes to lie in the x-y plane."""
    verts, faces, smooth = data
    return [(x, -z, y) for x, y, z in verts], list(faces), list(smooth)


def _teapot() -> Mesh:
    """A teapot-like solid: squat body, spout towards +x, handle at -x, lid knob on top."""
    body = _scaled(uv_sphere_data(32, 16), (0.62, 0.62, 0.48))
    spout = _tilted_cylinder(0.13, 0.5, (0.45, 0.0, -0.05), math.radians(40.0))
    handle = _scaled(torus_data(0.26, 0.08, 32, 12), (1.0, 1.0, 1.0), (-0.62, 0.0, 0.02))
    knob = _scaled(uv_sphere_data(16, 8), (0.12, 0.12, 0.12), (0.0, 0.0, 0.52))
    return _merge(body, spout, handle, knob)


def _shapes() -> tuple[ShapeClass, ...]:
    cone_r, cone_z0, cone_z1 = 0.75, -0.6, 0.9
    # distance from the origin to the cone's slanted side: the side line passes (r, z0) and (0, z1)
    side = abs(cone_z1 * cone_r) / math.hypot(cone_r, cone_z1 - cone_z0)
    return (
        ShapeClass("sphere", _scaled(uv_sphere_data(32, 16), (0.85, 0.85, 0.85)), (0.0, 0.0, 0.0), 0.85, 0.85),
        ShapeClass("cube", _scaled(box_data(), (0.57, 0.57, 0.57)), (0.0, 0.0, 0.0), 0.57, 0.57 * math.sqrt(3.0)),
        # a slim pillar (height 2.1 diameters), unlike the cube's square profile
        ShapeClass("cylinder", _scaled(cylinder_data(48, True, (-0.88, 0.88)), (0.42, 0.42, 1.0)), (0.0, 0.0, 0.0),
                   0.42, math.hypot(0.42, 0.88)),
        ShapeClass("cone", cone_data(cone_r, cone_z0, cone_z1), (0.0, 0.0, 0.0), min(side, -cone_z0),
                   max(cone_z1, math.hypot(cone_r, cone_z0))),
        ShapeClass("torus", _lying(torus_data(0.62, 0.3)), (0.62, 0.0, 0.0), 0.3, 0.62 + 0.3 + 0.62),
        ShapeClass("teapot", _teapot(), (0.0, 0.0, 0.0), 0.48, 0.99),
    )


#: The shape classes, in the order of the categorical latent's levels (codes 0..5).
SHAPES: tuple[ShapeClass, ...] = _shapes()
SHAPE_NAMES: tuple[str, ...] = tuple(s.name for s in SHAPES)
