"""static/spring: a cylinder resting on a coil spring, rendered with Blender Cycles.

The benchmark's "cylinder spring" scene (causal graph h -> m, r -> m, m -> l,
k -> l). Every latent is drawn so that it shows in the pixels, and only inside the
valid ranges the world declares (:data:`RANGES`; the world raises instead of clamping):

- the coil is a real helix (a bevelled poly curve) of fixed coil radius
  ``COIL_RADIUS`` and a fixed number of turns, standing on the ground from
  z=0 to a seat plate whose top is at z=l: compression packs the same turns
  into less height;
- its wire radius grows linearly with the spring constant k over ``K_RANGE``,
  so stiffer springs look thicker;
- the cylinder (radius r, height h) sits on the seat with its bottom at z=l;
  its colour encodes the density rho over ``RHO_RANGE``: hue from blue (light)
  to red (dense) and brightness from light to dark, so the mass
  m = rho*pi*r^2*h is readable from r, h and colour;
- optional latents: ``light`` scales the sun's strength (default 1) and
  ``hue`` in [0, 1] overrides the cylinder's hue (rho then still sets its
  brightness).

Cameras: orbit, fixed and top-down (nothing moves within an image, so there is no mount).
Instance ids in the segmentation: 1 ground, 2 spring (coil and seat), 3 cylinder.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..base import WorldInfo
from ..engines import blender as bl
from ._blender_world import BlenderStillWorld, still_info

#: Centre-line radius of the coil (m); r is read against it.
COIL_RADIUS = 0.035
#: Full turns of the coil; constant, so compression shows as a smaller pitch.
COIL_TURNS = 5
#: Points per turn of the helix poly-line.
POINTS_PER_TURN = 32
#: Spring constant range (N/m) mapped linearly onto ``WIRE_RADIUS`` (m).
K_RANGE = (50.0, 400.0)
WIRE_RADIUS = (0.001, 0.004)
#: Density range (kg/m^3) mapped onto the cylinder's colour ramp.
RHO_RANGE = (500.0, 11000.0)
#: Seat plate on top of the coil (part of the spring): radius and thickness (m).
SEAT_RADIUS = COIL_RADIUS + WIRE_RADIUS[1]
SEAT_THICKNESS = 0.003
#: Camera: aim point and default distance (m) at the ring cameras' 40 deg fov;
#: keeps the tallest configuration (l=0.13, h=0.10, r=0.05) inside the frame.
TARGET = (0.0, 0.0, 0.095)
BASE_DISTANCE = 0.41
GROUND_RADIUS = 0.3
SUN_STRENGTH = 3.0

#: Valid range of every latent the world reads: lengths the coil can be drawn at (m), sizes
#: inside the frame (m), and the colour and wire-thickness ramps. A spec must stay inside.
RANGES = {
    "h": (0.005, 0.10), "r": (0.005, 0.05), "l": (0.01, 0.13), "k": K_RANGE, "rho": RHO_RANGE,
    "light": (0.0, 3.0), "hue": (0.0, 1.0),
}

GROUND_ID, SPRING_ID, CYLINDER_ID = 1, 2, 3
SEGMENTATION_IDS = {0: "background", GROUND_ID: "ground", SPRING_ID: "spring (coil and seat)", CYLINDER_ID: "cylinder"}


def wire_radius(k: float) -> float:
    """Wire radius (m) of a spring of constant ``k`` (N/m in ``K_RANGE``)."""
    t = (float(k) - K_RANGE[0]) / (K_RANGE[1] - K_RANGE[0])
    return WIRE_RADIUS[0] + t * (WIRE_RADIUS[1] - WIRE_RADIUS[0])


def density_color(rho: float, hue: float | None = None) -> tuple[float, float, float]:
    """Linear RGB of the cylinder: rho (kg/m^3 in ``RHO_RANGE``) sets hue (unless given) and brightness."""
    t = (float(rho) - RHO_RANGE[0]) / (RHO_RANGE[1] - RHO_RANGE[0])
    h = 0.62 * (1.0 - t) if hue is None else float(hue)
    v = 0.95 - 0.5 * t
    return bl.hsv_to_linear_rgb(h, 0.8, v)


def helix_points(length: float, wire: float, turns: int = COIL_TURNS, per_turn: int = POINTS_PER_TURN) -> np.ndarray:
    """Centre line of the coil: flat half-turn ends, resting on z=0, under a seat at ``length``."""
    n = turns * per_turn + 1
    theta = np.linspace(0.0, 2.0 * math.pi * turns, n)
    z0 = wire
    z1 = max(length - SEAT_THICKNESS - wire, z0 + 1e-4)  # the shortest coil (l = 0.01) is a flat stack of turns
    end = math.pi  # half a turn lies flat at each end (closed ends)
    s = np.clip((theta - end) / (theta[-1] - 2.0 * end), 0.0, 1.0)
    return np.stack([COIL_RADIUS * np.cos(theta), COIL_RADIUS * np.sin(theta), z0 + (z1 - z0) * s], axis=1)


class SpringWorld(BlenderStillWorld):
    """static/spring: see the module docstring."""

    info: ClassVar[WorldInfo] = still_info(
        name="static/spring",
        description=(
            "A cylinder of height h, radius r and density rho rests on a coil spring of constant k, "
            "compressed to length l."
        ),
        latents=("h", "r", "rho", "k", "l"),
        optional_latents=("light", "hue"),
        ranges=RANGES,
    )
    #: Framing and segmentation ids for the shared skeleton (:class:`BlenderStillWorld`).
    TARGET = TARGET
    BASE_DISTANCE = BASE_DISTANCE
    SCENE_RADIUS = GROUND_RADIUS
    SEGMENTATION_IDS = SEGMENTATION_IDS
    LANDMARK_IDS = (CYLINDER_ID,)

    def _build(self) -> None:
        bs, sc = self.bs, self.bs.scene
        own = bs.own
        own(bl.set_world_color(sc, bl.srgb_to_linear((0.78, 0.82, 0.88)), strength=0.6))
        self.sun = own(bl.add_sun(sc, "sun", direction_to=(0.5, -0.8, 1.1), strength=SUN_STRENGTH, angle_deg=8.0))
        own(self.sun.data)

        ground_mat = own(bl.principled_material("ground", bl.srgb_to_linear((0.72, 0.70, 0.66)), roughness=0.85))
        ground_mesh = own(bl.disc_mesh("ground"))
        self.ground = own(bl.add_object(sc, "ground", ground_mesh, pass_index=GROUND_ID, material=ground_mat))
        self.ground.scale = (GROUND_RADIUS, GROUND_RADIUS, 1.0)

        steel_rgb = bl.srgb_to_linear((0.42, 0.44, 0.48))
        steel = own(bl.principled_material("steel", steel_rgb, roughness=0.35, metallic=0.5))
        self.coil_curve = own(bl.poly_curve("coil", COIL_TURNS * POINTS_PER_TURN + 1, bevel_radius=WIRE_RADIUS[0]))
        self.coil = own(bl.add_object(sc, "coil", self.coil_curve, pass_index=SPRING_ID, material=steel))
        seat_mesh = own(bl.cylinder_mesh("seat", segments=48))
        self.seat = own(bl.add_object(sc, "seat", seat_mesh, pass_index=SPRING_ID, material=steel))
        self.seat.scale = (SEAT_RADIUS, SEAT_RADIUS, SEAT_THICKNESS)

        body_mat = own(bl.object_color_material("body", roughness=0.45))
        body_mesh = own(bl.cylinder_mesh("cylinder", segments=48))
        self.body = own(bl.add_object(sc, "cylinder", body_mesh, pass_index=CYLINDER_ID, material=body_mat))

    def _pose(self, h: float, r: float, rho: float, k: float, l: float, light: float, hue: float | None) -> None:
        state = (h, r, rho, k, l, light, hue)
        if state == self._state:
            return
        wire = wire_radius(k)
        self.coil_curve.bevel_depth = wire
        bl.set_curve_points(self.coil_curve, helix_points(l, wire))
        self.seat.location = (0.0, 0.0, l - SEAT_THICKNESS)
        self.body.location = (0.0, 0.0, l)
        self.body.scale = (r, r, h)
        bl.set_object_color(self.body, density_color(rho, hue))
        self.sun.data.energy = SUN_STRENGTH * light
        self._state = state

    def _pose_sample(self, lat: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose sample ``i``; its landmark is the cylinder's centre."""
        h, r, rho, k, l = (float(lat[name][i]) for name in ("h", "r", "rho", "k", "l"))
        self._pose(h, r, rho, k, l, light=float(lat["light"][i]) if "light" in lat else 1.0,
                   hue=float(lat["hue"][i]) if "hue" in lat else None)
        return np.array([(0.0, 0.0, l + 0.5 * h)]), np.array([(min(0.5 * h, r), math.hypot(0.5 * h, r))])
