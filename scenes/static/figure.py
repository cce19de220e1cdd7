"""static/figure: an articulated human figure standing in one of four rooms, rendered with Blender Cycles.

The benchmark's static "human figure in rooms" scene (retail shop, living room, modern
apartment, plain background wall). The figure is built from primitives - capsules for the
torso, head, upper arms, forearms and legs, boxes for the hands and shoes - and posed by forward
kinematics (a planar kinematic chain per arm, Craig, *Introduction to Robotics*, 3rd ed., ch. 3):

- both arms move in the body's frontal plane (the x-z plane; the figure faces -y). An angle
  of 0 hangs the segment straight down; positive angles lift it away from the body. The
  shoulder angle sets the upper arm, the elbow flexion is added for the forearm and the wrist
  angle for the hand (absolute forearm angle = shoulder + elbow; hand = shoulder + elbow + wrist);
- ``stride`` (rad) swings the left leg forward and the right leg back in the sagittal plane by
  the same angle; the pelvis sinks to ``LEG * cos(stride)`` so both feet stay on the floor;
- ``height`` scales the whole figure about its feet (stature ``STATURE * height`` metres);
- ``shirt_hue`` colours the torso and ``trousers_hue`` the legs and pelvis; every arm segment
  wears a fixed, saturated colour of its own (left: red, yellow, magenta; right: blue, orange,
  green; motion-capture style markers, so a probe can tell the two arms and their segments apart
  against any room);
- a sun lamp at ``light_azimuth`` (rad, 0 = in front of the figure, at -y; positive towards
  +x) and ``light_elevation`` (rad above the horizon) with strength ``light_intensity``
  (W/m^2) lights the room; the figure casts its shadow on the floor, pointing away from the
  sun, of length ``height_of_point / tan(light_elevation)`` for each point of the figure
  (a point light at infinity projects along the sun direction onto the plane z=0);
- ``room`` (a categorical code into :data:`ROOMS`) shows one room's floor, walls and furniture.

Cameras: orbit, fixed and top-down around the figure (aim point ``TARGET``, default distance
``BASE_DISTANCE``). Instance ids: 1 floor, 2 walls, 3 furniture, 4 torso (and pelvis), 5 head,
6 left upper arm, 7 left forearm, 8 left hand, 9 right upper arm, 10 right forearm, 11 right
hand, 12 left leg (and shoe), 13 right leg (and shoe).
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from ..base import WorldBatch, WorldInfo
from ..engines import blender as bl
from ._blender_world import BlenderStillWorld, derived_latent_check, still_info
from . import _figure_rooms as rooms

ROOMS = rooms.ROOMS

#: Body dimensions (m) at height = 1: leg (hip joint to sole), pelvis to shoulder line, shoulder
#: line to the head's centre, head radius; half the shoulder and hip widths.
LEG = 0.88
TRUNK = 0.5
NECK = 0.2
HEAD_RADIUS = 0.12
NECK_RADIUS = 0.06
SHOULDER_HALF = 0.24
HIP_HALF = 0.1
#: Stature (m) at height = 1 standing straight: sole to crown.
STATURE = LEG + TRUNK + NECK + HEAD_RADIUS
#: Segment lengths (m, joint to joint) and radii (m); the hand is a box (half extents, m)
#: hanging from the wrist.
UPPER_ARM, FOREARM = 0.30, 0.27
UPPER_ARM_RADIUS, FOREARM_RADIUS = 0.085, 0.08
HAND_HALF = (0.06, 0.03, 0.24)
LEG_RADIUS = 0.08
TORSO_RADII = (0.2, 0.12)
#: Fixed colours (sRGB) of the arm segments: left upper arm, forearm, hand; right upper arm, forearm, hand.
ARM_COLORS = ((0.85, 0.12, 0.1), (1.0, 0.8, 0.1), (0.85, 0.1, 0.85),
              (0.1, 0.25, 0.9), (1.0, 0.5, 0.0), (0.1, 0.75, 0.15))
SKIN = (0.87, 0.66, 0.52)
SHOE = (0.18, 0.12, 0.08)
#: Camera framing: aim point (m), default distance (m) and the scene's radius (m, clip planes).
TARGET = (0.0, 0.0, 1.2)
BASE_DISTANCE = 3.6
SCENE_RADIUS = rooms.HALF * 1.5
#: Ambient sky light (the world colour's strength) that keeps the shadow side readable.
AMBIENT = 0.35

#: Valid range of every latent the world reads (radians for angles, W/m^2 for the sun).
RANGES = {
    "height": (0.8, 1.2),
    "shoulder_l": (0.0, 2.0), "elbow_l": (0.0, 2.4), "wrist_l": (-1.9, 1.1),
    "shoulder_r": (0.0, 2.0), "elbow_r": (0.0, 2.4), "wrist_r": (-1.9, 1.1),
    "stride": (0.0, 0.7),
    "shirt_hue": (0.0, 1.0), "trousers_hue": (0.0, 1.0),
    "light_azimuth": (-math.pi, math.pi), "light_elevation": (0.5, 1.4), "light_intensity": (0.5, 8.0),
    "room": (0.0, float(len(ROOMS) - 1)),
}
LATENTS = tuple(RANGES)

FLOOR_ID, WALL_ID, FURNITURE_ID = rooms.FLOOR_ID, rooms.WALL_ID, rooms.FURNITURE_ID
TORSO_ID, HEAD_ID = 4, 5
UPPER_ARM_L_ID, FOREARM_L_ID, HAND_L_ID = 6, 7, 8
UPPER_ARM_R_ID, FOREARM_R_ID, HAND_R_ID = 9, 10, 11
LEG_L_ID, LEG_R_ID = 12, 13
FIGURE_IDS = tuple(range(TORSO_ID, LEG_R_ID + 1))
SEGMENTATION_IDS = {
    0: "background", FLOOR_ID: "floor", WALL_ID: "walls", FURNITURE_ID: "furniture", TORSO_ID: "torso",
    HEAD_ID: "head", UPPER_ARM_L_ID: "left upper arm", FOREARM_L_ID: "left forearm", HAND_L_ID: "left hand",
    UPPER_ARM_R_ID: "right upper arm", FOREARM_R_ID: "right forearm", HAND_R_ID: "right hand",
    LEG_L_ID: "left leg", LEG_R_ID: "right leg",
}


def _rot_y(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_x(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _arm_dir(side: int, angle: float) -> np.ndarray:
    """Unit direction (x, y, z) of an arm segment at ``angle`` (rad from hanging down) on ``side`` (+1 left, -1 right)."""
    return np.array([side * math.sin(angle), 0.0, -math.cos(angle)])


def forward_kinematics(height: float, shoulder_l: float, elbow_l: float, wrist_l: float, shoulder_r: float,
                       elbow_r: float, wrist_r: float, stride: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Pose of every body segment: name -> (joint position (3,) m, rotation (3, 3)) in world space.

    Each segment's mesh hangs from its joint along local -z; the rotation turns local -z onto
    the segment's direction. Angles in radians (see the module docstring), ``height`` the
    dimensionless body scale. Segments: torso (from the pelvis, pointing up), head (its centre),
    upper_arm_l/forearm_l/hand_l, upper_arm_r/forearm_r/hand_r, leg_l, leg_r (from the hip joints).
    """
    h = float(height)
    pelvis_z = LEG * math.cos(stride)
    shoulder_z = pelvis_z + TRUNK
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {
        "torso": (h * np.array([0.0, 0.0, pelvis_z]), _rot_x(math.pi)),  # hangs "up" from the pelvis
        "head": (h * np.array([0.0, 0.0, shoulder_z + NECK]), np.eye(3)),
        "leg_l": (h * np.array([HIP_HALF, 0.0, pelvis_z]), _rot_x(-stride)),  # forward: towards -y
        "leg_r": (h * np.array([-HIP_HALF, 0.0, pelvis_z]), _rot_x(stride)),
    }
    for side, tag, (s, e, w) in ((1, "l", (shoulder_l, elbow_l, wrist_l)), (-1, "r", (shoulder_r, elbow_r, wrist_r))):
        shoulder = np.array([side * SHOULDER_HALF, 0.0, shoulder_z])
        elbow = shoulder + UPPER_ARM * _arm_dir(side, s)
        wrist = elbow + FOREARM * _arm_dir(side, s + e)
        out[f"upper_arm_{tag}"] = (h * shoulder, _rot_y(-side * s))
        out[f"forearm_{tag}"] = (h * elbow, _rot_y(-side * (s + e)))
        out[f"hand_{tag}"] = (h * wrist, _rot_y(-side * (s + e + w)))
    return out


