"""The pure mapping from a traffic spec's latents to CARLA 0.9.16 objects and back, without a server.

Every function here is deterministic and reads no global state. Functions that build ``carla``
objects take the imported ``carla`` module as their first argument (``carla`` is imported lazily
by :mod:`.carla_world`, never at crlgen's import); everything else is numpy.

Frames. CARLA (Unreal Engine 4) uses a left-handed world frame: x forward, y right, z up, metres,
rotations (pitch, yaw, roll) in degrees with :meth:`carla.Transform.get_matrix`'s convention
(LibCarla ``geom/Transform.h``). crlgen's map frame is right-handed, z up (:mod:`crlgen.scenes.cameras`):
a CARLA point ``(x, y, z)`` is the map point ``(x, -y, z)`` (the mirror ``S = diag(1, -1, 1)``), so a
CARLA pose ``M`` (4x4, body to world) is the map pose ``S M S`` and a yaw of ``psi`` degrees is the
heading ``-radians(psi)``. A CARLA camera looks along its own +x with y right and z up; in OpenCV's
axes (x right, y down, z forward) that is ``C`` (:data:`CV_TO_UE`): ``camera_to_world = S M C``.

Weather (:func:`weather`), stated choices, not calibrated against CARLA's renderer (no server here):

- ``weather.fog`` is the meteorological visibility ``V`` (m). Koschmieder's law gives the extinction
  coefficient ``beta = 3.912 / V`` (Middleton, *Vision through the atmosphere*, 1952); CARLA's
  ``fog_density`` (0..100, Unreal's exponential height fog) is taken proportional to ``beta``, with the
  densest fog (100) at ``V = FOG_VISIBILITY_MIN`` m; ``fog_distance`` 0 (fog starts at the camera),
  ``fog_falloff`` 0.1 (CARLA's presets).
- ``weather.rain`` ``r`` in [0, 1]: ``precipitation``, ``precipitation_deposits`` (puddles), ``wetness``
  and ``cloudiness`` all ``100 r``.
- ``weather.sun`` is the daylight ``D`` in [0, 1] (as in the embedded dashcam): the sun's altitude is
  ``asin(2 D - 1)`` (-90 deg at D = 0, the horizon at 0.5, the zenith at 1).

Traffic Manager (:func:`tm_settings`): ``vehicle[i].desired_speed`` (m/s) -> ``set_desired_speed``
(km/h: the TM drives that speed whatever the road's limit, so the latent is what the car aims for;
``vehicle_percentage_speed_difference`` would be relative to each road's limit); ``time_headway`` T (s)
-> ``distance_to_leading_vehicle`` = T x desired speed (m: the gap an IDM driver keeps at its desired
speed, Treiber et al. 2000); ``aggressiveness`` a -> random left and right lane changes ``100 a`` %;
``ignore_lights`` p -> ``ignore_lights_percentage`` ``100 p``. CARLA's TM has no reaction time, so
``vehicle[i].reaction_time`` is not read.
"""

from __future__ import annotations

import colorsys
import math
from typing import Any, Mapping, Sequence

import numpy as np

#: ``parameters.town`` -> CARLA map (layered ``_Opt`` maps where CARLA 0.9.16's base package has one).
TOWNS: dict[int, str] = {1: "Town01_Opt", 2: "Town02_Opt", 3: "Town03_Opt", 4: "Town04_Opt", 5: "Town05_Opt",
                         6: "Town06", 7: "Town07", 10: "Town10HD_Opt"}

