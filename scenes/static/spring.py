"""static/spring: a cylinder resting on a coil spring, rendered with Blender Cycles.

The benchmark's "cylinder spring" scene (causal graph h -> m, r -> m, m -> l,
k -> l). Every latent is drawn so that it shows in the pixels:

- the coil is a real helix (a bevelled poly curve) of fixed coil radius
  ``COIL_RADIUS`` and a fixed number of turns, standing on the ground from
  z=0 to a seat plate whose top is at z=l: compression packs the same turns
  into less height;
- its wire radius grows linearly with the spring constant k over ``K_RANGE``
  (clamped), so stiffer springs look thicker;
- the cylinder (radius r, height h) sits on the seat with its bottom at z=l;
  its colour encodes the density rho over ``RHO_RANGE`` (the catalogue range
  including the shift intervention; clamped): hue from
  blue (light) to red (dense) and brightness from light to dark, so the mass
  m = rho*pi*r^2*h is readable from r, h and colour;
- optional latents: ``light`` scales the sun's strength (default 1) and
  ``hue`` in [0, 1] overrides the cylinder's hue (rho then still sets its
  brightness).

Instance ids in the segmentation: 1 ground, 2 spring (coil and seat), 3 cylinder.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..base import RenderOutput, World, WorldBatch, WorldInfo
from ..engines import blender as bl

#: Centre-line radius of the coil (m); r is read against it.
COIL_RADIUS = 0.035
#: Full turns of the coil; constant, so compression shows as a smaller pitch.
COIL_TURNS = 5
#: Points per turn of the helix poly-line.
POINTS_PER_TURN = 32
#: Spring constant range (N/m) mapped linearly onto ``WIRE_RADIUS`` (clamped).
K_RANGE = (50.0, 400.0)
WIRE_RADIUS = (0.001, 0.004)
#: Density range (kg/m^3) mapped onto the cylinder's colour ramp (clamped).
RHO_RANGE = (500.0, 11000.0)
#: Seat plate on top of the coil (part of the spring): radius and thickness (m).
SEAT_RADIUS = COIL_RADIUS + WIRE_RADIUS[1]
SEAT_THICKNESS = 0.003
#: Geometry clamps: shortest spring, smallest cylinder.
MIN_LENGTH = 0.01
MIN_SIZE = 0.001
#: Camera: aim point and default distance (m) at the ring cameras' 40 deg fov;
#: keeps the tallest configuration (l=0.12, h=0.10, r=0.05) inside the frame.
TARGET = (0.0, 0.0, 0.095)
BASE_DISTANCE = 0.41
GROUND_RADIUS = 0.3
SUN_STRENGTH = 3.0

GROUND_ID, SPRING_ID, CYLINDER_ID = 1, 2, 3


def wire_radius(k: float) -> float:
    t = (float(k) - K_RANGE[0]) / (K_RANGE[1] - K_RANGE[0])
    t = min(max(t, 0.0), 1.0)
    return WIRE_RADIUS[0] + t * (WIRE_RADIUS[1] - WIRE_RADIUS[0])


def density_color(rho: float, hue: float | None = None) -> tuple[float, float, float]:
    """Linear RGB of the cylinder: rho sets hue (unless given) and brightness."""
    t = (float(rho) - RHO_RANGE[0]) / (RHO_RANGE[1] - RHO_RANGE[0])
    t = min(max(t, 0.0), 1.0)
    h = 0.62 * (1.0 - t) if hue is None else float(hue)
    v = 0.95 - 0.5 * t
    return bl.hsv_to_linear_rgb(h, 0.8, v)


def helix_points(length: float, wire: float, turns: int = COIL_TURNS, per_turn: int = POINTS_PER_TURN) -> np.ndarray:
    """Centre line of the coil: flat half-turn ends, resting on z=0, under a seat at ``length``."""
    n = turns * per_turn + 1
    theta = np.linspace(0.0, 2.0 * math.pi * turns, n)
    z0 = wire
    z1 = max(length - SEAT_THICKNESS - wire, z0 + 1e-4)
    end = math.pi  # half a turn lies flat at each end (closed ends)
    s = np.clip((theta - end) / (theta[-1] - 2.0 * end), 0.0, 1.0)
    return np.stack([COIL_RADIUS * np.cos(theta), COIL_RADIUS * np.sin(theta), z0 + (z1 - z0) * s], axis=1)


class SpringWorld(World):
    info: ClassVar[WorldInfo] = WorldInfo(
        name="static/spring",
        kind="image",
        engine="blender",
        engines=("cycles",),
        description=(
            "A cylinder of height h, radius r and density rho rests on a coil spring of constant k, "
            "compressed to length l."
        ),
        latents=("h", "r", "rho", "k", "l"),
        optional_latents=("light", "hue"),
        annotations=("depth", "segmentation"),
        requires=("bpy", "OpenEXR"),
    )

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        rs = spec.render
        if rs.engine not in (None, "cycles"):
            raise ValueError(f"static/spring renders with engine 'cycles', got {rs.engine!r}")
        self.width, self.height = rs.width, rs.height
        self.want_depth = "depth" in rs.annotations
        self.want_seg = "segmentation" in rs.annotations
        self.bs = bl.BlenderScene.from_settings("spring", rs, threads)
        with self.bs.building():
            self._build(rs)

    def _build(self, rs) -> None:
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

        self.cameras = []
        for cam in rs.cameras():
            obj = own(bl.add_camera(sc, f"cam.{cam.name}", cam, BASE_DISTANCE, TARGET))
            own(obj.data)
            self.cameras.append(obj)
        self._state = None

    def _pose(self, h: float, r: float, rho: float, k: float, l: float, light: float, hue: float | None) -> None:
        state = (h, r, rho, k, l, light, hue)
        if state == self._state:
            return
        length = max(float(l), MIN_LENGTH)
        wire = wire_radius(k)
        self.coil_curve.bevel_depth = wire
        bl.set_curve_points(self.coil_curve, helix_points(length, wire))
        self.seat.location = (0.0, 0.0, length - SEAT_THICKNESS)
        self.body.location = (0.0, 0.0, length)
        rad, height = max(float(r), MIN_SIZE), max(float(h), MIN_SIZE)
        self.body.scale = (rad, rad, height)
        bl.set_object_color(self.body, density_color(rho, hue))
        self.sun.data.energy = SUN_STRENGTH * max(float(light), 0.0)
        self._state = state

    def render(self, batch: WorldBatch) -> RenderOutput:
        n, v = len(batch), len(self.cameras)
        H, W = self.height, self.width
        pixels = np.zeros((n, v, H, W, 3), np.uint8)
        depth = np.zeros((n, v, H, W), np.float32) if self.want_depth else None
        seg = np.zeros((n, v, H, W), np.uint8) if self.want_seg else None
        lat = {key: np.asarray(val, dtype=np.float64) for key, val in batch.latents.items()}
        missing = [name for name in self.info.latents if name not in lat]
        if missing:
            raise KeyError(f"static/spring needs latents {list(self.info.latents)}; missing {missing}")
        for name, arr in lat.items():
            if name in self.info.latents + self.info.optional_latents and not np.all(np.isfinite(arr)):
                raise ValueError(f"latent {name!r} has non-finite values")
        with self.bs.persistent():
            self._render_into(lat, n, pixels, depth, seg)
        return RenderOutput(pixels=pixels, depth=depth, segmentation=seg)

    def _render_into(self, lat, n, pixels, depth, seg) -> None:
        for i in range(n):
            self._pose(
                *(float(lat[name][i]) for name in ("h", "r", "rho", "k", "l")),
                light=float(lat["light"][i]) if "light" in lat else 1.0,
                hue=float(lat["hue"][i]) if "hue" in lat else None,
            )
            self.bs.render_views(self.cameras, pixels[i], None if depth is None else depth[i], None if seg is None else seg[i])

    def close(self) -> None:
        bs = getattr(self, "bs", None)
        if bs is not None:
            bs.close()
            self.bs = None
