"""static/pendulum: a pendulum and the shadow a point light casts of it, rendered in 3D with Blender Cycles.

The classic toy of causal disentanglement (CausalVAE: Yang et al., "CausalVAE: Disentangled
Representation Learning via Neural Structural Causal Models", CVPR 2021, its pendulum data
set): the pendulum's angle and the light's position cause the length and the position of
the pendulum's shadow on the ground. As in CausalVAE's generator, the shadow is the
central projection of the pendulum from the light onto the ground, and its length and
position are the distance between, and the midpoint of, the shadows of the rod's two ends
(the pivot and the bob's centre). Here the projection is exact, in 3D:

- the pendulum swings in a vertical plane; along that plane's horizontal axis ``p`` (m) the
  pivot is at p=0, height ``PIVOT_HEIGHT``; the bob's centre hangs ``ROD_LENGTH`` below it at
  ``pendulum_angle`` theta from the vertical: ``B = (l sin theta, H - l cos theta)``;
- a point light (a small bulb) sits ``LIGHT_DISTANCE`` from the pivot at ``light_angle`` phi
  from the vertical in the same plane: ``S = (R sin phi, H + R cos phi)``;
- a point X casts its shadow on the ground z=0 where the ray from S through X meets it:
  ``p_shadow(X) = S_p + (X_p - S_p) S_z / (S_z - X_z)`` (central projection; the ranges keep
  the light above the bob, S_z > X_z). The pivot's shadow is ``-H tan phi``;
- ``shadow_position = (p_shadow(pivot) + p_shadow(B)) / 2`` and
  ``shadow_length = |p_shadow(B) - p_shadow(pivot)|`` (m).

This world reads ``pendulum_angle`` and ``light_angle`` (rad) and refuses values outside
:data:`RANGES`; the shadow is cast by Cycles (a point light of radius ``LIGHT_SIZE``, so its
edges are sharp), never drawn, so a spec that intervenes on the shadow latents is refused
(:meth:`PendulumWorld.check`). :func:`shadow_endpoints` is the equation the catalogue spec's
mechanisms write out. Because the world never reads the shadow latents, two guards keep a spec's
stored shadow equal to the rendered one: :meth:`PendulumWorld.check` refuses shadow latents that
are roots, carry noise or do not depend on both angles, and the world check ``shadow``
(:data:`PendulumWorld.checks`) recomputes the shadow of every sample from its stored angles and
reports each sample whose stored ``shadow_length`` or ``shadow_position`` differs from it (a spec
whose mechanism text was edited to another formula). The swing plane lies along the horizontal
diagonal (45 degrees azimuth), so each camera of the default four-view ring sees the swing and the shadow
obliquely. Cameras: orbit, fixed and top-down. Instance ids: 1 ground, 2 pivot and rod,
3 bob, 4 light (the bulb, drawn emissive so its position shows).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ...schemas.expression import parse_expression
from ..base import Simulation, World, WorldBatch, WorldCheck, WorldInfo
from ..cameras import box_frame, fit_orbit_distance
from ..engines import blender as bl
from ._blender_world import BlenderStillWorld, intervention_targets, still_info

#: Height of the pivot above the ground (m).
PIVOT_HEIGHT = 0.7
#: Rod length from the pivot to the bob's centre (m).
ROD_LENGTH = 0.4
#: Distance of the light from the pivot (m): the light moves on this arc.
LIGHT_DISTANCE = 0.45
BOB_RADIUS = 0.06
ROD_RADIUS = 0.012
HUB_RADIUS = 0.03
#: Radius of the bulb as drawn (m), and of the point light inside it that casts the shadows (sharp edges).
BULB_RADIUS = 0.035
LIGHT_SIZE = 0.004
LIGHT_POWER = 90.0
GROUND_RADIUS = 3.0
#: Valid angles (rad) from the vertical: the light stays above the bob and the shadow on the ground in frame.
ANGLE_RANGE = (-0.70, 0.70)  # about 40 degrees either way
LIGHT_RANGE = (-0.79, 0.79)  # about 45 degrees either way
#: Azimuth (rad) of the swing plane's horizontal axis p.
PLANE_AZIMUTH = math.radians(45.0)

RANGES = {"pendulum_angle": ANGLE_RANGE, "light_angle": LIGHT_RANGE}

GROUND_ID, ROD_ID, BOB_ID, LIGHT_ID = 1, 2, 3, 4
SEGMENTATION_IDS = {0: "background", GROUND_ID: "ground", ROD_ID: "pivot and rod", BOB_ID: "bob",
                    LIGHT_ID: "light (bulb)"}

#: Latents the light casts: never drawn, so no intervention may set them.
SHADOW_LATENTS = ("shadow_length", "shadow_position")
#: Relative and absolute (m) tolerance of the ``shadow`` check (float64 mechanisms agree to ~1e-15).
SHADOW_TOLERANCE = 1e-6
#: Spec parameters that must equal the world's geometry when a spec declares them.
_GEOMETRY = {"pivot_height": PIVOT_HEIGHT, "rod_length": ROD_LENGTH, "light_distance": LIGHT_DISTANCE}


def plane_axis() -> np.ndarray:
    """Unit vector (3,) of the swing plane's horizontal axis p in world coordinates."""
    return np.array([math.cos(PLANE_AZIMUTH), math.sin(PLANE_AZIMUTH), 0.0])


