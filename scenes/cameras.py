"""Camera geometry every world and engine shares: intrinsics, camera-to-world poses, projection,
and the matrices each renderer needs. Pure numpy; no engine.

Stored convention (OpenCV's): camera axes x right, y down, z forward (into the scene);
pixel coordinates (u, v) = (column, row) with integer values at pixel centres, so the
top-left pixel's centre is (0, 0) and the image spans [-0.5, W - 0.5] x [-0.5, H - 0.5].
World axes: z up, metres. ``camera_to_world`` maps camera coordinates to world coordinates.

- Perspective cameras: ``K = [[f, 0, cx], [0, f, cy], [0, 0, 1]]`` with ``f = (H / 2) /
  tan(fov / 2)`` (square pixels, vertical field of view) and ``cx = (W - 1) / 2``,
  ``cy = (H - 1) / 2``; a point X_c in camera coordinates lands at ``K @ X_c / z``.
- Orthographic cameras (``topdown``): ``K = [[s, 0, cx], [0, s, cy], [0, 0, 1]]`` with
  ``s = W / extent`` pixels per metre; a point lands at ``K @ (x, y, 1)`` (no division).

Depth images hold z in camera coordinates (metres along the optical axis), 0 where no
surface was hit. Blender's camera convention (and OpenGL's) is x right, y up, -z forward:
:func:`to_opengl` converts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

#: camera_to_world in OpenCV's convention -> in OpenGL's / Blender's (flip the y and z axes)
_CV_TO_GL = np.diag([1.0, -1.0, -1.0, 1.0])

#: Attributes stored with camera geometry arrays.
CONVENTION = ("opencv: camera x right, y down, z forward; pixel (u, v) = (column, row), integer at pixel "
              "centres; world z up, metres")


def look_at(eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0.0, 0.0, 1.0)) -> np.ndarray:
    """camera_to_world (4x4, OpenCV) of a camera at ``eye`` looking at ``target`` with ``up`` appearing up.

    Raises ValueError when eye and target coincide or ``up`` is parallel to the view direction.
    """
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    if np.linalg.norm(z) == 0:
        raise ValueError("camera position and look-at point coincide")
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    if np.linalg.norm(x) < 1e-9:
        raise ValueError("the up direction is parallel to the viewing direction")
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return m


def orbit_pose(azimuth: float, elevation: float, distance: float, target: Sequence[float]) -> np.ndarray:
    """camera_to_world of an orbit camera (degrees, metres): on a sphere around ``target``, looking at it.

    Up is the direction of increasing elevation, so the horizon stays level and a camera
    right above the target is well defined.
    """
    az, el = math.radians(azimuth), math.radians(elevation)
    t = np.asarray(target, dtype=np.float64)
    eye = t + distance * np.array([math.cos(el) * math.sin(az), -math.cos(el) * math.cos(az), math.sin(el)])
    up = (-math.sin(el) * math.sin(az), math.sin(el) * math.cos(az), math.cos(el))
    return look_at(eye, t, up)


def fit_orbit_distance(points: np.ndarray, target: Sequence[float], fov_deg: float = 40.0, margin: float = 0.06,
                       elevations: Sequence[float] = (15.0, 20.0, 25.0, 30.0),
                       azimuths: Sequence[float] = (0.0, 90.0, 180.0, 270.0),
                       bounds: tuple[float, float] = (0.1, 20.0), steps: int = 50) -> float:
    """Smallest orbit distance (m) at which every orbit camera around ``target`` sees all of ``points``.

    ``points`` (N, 3) are world points in metres (e.g. the corners of a box around everything a
    scene can draw); ``target`` (3,) the aim point (m). Each camera is an :func:`orbit_pose` at
    every pair of ``elevations`` x ``azimuths`` (degrees) with a square ``fov_deg`` (degrees)
    view; a point fits when it lies in front of the camera and ``margin`` (a share of the half
    image, 0..1) inside the view's edges. Per camera the distance is found by bisection
    (``steps`` halvings of ``bounds`` (m), keeping the upper end where the points fit); the
    largest over the cameras is returned, so the points fit in every one of them (to within
    ``(bounds[1] - bounds[0]) / 2**steps`` m).

    Raises ValueError when ``points`` is not (N, 3) or when they do not fit at ``bounds[1]``
    for some camera (e.g. ``target`` lies outside the field of view's reach).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ValueError(f"points must be an (N, 3) array of world points, got shape {pts.shape}")
    limit = math.tan(math.radians(fov_deg) / 2.0) * (1.0 - margin)

    def fits(az: float, el: float, d: float) -> bool:
        w2c = np.linalg.inv(orbit_pose(az, el, d, target))
        cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
        return bool(np.all(cam[:, 2] > 0) and np.all(np.abs(cam[:, :2]) <= limit * cam[:, 2:3]))

    worst = 0.0
    for el in elevations:
        for az in azimuths:
            lo, hi = bounds
            if not fits(az, el, hi):
                raise ValueError(f"the points do not fit the view of the orbit camera at azimuth {az:g}, elevation "
                                 f"{el:g} deg even at {hi:g} m")
            for _ in range(steps):  # bisection: the points fit at hi, not at lo
                d = 0.5 * (lo + hi)
                lo, hi = (lo, d) if fits(az, el, d) else (d, hi)
            worst = max(worst, hi)
    return worst


def box_frame(points: np.ndarray) -> tuple[tuple[float, float, float], float]:
    """Aim point and radius (m) framing world ``points`` (N, 3), in metres.

    Returns the centre of their axis-aligned bounding box as a tuple of three floats, and that
    box's half-diagonal (the radius of a ball around the centre that holds every point).
    """
    pts = np.asarray(points, dtype=np.float64)
    centre = 0.5 * (pts.min(0) + pts.max(0))
    return tuple(float(x) for x in centre), float(0.5 * np.linalg.norm(pts.max(0) - pts.min(0)))


def topdown_pose(center: Sequence[float], altitude: float) -> np.ndarray:
    """camera_to_world of a camera at ``altitude`` above ``center`` looking down, +y (north) up in the image."""
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2] = (1.0, 0.0, 0.0), (0.0, -1.0, 0.0), (0.0, 0.0, -1.0)
    m[:3, 3] = (float(center[0]), float(center[1]), float(altitude))
    return m


