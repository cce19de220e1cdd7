"""PyBullet helpers shared by the physics worlds.

Nothing here imports ``pybullet`` at module import time: :class:`BulletScene`
imports it (silenced: its C module prints a banner) when it connects, so importing
this module stays cheap and works where PyBullet is not installed. The pure helpers (colours,
inertia, quaternions, depth linearisation, segmentation mapping) need numpy only.

Conventions:

- z is up, the ground is the plane z = 0, gravity acts along -z;
- shapes are coded 0 = sphere (radius ``size``), 1 = box (half-extent ``size``
  on every axis), 2 = cylinder (radius ``size``, height ``2 * size``, axis along
  the body's z); every shape therefore rests upright with its centre at
  z = ``size``;
- quaternions are (x, y, z, w), PyBullet's order;
- instance ids in segmentation: 0 background, 1 ground and other static
  scenery, ``i + 2`` for object ``i``.
"""

from __future__ import annotations

import colorsys
import math
import weakref
from typing import Sequence

import numpy as np

from .quiet import quiet_output, require

SPHERE, BOX, CYLINDER = 0, 1, 2
SHAPE_NAMES = ("sphere", "box", "cylinder")

BACKGROUND_ID = 0
SCENERY_ID = 1
FIRST_OBJECT_ID = 2
#: Most objects a segmentation map (uint8) can tell apart.
MAX_OBJECTS = 255 - FIRST_OBJECT_ID

#: Saturation and value of object colours (hue comes from the latent).
OBJECT_SATURATION = 0.75
OBJECT_VALUE = 0.9


def require_pybullet():
    """Import (silenced) and return ``pybullet``, or raise :class:`~crlgen.scenes.engines.EngineMissing` naming ``crlgen[bullet]``."""
    return require("pybullet", quiet=True)


# --------------------------------------------------------------------------- pure helpers


def hsv_to_rgb(h: float, s: float = OBJECT_SATURATION, v: float = OBJECT_VALUE) -> tuple[float, float, float]:
    """An HSV colour (hue wraps around 1) as sRGB components in [0, 1]."""
    return colorsys.hsv_to_rgb(float(h) % 1.0, min(max(float(s), 0.0), 1.0), min(max(float(v), 0.0), 1.0))


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """Rotation by ``yaw`` radians about +z as (x, y, z, w)."""
    half = 0.5 * float(yaw)
    return (0.0, 0.0, math.sin(half), math.cos(half))


def inertia_diagonal(shape: int, size: float, mass: float) -> tuple[float, float, float]:
    """Principal moments of inertia (kg m^2) of a solid shape about its centre, body axes."""
    m, s = float(mass), float(size)
    if shape == SPHERE:
        i = 0.4 * m * s * s
        return (i, i, i)
    if shape == BOX:  # cube of side 2s: m (2s)^2 / 6
        i = 2.0 / 3.0 * m * s * s
        return (i, i, i)
    if shape == CYLINDER:  # radius s, height 2s
        ixy = m * (3.0 * s * s + 4.0 * s * s) / 12.0
        return (ixy, ixy, 0.5 * m * s * s)
    raise ValueError(f"unknown shape code {shape}; expected 0 (sphere), 1 (box) or 2 (cylinder)")


