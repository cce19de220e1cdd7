"""static/slope: a ball rolls down a rough incline and comes to rest on the floor, rendered with Blender Cycles.

The benchmark's "ball on slope" scene. A solid ball is released with speed ``v0`` at the
top of an incline of length ``L`` (:data:`SLOPE_LENGTH`) and angle ``theta``; slope and
floor are one surface whose roughness sets its rolling-resistance coefficient ``mu``. The
ball rolls without slipping (a solid sphere, I = 2/5 m r^2, so its kinetic energy is
7/10 m v^2) against rolling resistance F = mu N (Coulomb's form, the resistance
proportional to the normal force N). The work-energy theorem gives (textbook rolling
motion, e.g. Halliday, Resnick & Walker, *Fundamentals of Physics*, ch. 11):

- friction (the resisting deceleration on the incline, m/s^2): ``friction = mu g cos(theta)``;
- speed at the foot of the slope: ``v_b = sqrt(v0^2 + 10/7 L (g sin(theta) - friction))``;
- stopping distance on the flat floor: ``s = v_b^2 / (10/7 mu g)``.

The foot of the slope is taken as a lossless transition (no impact), and ``s`` is the
distance from the foot to where the ball touches the floor at rest. The catalogue spec
(``static/slope``) writes these equations as its mechanisms; this world draws only what
an image of the end state shows, and raises (never clamps) outside :data:`RANGES`:

- ``theta``: the ramp, a wedge of hypotenuse ``SLOPE_LENGTH`` rising at ``theta``;
- ``mu``: the surface of ramp and floor - its colour runs from a pale, polished blue-grey
  (smooth, low mu) to a dark, sandy brown (rough, high mu) over ``MU_RANGE``, and its bump
  relief, speckle and shader roughness grow with it;
- ``s``: the red ball, resting on the floor ``s`` metres past the foot of the slope.

The run-out lies along the horizontal diagonal (45 degrees azimuth), so every camera of the
default four-view ring sees it obliquely and the whole course stays in frame in each.
Cameras: orbit, fixed and top-down. Instance ids: 1 floor (the run-out), 2 slope (the ramp),
3 ball.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..base import WorldInfo
from ..cameras import box_frame, fit_orbit_distance
from ..engines import blender as bl
from ._blender_world import BlenderStillWorld, intervention_targets, still_info

#: Length of the incline along its surface (m); a spec's parameter ``L`` must equal it.
SLOPE_LENGTH = 0.3
#: Ball radius (m): a solid sphere, so the radius does not enter the rolling equations.
BALL_RADIUS = 0.075
#: Width of ramp and floor across the run (m).
TRACK_WIDTH = 0.4
#: Valid slope angles (rad): the frame holds the ramp from 25 to 50 degrees.
THETA_RANGE = (math.radians(25.0), math.radians(50.0))
#: Rolling-resistance coefficients the surface's look is graded over (smooth to rough).
MU_RANGE = (0.2, 0.6)
#: Stopping distances (m) the floor and the frame hold.
S_RANGE = (0.0, 1.6)
#: Azimuth of the run-out direction (rad): the diagonal between the ring cameras.
RUN_AZIMUTH = math.radians(45.0)
#: Floor extent along the run (m), from behind the lowest ramp's top to past the longest run-out.
FLOOR_RANGE = (-SLOPE_LENGTH * math.cos(THETA_RANGE[0]) - 0.06, S_RANGE[1] + 2.0 * BALL_RADIUS + 0.04)
FLOOR_THICKNESS = 0.02
SUN_STRENGTH = 3.5

#: Surface colours (sRGB) at the smooth and the rough end of ``MU_RANGE``.
_SMOOTH_SRGB, _ROUGH_SRGB = (0.80, 0.85, 0.92), (0.40, 0.27, 0.14)

RANGES = {"theta": THETA_RANGE, "mu": MU_RANGE, "s": S_RANGE}

FLOOR_ID, SLOPE_ID, BALL_ID = 1, 2, 3
SEGMENTATION_IDS = {0: "background", FLOOR_ID: "floor (run-out)", SLOPE_ID: "slope (ramp)", BALL_ID: "ball"}

#: Latents whose values only physics sets in this scene; intervening on them would store a value no image shows.
_DERIVED = ("friction", "v_b")


def _run_axes() -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors (3,) along the run-out and across it, in world coordinates."""
    c, s = math.cos(RUN_AZIMUTH), math.sin(RUN_AZIMUTH)
    return np.array([c, s, 0.0]), np.array([-s, c, 0.0])