def pose_matrix(position: Sequence[float], quaternion_xyzw: Sequence[float]) -> np.ndarray:
    """A body's 4x4 pose (body to world) from its position (m) and unit quaternion (x, y, z, w)."""
    x, y, z, w = (float(c) for c in quaternion_xyzw)
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n if n > 0 else 0.0
    m = np.eye(4)
    m[:3, :3] = [
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ]
    m[:3, 3] = position
    return m


def perspective_intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """K (3x3) of a pinhole camera with vertical field of view ``fov_deg`` and square pixels."""
    f = 0.5 * height / math.tan(math.radians(fov_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def orthographic_intrinsics(width: int, height: int, extent: float) -> np.ndarray:
    """K (3x3) of an orthographic camera ``extent`` metres wide: pixels per metre on the diagonal."""
    s = width / extent
    return np.array([[s, 0.0, (width - 1) / 2.0], [0.0, s, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


def to_opengl(camera_to_world: np.ndarray) -> np.ndarray:
    """camera_to_world in OpenGL's / Blender's camera convention (x right, y up, -z forward)."""
    return np.asarray(camera_to_world) @ _CV_TO_GL


def project(points: np.ndarray, K: np.ndarray, camera_to_world: np.ndarray, orthographic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) -> pixel coordinates (N, 2) as (u, v) and depth (N,) = camera z in metres."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    w2c = np.linalg.inv(camera_to_world)
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    if orthographic:
        uv = cam[:, :2] * np.diag(K)[:2] + K[:2, 2]
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = cam[:, :2] / z[:, None] * np.diag(K)[:2] + K[:2, 2]
    return uv, z


def pixel_rays(K: np.ndarray, camera_to_world: np.ndarray, width: int, height: int,
               orthographic: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Ray origins and directions (H, W, 3) through every pixel centre, world frame.

    Perspective: one origin, directions with unit camera z (so depth = ray parameter).
    Orthographic: origins on the image plane, every direction the optical axis.
    """
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x = (u - K[0, 2]) / K[0, 0]
    y = (v - K[1, 2]) / K[1, 1]
    R, t = camera_to_world[:3, :3], camera_to_world[:3, 3]
    if orthographic:
        origins = np.stack([x, y, np.zeros_like(x)], axis=-1) @ R.T + t
        return origins, np.broadcast_to(R[:, 2], origins.shape).copy()
    dirs = np.stack([x, y, np.ones_like(x)], axis=-1) @ R.T
    return np.broadcast_to(t, dirs.shape).copy(), dirs


def opengl_view_matrix(camera_to_world: np.ndarray) -> list[float]:
    """World -> OpenGL camera matrix, column-major, as PyBullet's ``viewMatrix`` expects."""
    return [float(x) for x in np.linalg.inv(to_opengl(camera_to_world)).T.ravel()]


def opengl_projection(K: np.ndarray, width: int, height: int, near: float, far: float, orthographic: bool = False,
                      pixel_offset: tuple[float, float] = (0.0, 0.0)) -> list[float]:
    """The OpenGL projection (column-major) that maps camera points to the pixels ``K`` says.

    Pixel centres sit at integer (u, v); ``pixel_offset`` (pixels, +u right, +v down) moves the
    image for a rasteriser that samples elsewhere than pixel centres.
    """
    W, H = float(width), float(height)
    ox = 2.0 * (K[0, 2] + 0.5 + pixel_offset[0]) / W - 1.0
    oy = 1.0 - 2.0 * (K[1, 2] + 0.5 + pixel_offset[1]) / H
    P = np.zeros((4, 4))
    if orthographic:
        P[0, 0], P[0, 3] = 2.0 * K[0, 0] / W, ox
        P[1, 1], P[1, 3] = 2.0 * K[1, 1] / H, oy
        P[2, 2], P[2, 3] = -2.0 / (far - near), -(far + near) / (far - near)
        P[3, 3] = 1.0
    else:
        P[0, 0], P[0, 2] = 2.0 * K[0, 0] / W, -ox
        P[1, 1], P[1, 2] = 2.0 * K[1, 1] / H, -oy
        P[2, 2], P[2, 3] = -(far + near) / (far - near), -2.0 * far * near / (far - near)
        P[3, 2] = -1.0
    return [float(x) for x in P.T.ravel()]


def linear_depth(buffer: np.ndarray, near: float, far: float, orthographic: bool, background: np.ndarray) -> np.ndarray:
    """An OpenGL depth buffer in [0, 1] to camera z in metres (float32), 0.0 where ``background``."""
    d = np.asarray(buffer, dtype=np.float64)
    z = near + d * (far - near) if orthographic else near * far / (far - (far - near) * d)
    return np.where(np.asarray(background, dtype=bool), 0.0, z).astype(np.float32)


# --------------------------------------------------------------------------- a spec's cameras


@dataclass(frozen=True)
class CameraModel:
    """One resolved camera: size, intrinsics, and a fixed pose or a mount.

    ``K`` (3x3, pixels) per the module's convention; ``pose`` the fixed camera_to_world (4x4,
    OpenCV), or None for a mounted camera, whose pose is ``mount pose @ local`` (``follow:
    pose``) or the mount's position with ``local``'s rotation and offset (``follow: position``).
    """

    name: str
    kind: str
    width: int
    height: int
    K: np.ndarray
    orthographic: bool
    fov: float | None
    extent: tuple[float, float] | None
    near: float
    far: float
    pose: np.ndarray | None = None
    mount: str | None = None
    local: np.ndarray | None = None
    follow: str = "pose"

    def camera_to_world(self, mount_pose: np.ndarray | None = None) -> np.ndarray:
        """This camera's pose; ``mount_pose`` (4x4, body to world) is needed for a mounted camera."""
        if self.mount is None:
            return self.pose
        if mount_pose is None:
            raise ValueError(f"camera {self.name!r} is mounted on {self.mount!r}: its pose needs the mount's pose")
        if self.follow == "pose":
            return mount_pose @ self.local
        out = self.local.copy()
        out[:3, 3] += mount_pose[:3, 3]
        return out


@dataclass(frozen=True)
class CameraGroup:
    """Cameras of one size: they share the arrays named ``<output><suffix>`` and dims ``view<suffix>`` etc."""

    suffix: str
    width: int
    height: int
    indices: tuple[int, ...]

    def dims(self, *names: str) -> tuple[str, ...]:
        return tuple(f"{n}{self.suffix}" for n in names)


@dataclass(frozen=True)
class CameraRig:
    """A spec's cameras resolved against a world's framing: one :class:`CameraModel` per view.

    ``target`` and ``base_distance`` (m) frame orbit cameras; ``scene_radius`` (m) bounds the
    clip planes. Cameras of equal size form a :class:`CameraGroup`; the group of ``render.size``
    (or, when no camera has that size, the first camera's) has no suffix, the others are
    suffixed ``_<W>x<H>``.
    """

    cameras: tuple[CameraModel, ...]
    groups: tuple[CameraGroup, ...] = field(default=())

    @classmethod
    def from_settings(cls, render, target: Sequence[float], base_distance: float, scene_radius: float) -> "CameraRig":
        models = []
        for cam in render.cameras():
            w, h = render.camera_size(cam)
            if cam.kind == "topdown":
                extent = (float(cam.extent), float(cam.extent) * h / w)
                models.append(CameraModel(cam.name, cam.kind, w, h, orthographic_intrinsics(w, h, cam.extent), True, None,
                                          extent, 0.01, float(cam.altitude) + scene_radius,
                                          pose=topdown_pose(cam.center, cam.altitude)))
                continue
            K = perspective_intrinsics(w, h, cam.fov)
            if cam.kind == "orbit":
                d = cam.distance * base_distance
                pose = orbit_pose(cam.azimuth, cam.elevation, d, target)
                near, far = clip_planes(d, scene_radius)
                models.append(CameraModel(cam.name, cam.kind, w, h, K, False, cam.fov, None, near, far, pose=pose))
            elif cam.kind == "fixed":
                pose = look_at(cam.position, cam.look_at, cam.up)
                d = float(np.linalg.norm(np.subtract(cam.position, target)))
                near, far = clip_planes(d, scene_radius)
                models.append(CameraModel(cam.name, cam.kind, w, h, K, False, cam.fov, None, near, far, pose=pose))
            else:  # mounted
                local = look_at(cam.position, cam.look_at, cam.up)
                near, far = clip_planes(base_distance, scene_radius)
                models.append(CameraModel(cam.name, cam.kind, w, h, K, False, cam.fov, None, min(near, 0.01), far,
                                          mount=cam.mount, local=local, follow=cam.follow))
        return cls(tuple(models), _groups(models, (render.width, render.height)))

    def __len__(self) -> int:
        return len(self.cameras)

    @property
    def moving(self) -> bool:
        """Whether any camera is mounted (its pose changes every frame)."""
        return any(c.mount is not None for c in self.cameras)

    def intrinsics(self, group: CameraGroup) -> np.ndarray:
        """(views in group, 3, 3) float64."""
        return np.stack([self.cameras[i].K for i in group.indices])

    def poses(self, mount_poses: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
        """camera_to_world of every camera, (V, 4, 4) float64; mounted ones from ``mount_poses``."""
        mp = mount_poses or {}
        return np.stack([c.camera_to_world(mp.get(c.mount) if c.mount else None) for c in self.cameras])


def clip_planes(distance: float, scene_radius: float) -> tuple[float, float]:
    """Near and far planes (m) for a camera ``distance`` from a scene of ``scene_radius``."""
    near = max(0.01, min(0.1, 0.02 * distance))
    far = max(10.0, 2.0 * (distance + scene_radius))
    return near, far


def _groups(models: Sequence[CameraModel], default: tuple[int, int]) -> tuple[CameraGroup, ...]:
    """Cameras grouped by size, in view order; the group of ``render.size`` (else the first) has no suffix."""
    sizes: dict[tuple[int, int], list[int]] = {}
    for i, c in enumerate(models):
        sizes.setdefault((c.width, c.height), []).append(i)
    primary = default if default in sizes else next(iter(sizes))
    return tuple(CameraGroup("" if (w, h) == primary else f"_{w}x{h}", w, h, tuple(idx)) for (w, h), idx in sizes.items())
