"""Physics video worlds: N rigid objects simulated with PyBullet and filmed from every camera.

Three scenes share one simulator (:class:`PhysicsWorld`) and differ in framing,
scenery and which latents they require:

- ``physics/falling`` (:class:`FallingWorld`): objects dropped onto the ground;
  initial velocities and yaw are optional (default 0).
- ``physics/projectile`` (:class:`ProjectileWorld`): objects thrown along +x,
  optionally against a static wall (``wall.x``, ``wall.height``), with wind and
  quadratic drag.
- ``physics/collision`` (:class:`CollisionWorld`): objects sliding into each
  other on a table top; they start resting on it (``z0`` defaults to ``size``),
  and ``friction`` defaults to a slippery 0.1.

Latents (``batch.latents``; ``obj[i]`` for i = 0..N-1, N = the number of
``obj[i].mass`` entries):

- global: ``gravity`` (m/s^2 along -z), ``friction`` (lateral friction of the
  ground and default of the objects), ``restitution`` (ground, and default of
  the objects); optional ``light`` (intensity multiplier, 1), ``wind`` (m/s^2
  along +x, 0), ``drag`` (k in kg/m, force -k|v|v, 0), and for the projectile
  world ``wall.x`` / ``wall.height`` (a wall across x at ``wall.x``; no wall
  when absent or when the height is <= 0).
- per object: ``shape`` (0 sphere, 1 box, 2 cylinder), ``size`` (radius,
  half-extent, or radius with height 2*size), ``mass``, ``hue`` (colour, HSV
  with s=0.75, v=0.9), ``x0 y0 z0`` (centre), ``yaw0`` (rad), ``vx0 vy0 vz0``;
  optional ``restitution`` and ``friction`` overriding the globals. Bullet
  combines the two bodies' coefficients of a contact by multiplication.

States (``RenderOutput.states``, (n, T, 13 N) float64, see :func:`state_names`):
per object, in index order, ``x y z qx qy qz qw vx vy vz wx wy wz`` (centre,
orientation quaternion, linear and angular velocity, world frame). Frame 0 is
the initial state; frame t is the state after simulating t / fps seconds with
``substeps`` fixed steps of 1 / (fps * substeps) per frame.

Temporal edits (``batch.edits``): frame ``f`` (per sample, -1 = not applied)
acts on the steps that lead *into* frames ``max(f, 1) .. end - 1`` (``end``
exclusive, -1 = to the end), so ``states[f]`` is the first frame that can
differ and ``states[:f]`` equal the unedited run bitwise; an edit at frame 0
acts from the first step on (``states[0]`` is always the initial state).

- ``obj[i].vx|vy|vz``: instantaneous; at the start of frame f's step the
  velocity component is set / increased (an impulse) / scaled once;
  ``end_frame`` does not apply.
- ``gravity``, ``friction`` (every body's lateral friction), ``wind``,
  ``obj[i].mass`` (changeDynamics, inertia rescaled): the value is set / added /
  scaled while the edit is active and restored afterwards; several edits on one
  target fold in batch order.

Extras: ``max_penetration`` (n,) metres, the deepest contact seen over all
steps (and at the start, so overlapping initial placements show), 0 when no
contact penetrates (resting contacts typically sink ~1e-3 m); ``energy`` (n, T)
joules, sum over objects of 0.5 m v^2 + 0.5 w.I w + m g z (z of the centre,
current mass and gravity; I from the solid shape, the same inertia the
simulator uses).

Rendering: ``render.engine`` None or ``"tiny"`` draws each frame with PyBullet's
TinyRenderer as the simulation runs (no shadows: TinyRenderer's shadow map
only darkens a band of the ground); ``"cycles"`` simulates identically and
renders the recorded poses with Blender Cycles (soft sun shadows). Depth is
metres along the camera axis, 0 on the background; segmentation ids are 0
background, 1 ground and walls, i + 2 object i.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar, Mapping, Sequence

import numpy as np

from ..base import BatchEdit, RenderOutput, World, WorldBatch, WorldInfo
from ..engines import bullet as pb
from .scene import (
    AMBIENT, DIFFUSE, LIGHT_DIRECTION, N_STATE, SPECULAR, STATE_FIELDS, WALL_RGB, WALL_THICKNESS, WALL_WIDTH, Body, Scene, Stage,
)

OBJECT_FIELDS = ("shape", "size", "mass", "hue", "x0", "y0", "z0", "yaw0", "vx0", "vy0", "vz0")
GLOBAL_LATENTS = ("gravity", "friction", "restitution")
GLOBAL_OPTIONAL = ("light", "wind", "drag")
OBJECT_OPTIONAL = ("restitution", "friction")
WALL_LATENTS = ("wall.x", "wall.height")
EDIT_TARGETS = ("obj[i].vx", "obj[i].vy", "obj[i].vz", "obj[i].mass", "gravity", "friction", "wind")

_OBJ = re.compile(r"^obj\[(\d+)\]\.([A-Za-z_][A-Za-z0-9_]*)$")


def state_names(n_objects: int) -> tuple[str, ...]:
    """Names of the state columns for ``n_objects`` objects, in the order of ``RenderOutput.states``."""
    return tuple(f"obj[{i}].{f}" for i in range(int(n_objects)) for f in STATE_FIELDS)


def object_count(latents: Mapping[str, object]) -> int:
    """N: how many ``obj[i].mass`` latents there are (they must be obj[0] .. obj[N-1])."""
    idx = sorted(int(m.group(1)) for k in latents if (m := _OBJ.match(k)) and m.group(2) == "mass")
    if idx != list(range(len(idx))):
        raise KeyError(f"object latents must be numbered obj[0] .. obj[N-1]; found mass for objects {idx}")
    return len(idx)


# --------------------------------------------------------------------------- per-sample data


@dataclass(frozen=True)
class _Edit:
    """One edit of one sample, in step terms: active for steps ``start <= t < end`` (end None = open)."""

    key: tuple  # ("v", k, axis) | ("gravity",) | ("friction",) | ("wind",) | ("mass", k)
    op: str
    start: int
    end: int | None
    value: float


def _apply(op: str, current: float, value: float) -> float:
    if op == "set":
        return value
    if op == "add":
        return current + value
    if op == "scale":
        return current * value
    raise ValueError(f"unknown edit op {op!r}; expected set, add or scale")


def _fold(base: float, edits: Sequence[_Edit], t: int) -> float:
    v = base
    for e in edits:
        if e.start <= t and (e.end is None or t < e.end):
            v = _apply(e.op, v, e.value)
    return v


@dataclass
class _SampleResult:
    states: np.ndarray  # (T, 13 N)
    energy: np.ndarray  # (T,)
    max_penetration: float


# --------------------------------------------------------------------------- the worlds


def _info(name: str, description: str, *, optional: tuple[str, ...] = (), drop: tuple[str, ...] = ()) -> WorldInfo:
    required = GLOBAL_LATENTS + tuple(f"obj[i].{f}" for f in OBJECT_FIELDS)
    return WorldInfo(
        name=name,
        kind="video",
        engine="pybullet",
        engines=("tiny", "cycles"),
        description=description,
        latents=tuple(n for n in required if n not in drop),
        optional_latents=tuple(drop) + GLOBAL_OPTIONAL + tuple(f"obj[i].{f}" for f in OBJECT_OPTIONAL) + optional,
        states=tuple(f"obj[i].{f}" for f in STATE_FIELDS),
        edit_targets=EDIT_TARGETS,
        annotations=("depth", "segmentation"),
        requires=("pybullet",),
        engine_requires=(("cycles", ("bpy", "OpenEXR")),),
    )


class PhysicsWorld(World):
    """The shared simulator; subclasses set ``info``, the framing and the scenery.

    One PyBullet DIRECT client lives as long as the world. Every sample starts
    from ``resetSimulation`` and rebuilds its bodies, so a sample's result never
    depends on the samples simulated before it.
    """

    info: ClassVar[WorldInfo]
    #: Framing and scenery (camera aim point and distance, ground).
    STAGE: ClassVar[Stage] = Stage()
    #: Defaults of optional latents (per object without the ``obj[i].`` prefix).
    DEFAULTS: ClassVar[dict[str, float]] = {"light": 1.0, "wind": 0.0, "drag": 0.0}
    OBJECT_DEFAULTS: ClassVar[dict[str, float]] = {}
    HAS_WALL: ClassVar[bool] = False

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        rs = spec.render
        name = self.info.name
        if rs.engine not in (None, "tiny", "cycles"):
            raise ValueError(f"{name} renders with engine 'tiny' (PyBullet TinyRenderer) or 'cycles', got {rs.engine!r}")
        video = getattr(spec, "video", None)
        if video is None:
            raise ValueError(f"{name} renders videos; the spec needs `video: {{fps: 30, frames: 60}}`")
        self.engine = rs.engine or "tiny"
        self.fps, self.substeps, self.n_frames = int(video.fps), int(video.substeps), int(video.n_frames)
        self.dt = 1.0 / (self.fps * self.substeps)
        self.width, self.height = rs.width, rs.height
        self.want_depth = "depth" in rs.annotations
        self.want_seg = "segmentation" in rs.annotations
        self.cameras = rs.cameras()
        self.client = pb.BulletScene()
        self._cycles = None
        try:
            stage = self.STAGE
            self._views = []
            for cam in self.cameras:
                near, far = pb.clip_planes(cam.distance * stage.base_distance, stage.ground_outer)
                self._views.append((
                    self.client.view_matrix(cam, stage.base_distance, stage.target),
                    self.client.projection_matrix(cam.fov, self.width, self.height, near, far),
                    near, far,
                ))
            if self.engine == "cycles":
                from .cycles_view import CyclesView  # noqa: PLC0415 - Blender only when asked for

                self._cycles = CyclesView(self.STAGE, self.info.name, rs, threads)
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- latents

    def _scenes(self, batch: WorldBatch) -> list[Scene]:
        lat = {k: np.asarray(v, dtype=np.float64) for k, v in batch.latents.items()}
        n = len(batch)
        name = self.info.name
        n_obj = object_count(lat)
        if n_obj == 0:
            raise KeyError(f"{name} needs at least one object: latents obj[0].mass, obj[0].size, ...")
        if n_obj > pb.MAX_OBJECTS:
            raise ValueError(f"{name} supports at most {pb.MAX_OBJECTS} objects, got {n_obj}")
        wanted = [g for g in self.info.latents if not g.startswith("obj[")]
        for k in range(n_obj):
            wanted += [f"obj[{k}].{f}" for f in OBJECT_FIELDS if f"obj[i].{f}" in self.info.latents]
        missing = [w for w in wanted if w not in lat]
        if missing:
            raise KeyError(f"{name} needs latents {missing} (objects: {n_obj})")
        ours = set(GLOBAL_LATENTS + GLOBAL_OPTIONAL + WALL_LATENTS)
        for key, arr in lat.items():
            if key not in ours and not _OBJ.match(key):
                continue
            if arr.shape != (n,):
                raise ValueError(f"latent {key!r} has shape {arr.shape}, expected ({n},)")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"latent {key!r} has non-finite values")
        if self.HAS_WALL and (("wall.x" in lat) != ("wall.height" in lat)):
            raise KeyError(f"{name}: give both wall.x and wall.height, or neither")

        def glob(key: str) -> np.ndarray:
            if key in lat:
                return lat[key]
            return np.full(n, float(self.DEFAULTS[key]))

        def obj(k: int, f: str, default: np.ndarray | None = None) -> np.ndarray:
            key = f"obj[{k}].{f}"
            if key in lat:
                return lat[key]
            if f in self.OBJECT_DEFAULTS:
                return np.full(n, float(self.OBJECT_DEFAULTS[f]))
            if default is not None:
                return default
            raise KeyError(f"{name} needs latent {key!r}")

        g, fr, rest = glob("gravity"), glob("friction"), glob("restitution")
        light, wind, drag = glob("light"), glob("wind"), glob("drag")
        _check(g >= 0, "gravity must be >= 0 (it acts along -z)")
        _check(fr >= 0, "friction must be >= 0")
        _check(rest >= 0, "restitution must be >= 0")
        _check(drag >= 0, "drag must be >= 0")
        _check(light >= 0, "light must be >= 0")
        cols = []
        for k in range(n_obj):
            shape = obj(k, "shape")
            code = np.rint(shape)
            _check((np.abs(shape - code) < 1e-6) & np.isin(code, (0, 1, 2)), f"obj[{k}].shape must be 0 (sphere), 1 (box) or 2 (cylinder)")
            size, mass = obj(k, "size"), obj(k, "mass")
            _check(size > 0, f"obj[{k}].size must be > 0")
            _check(mass > 0, f"obj[{k}].mass must be > 0 (mass 0 would make the body static)")
            c = {
                "shape": code.astype(int), "size": size, "mass": mass, "hue": obj(k, "hue"),
                "x0": obj(k, "x0"), "y0": obj(k, "y0"), "z0": obj(k, "z0", default=size),
                "yaw0": obj(k, "yaw0"), "vx0": obj(k, "vx0"), "vy0": obj(k, "vy0"), "vz0": obj(k, "vz0"),
                "friction": obj(k, "friction", default=fr), "restitution": obj(k, "restitution", default=rest),
            }
            _check(c["friction"] >= 0, f"obj[{k}].friction must be >= 0")
            _check(c["restitution"] >= 0, f"obj[{k}].restitution must be >= 0")
            cols.append(c)
        out = []
        for i in range(n):
            wall = None
            if self.HAS_WALL and "wall.x" in lat and lat["wall.height"][i] > 0:
                wall = (float(lat["wall.x"][i]), float(lat["wall.height"][i]))
            bodies = tuple(
                Body(
                    shape=int(c["shape"][i]), size=float(c["size"][i]), mass=float(c["mass"][i]),
                    rgb=pb.hsv_to_rgb(c["hue"][i]),
                    position=(float(c["x0"][i]), float(c["y0"][i]), float(c["z0"][i])),
                    orientation=pb.yaw_quaternion(c["yaw0"][i]),
                    velocity=(float(c["vx0"][i]), float(c["vy0"][i]), float(c["vz0"][i])),
                    friction=float(c["friction"][i]), restitution=float(c["restitution"][i]),
                )
                for c in cols
            )
            out.append(Scene(
                gravity=float(g[i]), friction=float(fr[i]), restitution=float(rest[i]), light=float(light[i]),
                wind=float(wind[i]), drag=float(drag[i]), wall=wall, bodies=bodies,
            ))
        return out

    def _edits(self, batch: WorldBatch, n_obj: int) -> list[list[_Edit]]:
        n = len(batch)
        per_sample: list[list[_Edit]] = [[] for _ in range(n)]
        for e in batch.edits:
            key = self._edit_key(e, n_obj)
            if e.op not in ("set", "add", "scale"):
                raise ValueError(f"temporal edit on {e.target!r}: unknown op {e.op!r}; expected set, add or scale")
            frame = np.asarray(e.frame, dtype=np.int64)
            end = np.asarray(e.end_frame, dtype=np.int64)
            value = np.asarray(e.value, dtype=np.float64)
            for arr, what in ((frame, "frame"), (end, "end_frame"), (value, "value")):
                if arr.shape != (n,):
                    raise ValueError(f"temporal edit on {e.target!r}: {what} has shape {arr.shape}, expected ({n},)")
            for i in range(n):
                f = int(frame[i])
                if f < 0:
                    continue
                if not math.isfinite(float(value[i])):
                    raise ValueError(f"temporal edit on {e.target!r}: non-finite value for sample {i}")
                stop = int(end[i])
                per_sample[i].append(_Edit(key, e.op, max(f, 1), None if stop < 0 else stop, float(value[i])))
        return per_sample

    def _edit_key(self, e: BatchEdit, n_obj: int) -> tuple:
        t = e.target
        if t in ("gravity", "friction", "wind"):
            return (t,)
        m = _OBJ.match(t)
        if m and m.group(2) in ("vx", "vy", "vz", "mass"):
            k = int(m.group(1))
            if k >= n_obj:
                raise ValueError(f"temporal edit targets {t!r} but the batch has {n_obj} objects")
            if m.group(2) == "mass":
                return ("mass", k)
            return ("v", k, "xyz".index(m.group(2)[1]))
        raise ValueError(f"{self.info.name} cannot edit {t!r}; expected one of {', '.join(EDIT_TARGETS)} (i = object index)")

    # ---------------------------------------------------------------- simulation

    def _build(self, scene: Scene) -> tuple[list[int], list[int], list[int]]:
        """Reset the client and create scenery and bodies; returns (ground ids, wall ids, object ids).

        The first ground id carries the collision plane; the others only draw.
        """
        c = self.client
        c.reset(self.dt, scene.gravity)
        ground = c.add_ground(
            half_size=self.STAGE.ground_half, tiles=self.STAGE.ground_tiles, colors=self.STAGE.ground_colors,
            friction=scene.friction, restitution=scene.restitution, outer=self.STAGE.ground_outer,
        )
        walls = []
        if scene.wall is not None:
            x, h = scene.wall
            walls.append(c.add_static_box(
                half_extents=(0.5 * WALL_THICKNESS, 0.5 * WALL_WIDTH, 0.5 * h), position=(x, 0.0, 0.5 * h),
                rgb=WALL_RGB, friction=scene.friction, restitution=scene.restitution,
            ))
        bodies = [
            c.add_object(
                shape=b.shape, size=b.size, mass=b.mass, position=b.position, orientation=b.orientation,
                velocity=b.velocity, rgb=b.rgb, friction=b.friction, restitution=b.restitution,
            )
            for b in scene.bodies
        ]
        return ground, walls, bodies

    def _simulate_one(self, scene: Scene, edits: Sequence[_Edit], on_frame=None) -> _SampleResult:
        c = self.client
        T, N = self.n_frames, len(scene.bodies)
        ground_ids, walls, bodies = self._build(scene)
        static = ground_ids + walls
        ground = ground_ids[0]
        by_key: dict[tuple, list[_Edit]] = {}
        for e in edits:
            by_key.setdefault(e.key, []).append(e)
        impulses: dict[int, list[_Edit]] = {}
        for e in edits:
            if e.key[0] == "v":
                impulses.setdefault(e.start, []).append(e)

        cur_g, cur_wind, cur_fric = scene.gravity, scene.wind, None
        base_fric = [scene.friction] + [scene.friction] * len(walls) + [b.friction for b in scene.bodies]
        fric_bodies = [ground] + walls + bodies
        cur_mass = [b.mass for b in scene.bodies]

        states = np.zeros((T, N * N_STATE), dtype=np.float64)
        energy = np.zeros(T, dtype=np.float64)

        def record(t: int) -> None:
            e_tot = 0.0
            for k, body in enumerate(bodies):
                pos, quat, lin, ang = c.state(body)
                row = states[t, k * N_STATE:(k + 1) * N_STATE]
                row[0:3], row[3:7], row[7:10], row[10:13] = pos, quat, lin, ang
                b = scene.bodies[k]
                m = cur_mass[k]
                inertia = np.asarray(pb.inertia_diagonal(b.shape, b.size, m))
                w_body = pb.quaternion_matrix(quat).T @ np.asarray(ang, dtype=np.float64)
                v2 = lin[0] * lin[0] + lin[1] * lin[1] + lin[2] * lin[2]
                e_tot += 0.5 * m * v2 + 0.5 * float(inertia @ (w_body * w_body)) + m * cur_g * pos[2]
            energy[t] = e_tot
            if on_frame is not None:
                on_frame(t, static, bodies)

        c.bc.performCollisionDetection()
        min_d = c.min_contact_distance()
        record(0)
        forces = scene.drag > 0 or scene.wind != 0 or ("wind",) in by_key
        for t in range(1, T):
            # parameter edits in force for the step into frame t
            g = _fold(scene.gravity, by_key.get(("gravity",), ()), t)
            if g != cur_g:
                c.set_gravity(g)
                cur_g = g
            cur_wind = _fold(scene.wind, by_key.get(("wind",), ()), t)
            fe = by_key.get(("friction",), ())
            if fe:
                fr = [_fold(f0, fe, t) for f0 in base_fric]
                if fr != cur_fric:
                    for body, f in zip(fric_bodies, fr):
                        c.set_friction(body, f)
                    cur_fric = fr
            for k, b in enumerate(scene.bodies):
                me = by_key.get(("mass", k))
                if me:
                    m = _fold(b.mass, me, t)
                    if m <= 0 or not math.isfinite(m):
                        raise ValueError(f"temporal edit made obj[{k}].mass {m} at frame {t}; mass must stay > 0")
                    if m != cur_mass[k]:
                        c.set_mass(bodies[k], b.shape, b.size, m)
                        cur_mass[k] = m
            # one-shot velocity edits at the start of frame t's step
            for e in impulses.get(t, ()):
                _, k, axis = e.key
                lin, ang = c.bc.getBaseVelocity(bodies[k])
                lin = list(lin)
                lin[axis] = _apply(e.op, lin[axis], e.value)
                c.bc.resetBaseVelocity(bodies[k], linearVelocity=lin, angularVelocity=list(ang))
            for _ in range(self.substeps):
                if forces:
                    self._apply_forces(bodies, cur_mass, cur_wind, scene.drag)
                c.bc.stepSimulation()
                min_d = min(min_d, c.min_contact_distance())
            record(t)
        pen = 0.0 if not math.isfinite(min_d) else max(0.0, -min_d)
        return _SampleResult(states=states, energy=energy, max_penetration=pen)

    def _apply_forces(self, bodies: Sequence[int], masses: Sequence[float], wind: float, drag: float) -> None:
        c = self.client
        frame = c.p.WORLD_FRAME
        for body, m in zip(bodies, masses):
            pos, _ = c.bc.getBasePositionAndOrientation(body)
            (vx, vy, vz), _ = c.bc.getBaseVelocity(body)
            speed = math.sqrt(vx * vx + vy * vy + vz * vz)
            f = [m * wind - drag * speed * vx, -drag * speed * vy, -drag * speed * vz]
            if f != [0.0, 0.0, 0.0]:
                c.bc.applyExternalForce(body, -1, f, list(pos), frame)

    def _run(self, batch: WorldBatch, *, images: bool):
        scenes = self._scenes(batch)
        n, T, V = len(batch), self.n_frames, len(self._views)
        n_obj = len(scenes[0].bodies)
        edits = self._edits(batch, n_obj)
        H, W = self.height, self.width
        states = np.zeros((n, T, n_obj * N_STATE), dtype=np.float64)
        energy = np.zeros((n, T), dtype=np.float64)
        pen = np.zeros(n, dtype=np.float64)
        pixels = depth = seg = None
        if images:
            pixels = np.zeros((n, T, V, H, W, 3), dtype=np.uint8)
            depth = np.zeros((n, T, V, H, W), dtype=np.float32) if self.want_depth else None
            seg = np.zeros((n, T, V, H, W), dtype=np.uint8) if self.want_seg else None
        tiny = images and self._cycles is None
        for i, scene in enumerate(scenes):
            cb = None
            if tiny:
                cb = self._tiny_callback(scene, pixels[i], None if depth is None else depth[i], None if seg is None else seg[i])
            res = self._simulate_one(scene, edits[i], cb)
            states[i], energy[i], pen[i] = res.states, res.energy, res.max_penetration
            if images and self._cycles is not None:
                self._cycles.render_sample(
                    scene, res.states, pixels[i], None if depth is None else depth[i], None if seg is None else seg[i],
                )
        return states, energy, pen, pixels, depth, seg

    def _tiny_callback(self, scene: Scene, pixels: np.ndarray, depth: np.ndarray | None, seg: np.ndarray | None):
        c = self.client
        buffers = depth is not None or seg is not None
        lut_box: list[np.ndarray] = []
        diffuse, specular = DIFFUSE * scene.light, SPECULAR * scene.light

        def on_frame(t: int, static: list[int], bodies: list[int]) -> None:
            if not lut_box:
                ids = {b: pb.SCENERY_ID for b in static}
                ids.update({b: pb.FIRST_OBJECT_ID + k for k, b in enumerate(bodies)})
                lut_box.append(pb.segmentation_lut(ids))
            for j, (view, proj, near, far) in enumerate(self._views):
                rgb, dbuf, sbuf = c.render(
                    self.width, self.height, view, proj, light_direction=LIGHT_DIRECTION,
                    ambient=AMBIENT, diffuse=diffuse, specular=specular, buffers=buffers,
                )
                pixels[t, j] = rgb
                if buffers:
                    if depth is not None:
                        depth[t, j] = pb.linearize_depth(dbuf, near, far, background=sbuf < 0)
                    if seg is not None:
                        seg[t, j] = pb.map_segmentation(sbuf, lut_box[0])

        return on_frame

    # ---------------------------------------------------------------- public API

    def simulate(self, batch: WorldBatch, extras: bool = False):
        """State series only, no rendering: (n, T, 13 N) float64, bitwise equal to ``render(batch).states``.

        With ``extras``, also the plausibility series ``{"energy": (n, T), "max_penetration": (n,)}``.
        """
        states, energy, pen, *_ = self._run(batch, images=False)
        return (states, {"energy": energy, "max_penetration": pen}) if extras else states

    def render(self, batch: WorldBatch) -> RenderOutput:
        states, energy, pen, pixels, depth, seg = self._run(batch, images=True)
        return RenderOutput(
            pixels=pixels, depth=depth, segmentation=seg, states=states,
            extras={"max_penetration": pen, "energy": energy},
        )

    def close(self) -> None:
        cyc = getattr(self, "_cycles", None)
        if cyc is not None:
            cyc.close()
            self._cycles = None
        client = getattr(self, "client", None)
        if client is not None:
            client.close()
            self.client = None


def _check(ok: np.ndarray, message: str) -> None:
    ok = np.asarray(ok)
    if not np.all(ok):
        bad = np.flatnonzero(~ok)
        raise ValueError(f"{message}; violated by samples {bad[:5].tolist()}{' ...' if bad.size > 5 else ''}")


class FallingWorld(PhysicsWorld):
    """Objects dropped onto a grey checkered floor.

    Framed (ring views, 40 deg fov) for x0, y0 in [-0.6, 0.6] and tops up to ~1.8 m.
    """

    info: ClassVar[WorldInfo] = _info(
        "physics/falling",
        "N rigid objects (spheres, boxes, cylinders) fall under gravity onto the ground, bounce and settle.",
        drop=("obj[i].yaw0", "obj[i].vx0", "obj[i].vy0", "obj[i].vz0"),
    )
    STAGE = Stage(target=(0.0, 0.0, 0.7), base_distance=3.5)
    OBJECT_DEFAULTS = {"yaw0": 0.0, "vx0": 0.0, "vy0": 0.0, "vz0": 0.0}


class ProjectileWorld(PhysicsWorld):
    """Objects thrown along +x over a green field, optionally against a wall, with wind and drag.

    Framed (ring views, 40 deg fov) for x in [-1.6, 1.6] (front view) and apex below ~1.7 m.
    """

    info: ClassVar[WorldInfo] = _info(
        "physics/projectile",
        "N rigid objects are thrown along +x under gravity, wind and quadratic drag, optionally hit a wall, and land.",
        optional=WALL_LATENTS,
    )
    STAGE = Stage(target=(0.0, 0.0, 0.5), base_distance=5.0, ground_half=6.0, ground_tiles=24,
                  ground_colors=((0.70, 0.78, 0.66), (0.56, 0.64, 0.52)))
    HAS_WALL = True


class CollisionWorld(PhysicsWorld):
    """Objects sliding into each other on a slippery table top (framed for |x|, |y| <= ~0.9 m)."""

    info: ClassVar[WorldInfo] = _info(
        "physics/collision",
        "N rigid objects slide and collide on a low-friction table top; momentum passes between them on impact.",
        drop=("friction", "obj[i].z0", "obj[i].yaw0", "obj[i].vz0"),
    )
    STAGE = Stage(target=(0.0, 0.0, 0.05), base_distance=2.6, ground_half=3.0, ground_tiles=20,
                  ground_colors=((0.78, 0.70, 0.60), (0.66, 0.57, 0.47)))
    DEFAULTS = {**PhysicsWorld.DEFAULTS, "friction": 0.1}
    OBJECT_DEFAULTS = {"yaw0": 0.0, "vz0": 0.0}  # z0 defaults to size: resting on the table