def _corners() -> np.ndarray:
    """World points (8, 3) of a box around every drawable configuration (floor, the steepest ramp, the ball)."""
    u, w = _run_axes()
    top = max(SLOPE_LENGTH * math.sin(THETA_RANGE[1]), 2.0 * BALL_RADIUS)
    return np.array([u * a + w * b + np.array([0.0, 0.0, z]) for a in FLOOR_RANGE
                     for b in (-0.5 * TRACK_WIDTH, 0.5 * TRACK_WIDTH) for z in (-FLOOR_THICKNESS, top)])


#: Aim point (m): the centre of the box around everything drawable; and that box's half-diagonal (m).
TARGET, SCENE_RADIUS = box_frame(_corners())
#: Default camera distance (m): the whole course stays inside the default 40 degree view of each ring camera.
BASE_DISTANCE = fit_orbit_distance(_corners(), TARGET)


def speed_at_bottom(v0: np.ndarray, theta: np.ndarray, mu: np.ndarray, g: float = 9.81,
                    length: float = SLOPE_LENGTH) -> np.ndarray:
    """Speed (m/s) at the foot of the slope of a solid ball rolling down it (float64 arrays, broadcast).

    ``v_b = sqrt(v0^2 + 10/7 L g (sin theta - mu cos theta))`` (work-energy theorem for a rolling
    solid sphere against rolling resistance mu N). Raises ValueError where the ball stops on the
    slope (the radicand is negative): a stuck ball never reaches the floor and has no ``v_b``.
    """
    v0, theta, mu = (np.asarray(x, dtype=np.float64) for x in (v0, theta, mu))
    sq = v0**2 + (10.0 / 7.0) * length * g * (np.sin(theta) - mu * np.cos(theta))
    if np.any(sq < 0):
        raise ValueError("the ball stops on the slope (v0^2 + 10/7 L g (sin theta - mu cos theta) < 0) for some samples")
    return np.sqrt(sq)


def stopping_distance(v_b: np.ndarray, mu: np.ndarray, g: float = 9.81) -> np.ndarray:
    """Distance (m) a solid ball rolling at ``v_b`` (m/s) covers on a flat floor of rolling resistance ``mu``.

    ``s = v_b^2 / (10/7 mu g)`` (its kinetic energy 7/10 m v_b^2 spent against mu m g). float64, broadcast.
    """
    v_b, mu = np.asarray(v_b, dtype=np.float64), np.asarray(mu, dtype=np.float64)
    return v_b**2 / ((10.0 / 7.0) * mu * g)


def surface_color(mu: float) -> tuple[float, float, float]:
    """Linear RGB of the surface with rolling-resistance coefficient ``mu`` (in ``MU_RANGE``): smooth pale blue-grey
    to rough dark brown."""
    t = (float(mu) - MU_RANGE[0]) / (MU_RANGE[1] - MU_RANGE[0])
    return bl.srgb_to_linear(tuple(a + t * (b - a) for a, b in zip(_SMOOTH_SRGB, _ROUGH_SRGB)))


def ball_position(s: float) -> np.ndarray:
    """World position (m, (3,)) of the centre of a ball at rest ``s`` metres past the foot of the slope."""
    u, _ = _run_axes()
    return u * float(s) + np.array([0.0, 0.0, BALL_RADIUS])