def quaternion_matrix(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation matrix (body to world) of an (x, y, z, w) quaternion."""
    x, y, z, w = (float(c) for c in q)
    n = x * x + y * y + z * z + w * w
    s = 2.0 / n if n > 0 else 0.0
    return np.array([
        [1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w)],
        [s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w)],
        [s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y)],
    ])


def segmentation_lut(body_ids: dict[int, int]) -> np.ndarray:
    """Lookup table from PyBullet body id + 1 (-1 = background) to instance id (uint8)."""
    size = max(body_ids, default=-1) + 2
    lut = np.zeros(size, dtype=np.uint8)
    for body, inst in body_ids.items():
        lut[body + 1] = inst
    return lut


def map_segmentation(seg: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """A PyBullet segmentation buffer (body ids, -1 background) as uint8 instance ids.

    Bodies missing from ``lut`` map to 0 (the buffer holds plain body ids
    because no ``ER_SEGMENTATION_MASK_OBJECT_AND_LINKINDEX`` flag is used).
    """
    s = np.asarray(seg, dtype=np.int64) + 1
    s = np.where((s < 0) | (s >= lut.shape[0]), 0, s)
    return lut[s]


def checker_mesh(half_size: float, tiles: int, parity: int) -> tuple[list, list]:
    """Vertices and triangle indices of the ``parity`` squares of a tiles x tiles checker at z = 0."""
    step = 2.0 * half_size / tiles
    verts: list[list[float]] = []
    idx: list[int] = []
    for i in range(tiles):
        for j in range(tiles):
            if (i + j) % 2 != parity:
                continue
            x0, y0 = -half_size + i * step, -half_size + j * step
            b = len(verts)
            verts += [[x0, y0, 0.0], [x0 + step, y0, 0.0], [x0 + step, y0 + step, 0.0], [x0, y0 + step, 0.0]]
            idx += [b, b + 1, b + 2, b, b + 2, b + 3]
    return verts, idx


def frame_mesh(inner: float, outer: float) -> tuple[list, list]:
    """Vertices and triangles of the square band between half sides ``inner`` and ``outer`` at z = 0."""
    a, b = float(inner), float(outer)
    rects = [(-b, -b, b, -a), (-b, a, b, b), (-b, -a, -a, a), (a, -a, b, a)]  # (x0, y0, x1, y1)
    verts: list[list[float]] = []
    idx: list[int] = []
    for x0, y0, x1, y1 in rects:
        k = len(verts)
        verts += [[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]]
        idx += [k, k + 1, k + 2, k, k + 2, k + 3]
    return verts, idx


# --------------------------------------------------------------------------- the client


class BulletScene:
    """A private PyBullet physics server (DIRECT mode) with the helpers the worlds share.

    Each world owns one, so several worlds can share a process without touching
    each other's bodies. ``bc`` is a :class:`pybullet_utils.bullet_client.BulletClient`
    (every ``pybullet`` function, bound to this server); ``p`` is the ``pybullet``
    module, for its constants.
    """

    def __init__(self) -> None:
        self.p = require_pybullet()
        from pybullet_utils import bullet_client  # noqa: PLC0415 - ships with pybullet

        with quiet_output((1,)):  # connect prints the (empty) option list it parses
            self.bc = bullet_client.BulletClient(connection_mode=self.p.DIRECT)
        if not self.bc.isConnected():
            raise RuntimeError("could not start a PyBullet DIRECT client")
        # disconnect while pybullet still exists, also for a scene nobody closed (interpreter exit)
        self._finalizer = weakref.finalize(self, _disconnect, self.bc)
        self._ground_meshes: dict[tuple, list] = {}

    # ---------------------------------------------------------------- world setup

    def reset(self, dt: float, gravity: float) -> None:
        """Empty the world and set the fixed time step (one internal step per call) and gravity."""
        self.bc.resetSimulation()
        self.bc.setPhysicsEngineParameter(fixedTimeStep=float(dt), numSubSteps=1, deterministicOverlappingPairs=1)
        self.set_gravity(gravity)

    def set_gravity(self, g: float) -> None:
        self.bc.setGravity(0.0, 0.0, -float(g))

    def _dynamics(self, body: int, *, friction: float, restitution: float, **extra) -> None:
        # contactProcessingThreshold 0: no speculative contacts. Bullet's default (0.02 m) solves a contact
        # while the bodies are still apart, and its solver drops restitution on a contact older than two
        # steps (btContactSolverInfo.m_restingContactRestitutionThreshold), so a slow impact (a drop at
        # lunar gravity) did not bounce at all and a fast one bounced less than the coefficient says.
        # Without them a ball bounces at every impact speed, its rebound speed within 0.12 of the contact
        # restitution times its impact speed (a little above: the contact's penetration correction adds
        # some); tests/scenes/test_physics_worlds.py drops a 30 kg ball at lunar and Earth gravity.
        self.bc.changeDynamics(
            body, -1, lateralFriction=float(friction), restitution=float(restitution),
            rollingFriction=0.0, spinningFriction=0.0, contactProcessingThreshold=0.0, **extra,
        )

    def add_ground(
        self, *, half_size: float, tiles: int, colors: Sequence[Sequence[float]], friction: float, restitution: float,
        outer: float = 0.0,
    ) -> list[int]:
        """An infinite static collision plane at z = 0 drawn as a finite checkerboard.

        ``outer`` > ``half_size`` adds a plain band (the mean tile colour) out to
        that half side, so the ground reaches the horizon for a few triangles.
        Returns the body ids: the first carries the collision plane, the others
        only draw.
        """
        p = self.p
        plane = self.bc.createCollisionShape(p.GEOM_PLANE)
        key = (float(half_size), int(tiles), float(outer), tuple(map(tuple, colors)))
        if key not in self._ground_meshes:
            # pybullet keeps a reference to every vertex/index/normal list it is handed (measured: 0.2 MB per
            # ground rebuilt after resetSimulation), so each world builds the lists once and passes the same objects
            meshes = [checker_mesh(half_size, tiles, parity) for parity in (0, 1)]
            rgbs = [tuple(colors[0][:3]), tuple(colors[1][:3])]
            if outer > half_size:
                meshes.append(frame_mesh(half_size, outer))
                rgbs.append(tuple(0.5 * (a + b) for a, b in zip(colors[0][:3], colors[1][:3])))
            self._ground_meshes[key] = [(v, i, [[0.0, 0.0, 1.0]] * len(v), (*rgb, 1.0)) for (v, i), rgb in zip(meshes, rgbs)]
        bodies = []
        for k, (verts, idx, normals, rgba) in enumerate(self._ground_meshes[key]):
            vis = self.bc.createVisualShape(p.GEOM_MESH, vertices=verts, indices=idx, normals=normals, rgbaColor=rgba)
            bodies.append(self.bc.createMultiBody(0.0, plane if k == 0 else -1, vis))
        self._dynamics(bodies[0], friction=friction, restitution=restitution)
        return bodies

    def add_static_box(
        self, *, half_extents: Sequence[float], position: Sequence[float], rgb: Sequence[float],
        friction: float, restitution: float,
    ) -> int:
        p = self.p
        col = self.bc.createCollisionShape(p.GEOM_BOX, halfExtents=[float(h) for h in half_extents])
        vis = self.bc.createVisualShape(p.GEOM_BOX, halfExtents=[float(h) for h in half_extents], rgbaColor=(*rgb[:3], 1.0))
        body = self.bc.createMultiBody(0.0, col, vis, basePosition=[float(c) for c in position])
        self._dynamics(body, friction=friction, restitution=restitution)
        return body

    def add_object(
        self, *, shape: int, size: float, mass: float, position: Sequence[float], orientation: Sequence[float],
        velocity: Sequence[float], rgb: Sequence[float], friction: float, restitution: float,
    ) -> int:
        """A dynamic rigid body; no damping, no rolling/spinning friction, never sleeps."""
        p = self.p
        s = float(size)
        if shape == SPHERE:
            col = self.bc.createCollisionShape(p.GEOM_SPHERE, radius=s)
            vis = self.bc.createVisualShape(p.GEOM_SPHERE, radius=s, rgbaColor=(*rgb[:3], 1.0))
        elif shape == BOX:
            col = self.bc.createCollisionShape(p.GEOM_BOX, halfExtents=[s, s, s])
            vis = self.bc.createVisualShape(p.GEOM_BOX, halfExtents=[s, s, s], rgbaColor=(*rgb[:3], 1.0))
        elif shape == CYLINDER:
            col = self.bc.createCollisionShape(p.GEOM_CYLINDER, radius=s, height=2.0 * s)
            vis = self.bc.createVisualShape(p.GEOM_CYLINDER, radius=s, length=2.0 * s, rgbaColor=(*rgb[:3], 1.0))
        else:
            raise ValueError(f"unknown shape code {shape}; expected 0 (sphere), 1 (box) or 2 (cylinder)")
        body = self.bc.createMultiBody(
            float(mass), col, vis, basePosition=[float(c) for c in position], baseOrientation=[float(c) for c in orientation],
        )
        self._dynamics(
            body, friction=friction, restitution=restitution,
            linearDamping=0.0, angularDamping=0.0,
            localInertiaDiagonal=list(inertia_diagonal(shape, s, mass)),
            activationState=p.ACTIVATION_STATE_DISABLE_SLEEPING,
        )
        self.bc.resetBaseVelocity(body, linearVelocity=[float(v) for v in velocity], angularVelocity=[0.0, 0.0, 0.0])
        return body

    def set_mass(self, body: int, shape: int, size: float, mass: float) -> None:
        self.bc.changeDynamics(body, -1, mass=float(mass), localInertiaDiagonal=list(inertia_diagonal(shape, size, mass)))

    def set_friction(self, body: int, friction: float) -> None:
        self.bc.changeDynamics(body, -1, lateralFriction=float(friction))

    # ---------------------------------------------------------------- state

    def state(self, body: int) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
        """(position, orientation xyzw, linear velocity, angular velocity), world frame."""
        pos, quat = self.bc.getBasePositionAndOrientation(body)
        lin, ang = self.bc.getBaseVelocity(body)
        return pos, quat, lin, ang

    def min_contact_distance(self) -> float:
        """Smallest signed distance over all current contact points (negative = penetration); +inf if none."""
        pts = self.bc.getContactPoints()
        if not pts:
            return math.inf
        return float(min(pt[8] for pt in pts))

    # ---------------------------------------------------------------- rendering

    def render(
        self, width: int, height: int, view, projection, *, light_direction: Sequence[float],
        ambient: float, diffuse: float, specular: float, buffers: bool,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """TinyRenderer image: (rgb uint8 HxWx3, depth buffer HxW | None, body-id buffer HxW | None).

        ``buffers`` asks for the depth and segmentation buffers too (the
        segmentation buffer is needed to tell the background apart in depth).
        No shadows: TinyRenderer's shadow map only darkens a band of the ground.
        """
        p = self.p
        flags = 0 if buffers else p.ER_NO_SEGMENTATION_MASK
        w, h, rgba, depth, seg = self.bc.getCameraImage(
            int(width), int(height), viewMatrix=view, projectionMatrix=projection, renderer=p.ER_TINY_RENDERER, flags=flags, shadow=0,
            lightDirection=[float(c) for c in light_direction], lightColor=[1.0, 1.0, 1.0],
            lightAmbientCoeff=float(ambient), lightDiffuseCoeff=float(diffuse), lightSpecularCoeff=float(specular),
        )
        rgb = np.asarray(rgba, dtype=np.uint8).reshape(h, w, 4)[..., :3].copy()
        if not buffers:
            return rgb, None, None
        return rgb, np.asarray(depth, dtype=np.float32).reshape(h, w), np.asarray(seg, dtype=np.int64).reshape(h, w)

    # ---------------------------------------------------------------- lifetime

    def close(self) -> None:
        """Disconnect the server; calling it again does nothing."""
        self._finalizer()


def _disconnect(bc) -> None:
    if bc.isConnected():
        bc.disconnect()
