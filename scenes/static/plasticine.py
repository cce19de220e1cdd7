"""static/plasticine: a ball dropped onto a slab of plasticine, and the dent it left, in Blender Cycles.

The benchmark's "ball meets plasticine" scene. A ball of radius ``R`` and density ``rho`` (mass
``m = rho 4/3 pi R^3``) was released from an electromagnet with its bottom ``h`` metres above a
round slab of plasticine of indentation hardness ``H`` (flow pressure, MPa) and dented it
``depth`` metres deep; it was then lifted out and set down beside the dent.

The dent follows from an energy balance (the spec's structural equation; Tabor, *The Hardness
of Metals*, Oxford 1951, ch. 7 on dynamic hardness): a rigid sphere pressed into a
rigid-perfectly-plastic medium meets a mean pressure ``H`` over its contact circle of radius
``a``, ``a^2 = 2 R d - d^2``, so the work of indenting to depth ``d`` is ``pi H (R d^2 - d^3/3)``,
``~ pi H R d^2`` for ``d << R``; equating it to the ball's kinetic energy at impact ``m g h``
(the fall of d while indenting neglected) gives ``d = sqrt(m g h / (pi H R))``. The dent is the
spherical cap the ball pressed out: depth ``d``, width ``2 a``. The world reads ``depth`` (so an
intervention may set it) and draws the cap of the ball's own radius; elastic recovery and the
raised lip are ignored, as in Tabor's model.

What shows each latent at 64 px:

- ``R``: the ball's size, and the curvature of the dent;
- ``rho``: the ball's brightness (light aluminium-like grey at 2000 kg/m^3 down to dark steel
  grey at 9000, :func:`ball_color`);
- ``h``: the height of the electromagnet (a dark puck on a thin hanger) whose underside is
  ``h + 2 R`` above the slab, straight above the dent: the ball hung from it, touching it;
- ``H``: the plasticine's colour, from green (soft) to violet (hard) (:func:`slab_color`);
- ``depth``: the dent itself, lit by a low sun so its far wall is bright and its near wall shaded.

Geometry (metres, z up): the slab is a lathed disc of radius ``SLAB_RADIUS`` and thickness
``SLAB_THICKNESS`` on a grey table, with the dent at its centre (its top surface is a polar grid:
``DENT_RINGS`` rings inside the dent, so the cap is smooth at every size); the ball rests on the
flat top at ``BALL_XY``. Ids: 1 table, 2 plasticine, 3 ball, 4 release magnet and hanger.
Cameras: orbit, fixed and top-down, aimed at ``TARGET`` from ``BASE_DISTANCE``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..base import WorldInfo
from ..engines import blender as bl
from ._blender_world import BlenderStillWorld, derived_latent_check, still_info

#: The plasticine slab (m): radius and thickness; its top is at z = SLAB_THICKNESS.
SLAB_RADIUS = 0.085
SLAB_THICKNESS = 0.03
#: Polar grid of the slab's top: rings inside the dent, rings outside it, and segments per ring.
DENT_RINGS = 20
OUTER_RINGS = 10
SEGMENTS = 96
#: Where the ball rests on the slab beside its dent (x, y of its centre, m).
BALL_XY = (0.052, 0.0)
#: The release electromagnet: radius and height of its puck, radius of its hanger (m).
MAGNET_RADIUS = 0.014
MAGNET_HEIGHT = 0.02
HANGER_RADIUS = 0.002
HANGER_TOP = 1.5
#: Colour ramps: density (kg/m^3) -> ball grey level; hardness (MPa) -> plasticine hue.
RHO_RANGE = (1000.0, 12000.0)
H_RANGE = (0.08, 0.6)
TABLE_RADIUS = 0.6
SUN_STRENGTH = 4.0
#: Camera: aim point and default distance (m) at 40 deg fov; frames the slab and the magnet at
#: its highest (h = 0.14 m, R = 0.025 m).
TARGET = (0.0, 0.0, 0.1)
BASE_DISTANCE = 0.39

#: Valid range of every latent the world reads: ball radius (m), density (kg/m^3), drop height (m),
#: hardness (MPa) and dent depth (m; at most the smallest ball's radius, so every dent is a spherical cap).
RANGES = {
    "R": (0.01, 0.03),
    "rho": RHO_RANGE,
    "h": (0.02, 0.2),
    "H": H_RANGE,
    "depth": (0.0, 0.01),
}

TABLE_ID, SLAB_ID, BALL_ID, MAGNET_ID = 1, 2, 3, 4
SEGMENTATION_IDS = {0: "background", TABLE_ID: "table", SLAB_ID: "plasticine", BALL_ID: "ball",
                    MAGNET_ID: "release magnet and hanger"}


def dent_depth(m, h, H, R, g: float = 9.81):
    """Depth (m) of the dent a rigid ball leaves in a rigid-perfectly-plastic slab.

    ``m`` ball mass (kg), ``h`` drop height of its bottom (m), ``H`` indentation hardness (MPa),
    ``R`` ball radius (m), ``g`` (m/s^2); floats or arrays (broadcast). Energy balance
    ``m g h = pi H R d^2`` (Tabor 1951, d << R): ``d = sqrt(m g h / (pi H R))``.
    """
    return np.sqrt(np.asarray(m) * g * np.asarray(h) / (math.pi * np.asarray(H) * 1e6 * np.asarray(R)))


def dent_width(R, depth):
    """Width (m) of a spherical-cap dent of depth ``depth`` (m) pressed by a ball of radius ``R`` (m).

    The contact circle's diameter ``2 sqrt(2 R d - d^2)``; needs ``0 <= depth <= R``.
    """
    R, d = np.asarray(R, dtype=np.float64), np.asarray(depth, dtype=np.float64)
    return 2.0 * np.sqrt(2.0 * R * d - d * d)


def ball_color(rho: float) -> tuple[float, float, float]:
    """Linear RGB of the ball: light (low density) to dark (high density) blue-grey over ``RHO_RANGE``."""
    t = (float(rho) - RHO_RANGE[0]) / (RHO_RANGE[1] - RHO_RANGE[0])
    return bl.hsv_to_linear_rgb(0.6, 0.15, 0.95 - 0.8 * t)


def slab_color(hardness: float) -> tuple[float, float, float]:
    """Linear RGB of the plasticine: hue from green (soft) to violet (hard) over ``H_RANGE`` (MPa)."""
    t = (float(hardness) - H_RANGE[0]) / (H_RANGE[1] - H_RANGE[0])
    return bl.hsv_to_linear_rgb(0.15 + 0.65 * t, 0.6, 0.8)


def slab_profile(R: float, depth: float) -> np.ndarray:
    """(r, z) of the slab top's rings (m), centre first: the dent's cap, then the flat top to the rim.

    ``1 + DENT_RINGS + OUTER_RINGS`` points; the cap is the ball's surface at its deepest,
    ``z = top - d + R - sqrt(R^2 - r^2)`` for r up to the contact radius a.
    """
    top = SLAB_THICKNESS
    a = 0.5 * float(dent_width(R, depth))
    a = max(a, 1e-4)  # no dent: the inner rings crowd the centre of a flat top
    r_in = a * np.linspace(0.0, 1.0, DENT_RINGS + 1)
    z_in = np.minimum(top - depth + R - np.sqrt(np.maximum(R * R - r_in * r_in, 0.0)), top)
    z_in[-1] = top
    r_out = a + (SLAB_RADIUS - a) * (np.linspace(0.0, 1.0, OUTER_RINGS + 1)[1:] ** 1.5)
    return np.concatenate([np.stack([r_in, z_in], 1), np.stack([r_out, np.full_like(r_out, top)], 1)])


def _slab_vertices(profile: np.ndarray) -> np.ndarray:
    """Vertex coordinates (N, 3) of the slab mesh for a top ``profile`` (see :func:`_slab_faces`)."""
    phi = 2.0 * np.pi * np.arange(SEGMENTS) / SEGMENTS
    c, s = np.cos(phi), np.sin(phi)
    top = [np.array([[0.0, 0.0, profile[0, 1]]])]
    for r, z in profile[1:]:
        top.append(np.stack([r * c, r * s, np.full(SEGMENTS, z)], 1))
    R = SLAB_RADIUS
    side_top = np.stack([R * c, R * s, np.full(SEGMENTS, SLAB_THICKNESS)], 1)
    side_bottom = np.stack([R * c, R * s, np.zeros(SEGMENTS)], 1)
    bottom_centre = np.array([[0.0, 0.0, 0.0]])
    return np.concatenate(top + [side_top, side_bottom, bottom_centre])


def _slab_faces(n_rings: int) -> tuple[list[tuple[int, ...]], list[bool]]:
    """Faces (outward) and smooth flags of the slab: top fan and quads over ``n_rings`` rings, side, bottom."""
    S = SEGMENTS
    faces, smooth = [], []
    ring = lambda k, j: 1 + (k - 1) * S + (j % S)  # noqa: E731 - ring k >= 1 of the top
    for j in range(S):
        faces.append((0, ring(1, j), ring(1, j + 1)))
        smooth.append(True)
    for k in range(1, n_rings):
        for j in range(S):
            faces.append((ring(k, j), ring(k + 1, j), ring(k + 1, j + 1), ring(k, j + 1)))
            smooth.append(True)
    st = 1 + n_rings * S
    sb = st + S
    for j in range(S):
        k = (j + 1) % S
        faces.append((sb + j, sb + k, st + k, st + j))
        smooth.append(True)
    bc = sb + S
    for j in range(S):
        faces.append((bc, sb + (j + 1) % S, sb + j))
        smooth.append(False)
    return faces, smooth


class PlasticineWorld(BlenderStillWorld):
    """static/plasticine: see the module docstring."""

    checks: ClassVar = (derived_latent_check("width", ("R", "depth"), dent_width, unit="m",
                                             what="the diameter of the spherical cap the ball presses out"),)

    info: ClassVar[WorldInfo] = still_info(
        name="static/plasticine",
        description=(
            "A ball of radius R and density rho dropped from height h dents a plasticine slab of hardness H "
            "to the given depth (Tabor's energy balance), and rests beside the dent."
        ),
        latents=("R", "rho", "h", "H", "depth"),
        ranges=RANGES,
    )
    #: Framing and segmentation ids for the shared skeleton (:class:`BlenderStillWorld`).
    TARGET = TARGET
    BASE_DISTANCE = BASE_DISTANCE
    SCENE_RADIUS = TABLE_RADIUS
    SEGMENTATION_IDS = SEGMENTATION_IDS
    LANDMARK_IDS = (BALL_ID, MAGNET_ID)

    def _build(self) -> None:
        bs, sc = self.bs, self.bs.scene
        own = bs.own
        own(bl.set_world_color(sc, bl.srgb_to_linear((0.78, 0.80, 0.84)), strength=0.5))
        # a low sun (18 deg up) rakes across the slab: the dent's far wall lit, its near wall in shade
        self.sun = own(bl.add_sun(sc, "sun", direction_to=(-0.8, 0.55, 0.32), strength=SUN_STRENGTH, angle_deg=4.0))
        own(self.sun.data)

        table_mat = own(bl.principled_material("table", bl.srgb_to_linear((0.55, 0.55, 0.56)), roughness=0.9))
        table_mesh = own(bl.disc_mesh("table"))
        self.table = own(bl.add_object(sc, "table", table_mesh, pass_index=TABLE_ID, material=table_mat))
        self.table.scale = (TABLE_RADIUS, TABLE_RADIUS, 1.0)

        profile = slab_profile(0.02, 0.0)
        faces, smooth = _slab_faces(len(profile) - 1)
        slab_mat = own(bl.object_color_material("plasticine", roughness=0.7))
        self.slab_mesh = own(bl.mesh_from_data("plasticine", _slab_vertices(profile), faces, smooth))
        self.slab = own(bl.add_object(sc, "plasticine", self.slab_mesh, pass_index=SLAB_ID, material=slab_mat))

        ball_mat = own(bl.object_color_material("ball", roughness=0.35))
        ball_mesh = own(bl.uv_sphere_mesh("ball", segments=48, rings=24))
        self.ball = own(bl.add_object(sc, "ball", ball_mesh, pass_index=BALL_ID, material=ball_mat))

        dark = own(bl.principled_material("magnet", bl.srgb_to_linear((0.12, 0.12, 0.13)), roughness=0.4, metallic=0.6))
        puck = own(bl.cylinder_mesh("magnet", segments=32))
        self.magnet = own(bl.add_object(sc, "magnet", puck, pass_index=MAGNET_ID, material=dark))
        self.magnet.scale = (MAGNET_RADIUS, MAGNET_RADIUS, MAGNET_HEIGHT)
        hanger = own(bl.cylinder_mesh("hanger", segments=12))
        self.hanger = own(bl.add_object(sc, "hanger", hanger, pass_index=MAGNET_ID, material=dark))

    def _pose(self, R: float, rho: float, h: float, H: float, depth: float) -> None:
        state = (R, rho, h, H, depth)
        if state == self._state:
            return
        co = _slab_vertices(slab_profile(R, depth))
        self.slab_mesh.vertices.foreach_set("co", co.ravel())
        self.slab_mesh.update()
        bl.set_object_color(self.slab, slab_color(H))
        self.ball.location = (BALL_XY[0], BALL_XY[1], SLAB_THICKNESS + R)
        self.ball.scale = (R, R, R)
        bl.set_object_color(self.ball, ball_color(rho))
        z_magnet = SLAB_THICKNESS + h + 2.0 * R  # its underside: the hanging ball's top touched it
        self.magnet.location = (0.0, 0.0, z_magnet)
        self.hanger.location = (0.0, 0.0, z_magnet + MAGNET_HEIGHT)
        self.hanger.scale = (HANGER_RADIUS, HANGER_RADIUS, HANGER_TOP - z_magnet - MAGNET_HEIGHT)
        self._state = state

    def _pose_sample(self, lat: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose sample ``i``; its landmarks are the ball's centre and the magnet's."""
        R, rho, h, H, depth = (float(lat[name][i]) for name in ("R", "rho", "h", "H", "depth"))
        self._pose(R, rho, h, H, depth)
        z_magnet = SLAB_THICKNESS + h + 2.0 * R
        marks = np.array([(BALL_XY[0], BALL_XY[1], SLAB_THICKNESS + R), (0.0, 0.0, z_magnet + 0.5 * MAGNET_HEIGHT)])
        radius = np.array([(R, R), (0.5 * MAGNET_HEIGHT, math.hypot(MAGNET_RADIUS, 0.5 * MAGNET_HEIGHT))])
        return marks, radius