#: Passenger-car blueprints whose ``color`` attribute is modifiable (CARLA's vehicle catalogue,
#: ``Docs/catalogue_vehicles.md`` and ``Docs/bp_library.md``); ``vehicle[i].model`` in [0, 1) picks one.
CARS: tuple[str, ...] = (
    "vehicle.tesla.model3", "vehicle.audi.a2", "vehicle.audi.tt", "vehicle.bmw.grandtourer", "vehicle.chevrolet.impala",
    "vehicle.citroen.c3", "vehicle.ford.mustang", "vehicle.lincoln.mkz_2017", "vehicle.mercedes.coupe",
    "vehicle.mini.cooper_s", "vehicle.nissan.micra", "vehicle.nissan.patrol", "vehicle.seat.leon", "vehicle.toyota.prius",
)
#: Pedestrian j uses ``walker.pedestrian.%04d`` of ``j % WALKER_MODELS + 1``.
WALKER_MODELS = 14
#: Colour of a car of hue h: HSV (h, CAR_SATURATION, CAR_VALUE) as CARLA's ``"r,g,b"`` (0..255).
CAR_SATURATION, CAR_VALUE = 0.75, 0.85

#: Visibility (m) that CARLA's densest fog (``fog_density`` 100) stands for.
FOG_VISIBILITY_MIN = 40.0
KOSCHMIEDER = 3.912
FOG_FALLOFF = 0.1
SUN_AZIMUTH = 45.0  # deg

#: Light phases (``light[k].state``), CARLA's ``TrafficLightState`` values.
RED, AMBER, GREEN = 0, 1, 2
#: Amber lasts this long (s) between green and red.
AMBER_TIME = 3.0
#: Lights and crosswalks a sample can refer to: the nearest ones to the ego's start.
NEAR_CROSSWALKS = 8
NEAR_SPAWN_POINTS = 32
#: A depth camera's largest encoded distance (m); a pixel at it saw no surface (the sky).
DEPTH_FAR = 1000.0

