"""static/refraction: a rod standing in a glass of liquid, rendered with Blender Cycles.

The benchmark's "light refraction" scene. A straight rod leans at ``theta`` degrees from the
vertical in a cylindrical drinking glass filled to ``level`` metres with a clear, tinted liquid
of refractive index ``n``. Cycles traces the refraction physically (Principled BSDF with full
transmission: Snell's law and Fresnel reflection at every interface, glass ``GLASS_IOR``, liquid
``n``), so the submerged part of the rod looks bent and displaced, the more so the larger n, and
the checkered table seen through the liquid is magnified by the liquid's cylindrical lens.

The spec's derived latent is the textbook summary of that bend (:func:`apparent_displacement`):
seen from straight above, near-normal (paraxial) rays obey Snell's law ``sin i = n sin r`` as
``i = n r``, so a point at depth d below the surface appears at depth ``d / n`` ("apparent
depth"; Hecht, *Optics*, 5th ed., sec. 5.2.3). The submerged rod's image is the rod squeezed
vertically by 1/n about the point where it crosses the surface; its foot, at depth ``level``,
appears ``level * sin(theta) * (1 - 1/n)`` metres off the straight continuation of the rod in
air. Graph: theta -> displacement <- n, level -> displacement.

Geometry (metres, z up, the glass stands on the table at the origin):

- the glass: a lathed cup of outer radius ``GLASS_RADIUS``, wall ``GLASS_WALL``, floor
  ``GLASS_BASE`` thick, ``GLASS_HEIGHT`` tall;
- the liquid: a cylinder from the glass floor up to ``GLASS_BASE + level``, ``LIQUID_GAP``
  narrower than the inner wall and above the floor (Cycles needs surfaces that do not
  coincide, so a film of air that thin separates liquid and glass);
- the rod: a red cylinder of radius ``ROD_RADIUS`` and length ``ROD_LENGTH`` whose foot stands
  on the glass floor at ``x = ROD_FOOT_X``, leaning towards +x in the x-z plane (held there: the
  angle is a latent, not the result of the rod resting on the rim);
- a checkered table (2 cm squares) and a sun at a raking angle.

Shadows: with caustics off (deterministic, low-noise Cycles), light cannot reach the rod
through the glass by refraction, so the glass and liquid let shadow rays through unbent,
filtered by their tint (the usual "transparent shadow" approximation; the camera rays are
still refracted exactly).

Annotations hold what the camera ray hits first (Cycles' Z and object-index passes): behind
the glass, depth is the glass wall's distance and segmentation says ``glass``; the rod below
the rim is seen in the colour image only. Ids: 1 table, 2 glass, 3 liquid (where the first
hit is the liquid's free surface, seen over the rim), 4 rod (its part above the rim).

Cameras: orbit, fixed and top-down, aimed at ``TARGET`` from ``BASE_DISTANCE``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..base import WorldInfo
from ..engines import blender as bl
from ._blender_world import BlenderStillWorld, derived_latent_check, still_info

#: The glass (m): outer radius, wall thickness, floor thickness, height; and its refractive index.
GLASS_RADIUS = 0.05
GLASS_WALL = 0.003
GLASS_BASE = 0.008
GLASS_HEIGHT = 0.11
GLASS_IOR = 1.5
#: Air film between the liquid and the glass (m): keeps their surfaces apart for Cycles.
LIQUID_GAP = 0.0005
#: The rod (m): radius, length, and the x of its foot's centre on the glass floor.
ROD_RADIUS = 0.006
ROD_LENGTH = 0.17
ROD_FOOT_X = -(GLASS_RADIUS - GLASS_WALL - ROD_RADIUS - 0.001)
#: Liquid tint (linear RGB, per surface crossing), rod colour (linear RGB) and table checker (sRGB).
LIQUID_TINT = bl.srgb_to_linear((0.80, 0.93, 1.0))
ROD_COLOR = bl.srgb_to_linear((0.92, 0.12, 0.06))
TABLE_COLORS = ((0.85, 0.83, 0.78), (0.32, 0.33, 0.36))
#: Checker squares per metre of table (50 = 2 cm squares).
CHECKERS_PER_M = 50.0
TABLE_RADIUS = 0.6
SUN_STRENGTH = 3.0
#: Path depth: a camera ray crossing the whole glass meets 8 transmissive surfaces.
MAX_BOUNCES = 10
#: Camera: aim point and default distance (m) at the ring cameras' 40 deg fov; frames the glass
#: and the rod's top at every angle.
TARGET = (0.0, 0.0, 0.09)
BASE_DISTANCE = 0.35

#: Most tilt (deg) at which the rod leaves the glass through its mouth without touching the rim.
MAX_TILT = 38.0
#: Valid range of every latent the world reads: tilt (deg), liquid depth above the glass floor
#: (m, up to the rim less 2 mm) and the liquid's refractive index.
RANGES = {
    "theta": (0.0, MAX_TILT),
    "level": (0.005, GLASS_HEIGHT - GLASS_BASE - 0.002),
    "n": (1.0, 2.0),
}

TABLE_ID, GLASS_ID, LIQUID_ID, ROD_ID = 1, 2, 3, 4
SEGMENTATION_IDS = {0: "background", TABLE_ID: "table", GLASS_ID: "glass", LIQUID_ID: "liquid (its free surface)",
                    ROD_ID: "rod (where seen directly)"}


def apparent_displacement(level, theta, n):
    """Apparent sideways shift (m) of the rod's submerged foot, seen from straight above.

    ``level`` (m): depth of the foot below the liquid surface; ``theta`` (deg): the rod's tilt from
    the vertical; ``n``: the liquid's refractive index (air = 1). Floats or arrays (broadcast).

    Paraxial Snell's law gives apparent depth ``d / n`` (Hecht, *Optics*, sec. 5.2.3): the foot's
    image lies ``level (1 - 1/n)`` above the foot, which is ``level * sin(theta) * (1 - 1/n)``
    away from the rod's straight continuation. Zero for a vertical rod or n = 1.
    """
    t = np.radians(np.asarray(theta, dtype=np.float64))
    return np.asarray(level, dtype=np.float64) * np.sin(t) * (1.0 - 1.0 / np.asarray(n, dtype=np.float64))


def rod_axis(theta: float, t: float) -> np.ndarray:
    """World point (m) at distance ``t`` (m) along the rod's axis from the centre of its foot."""
    a = math.radians(theta)
    z0 = GLASS_BASE + ROD_RADIUS * math.sin(a) + 0.001
    return np.array([ROD_FOOT_X + t * math.sin(a), 0.0, z0 + t * math.cos(a)])


