"""A box-world dashcam on PyBullet's TinyRenderer: colour, depth and segmentation of coloured boxes on
flat coloured ground, with exponential depth fog, rain and daylight. Headless, CPU, deterministic.

Scene-agnostic: numpy arrays in, numpy arrays out; nothing here knows about traffic. The world is

- ``ground``: flat quads at z = ``layer * GROUND_LAYER_HEIGHT`` (roads, lane marks, crosswalks,
  sidewalks, grass): :class:`Ground` (corners (n, 4, 2) m, sRGB colour (n, 3), id (n,), layer (n,));
  a higher layer is drawn over a lower one (1 cm apart, so they never z-fight);
- ``static_boxes``: boxes that never move (buildings): :class:`Boxes`;
- per frame, ``dynamic`` boxes (vehicles, pedestrians, traffic lights): :class:`Boxes`, at most
  ``n_dynamic``. A box is its centre (x, y, z) m, yaw rad about +z, half extents m (along its own
  x, y, z before the yaw), sRGB colour in [0, 1], segmentation id (int32) and an ``emissive`` flag:
  an emissive box (a traffic light's lamp) is drawn in its flat colour, unshaded and unaffected by
  daylight (it glows), then fogged like everything else.

Usage (the API the traffic world calls)::

    cam = Dashcam(None, ground, static_boxes, n_dynamic=40)     # once per map: bodies built here
    rgb, depth, seg = cam.render(dynamic_boxes, View(K, camera_to_world, W, H), Weather(visibility=80.0))
    view = View.from_camera(rig.cameras[v], camera_to_world)      # or from a spec's resolved camera
    cam.close()

    rgb, depth, seg = render_boxes(boxes, ground, view, weather)  # one-off: builds, renders, closes

Outputs: ``rgb`` uint8 (H, W, 3) sRGB; ``depth`` float32 (H, W), camera z in metres (along the
optical axis), 0.0 where no surface was hit (sky); ``seg`` int32 (H, W), the ids the caller gave,
``BACKGROUND_ID`` (0) for sky. Cameras follow :mod:`crlgen.scenes.cameras` (OpenCV axes,
``camera_to_world`` 4x4, pixel centres at integers, ``K`` 3x3, perspective only); projection and
view matrices come from its ``opengl_projection`` / ``opengl_view_matrix`` with TinyRenderer's
half-pixel shift (:data:`crlgen.scenes.physics.views.TINY_PIXEL_OFFSET`), depth from its
``linear_depth``, as in the physics and robotics worlds.

Image model (stated, not physically based beyond the fog law):

1. TinyRenderer shades each face Lambertian on the sRGB colour, like the physics and robotics
   worlds: ``ambient * c + diffuse * max(n . l, 0) * c`` (+ a small specular), with the sun
   direction ``l`` and, for daylight ``D`` in [0, 1], ambient ``AMBIENT * (NIGHT + (1 - NIGHT) D)``
   and diffuse ``DIFFUSE * D``. Sky pixels get ``sky_rgb`` scaled (in linear light) by the same
   ``NIGHT + (1 - NIGHT) D``; emissive boxes get their own colour.
2. Rain ``r`` in [0, 1] (in linear light ``L``): contrast loss towards the airlight ``A`` (a veil of
   scattered light, no streaks), ``L <- (1 - RAIN_VEIL r) L + RAIN_VEIL r A``, then, after fog,
   darkening of the whole frame ``L <- (1 - RAIN_DARKEN r) L`` (overcast).
3. Fog (Koschmieder's law, e.g. Middleton, *Vision through the atmosphere*, 1952; Narasimhan and
   Nayar, IJCV 48:233, 2002): with visibility ``V`` (m) the extinction coefficient is
   ``beta = 3.912 / V`` (2 % contrast threshold) and a surface at distance ``rho`` along the
   pixel's ray is seen as ``L t + A (1 - t)``, ``t = exp(-beta rho)``, in linear light;
   ``rho = depth * |(x_n, y_n, 1)|`` with ``(x_n, y_n)`` the pixel's normalised image coordinates
   (so ``rho = depth`` at the principal point); the sky is at infinity (``t = 0``: it is ``A``).
   The airlight ``A`` is ``fog_rgb`` scaled like the sky. Fog and rain change colour only, never
   depth or segmentation.

Bodies are created once per :class:`Dashcam` (ground meshes and static boxes in ``__init__``,
dynamic boxes on first need) and moved every frame with ``resetBasePositionAndOrientation``:
PyBullet keeps memory for every shape ever created, so a renderer that re-created shapes per
frame would grow without bound. Dynamic bodies are pooled by half extents (to the millimetre; a
body's size cannot change): a frame takes pool bodies of each box's size, creating one only when
the pool holds fewer of that size than the frame needs; unused bodies are parked out of sight.
Callers whose box sizes vary continuously (a size latent per sample) should quantise them, or the
pool grows with every new size. A colour change costs one ``changeVisualShape``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from ..cameras import CameraModel, linear_depth, opengl_projection, opengl_view_matrix
from ..engines import bullet as pb
from ..physics.views import TINY_PIXEL_OFFSET

#: Segmentation id of pixels where no surface was hit (the sky).
BACKGROUND_ID = 0
#: Height (m) between ground layers: layer k lies at z = k * GROUND_LAYER_HEIGHT.
GROUND_LAYER_HEIGHT = 0.01
#: TinyRenderer shading coefficients at full daylight (as in the physics worlds).
AMBIENT, DIFFUSE, SPECULAR = 0.55, 0.5, 0.02
#: Share of the ambient light and sky brightness left at daylight 0 (night).
NIGHT = 0.12
#: Rain: contrast loss towards the airlight and darkening per unit rain intensity.
RAIN_VEIL, RAIN_DARKEN = 0.3, 0.5
#: Defaults (sRGB): sky and fog colour; sun direction (towards the sun, world frame, z up).
SKY_RGB = (0.62, 0.75, 0.90)
FOG_RGB = (0.78, 0.80, 0.82)
SUN_DIRECTION = (0.4, -0.3, 1.0)
#: Koschmieder's constant: -ln(0.02), the contrast threshold that defines visibility.
KOSCHMIEDER = 3.912
#: Where unused dynamic bodies wait (m): far below the ground, beyond any far plane.
_PARK = (0.0, 0.0, -1.0e7)
#: Quads per ground mesh (4 vertices each; PyBullet accepted 8192 quads in a mesh, measured).
_QUADS_PER_MESH = 4096


def _array(name: str, value, dtype, shape: tuple) -> np.ndarray:
    """``value`` as an array of ``dtype`` and ``shape`` (-1: any length, the same n for all), or ValueError naming ``name``."""
    a = np.asarray(value, dtype=dtype)
    if a.ndim != len(shape) or any(s not in (-1, d) for s, d in zip(shape, a.shape)):
        want = "(" + ", ".join("n" if s == -1 else str(s) for s in shape) + ")"
        raise ValueError(f"{name} must have shape {want}, got {a.shape}")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    return a


@dataclass(frozen=True)
class Boxes:
    """n coloured boxes standing anywhere, each turned by a yaw about +z.

    ``centre`` (n, 3) float64 m; ``yaw`` (n,) rad; ``half_extents`` (n, 3) m, > 0; ``rgb`` (n, 3)
    sRGB in [0, 1]; ``ids`` (n,) int32 segmentation ids (> 0 to tell them from the sky);
    ``emissive`` (n,) bool (default all False): drawn in their flat colour. Raises ValueError
    naming the field when a shape, a range or the lengths disagree.
    """

    centre: np.ndarray
    yaw: np.ndarray
    half_extents: np.ndarray
    rgb: np.ndarray
    ids: np.ndarray
    emissive: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "centre", _array("boxes.centre", self.centre, np.float64, (-1, 3)))
        n = len(self.centre)
        set_(self, "yaw", _array("boxes.yaw", self.yaw, np.float64, (n,)))
        set_(self, "half_extents", _array("boxes.half_extents", self.half_extents, np.float64, (n, 3)))
        set_(self, "rgb", _array("boxes.rgb", self.rgb, np.float64, (n, 3)))
        set_(self, "ids", _array("boxes.ids", self.ids, np.int32, (n,)))
        em = np.zeros(n, dtype=bool) if self.emissive is None else _array("boxes.emissive", self.emissive, bool, (n,))
        set_(self, "emissive", em)
        if np.any(self.half_extents <= 0):
            raise ValueError("boxes.half_extents must be > 0 (m)")
        if np.any((self.rgb < 0) | (self.rgb > 1)):
            raise ValueError("boxes.rgb must be sRGB components in [0, 1]")

    def __len__(self) -> int:
        return len(self.centre)

    @classmethod
    def empty(cls) -> "Boxes":
        """No boxes."""
        return cls(np.zeros((0, 3)), np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros(0, np.int32))


@dataclass(frozen=True)
class Ground:
    """n flat quads on the ground (roads, lane marks, crosswalks, sidewalks, grass).

    ``corners`` (n, 4, 2) float64 (x, y) m, in order around the quad (either sense; convex);
    ``rgb`` (n, 3) sRGB in [0, 1]; ``ids`` (n,) int32 segmentation ids; ``layer`` (n,) int >= 0
    (default 0): quad at z = layer * GROUND_LAYER_HEIGHT m, drawn over lower layers. Raises
    ValueError naming the field.
    """

    corners: np.ndarray
    rgb: np.ndarray
    ids: np.ndarray
    layer: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "corners", _array("ground.corners", self.corners, np.float64, (-1, 4, 2)))
        n = len(self.corners)
        set_(self, "rgb", _array("ground.rgb", self.rgb, np.float64, (n, 3)))
        set_(self, "ids", _array("ground.ids", self.ids, np.int32, (n,)))
        layer = np.zeros(n, np.int64) if self.layer is None else _array("ground.layer", self.layer, np.int64, (n,))
        set_(self, "layer", layer)
        if np.any(self.layer < 0):
            raise ValueError("ground.layer must be >= 0")
        if np.any((self.rgb < 0) | (self.rgb > 1)):
            raise ValueError("ground.rgb must be sRGB components in [0, 1]")

    def __len__(self) -> int:
        return len(self.corners)


@dataclass(frozen=True)
class View:
    """One pinhole camera: intrinsics ``K`` (3x3, pixels), ``camera_to_world`` (4x4, OpenCV axes, m),
    image ``width`` x ``height`` (pixels), clip planes ``near`` < ``far`` (m)."""

    K: np.ndarray
    camera_to_world: np.ndarray
    width: int
    height: int
    near: float = 0.1
    far: float = 1000.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "K", _array("view.K", self.K, np.float64, (3, 3)))
        object.__setattr__(self, "camera_to_world", _array("view.camera_to_world", self.camera_to_world, np.float64, (4, 4)))
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f"view size must be >= 1 pixel, got {self.width} x {self.height}")
        if not 0 < self.near < self.far < abs(_PARK[2]) / 10:
            raise ValueError(f"view clip planes must satisfy 0 < near < far < {abs(_PARK[2]) / 10:g} m, got {self.near}, {self.far}")

    @classmethod
    def from_camera(cls, camera: CameraModel, camera_to_world: np.ndarray | None = None) -> "View":
        """The view of a spec's resolved perspective camera (:class:`crlgen.scenes.cameras.CameraModel`): its K,
        size and clip planes, posed at ``camera_to_world`` (4x4; default its fixed pose; a mounted camera's
        pose is ``camera.camera_to_world(mount_pose)``). Raises ValueError for an orthographic camera or a
        mounted one without a pose."""
        if camera.orthographic:
            raise ValueError(f"camera {camera.name!r} is orthographic; the dashcam draws perspective cameras only")
        pose = camera.pose if camera_to_world is None else camera_to_world
        if pose is None:
            raise ValueError(f"camera {camera.name!r} is mounted on {camera.mount!r}: pass its camera_to_world")
        return cls(camera.K, pose, camera.width, camera.height, camera.near, camera.far)


@dataclass(frozen=True)
class Weather:
    """What the sky does to the image (see the module docstring for the equations).

    ``visibility`` m (Koschmieder; ``math.inf``: no fog), ``rain`` in [0, 1], ``daylight`` in
    [0, 1] (light strength; 1 full day), ``fog_rgb`` / ``sky_rgb`` sRGB, ``sun_direction`` (3,)
    towards the sun, world frame. Raises ValueError naming the field when out of range.
    """

    visibility: float = math.inf
    rain: float = 0.0
    daylight: float = 1.0
    fog_rgb: Sequence[float] = FOG_RGB
    sky_rgb: Sequence[float] = SKY_RGB
    sun_direction: Sequence[float] = SUN_DIRECTION

    def __post_init__(self) -> None:
        if not self.visibility > 0:
            raise ValueError(f"weather.visibility must be > 0 m (math.inf for no fog), got {self.visibility}")
        if not 0 <= self.rain <= 1:
            raise ValueError(f"weather.rain must be in [0, 1], got {self.rain}")
        if not 0 <= self.daylight <= 1:
            raise ValueError(f"weather.daylight must be in [0, 1], got {self.daylight}")
        for name in ("fog_rgb", "sky_rgb"):
            c = np.asarray(getattr(self, name), dtype=np.float64)
            if c.shape != (3,) or np.any((c < 0) | (c > 1)):
                raise ValueError(f"weather.{name} must be 3 sRGB components in [0, 1], got {getattr(self, name)}")

    @property
    def extinction(self) -> float:
        """beta = 3.912 / visibility (1/m); 0 without fog."""
        return 0.0 if math.isinf(self.visibility) else KOSCHMIEDER / float(self.visibility)

    @property
    def brightness(self) -> float:
        """Ambient, sky and airlight scale at this daylight: NIGHT + (1 - NIGHT) * daylight."""
        return NIGHT + (1.0 - NIGHT) * float(self.daylight)


# --------------------------------------------------------------------------- colour


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB-encoded values in [0, 1] to linear light (IEC 61966-2-1), float32, any shape."""
    c = np.asarray(c, dtype=np.float32)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear light (clipped to [0, 1]) to sRGB-encoded values in [0, 1] (IEC 61966-2-1), float32."""
    c = np.clip(np.asarray(c, dtype=np.float32), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1.0 / 2.4) - 0.055).astype(np.float32)


#: uint8 sRGB code -> linear light.
_DECODE = srgb_to_linear(np.arange(256) / 255.0)


def _encode_u8(lin: np.ndarray) -> np.ndarray:
    return np.rint(linear_to_srgb(lin) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------- geometry


def _ground_mesh(corners: np.ndarray, z: float) -> tuple[list, list, list]:
    """Vertices, triangle indices (two per quad, facing +z) and normals of quads at height ``z``."""
    c = corners.copy()
    # shoelace: clockwise quads (seen from above) are reversed so every triangle faces up
    area = 0.5 * np.sum(c[:, :, 0] * np.roll(c[:, :, 1], -1, 1) - np.roll(c[:, :, 0], -1, 1) * c[:, :, 1], axis=1)
    c[area < 0] = c[area < 0, ::-1]
    verts = np.concatenate([c, np.full(c.shape[:2] + (1,), float(z))], axis=2).reshape(-1, 3)
    base = 4 * np.arange(len(c))[:, None]
    idx = (base + np.array([0, 1, 2, 0, 2, 3])).ravel()
    return verts.tolist(), idx.tolist(), [[0.0, 0.0, 1.0]] * len(verts)


def _size_key(half_extents: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(v) for v in np.rint(np.asarray(half_extents) * 1000.0))


def _ray_lengths(K: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) float32 |(x_n, y_n, 1)| per pixel: distance along the ray per metre of depth."""
    u = (np.arange(width) - K[0, 2]) / K[0, 0]
    v = (np.arange(height) - K[1, 2]) / K[1, 1]
    return np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2).astype(np.float32)