def hand_centre(height: float, side: int, shoulder: float, elbow: float, wrist: float, stride: float) -> np.ndarray:
    """World position (m) of a hand's centre (the middle of its box), (3,) float64; ``side`` +1 left, -1 right."""
    tag = "l" if side == 1 else "r"
    angles = {"shoulder_l": 0.5, "elbow_l": 0.0, "wrist_l": 0.0, "shoulder_r": 0.5, "elbow_r": 0.0, "wrist_r": 0.0}
    angles.update({f"shoulder_{tag}": shoulder, f"elbow_{tag}": elbow, f"wrist_{tag}": wrist})
    joint, rot = forward_kinematics(height, stride=stride, **angles)[f"hand_{tag}"]
    return joint + rot @ np.array([0.0, 0.0, -float(height) * HAND_HALF[2]])


def shadow_length(height: float, stride: float, light_elevation: float) -> float:
    """Length (m) of the crown's shadow on the floor, from the point below it: the crown's height
    (``height * (LEG cos(stride) + TRUNK + NECK + HEAD_RADIUS)``) over tan(elevation) - the
    projection of a point along the sun's parallel rays onto the plane z=0."""
    top = float(height) * (LEG * math.cos(stride) + TRUNK + NECK + HEAD_RADIUS)
    return top / math.tan(light_elevation)