def _glass_profile() -> list[tuple[float, float]]:
    """The glass's cross-section in the (r, z) half-plane, counter-clockwise, from and back to the axis."""
    r_in = GLASS_RADIUS - GLASS_WALL
    return [(0.0, 0.0), (GLASS_RADIUS, 0.0), (GLASS_RADIUS, GLASS_HEIGHT), (r_in, GLASS_HEIGHT),
            (r_in, GLASS_BASE), (0.0, GLASS_BASE)]


def _lathe_data(profile: list[tuple[float, float]], segments: int = 64):
    """Vertices, faces and smooth flags of ``profile`` (r, z points) revolved about the z axis.

    Each profile segment gets its own vertex rings, so walls (constant r) are smooth shaded and
    everything else flat; faces point away from the region the counter-clockwise profile encloses.
    """
    verts: list[tuple[float, float, float]] = []
    faces: list[tuple[int, ...]] = []
    smooth: list[bool] = []
    phis = [2.0 * math.pi * j / segments for j in range(segments)]
    for (r0, z0), (r1, z1) in zip(profile[:-1], profile[1:]):
        base = len(verts)
        ring0 = [(r0 * math.cos(p), r0 * math.sin(p), z0) for p in phis]
        ring1 = [(r1 * math.cos(p), r1 * math.sin(p), z1) for p in phis]
        verts += ring0 + ring1
        out_r, out_z = z1 - z0, -(r1 - r0)  # outward normal of a counter-clockwise segment
        for j in range(segments):
            k = (j + 1) % segments
            if r0 == 0.0:  # a fan from the axis
                face = [base + j, base + segments + k, base + segments + j]
            elif r1 == 0.0:  # a fan into the axis
                face = [base + j, base + k, base + segments + j]
            else:
                face = [base + j, base + k, base + segments + k, base + segments + j]
            pts = np.array([verts[i] for i in face])
            normal = np.cross(pts[1] - pts[0], pts[2] - pts[0])
            mid = 0.5 * (phis[j] + (phis[j] + 2.0 * math.pi / segments))
            want = np.array([out_r * math.cos(mid), out_r * math.sin(mid), out_z])
            if float(normal @ want) < 0:
                face.reverse()
            faces.append(tuple(face))
            smooth.append(r0 == r1)
    return verts, faces, smooth