def _wedge_mesh(name: str):
    """A unit wedge in run coordinates: a from -1 (back) to 0 (foot), across from -0.5 to 0.5, rising to z=1 at
    the back; its sloped face is the hypotenuse. Scale it by (L cos theta, width, L sin theta)."""
    verts = [(-1.0, -0.5, 0.0), (0.0, -0.5, 0.0), (-1.0, -0.5, 1.0), (-1.0, 0.5, 0.0), (0.0, 0.5, 0.0), (-1.0, 0.5, 1.0)]
    faces = [(0, 2, 1), (3, 4, 5), (0, 1, 4, 3), (0, 3, 5, 2), (1, 2, 5, 4)]
    return bl.mesh_from_data(name, verts, faces)


def _surface_material(name: str):
    """The rough surface: base colour from the object's colour, roughness t in [0, 1] from its alpha, which scales
    the bump relief and speckle of a fine noise texture (world-space, so scaling the ramp does not stretch it)."""
    mat = bl.principled_material(name, roughness=0.5)
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    info = nodes.new("ShaderNodeObjectInfo")
    geo = nodes.new("ShaderNodeNewGeometry")
    noise = nodes.new("ShaderNodeTexNoise")
    noise.inputs["Scale"].default_value = 45.0
    noise.inputs["Detail"].default_value = 3.0
    links.new(geo.outputs["Position"], noise.inputs["Vector"])
    # speckle: colour * (1 + 1.2 t (noise - 0.5))
    centred = nodes.new("ShaderNodeMath")
    centred.operation = "SUBTRACT"
    links.new(noise.outputs["Factor"], centred.inputs[0])
    centred.inputs[1].default_value = 0.5
    amp = nodes.new("ShaderNodeMath")
    amp.operation = "MULTIPLY"
    links.new(centred.outputs[0], amp.inputs[0])
    links.new(info.outputs["Alpha"], amp.inputs[1])
    gain = nodes.new("ShaderNodeMath")
    gain.operation = "MULTIPLY_ADD"
    links.new(amp.outputs[0], gain.inputs[0])
    gain.inputs[1].default_value = 1.2
    gain.inputs[2].default_value = 1.0
    tint = nodes.new("ShaderNodeVectorMath")
    tint.operation = "SCALE"
    links.new(info.outputs["Color"], tint.inputs[0])
    links.new(gain.outputs[0], tint.inputs["Scale"])
    links.new(tint.outputs[0], bsdf.inputs["Base Color"])
    # shader roughness 0.25 + 0.7 t
    rough = nodes.new("ShaderNodeMath")
    rough.operation = "MULTIPLY_ADD"
    links.new(info.outputs["Alpha"], rough.inputs[0])
    rough.inputs[1].default_value = 0.7
    rough.inputs[2].default_value = 0.25
    links.new(rough.outputs[0], bsdf.inputs["Roughness"])
    # bump relief: strength t
    bump = nodes.new("ShaderNodeBump")
    bump.inputs["Distance"].default_value = 0.01
    links.new(noise.outputs["Factor"], bump.inputs["Height"])
    links.new(info.outputs["Alpha"], bump.inputs["Strength"])
    links.new(bump.outputs["Normal"], bsdf.inputs["Normal"])
    return mat


def _set_surface(obj, mu: float) -> None:
    t = (float(mu) - MU_RANGE[0]) / (MU_RANGE[1] - MU_RANGE[0])
    obj.color = (*surface_color(mu), t)