def _emissive_pixels(body: np.ndarray, emissive: dict[int, tuple]) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Mask (H, W) of pixels showing an emissive body and their sRGB colours (m, 3); (None, None) if none."""
    if not emissive:
        return None, None
    colours = np.zeros((max(max(emissive), int(body.max())) + 2, 3))
    lit = np.zeros(len(colours), dtype=bool)
    keys = np.fromiter(emissive, np.int64, len(emissive)) + 1
    colours[keys], lit[keys] = np.asarray(list(emissive.values())), True
    key = np.where(body < 0, 0, body + 1)
    mask = lit[key]
    return (mask, colours[key[mask]]) if mask.any() else (None, None)


# --------------------------------------------------------------------------- the renderer


@dataclass
class _Slot:
    body: int
    rgb: tuple = field(default=(-1.0, -1.0, -1.0))
    parked: bool = True


class Dashcam:
    """TinyRenderer box world: ground and static boxes built once, ``n_dynamic`` moving boxes per frame.

    ``client``: a :class:`crlgen.scenes.engines.bullet.BulletScene` to build in (left connected
    by :meth:`close`), or None for a private one (disconnected by :meth:`close`). Raises
    :class:`crlgen.scenes.engines.EngineMissing` without PyBullet, ValueError for bad arrays.
    """

    def __init__(self, client: pb.BulletScene | None, ground: Ground, static_boxes: Boxes, n_dynamic: int) -> None:
        if int(n_dynamic) < 0:
            raise ValueError(f"n_dynamic must be >= 0, got {n_dynamic}")
        self._own = client is None
        self.scene = pb.BulletScene() if client is None else client
        self.bc, self.p = self.scene.bc, self.scene.p
        self.n_dynamic = int(n_dynamic)
        self._ids: dict[int, int] = {}          # body -> segmentation id
        self._emissive: dict[int, tuple] = {}   # body -> emissive sRGB
        self._pool: dict[tuple[int, int, int], list[_Slot]] = {}
        self._meshes: list = []                  # vertex lists PyBullet keeps pointers into
        self._ray_cache: dict[tuple, np.ndarray] = {}
        self._closed = False
        # boxes first, then the ground from the top layer down: occluders made first are drawn first and spare
        # the shading of what they hide (TinyRenderer tests depth before shading; measured on the synthetic
        # street of benchmarks/bench_traffic.py at 320 x 240: ~25 ms a frame instead of ~28-30)
        for k in range(len(static_boxes)):
            body = self._new_box(static_boxes.half_extents[k], static_boxes.rgb[k])
            self.bc.resetBasePositionAndOrientation(body, static_boxes.centre[k].tolist(), pb.yaw_quaternion(static_boxes.yaw[k]))
            self._ids[body] = int(static_boxes.ids[k])
            if static_boxes.emissive[k]:
                self._emissive[body] = tuple(static_boxes.rgb[k])
        self._build_ground(ground)

    # ---------------------------------------------------------------- building

    def _build_ground(self, ground: Ground) -> None:
        groups: dict[tuple, list[int]] = {}
        for k in range(len(ground)):
            groups.setdefault((int(ground.layer[k]), tuple(ground.rgb[k]), int(ground.ids[k])), []).append(k)
        for (layer, rgb, gid), members in sorted(groups.items(), key=lambda kv: (-kv[0][0], kv[0][1:])):
            for s in range(0, len(members), _QUADS_PER_MESH):
                verts, idx, normals = _ground_mesh(ground.corners[members[s:s + _QUADS_PER_MESH]], layer * GROUND_LAYER_HEIGHT)
                self._meshes.append((verts, idx, normals))
                vis = self.bc.createVisualShape(self.p.GEOM_MESH, vertices=verts, indices=idx, normals=normals,
                                                rgbaColor=(*rgb, 1.0))
                self._ids[self.bc.createMultiBody(0.0, -1, vis)] = gid

    def _new_box(self, half_extents: np.ndarray, rgb: Sequence[float]) -> int:
        vis = self.bc.createVisualShape(self.p.GEOM_BOX, halfExtents=[float(h) for h in half_extents],
                                        rgbaColor=(*map(float, rgb), 1.0))
        return self.bc.createMultiBody(0.0, -1, vis, basePosition=list(_PARK))

    # ---------------------------------------------------------------- per frame

    def _place(self, dynamic: Boxes) -> tuple[dict[int, int], dict[int, tuple]]:
        """Move pool bodies to ``dynamic``; returns this frame's (body -> id, body -> emissive rgb)."""
        bc = self.bc
        ids, emissive = {}, {}
        used: dict[tuple, int] = {}
        for k in range(len(dynamic)):
            he = dynamic.half_extents[k]
            key = _size_key(he)
            slots = self._pool.setdefault(key, [])
            n = used.get(key, 0)
            used[key] = n + 1
            if n == len(slots):
                slots.append(_Slot(self._new_box(np.asarray(key) / 1000.0, dynamic.rgb[k])))
                slots[-1].rgb = tuple(dynamic.rgb[k])
            slot = slots[n]
            rgb = tuple(dynamic.rgb[k])
            if not dynamic.emissive[k] and rgb != slot.rgb:  # an emissive box's shading is replaced anyway
                bc.changeVisualShape(slot.body, -1, rgbaColor=(*rgb, 1.0))
                slot.rgb = rgb
            bc.resetBasePositionAndOrientation(slot.body, dynamic.centre[k].tolist(), pb.yaw_quaternion(dynamic.yaw[k]))
            slot.parked = False
            ids[slot.body] = int(dynamic.ids[k])
            if dynamic.emissive[k]:
                emissive[slot.body] = rgb
        for key, slots in self._pool.items():
            for slot in slots[used.get(key, 0):]:
                if not slot.parked:
                    bc.resetBasePositionAndOrientation(slot.body, list(_PARK), (0.0, 0.0, 0.0, 1.0))
                    slot.parked = True
        return ids, emissive

    def render(self, dynamic: Boxes, view: View, weather: Weather = Weather()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One frame: ``dynamic`` boxes (at most ``n_dynamic``) seen from ``view`` under ``weather``.

        Returns (rgb uint8 (H, W, 3) sRGB, depth float32 (H, W) m along the optical axis, 0 for
        sky, seg int32 (H, W) ids, BACKGROUND_ID for sky). Raises ValueError when there are more
        than ``n_dynamic`` boxes, RuntimeError after :meth:`close`.
        """
        if self._closed:
            raise RuntimeError("this Dashcam is closed")
        if len(dynamic) > self.n_dynamic:
            raise ValueError(f"dynamic boxes: {len(dynamic)} given, this Dashcam was built for at most {self.n_dynamic}")
        dyn_ids, dyn_emissive = self._place(dynamic)
        W, H = int(view.width), int(view.height)
        light = weather.brightness
        w, h, rgba, dbuf, sbuf = self.bc.getCameraImage(
            W, H, viewMatrix=opengl_view_matrix(view.camera_to_world),
            projectionMatrix=opengl_projection(view.K, W, H, view.near, view.far, False, TINY_PIXEL_OFFSET),
            renderer=self.p.ER_TINY_RENDERER, shadow=0, lightDirection=[float(c) for c in weather.sun_direction],
            lightColor=[1.0, 1.0, 1.0], lightAmbientCoeff=AMBIENT * light, lightDiffuseCoeff=DIFFUSE * float(weather.daylight),
            lightSpecularCoeff=SPECULAR * float(weather.daylight))
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()
        body = np.asarray(sbuf, dtype=np.int64).reshape(h, w)
        sky = body < 0
        depth = linear_depth(np.asarray(dbuf, dtype=np.float32).reshape(h, w), view.near, view.far, False, sky)

        ids = {**self._ids, **dyn_ids}
        lut = np.full(max(ids, default=-1) + 2, BACKGROUND_ID, dtype=np.int32)
        lut[np.fromiter(ids, np.int64, len(ids)) + 1] = np.fromiter(ids.values(), np.int32, len(ids))
        seg = pb.map_segmentation(body, lut)
        lamp, lamp_rgb = _emissive_pixels(body, {**self._emissive, **dyn_emissive})
        sky_lin = srgb_to_linear(weather.sky_rgb) * np.float32(light)
        beta, rain = weather.extinction, float(weather.rain)

        if beta == 0.0 and rain == 0.0:  # exact colours: sky and lamps need no trip through linear light
            rgb[sky] = _encode_u8(sky_lin)
            if lamp is not None:
                rgb[lamp] = np.rint(lamp_rgb * 255.0).astype(np.uint8)
            return rgb, depth, seg

        lin = _DECODE[rgb]
        lin[sky] = sky_lin
        if lamp is not None:
            lin[lamp] = srgb_to_linear(lamp_rgb)
        air = srgb_to_linear(weather.fog_rgb) * np.float32(light)
        if rain > 0.0:
            lin = (1.0 - RAIN_VEIL * rain) * lin + (RAIN_VEIL * rain) * air
        if beta > 0.0:
            key = (W, H, *view.K.ravel().tolist())
            if key not in self._ray_cache:
                self._ray_cache = {key: _ray_lengths(view.K, W, H)}
            t = np.where(sky, 0.0, np.exp(-np.float32(beta) * depth * self._ray_cache[key])).astype(np.float32)[..., None]
            lin = lin * t + air * (1.0 - t)
        if rain > 0.0:
            lin = lin * (1.0 - RAIN_DARKEN * rain)
        return _encode_u8(lin), depth, seg

    # ---------------------------------------------------------------- lifetime

    @property
    def bodies(self) -> int:
        """PyBullet bodies this renderer has made (ground meshes, static boxes, dynamic pool)."""
        return len(self._ids) + sum(len(s) for s in self._pool.values())

    def close(self) -> None:
        """Release the PyBullet client if this renderer made it; calling it again does nothing."""
        if not self._closed:
            self._closed = True
            if self._own:
                self.scene.close()


def render_boxes(boxes: Boxes, ground: Ground, view: View, weather: Weather = Weather()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image of ``boxes`` on ``ground``: a :class:`Dashcam` built, rendered once and closed.

    Returns (rgb uint8 (H, W, 3), depth float32 (H, W) m, seg int32 (H, W)) as :meth:`Dashcam.render`.
    For video, keep one :class:`Dashcam` and move its dynamic boxes instead.
    """
    cam = Dashcam(None, ground, Boxes.empty(), len(boxes))
    try:
        return cam.render(boxes, view, weather)
    finally:
        cam.close()