#: OpenCV camera axes -> a CARLA camera's own axes (x forward, y right, z up), 4x4.
CV_TO_UE = np.array([[0.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
#: The mirror between CARLA's left-handed frame and crlgen's right-handed one (its own inverse).
MIRROR = np.diag([1.0, -1.0, 1.0, 1.0])

#: Segmentation ids of the things that are not spec objects; vehicle[i] is FIRST_OBJECT_ID + i, then pedestrians.
CLASS_IDS: dict[int, str] = {0: "background", 1: "road", 2: "sidewalk", 3: "building", 4: "vegetation", 5: "pole",
                             6: "traffic_light", 7: "other_vehicle", 8: "other"}
FIRST_OBJECT_ID = 10
#: CARLA semantic tag (``carla.CityObjectLabel`` name) -> crlgen class id (``CLASS_IDS``).
SEMANTIC_CLASS: dict[str, int] = {
    "NONE": 0, "Sky": 0, "Roads": 1, "RoadLines": 1, "Ground": 1, "RailTrack": 1, "Sidewalks": 2,
    "Buildings": 3, "Walls": 3, "Fences": 3, "Bridge": 3, "GuardRail": 3, "Static": 3,
    "Vegetation": 4, "Terrain": 4, "Water": 4, "Poles": 5, "TrafficSigns": 5, "TrafficLight": 6,
    "Car": 7, "Truck": 7, "Bus": 7, "Train": 7, "Motorcycle": 7, "Bicycle": 7,
    "Pedestrians": 8, "Rider": 8, "Dynamic": 8, "Other": 8,
}


# ----- spec -> CARLA -----------------------------------------------------------------------------
def town_name(code: float) -> str:
    """The CARLA map of ``parameters.town`` (e.g. 10 -> ``"Town10HD_Opt"``); ValueError naming the choices."""
    if float(code) != int(code) or int(code) not in TOWNS:
        raise ValueError(f"expected one of {', '.join(f'{k} ({v})' for k, v in TOWNS.items())}, got {code:g}")
    return TOWNS[int(code)]


def weather(carla, fog: float, rain: float, sun: float) -> Any:
    """``carla.WeatherParameters`` of visibility ``fog`` (m), rain in [0, 1] and daylight ``sun`` in [0, 1].

    See the module docstring for each mapping. Raises ValueError for a value outside its domain.
    """
    if not fog > 0 or not 0 <= rain <= 1 or not 0 <= sun <= 1:
        raise ValueError(f"weather: expected fog > 0 m, rain and sun in [0, 1], got {fog}, {rain}, {sun}")
    w = 100.0 * rain
    return carla.WeatherParameters(
        cloudiness=w, precipitation=w, precipitation_deposits=w, wind_intensity=10.0,
        sun_azimuth_angle=SUN_AZIMUTH, sun_altitude_angle=math.degrees(math.asin(2.0 * sun - 1.0)),
        fog_density=fog_density(fog), fog_distance=0.0, fog_falloff=FOG_FALLOFF, wetness=w,
        scattering_intensity=1.0, mie_scattering_scale=0.03, rayleigh_scattering_scale=0.0331, dust_storm=0.0)


def fog_density(visibility: float) -> float:
    """CARLA ``fog_density`` (0..100) for a visibility (m): proportional to Koschmieder's ``3.912 / V``."""
    beta, beta_max = KOSCHMIEDER / visibility, KOSCHMIEDER / FOG_VISIBILITY_MIN
    return float(100.0 * min(1.0, beta / beta_max))


def tm_settings(desired_speed: float, time_headway: float, aggressiveness: float = 0.0,
                ignore_lights: float = 0.0) -> dict[str, Any]:
    """Per-vehicle Traffic Manager calls: ``{method name: value}``, each applied as ``getattr(tm, name)(actor, value)``.

    ``desired_speed`` m/s, ``time_headway`` s, ``aggressiveness`` and ``ignore_lights`` in [0, 1]
    (see the module docstring). Raises ValueError outside those domains.
    """
    if not desired_speed >= 0 or not time_headway > 0 or not 0 <= aggressiveness <= 1 or not 0 <= ignore_lights <= 1:
        raise ValueError(f"traffic manager: got desired_speed {desired_speed}, time_headway {time_headway}, "
                         f"aggressiveness {aggressiveness}, ignore_lights {ignore_lights}")
    return {
        "set_desired_speed": 3.6 * desired_speed,  # km/h
        "distance_to_leading_vehicle": time_headway * desired_speed,  # m
        "auto_lane_change": True,
        "random_left_lanechange_percentage": 100.0 * aggressiveness,
        "random_right_lanechange_percentage": 100.0 * aggressiveness,
        "ignore_lights_percentage": 100.0 * ignore_lights,
        "ignore_walkers_percentage": 0.0,
        "ignore_vehicles_percentage": 0.0,
    }


def car_blueprint(model: float) -> str:
    """The blueprint id of ``vehicle[i].model``, an integer index into :data:`CARS` (0..13): the index is what the
    store holds, so it names the car drawn exactly (a real number binned into 14 cars would store a value the
    pixels cannot tell apart within its bin). Raises ValueError for anything else."""
    if not (0 <= model <= len(CARS) - 1 and float(model).is_integer()):
        raise ValueError(f"vehicle model: expected an integer index 0..{len(CARS) - 1} into CARS, got {model}")
    return CARS[int(model)]


def walker_blueprint(j: int) -> str:
    """The blueprint id of pedestrian ``j``."""
    return f"walker.pedestrian.{j % WALKER_MODELS + 1:04d}"


def car_colour(hue: float) -> str:
    """CARLA's ``color`` attribute (``"r,g,b"``, 0..255) of a car of hue ``hue`` in [0, 1]."""
    r, g, b = colorsys.hsv_to_rgb(float(hue) % 1.0, CAR_SATURATION, CAR_VALUE)
    return ",".join(str(int(round(255 * c))) for c in (r, g, b))


def horizontal_fov(width: int, height: int, vfov_deg: float) -> float:
    """CARLA's ``fov`` (horizontal, degrees) of a camera with crlgen's vertical ``vfov_deg`` and square pixels."""
    return math.degrees(2.0 * math.atan(width / height * math.tan(math.radians(vfov_deg) / 2.0)))


def camera_attributes(width: int, height: int, vfov_deg: float, kind: str) -> dict[str, str]:
    """Blueprint attributes of a camera sensor: size, horizontal fov, a reading every tick; the RGB camera
    without motion blur (a frame shows one instant, like the ground truth beside it)."""
    out = {"image_size_x": str(int(width)), "image_size_y": str(int(height)),
           "fov": f"{horizontal_fov(width, height, vfov_deg):.6f}", "sensor_tick": "0.0"}
    if kind == "rgb":
        out["motion_blur_intensity"] = "0.0"
    return out


#: The CARLA sensors filming one crlgen camera, per annotation (``None``: always).
SENSORS: dict[str, str | None] = {"sensor.camera.rgb": None, "sensor.camera.depth": "depth",
                                  "sensor.camera.semantic_segmentation": "segmentation",
                                  "sensor.camera.instance_segmentation": "segmentation"}


# ----- frames and poses --------------------------------------------------------------------------
def to_map(ue_pose: np.ndarray) -> np.ndarray:
    """A CARLA pose (4x4, body to world, ``Transform.get_matrix()``) as a map-frame pose: ``S M S``."""
    return MIRROR @ np.asarray(ue_pose, dtype=np.float64) @ MIRROR


def camera_to_world(ue_pose: np.ndarray) -> np.ndarray:
    """camera_to_world (4x4, OpenCV axes, map frame) of a CARLA camera whose world pose is ``ue_pose``: ``S M C``."""
    return MIRROR @ np.asarray(ue_pose, dtype=np.float64) @ CV_TO_UE


def ue_rotation(matrix: np.ndarray) -> tuple[float, float, float]:
    """(pitch, yaw, roll) in degrees of a CARLA rotation matrix (3x3 or 4x4), inverse of ``Transform.get_matrix``."""
    m = np.asarray(matrix, dtype=np.float64)
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, m[2, 0]))))
    yaw = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    roll = math.degrees(math.atan2(-m[2, 1], m[2, 2]))
    return pitch, yaw, roll