def _dielectric_material(name: str, tint_linear, ior: float):
    """A clear dielectric (Principled BSDF, full transmission, roughness 0) of refractive index ``ior``.

    Camera rays refract by Snell's law; shadow rays pass straight through, filtered by
    ``tint_linear`` (transparent shadows, since caustics are off). Returns (material, BSDF node).
    """
    mat = bl.principled_material(name, tint_linear, roughness=0.0, transmission=1.0, ior=ior)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    out = next(nd for nd in nodes if nd.bl_idname == "ShaderNodeOutputMaterial")
    path = nodes.new("ShaderNodeLightPath")
    clear = nodes.new("ShaderNodeBsdfTransparent")
    clear.inputs["Color"].default_value = (*tuple(tint_linear)[:3], 1.0)
    mix = nodes.new("ShaderNodeMixShader")
    links.new(path.outputs["Is Shadow Ray"], mix.inputs["Fac"])
    links.new(bsdf.outputs["BSDF"], mix.inputs[1])
    links.new(clear.outputs["BSDF"], mix.inputs[2])
    links.new(mix.outputs["Shader"], out.inputs["Surface"])
    return mat, bsdf


def _checker_material(name: str, colors, squares_per_unit: float):
    """A matte Principled material with a checker of ``colors`` (two sRGB triples) in object coordinates."""
    mat = bl.principled_material(name, bl.srgb_to_linear(colors[0]), roughness=0.8)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    coord = nodes.new("ShaderNodeTexCoord")
    checker = nodes.new("ShaderNodeTexChecker")
    checker.inputs["Scale"].default_value = float(squares_per_unit)
    checker.inputs["Color1"].default_value = (*bl.srgb_to_linear(colors[0]), 1.0)
    checker.inputs["Color2"].default_value = (*bl.srgb_to_linear(colors[1]), 1.0)
    links.new(coord.outputs["Object"], checker.inputs["Vector"])
    links.new(checker.outputs["Color"], nodes["Principled BSDF"].inputs["Base Color"])
    return mat