def sun_direction(azimuth: float, elevation: float) -> np.ndarray:
    """Unit vector (3,) from the scene towards the sun (azimuth 0 = -y, the figure's front; positive towards +x)."""
    return np.array([math.cos(elevation) * math.sin(azimuth), -math.cos(elevation) * math.cos(azimuth),
                     math.sin(elevation)])


def _scaled(data, radius: float):
    """Mesh data with x and y scaled by ``radius`` (a unit cylinder made thin)."""
    verts, faces, smooth = data
    return [(radius * x, radius * y, z) for x, y, z in verts], faces, smooth


def _matrix(joint: np.ndarray, rot: np.ndarray, scale: float) -> list[list[float]]:
    m = np.eye(4)
    m[:3, :3] = rot * scale
    m[:3, 3] = joint
    return [[float(x) for x in row] for row in m]


class FigureWorld(BlenderStillWorld):
    """static/figure: see the module docstring."""

    checks: ClassVar = (derived_latent_check("shadow_length", ("height", "stride", "light_elevation"),
                                             np.vectorize(shadow_length, otypes=[float]), unit="m",
                                             what="the crown's shadow along the sun's rays"),)

    info: ClassVar[WorldInfo] = still_info(
        name="static/figure",
        description=(
            "An articulated human figure (shoulder, elbow and wrist angles per arm, stride, body height, shirt "
            "and trousers hues) standing in a room (shop, living room, apartment or plain wall), lit by a sun "
            "at an azimuth, elevation and intensity that casts the figure's shadow on the floor."
        ),
        latents=LATENTS,
        ranges=RANGES,
        discrete=("room",),
    )
    #: Framing and segmentation ids for the shared skeleton (:class:`BlenderStillWorld`).
    TARGET = TARGET
    BASE_DISTANCE = BASE_DISTANCE
    SCENE_RADIUS = SCENE_RADIUS
    SEGMENTATION_IDS = SEGMENTATION_IDS
    LANDMARK_IDS = (HEAD_ID, TORSO_ID, HAND_L_ID)

    def _build(self) -> None:
        bs, sc = self.bs, self.bs.scene
        own = bs.own
        own(bl.set_world_color(sc, bl.srgb_to_linear((0.75, 0.8, 0.9)), strength=AMBIENT))
        self.sun = own(bl.add_sun(sc, "sun", direction_to=(0.0, -1.0, 1.0), strength=3.0, angle_deg=2.0))
        own(self.sun.data)
        self.rooms = rooms.RoomBuilder(bs).build()

        def part(name, data, pid, material):
            mesh = own(bl.mesh_from_data(f"figure.{name}", *data))
            return own(bl.add_object(sc, f"figure.{name}", mesh, pass_index=pid, material=material))

        def fixed(name, rgb, roughness=0.6):
            return own(bl.principled_material(f"figure.{name}", bl.srgb_to_linear(rgb), roughness=roughness))

        self.shirt = own(bl.object_color_material("figure.shirt", roughness=0.8))
        self.trousers = own(bl.object_color_material("figure.trousers", roughness=0.8))
        skin, shoe = fixed("skin", SKIN, 0.5), fixed("shoe", SHOE, 0.4)
        self.parts: dict[str, list] = {}
        self.parts["torso"] = [part("torso", rooms.capsule_data(*TORSO_RADII, TRUNK - 0.1), TORSO_ID, self.shirt),
                               part("pelvis", rooms.boxes_data([((0.0, 0.0, 0.02), (0.17, 0.11, 0.1))]), TORSO_ID,
                                    self.trousers)]
        self.parts["head"] = [part("head", bl.uv_sphere_data(24, 12), HEAD_ID, skin),
                              part("neck", _scaled(bl.cylinder_data(12, False, (-NECK, 0.0)), NECK_RADIUS), HEAD_ID, skin)]
        self.parts["head"][0].scale = (HEAD_RADIUS,) * 3
        for side, tag in ((0, "l"), (3, "r")):
            ua, fa, hd = (fixed(f"{n}_{tag}", ARM_COLORS[side + k]) for k, n in enumerate(("upper_arm", "forearm", "hand")))
            ids = (UPPER_ARM_L_ID, FOREARM_L_ID, HAND_L_ID) if tag == "l" else (UPPER_ARM_R_ID, FOREARM_R_ID, HAND_R_ID)
            self.parts[f"upper_arm_{tag}"] = [part(f"upper_arm_{tag}", rooms.capsule_data(
                UPPER_ARM_RADIUS, UPPER_ARM_RADIUS, UPPER_ARM), ids[0], ua)]
            self.parts[f"forearm_{tag}"] = [part(f"forearm_{tag}", rooms.capsule_data(
                FOREARM_RADIUS, FOREARM_RADIUS, FOREARM), ids[1], fa)]
            self.parts[f"hand_{tag}"] = [part(f"hand_{tag}", rooms.boxes_data([((0.0, 0.0, -HAND_HALF[2]), HAND_HALF)]),
                                              ids[2], hd)]
            leg_id = LEG_L_ID if tag == "l" else LEG_R_ID
            self.parts[f"leg_{tag}"] = [
                part(f"leg_{tag}", rooms.capsule_data(LEG_RADIUS, LEG_RADIUS, LEG - 0.08 - LEG_RADIUS), leg_id, self.trousers),
                part(f"shoe_{tag}", rooms.boxes_data([((0.0, -0.06, -LEG + 0.04), (0.07, 0.14, 0.04))]), leg_id, shoe),
            ]

    def _pose(self, v: dict[str, float]) -> None:
        state = tuple(v[k] for k in LATENTS)
        if state == self._state:
            return
        fk = forward_kinematics(v["height"], v["shoulder_l"], v["elbow_l"], v["wrist_l"], v["shoulder_r"],
                                v["elbow_r"], v["wrist_r"], v["stride"])
        bl.require_bpy()
        from mathutils import Matrix  # noqa: PLC0415 - ships with bpy

        for name, objs in self.parts.items():
            joint, rot = fk[name]
            scale = v["height"] * (HEAD_RADIUS if name == "head" else 1.0)
            objs[0].matrix_world = Matrix(_matrix(joint, rot, scale))
            for extra in objs[1:]:
                extra.matrix_world = Matrix(_matrix(joint, rot, v["height"]))
        bl.set_object_color(self.parts["torso"][0], bl.hsv_to_linear_rgb(v["shirt_hue"], 0.75, 0.8))
        trousers = bl.hsv_to_linear_rgb(v["trousers_hue"], 0.6, 0.45)
        for obj in (self.parts["torso"][1], self.parts["leg_l"][0], self.parts["leg_r"][0]):
            bl.set_object_color(obj, trousers)
        d = sun_direction(v["light_azimuth"], v["light_elevation"])
        self.sun.location = tuple(float(x) for x in 10.0 * d)
        bl.look_at(self.sun, (0.0, 0.0, 0.0))
        self.sun.data.energy = float(v["light_intensity"])
        rooms.show_room(self.rooms, ROOMS[int(round(v["room"]))])
        self._state = state

    def _read_latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        """The batch's latents (see :meth:`BlenderStillWorld._read_latents`); raises ValueError also where
        ``room`` holds a value that is not an integer code into :data:`ROOMS`."""
        lat = super()._read_latents(batch)
        bad = lat["room"][lat["room"] != np.round(lat["room"])]
        if bad.size:
            raise ValueError(f"'room' must be an integer code into {ROOMS}, got {bad[0]:g}")
        return lat

    def _pose_sample(self, lat: dict[str, np.ndarray], i: int) -> tuple[np.ndarray, np.ndarray]:
        """Pose sample ``i``; its landmarks are the head's centre, the torso's and the left hand's."""
        v = {k: float(lat[k][i]) for k in LATENTS}
        self._pose(v)
        h = v["height"]
        head = h * np.array([0.0, 0.0, LEG * math.cos(v["stride"]) + TRUNK + NECK])
        torso = h * np.array([0.0, 0.0, LEG * math.cos(v["stride"]) + 0.5 * TRUNK])
        hand = hand_centre(h, 1, v["shoulder_l"], v["elbow_l"], v["wrist_l"], v["stride"])
        radius = np.array([(h * HEAD_RADIUS, h * HEAD_RADIUS), (h * TORSO_RADII[1], h * 0.35),
                           (h * HAND_HALF[1], h * math.hypot(*HAND_HALF))])
        return np.array([head, torso, hand]), radius