def ue_transform(carla, ue_pose: np.ndarray) -> Any:
    """``carla.Transform`` of a CARLA pose matrix (4x4, a proper rotation in CARLA's frame)."""
    m = np.asarray(ue_pose, dtype=np.float64)
    pitch, yaw, roll = ue_rotation(m)
    return carla.Transform(carla.Location(x=float(m[0, 3]), y=float(m[1, 3]), z=float(m[2, 3])),
                           carla.Rotation(pitch=pitch, yaw=yaw, roll=roll))


def sensor_transform(carla, camera_to_parent: np.ndarray) -> Any:
    """The ``carla.Transform`` that places a camera whose pose in its parent's map frame is ``camera_to_parent``
    (4x4, OpenCV axes; a mounted camera's local pose, or a fixed camera's camera_to_world): ``S L C^-1``."""
    return ue_transform(carla, MIRROR @ np.asarray(camera_to_parent, dtype=np.float64) @ np.linalg.inv(CV_TO_UE))


def kinematics(ue_pose: np.ndarray, velocity: Sequence[float], acceleration: Sequence[float]) -> tuple[float, ...]:
    """(x, y, heading, speed, accel) of a vehicle in the map frame: m, m, rad (counter-clockwise from +x),
    m/s and m/s^2 along its own forward axis, from its CARLA pose (4x4) and CARLA velocity and acceleration."""
    m = to_map(ue_pose)
    forward = m[:3, 0]
    v = MIRROR[:3, :3] @ np.asarray(velocity, dtype=np.float64)
    a = MIRROR[:3, :3] @ np.asarray(acceleration, dtype=np.float64)
    return (float(m[0, 3]), float(m[1, 3]), math.atan2(forward[1], forward[0]), float(forward @ v), float(forward @ a))