class RefractionWorld(BlenderStillWorld):
    """static/refraction: see the module docstring."""

    checks: ClassVar = (derived_latent_check("displacement", ("level", "theta", "n"), apparent_displacement, unit="m",
                                             what="the paraxial apparent-depth shift (Snell's law)"),)

    info: ClassVar[WorldInfo] = still_info(
        name="static/refraction",
        description=(
            "A rod tilted theta degrees stands in a glass filled to level metres with a liquid of refractive "
            "index n; Cycles refracts the rays, so the submerged rod looks bent."
        ),
        latents=("theta", "level", "n"),
        ranges=RANGES,
    )
    #: Framing and segmentation ids for the shared skeleton (:class:`BlenderStillWorld`).
    TARGET = TARGET
    BASE_DISTANCE = BASE_DISTANCE
    SCENE_RADIUS = TABLE_RADIUS
    SEGMENTATION_IDS = SEGMENTATION_IDS
    LANDMARK_IDS = (ROD_ID, GLASS_ID)

    def _build(self) -> None:
        bs, sc = self.bs, self.bs.scene
        own = bs.own
        if sc.render.engine == "CYCLES":  # through the glass and out again: deeper paths than the default
            c = sc.cycles
            c.max_bounces = c.transmission_bounces = MAX_BOUNCES
        own(bl.set_world_color(sc, bl.srgb_to_linear((0.80, 0.84, 0.90)), strength=0.7))
        self.sun = own(bl.add_sun(sc, "sun", direction_to=(-0.6, -0.9, 0.8), strength=SUN_STRENGTH, angle_deg=6.0))
        own(self.sun.data)

        table_mat = own(_checker_material("table", TABLE_COLORS, CHECKERS_PER_M * TABLE_RADIUS))
        table_mesh = own(bl.disc_mesh("table"))
        self.table = own(bl.add_object(sc, "table", table_mesh, pass_index=TABLE_ID, material=table_mat))
        self.table.scale = (TABLE_RADIUS, TABLE_RADIUS, 1.0)

        glass_mat, _ = _dielectric_material("glass", (1.0, 1.0, 1.0), GLASS_IOR)
        own(glass_mat)
        glass_mesh = own(bl.mesh_from_data("glass", *_lathe_data(_glass_profile())))
        self.glass = own(bl.add_object(sc, "glass", glass_mesh, pass_index=GLASS_ID, material=glass_mat))

        liquid_mat, self.liquid_bsdf = _dielectric_material("liquid", LIQUID_TINT, 1.33)
        own(liquid_mat)
        liquid_mesh = own(bl.cylinder_mesh("liquid", segments=64))
        self.liquid = own(bl.add_object(sc, "liquid", liquid_mesh, pass_index=LIQUID_ID, material=liquid_mat))
        r_liquid = GLASS_RADIUS - GLASS_WALL - LIQUID_GAP
        self.liquid.location = (0.0, 0.0, GLASS_BASE + LIQUID_GAP)
        self.liquid.scale = (r_liquid, r_liquid, 0.05)

        rod_mat = own(bl.principled_material("rod", ROD_COLOR, roughness=0.5))
        rod_mesh = own(bl.cylinder_mesh("rod", segments=24))
        self.rod = own(bl.add_object(sc, "rod", rod_mesh, pass_index=ROD_ID, material=rod_mat))
        self.rod.scale = (ROD_RADIUS, ROD_RADIUS, ROD_LENGTH)
        self.rod.rotation_mode = "XYZ"

    def _pose(self, theta: float, level: float, n: float) -> None:
        state = (theta, level, n)
        if state == self._state:
            return
        self.rod.location = tuple(float(x) for x in rod_axis(theta, 0.0))
        self.rod.rotation_euler = (0.0, math.radians(theta), 0.0)
        self.liquid.scale = (self.liquid.scale[0], self.liquid.scale[1], level - LIQUID_GAP)
        self.liquid_bsdf.inputs["IOR"].default_value = float(n)
        self._state = state

    def _pose_sample(self, lat: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose sample ``i``; its landmarks are a point on the rod's axis above the rim, and the glass's centre."""
        theta, level, n = (float(lat[name][i]) for name in ("theta", "level", "n"))
        self._pose(theta, level, n)
        # the rod 0.14 m from its foot: above the rim (0.131 m up or more), seen directly
        marks = np.array([rod_axis(theta, 0.14), (0.0, 0.0, 0.5 * GLASS_HEIGHT)])
        radius = np.array([(ROD_RADIUS, math.hypot(ROD_RADIUS, 0.003)),
                           (GLASS_RADIUS, math.hypot(GLASS_RADIUS, 0.5 * GLASS_HEIGHT))])
        return marks, radius