class SlopeWorld(BlenderStillWorld):
    """static/slope: see the module docstring."""

    info: ClassVar[WorldInfo] = still_info(
        name="static/slope",
        description=(
            "A solid ball rolls down an incline of angle theta whose surface has rolling-resistance coefficient mu "
            "(its roughness) and comes to rest on the floor s metres past the foot of the slope."
        ),
        latents=("theta", "mu", "s"),
        ranges=RANGES,
    )
    #: Framing and segmentation ids for the shared skeleton (:class:`BlenderStillWorld`).
    TARGET = TARGET
    BASE_DISTANCE = BASE_DISTANCE
    SCENE_RADIUS = SCENE_RADIUS
    SEGMENTATION_IDS = SEGMENTATION_IDS
    LANDMARK_IDS = (BALL_ID,)

    @classmethod
    def check(cls, spec) -> list[str]:
        """A spec whose slope length differs from the drawn one, or that intervenes on a latent only physics sets
        here (``friction``, ``v_b``: the image shows s, theta and mu, never these directly), is refused."""
        problems = []
        lengths = {"parameters.L": spec.parameters.get("L")}
        lengths.update({f"domains.{n}.parameters.L": d.parameters.get("L") for n, d in (spec.domains or {}).items()})
        for path, value in lengths.items():
            if value is not None and not math.isclose(float(value), SLOPE_LENGTH, rel_tol=1e-9):
                problems.append(f"{path}: static/slope draws an incline of length {SLOPE_LENGTH:g} m; got {value:g}")
        for name in sorted(intervention_targets(spec) & set(_DERIVED)):
            problems.append(f"interventions: static/slope cannot show an intervention on {name!r} (only its effect "
                            f"on s is drawn); intervene on its causes or on s instead")
        return problems

    def _build(self) -> None:
        bs, sc = self.bs, self.bs.scene
        own = bs.own
        own(bl.set_world_color(sc, bl.srgb_to_linear((0.80, 0.84, 0.90)), strength=0.7))
        self.sun = own(bl.add_sun(sc, "sun", direction_to=(0.6, -0.9, 1.6), strength=SUN_STRENGTH, angle_deg=6.0))
        own(self.sun.data)
        u, _ = _run_axes()

        surface = own(_surface_material("surface"))
        floor_mesh = own(bl.box_mesh("floor"))
        self.floor = own(bl.add_object(sc, "floor", floor_mesh, pass_index=FLOOR_ID, material=surface))
        a0, a1 = FLOOR_RANGE
        mid = 0.5 * (a0 + a1)
        self.floor.location = (float(u[0] * mid), float(u[1] * mid), -0.5 * FLOOR_THICKNESS)
        self.floor.scale = (0.5 * (a1 - a0), 0.5 * TRACK_WIDTH, 0.5 * FLOOR_THICKNESS)
        self.floor.rotation_euler = (0.0, 0.0, RUN_AZIMUTH)

        ramp_mesh = own(_wedge_mesh("ramp"))
        self.ramp = own(bl.add_object(sc, "ramp", ramp_mesh, pass_index=SLOPE_ID, material=surface))
        self.ramp.rotation_euler = (0.0, 0.0, RUN_AZIMUTH)

        ball_mat = own(bl.principled_material("ball", bl.srgb_to_linear((0.86, 0.10, 0.06)), roughness=0.35))
        ball_mesh = own(bl.uv_sphere_mesh("ball", segments=32, rings=16))
        self.ball = own(bl.add_object(sc, "ball", ball_mesh, pass_index=BALL_ID, material=ball_mat))
        self.ball.scale = (BALL_RADIUS, BALL_RADIUS, BALL_RADIUS)

    def _pose(self, theta: float, mu: float, s: float) -> None:
        state = (theta, mu, s)
        if state == self._state:
            return
        self.ramp.scale = (SLOPE_LENGTH * math.cos(theta), TRACK_WIDTH, SLOPE_LENGTH * math.sin(theta))
        for obj in (self.ramp, self.floor):
            _set_surface(obj, mu)
        self.ball.location = tuple(float(x) for x in ball_position(s))
        self._state = state

    def _pose_sample(self, lat: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose sample ``i``; its landmark is the ball's centre."""
        theta, mu, s = (float(lat[name][i]) for name in ("theta", "mu", "s"))
        self._pose(theta, mu, s)
        return ball_position(s)[None], np.array([(BALL_RADIUS, BALL_RADIUS)])