# ----- choices made from latents -------------------------------------------------------------------
def spawn_indices(points: np.ndarray, start: np.ndarray, present: np.ndarray, near: int = NEAR_SPAWN_POINTS) -> np.ndarray:
    """Spawn point index per vehicle (-1 where absent) from ``vehicle[i].start`` in [0, 1].

    ``points`` (P, 2) are the map's spawn points (map frame, m) in the server's order. The ego
    (vehicle 0, always present) takes point ``floor(start_0 P)``; every other present vehicle takes, among
    the ``near`` points nearest the ego's (ties by index), number ``floor(start_i near)``, or the next free one
    after it (cyclically) when an earlier vehicle holds it. Raises ValueError when the ego is absent or
    there are fewer free points than vehicles.
    """
    pts = np.asarray(points, dtype=np.float64)
    start, present = np.asarray(start, dtype=np.float64), np.asarray(present, dtype=bool)
    if not present[0]:
        raise ValueError("vehicle[0] (the ego) must be present")
    if int(present.sum()) > len(pts):
        raise ValueError(f"{int(present.sum())} vehicles but only {len(pts)} spawn points")
    P = len(pts)
    out = np.full(len(start), -1, dtype=np.int64)
    out[0] = min(int(start[0] * P), P - 1)
    d = np.linalg.norm(pts - pts[out[0]], axis=1)
    order = [int(k) for k in np.lexsort((np.arange(P), d)) if k != out[0]][:max(1, min(near, P - 1))]
    taken = {int(out[0])}
    for i in range(1, len(start)):
        if not present[i]:
            continue
        k = min(int(start[i] * len(order)), len(order) - 1)
        for step in range(len(order)):
            cand = order[(k + step) % len(order)]
            if cand not in taken:
                out[i] = cand
                taken.add(cand)
                break
        else:
            raise ValueError(f"no free spawn point for vehicle[{i}] among the {len(order)} nearest the ego's")
    return out


def nearest(points: np.ndarray, origin: Sequence[float], k: int) -> np.ndarray:
    """Indices of the ``k`` points (N, 2) nearest ``origin`` (2,), nearest first, ties by index."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    d = np.linalg.norm(pts - np.asarray(origin, dtype=np.float64)[:2], axis=1)
    return np.lexsort((np.arange(len(pts)), d))[:k]


def crosswalk_polygons(locations: Sequence[Sequence[float]]) -> list[np.ndarray]:
    """Split ``Map.get_crosswalks()`` (a flat list of (x, y, z) points, each polygon closed by repeating its
    first point) into polygons (k, 3), CARLA frame."""
    out: list[np.ndarray] = []
    current: list[tuple[float, float, float]] = []
    for p in locations:
        q = (float(p[0]), float(p[1]), float(p[2]))
        if current and len(current) > 2 and np.allclose(q, current[0]):
            out.append(np.asarray(current))
            current = []
        else:
            current.append(q)
    if len(current) > 2:
        out.append(np.asarray(current))
    return out


def crossing_ends(polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two ends (3,) of a crosswalk polygon (k, 3), CARLA frame: its centroid -/+ half its extent along its
    longest principal axis (the direction people cross in), the end with the smaller coordinate along that axis first."""
    p = np.asarray(polygon, dtype=np.float64)
    c = p.mean(axis=0)
    _, _, vt = np.linalg.svd(p[:, :2] - c[:2], full_matrices=False)
    axis = vt[0] / np.linalg.norm(vt[0])
    if axis[0] < 0 or (axis[0] == 0 and axis[1] < 0):
        axis = -axis
    s = (p[:, :2] - c[:2]) @ axis
    a, b = c.copy(), c.copy()
    a[:2] += s.min() * axis
    b[:2] += s.max() * axis
    return a, b


def light_phase(t: np.ndarray, offset: float, green: float, red: float, amber: float = AMBER_TIME) -> np.ndarray:
    """A fixed-time signal's state at times ``t`` (s): 2 green for ``green`` s, 1 amber for ``amber`` s, 0 red for
    ``red`` s, repeating; a cycle starts at ``t = offset`` (``(t - offset) mod cycle``, as the embedded world's
    ``_sim.schedule``). Returns int64 like ``t``."""
    cycle = green + amber + red
    if not (green > 0 and red > 0 and amber >= 0):
        raise ValueError(f"light phases: expected green, red > 0 and amber >= 0 s, got {green}, {red}, {amber}")
    u = np.mod(np.asarray(t, dtype=np.float64) - offset, cycle)
    return np.where(u < green, GREEN, np.where(u < green + amber, AMBER, RED)).astype(np.int64)