def bob_centre(pendulum_angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bob's centre (p, z) in metres for angles (rad, float64 arrays) from the vertical."""
    t = np.asarray(pendulum_angle, dtype=np.float64)
    return ROD_LENGTH * np.sin(t), PIVOT_HEIGHT - ROD_LENGTH * np.cos(t)


def light_position(light_angle: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The light's position (p, z) in metres for angles (rad, float64 arrays) from the vertical above the pivot."""
    f = np.asarray(light_angle, dtype=np.float64)
    return LIGHT_DISTANCE * np.sin(f), PIVOT_HEIGHT + LIGHT_DISTANCE * np.cos(f)


def ground_shadow(light_p, light_z, p, z) -> np.ndarray:
    """Where on the ground (p, m) the ray from the light (light_p, light_z) through the point (p, z) lands.

    Central projection onto z=0: ``light_p + (p - light_p) light_z / (light_z - z)``. float64, broadcast.
    Raises ValueError where the point is not below the light (no shadow on the ground).
    """
    light_p, light_z, p, z = (np.asarray(x, dtype=np.float64) for x in (light_p, light_z, p, z))
    if np.any(light_z - z <= 0):
        raise ValueError("a point at or above the light casts no shadow on the ground")
    return light_p + (p - light_p) * light_z / (light_z - z)


def shadow_endpoints(pendulum_angle, light_angle) -> tuple[np.ndarray, np.ndarray]:
    """Shadows (p, m) of the pivot and of the bob's centre on the ground; float64 arrays of the inputs' shape."""
    sp, sz = light_position(light_angle)
    bp, bz = bob_centre(pendulum_angle)
    return ground_shadow(sp, sz, 0.0, PIVOT_HEIGHT), ground_shadow(sp, sz, bp, bz)


def shadow_length_position(pendulum_angle, light_angle) -> tuple[np.ndarray, np.ndarray]:
    """CausalVAE's shadow latents (m): the distance between the rod ends' shadows and their midpoint."""
    a, b = shadow_endpoints(pendulum_angle, light_angle)
    return np.abs(b - a), 0.5 * (a + b)


def _shadow_problems(world: World | None, batch: WorldBatch, simulation: Simulation | None = None) -> list[str]:
    """The ``shadow`` world check: each sample's stored shadow latents against the projection Cycles renders.

    Reads ``pendulum_angle``, ``light_angle`` and whichever of ``shadow_length``, ``shadow_position`` the
    batch holds ((n,) arrays, rad and m); recomputes them with :func:`shadow_length_position` and returns one
    line per sample where a stored value differs by more than :data:`SHADOW_TOLERANCE` (relative, and
    absolute in m), or where the angles cast no shadow on the ground. ``world`` and ``simulation`` are not
    read (a still image has no simulation). Returns [] when the batch stores no shadow latent.
    """
    lat = batch.latents
    stored = [name for name in SHADOW_LATENTS if name in lat]
    if not stored or "pendulum_angle" not in lat or "light_angle" not in lat:
        return []
    theta = np.asarray(lat["pendulum_angle"], dtype=np.float64)
    phi = np.asarray(lat["light_angle"], dtype=np.float64)
    _, sz = light_position(phi)
    _, bz = bob_centre(theta)
    castable = np.isfinite(theta) & np.isfinite(phi) & (sz > bz)
    expected = {name: np.full(theta.shape, np.nan) for name in SHADOW_LATENTS}
    if castable.any():
        length, position = shadow_length_position(theta[castable], phi[castable])
        expected["shadow_length"][castable], expected["shadow_position"][castable] = length, position
    values = {name: np.asarray(lat[name], dtype=np.float64) for name in stored}
    off = {name: ~np.isclose(values[name], expected[name], rtol=SHADOW_TOLERANCE, atol=SHADOW_TOLERANCE)
           for name in stored}
    problems = []
    for i in np.flatnonzero(~castable | np.logical_or.reduce(list(off.values()))):
        sample = int(batch.index[i])
        if not castable[i]:
            problems.append(f"sample {sample}: pendulum_angle {theta[i]:g} and light_angle {phi[i]:g} rad cast no "
                            "shadow on the ground (the light is not above the bob)")
            continue
        wrong = [f"{name} {values[name][i]:.6g} m, the rendered shadow's {expected[name][i]:.6g} m"
                 for name in stored if off[name][i]]
        problems.append(f"sample {sample}: stored {'; '.join(wrong)} (pendulum_angle {theta[i]:.6g}, light_angle "
                        f"{phi[i]:.6g} rad): the spec's shadow mechanism is not the central projection the light casts")
    return problems


def _shadow_mechanism_problems(spec) -> list[str]:
    """Spec lines for shadow latents that cannot equal the cast shadow: roots, noisy, or blind to an angle."""
    problems = []
    for name in SHADOW_LATENTS:
        var = spec.variables.get(name)
        if var is None:
            continue
        sources = [(f"variables.{name}", var.mechanism, var.noise is not None)]
        for dname, d in (spec.domains or {}).items():
            if name in d.overrides:
                sources.append((f"domains.{dname}.overrides.{name}", d.overrides[name], False))
            if name in d.noise:
                sources.append((f"domains.{dname}.noise.{name}", "", True))
        for where, mechanism, noisy in sources:
            if noisy:
                problems.append(f"{where}: static/pendulum casts {name} with the light, so it carries no noise; "
                                "remove the noise (and 'eps')")
            if mechanism is None:
                problems.append(f"{where}: static/pendulum casts {name} from pendulum_angle and light_angle; give it "
                                "a mechanism (the central projection, as in the catalogue's static/pendulum)")
            elif mechanism:
                missing = [a for a in ("pendulum_angle", "light_angle") if a not in parse_expression(mechanism).names]
                if missing:
                    problems.append(f"{where}: the cast {name} depends on pendulum_angle and light_angle; the "
                                    f"mechanism does not read {', '.join(missing)}")
    return problems


def _world(p: float, z: float) -> tuple[float, float, float]:
    u = plane_axis()
    return (float(u[0] * p), float(u[1] * p), float(z))


def _corners() -> np.ndarray:
    """World points (8, 3) of a box around everything drawable: light arc, pendulum, the shadow's reach."""
    th, ph = np.linspace(*ANGLE_RANGE, 41), np.linspace(*LIGHT_RANGE, 41)
    a, b = shadow_endpoints(th[:, None], ph[None, :])
    sp, sz = light_position(ph)
    reach = max(np.abs(a).max(), np.abs(b).max()) + 2.0 * BOB_RADIUS
    reach = max(reach, np.abs(sp).max() + BULB_RADIUS)
    top = sz.max() + BULB_RADIUS
    u, w = plane_axis(), np.array([-math.sin(PLANE_AZIMUTH), math.cos(PLANE_AZIMUTH), 0.0])
    half = 2.0 * BOB_RADIUS
    return np.array([u * q + w * r + np.array([0.0, 0.0, z]) for q in (-reach, reach) for r in (-half, half)
                     for z in (0.0, top)])


#: Aim point (m): the centre of the box around everything drawable; and that box's half-diagonal (m).
TARGET, SCENE_RADIUS = box_frame(_corners())
#: Default camera distance (m): light, pendulum and shadow stay inside the 40 degree view of each ring camera.
BASE_DISTANCE = fit_orbit_distance(_corners(), TARGET)


def _emissive_material(name: str, color_linear, strength: float):
    """A pure emission material that Cycles does not sample as a light (the point light inside does the lighting)."""
    bpy = bl.require_bpy()
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None or bpy.app.version < (5, 0, 0):
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    for node in list(nodes):
        if node.bl_idname != "ShaderNodeOutputMaterial":
            nodes.remove(node)
    out = next(n for n in nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    em = nodes.new("ShaderNodeEmission")
    em.inputs["Color"].default_value = (*tuple(color_linear)[:3], 1.0)
    em.inputs["Strength"].default_value = float(strength)
    links.new(em.outputs["Emission"], out.inputs["Surface"])
    mat.cycles.emission_sampling = "NONE"
    mat.diffuse_color = (*tuple(color_linear)[:3], 1.0)
    return mat


class PendulumWorld(BlenderStillWorld):
    """static/pendulum: see the module docstring."""

    info: ClassVar[WorldInfo] = still_info(
        name="static/pendulum",
        description=(
            "A pendulum at angle pendulum_angle under a point light at angle light_angle (CausalVAE's pendulum), "
            "casting its shadow onto the ground."
        ),
        latents=("pendulum_angle", "light_angle"),
        ranges=RANGES,
    )
    #: Framing and segmentation ids for the shared skeleton (:class:`BlenderStillWorld`).
    TARGET = TARGET
    BASE_DISTANCE = BASE_DISTANCE
    SCENE_RADIUS = SCENE_RADIUS
    SEGMENTATION_IDS = SEGMENTATION_IDS
    LANDMARK_IDS = (BOB_ID,)
    checks: ClassVar[tuple[WorldCheck, ...]] = (
        WorldCheck("shadow", "stored shadow_length and shadow_position equal the central projection of the "
                             f"pendulum from the light that Cycles renders (tolerance {SHADOW_TOLERANCE:g})",
                   _shadow_problems),
    )

    @classmethod
    def check(cls, spec) -> list[str]:
        """Refuse a spec whose geometry parameters (``pivot_height``, ``rod_length``, ``light_distance``) differ
        from the drawn ones, that intervenes on a shadow latent (the light casts the shadow; it is not drawn), or
        whose shadow latents are roots, carry noise, or have a mechanism (in ``variables`` or a domain's
        ``overrides``) that does not read both angles.

        Whether a mechanism computes the projection itself is not decided here (scenes does not evaluate
        expressions; the pipeline does): the world check ``shadow`` compares every stored sample.
        """
        problems = _shadow_mechanism_problems(spec)
        scopes = [("parameters", spec.parameters)] + [(f"domains.{n}.parameters", d.parameters)
                                                       for n, d in (spec.domains or {}).items()]
        for where, params in scopes:
            for name, value in _GEOMETRY.items():
                if name in params and not math.isclose(float(params[name]), value, rel_tol=1e-9):
                    problems.append(f"{where}.{name}: static/pendulum draws {name} = {value:g} m; got {params[name]:g}")
        for name in sorted(intervention_targets(spec) & set(SHADOW_LATENTS)):
            problems.append(f"interventions: static/pendulum cannot intervene on {name!r}: the light casts the shadow "
                            f"(intervene on pendulum_angle or light_angle)")
        return problems

    def _build(self) -> None:
        bpy = bl.require_bpy()
        bs, sc = self.bs, self.bs.scene
        own = bs.own
        own(bl.set_world_color(sc, bl.srgb_to_linear((0.55, 0.60, 0.68)), strength=0.35))

        ground_mat = own(bl.principled_material("ground", bl.srgb_to_linear((0.80, 0.78, 0.74)), roughness=0.9))
        ground_mesh = own(bl.disc_mesh("ground", segments=96))
        self.ground = own(bl.add_object(sc, "ground", ground_mesh, pass_index=GROUND_ID, material=ground_mat))
        self.ground.scale = (GROUND_RADIUS, GROUND_RADIUS, 1.0)

        dark = own(bl.principled_material("rod", bl.srgb_to_linear((0.22, 0.22, 0.25)), roughness=0.4, metallic=0.6))
        hub_mesh = own(bl.uv_sphere_mesh("hub", segments=24, rings=12))
        self.hub = own(bl.add_object(sc, "hub", hub_mesh, pass_index=ROD_ID, material=dark))
        self.hub.scale = (HUB_RADIUS,) * 3
        self.hub.location = _world(0.0, PIVOT_HEIGHT)
        rod_mesh = own(bl.cylinder_mesh("rod", segments=16))
        self.rod = own(bl.add_object(sc, "rod", rod_mesh, pass_index=ROD_ID, material=dark))
        self.rod.location = _world(0.0, PIVOT_HEIGHT)
        # the rod hangs along -z from the pivot: a unit cylinder (z in [0, 1]) turned upside down
        self.rod.scale = (ROD_RADIUS, ROD_RADIUS, ROD_LENGTH)

        bob_mat = own(bl.principled_material("bob", bl.srgb_to_linear((0.15, 0.35, 0.85)), roughness=0.35))
        bob_mesh = own(bl.uv_sphere_mesh("bob", segments=32, rings=16))
        self.bob = own(bl.add_object(sc, "bob", bob_mesh, pass_index=BOB_ID, material=bob_mat))
        self.bob.scale = (BOB_RADIUS,) * 3

        bulb_mat = own(_emissive_material("bulb", bl.srgb_to_linear((1.0, 0.85, 0.45)), strength=6.0))
        bulb_mesh = own(bl.uv_sphere_mesh("bulb", segments=24, rings=12))
        self.bulb = own(bl.add_object(sc, "bulb", bulb_mesh, pass_index=LIGHT_ID, material=bulb_mat))
        self.bulb.scale = (BULB_RADIUS,) * 3
        for ray in ("visible_diffuse", "visible_glossy", "visible_transmission", "visible_volume_scatter",
                    "visible_shadow"):
            setattr(self.bulb, ray, False)  # seen by the camera only: the point light inside it casts the shadows
        light = own(bpy.data.lights.new("lamp", "POINT"))
        light.energy = LIGHT_POWER
        light.shadow_soft_size = LIGHT_SIZE
        self.lamp = own(bpy.data.objects.new("lamp", light))
        sc.collection.objects.link(self.lamp)
        self.lamp.visible_camera = False

    def _pose(self, theta: float, phi: float) -> None:
        if (theta, phi) == self._state:
            return
        # turn the hanging rod (-z) by theta about the plane's normal, towards +p
        self.rod.rotation_euler = (0.0, math.pi - theta, PLANE_AZIMUTH)
        bp, bz = bob_centre(theta)
        self.bob.location = _world(float(bp), float(bz))
        sp, sz = light_position(phi)
        self.bulb.location = self.lamp.location = _world(float(sp), float(sz))
        self._state = (theta, phi)

    def _pose_sample(self, lat: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose sample ``i``; its landmark is the bob's centre."""
        theta, phi = float(lat["pendulum_angle"][i]), float(lat["light_angle"][i])
        self._pose(theta, phi)
        bp, bz = bob_centre(theta)
        return np.array([_world(float(bp), float(bz))]), np.array([(BOB_RADIUS, BOB_RADIUS)])