# ----- sensor images -------------------------------------------------------------------------------
def bgra(raw: bytes | np.ndarray, height: int, width: int) -> np.ndarray:
    """A CARLA image's ``raw_data`` (BGRA bytes, top row first) as a uint8 (H, W, 4) array."""
    a = np.frombuffer(raw, dtype=np.uint8) if isinstance(raw, (bytes, bytearray, memoryview)) else np.asarray(raw, np.uint8)
    if a.size != height * width * 4:
        raise ValueError(f"image data of {a.size} bytes for a {width}x{height} BGRA image")
    return a.reshape(height, width, 4)


def rgb(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) sRGB of a BGRA image (CARLA's RGB camera writes sRGB)."""
    return np.ascontiguousarray(image[..., 2::-1])


def depth(image: np.ndarray) -> np.ndarray:
    """float32 (H, W) camera z (m) of a depth camera's BGRA image, 0 where it saw nothing (the sky).

    CARLA encodes ``normalized = (R + 256 G + 256^2 B) / (256^3 - 1)`` and ``depth = 1000 normalized`` m
    (CARLA's sensor reference, depth camera), the distance along the optical axis as crlgen stores.
    """
    b, g, r = (image[..., k].astype(np.float64) for k in range(3))
    normalized = (r + 256.0 * g + 65536.0 * b) / (256.0 ** 3 - 1.0)
    out = DEPTH_FAR * normalized
    out[normalized >= 1.0] = 0.0
    return out.astype(np.float32)


def semantic_tags(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W) CARLA semantic tags (``carla.CityObjectLabel``) of a semantic or instance camera's image (R)."""
    return np.ascontiguousarray(image[..., 2])


def instance_ids(image: np.ndarray) -> np.ndarray:
    """int64 (H, W): the low 16 bits of the actor id each pixel of an instance camera's image shows,
    ``G + 256 B`` (CARLA 0.9.16 writes an actor's id there, an Unreal object id for what is no actor)."""
    return image[..., 1].astype(np.int64) + 256 * image[..., 0].astype(np.int64)


def semantic_lut(labels: Mapping[str, int]) -> np.ndarray:
    """uint8 (256,): CARLA semantic tag -> crlgen class id, from ``carla.CityObjectLabel.names`` (name -> tag).

    Raises ValueError for a tag name :data:`SEMANTIC_CLASS` does not know (a CARLA that labels differently)."""
    lut = np.zeros(256, dtype=np.uint8)
    for name, tag in labels.items():
        if name == "Any":
            continue
        if name not in SEMANTIC_CLASS:
            raise ValueError(f"CARLA semantic tag {name!r} ({int(tag)}) has no crlgen class")
        lut[int(tag)] = SEMANTIC_CLASS[name]
    return lut


def segmentation(tags: np.ndarray, instances: np.ndarray, lut: np.ndarray, actor_ids: Mapping[int, int]) -> np.ndarray:
    """uint8 (H, W) crlgen segmentation: the spec object's id where the instance camera shows one of
    ``actor_ids`` (actor id -> segmentation id; matched on the low 16 bits) on a vehicle or person pixel
    (class ``other_vehicle`` or ``other``, so a static mesh whose Unreal id happens to match stays what it is),
    else the pixel's class id (``lut`` from :func:`semantic_lut`)."""
    out = lut[tags]
    if actor_ids:
        keys = np.array([k & 0xFFFF for k in actor_ids], dtype=np.int64)
        vals = np.array(list(actor_ids.values()), dtype=np.uint8)
        order = np.argsort(keys)
        keys, vals = keys[order], vals[order]
        pos = np.clip(np.searchsorted(keys, instances), 0, len(keys) - 1)
        hit = (keys[pos] == instances) & ((out == 7) | (out == 8))
        out = np.where(hit, vals[pos], out).astype(np.uint8)
    return out
