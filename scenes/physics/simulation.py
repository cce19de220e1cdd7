"""PyBullet simulation of one physics scene (:class:`~.scene.Scene`): bodies, forces, temporal edits,
and the recorded state series. Rendering is not its business: a view (TinyRenderer or Blender)
observes each recorded frame through ``on_frame``.

Time: frame 0 is the initial state; frame t is the state after t / fps seconds, reached with
``substeps`` fixed steps of 1 / (fps * substeps) per frame. An edit at frame f is in force at frames
``f .. end - 1``: at a frame t >= 1 it acts on the steps that lead into frame t, and at frame 0 it
acts on the initial state before frame 0 is recorded (a velocity edit changes frame 0's velocity, the
positions follow from frame 1; a parameter edit is in force from the first step). So ``states[f]`` is
the first frame that can differ and ``states[:f]`` equal the unedited run bitwise, at every f >= 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from ..base import BatchEdit, WorldBatch
from ..engines import bullet as pb
from .scene import N_STATE, WALL_RGB, WALL_THICKNESS, WALL_WIDTH, Scene, Stage


@dataclass(frozen=True)
class Edit:
    """One edit of one sample, in frame terms: in force at frames ``start <= t < end`` (end None = open), i.e. for
    the steps into those frames and, with ``start`` 0, on the initial state before frame 0 is recorded.

    ``key``: ``("v", k, axis)`` (an impulse on object k's velocity), ``("gravity",)``,
    ``("friction",)``, ``("wind",)`` or ``("mass", k)``.
    """

    key: tuple
    op: str
    start: int
    end: int | None
    value: float


def apply_op(op: str, current: float, value: float) -> float:
    """``set`` / ``add`` / ``scale`` ``current`` by ``value``."""
    if op == "set":
        return value
    if op == "add":
        return current + value
    if op == "scale":
        return current * value
    raise ValueError(f"unknown edit op {op!r}; expected set, add or scale")


def _fold(base: float, edits: Sequence[Edit], t: int) -> float:
    v = base
    for e in edits:
        if e.start <= t and (e.end is None or t < e.end):
            v = apply_op(e.op, v, e.value)
    return v


def sample_edits(batch: WorldBatch, key_of: Callable[[BatchEdit], tuple]) -> list[list[Edit]]:
    """A batch's temporal edits per sample as :class:`Edit` (``start`` = the edit's frame, ``end`` None = open).

    ``key_of`` maps an edit to its :class:`Edit` key (and raises ValueError naming the target when the
    world cannot edit it). Raises ValueError for an unknown op, arrays not of shape (n,) or a
    non-finite value of an applied edit.
    """
    n = len(batch)
    per_sample: list[list[Edit]] = [[] for _ in range(n)]
    for e in batch.edits:
        key = key_of(e)
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
            per_sample[i].append(Edit(key, e.op, f, None if stop < 0 else stop, float(value[i])))
    return per_sample


class EditSchedule:
    """One sample's edits, grouped for the step loop: parameter edits by key, one-shot impulses by frame.

    A world puts frame t's edits into the simulator before the steps into frame t (t >= 1) and, for frame 0,
    before recording the initial state, so that frame 0 shows an edit at frame 0 like any frame f shows one at f.
    """

    def __init__(self, edits: Sequence[Edit]) -> None:
        self._by_key: dict[tuple, list[Edit]] = {}
        self._impulses: dict[int, list[Edit]] = {}
        for e in edits:
            self._by_key.setdefault(e.key, []).append(e)
            if e.key[0] == "v":
                self._impulses.setdefault(e.start, []).append(e)

    def __contains__(self, key: tuple) -> bool:
        return key in self._by_key

    def edits(self, key: tuple) -> Sequence[Edit]:
        """The edits of ``key`` in batch order (empty when none)."""
        return self._by_key.get(key, ())

    def value(self, base: float, key: tuple, t: int) -> float:
        """``base`` with the edits of ``key`` in force at frame ``t`` (for the steps into it; frame 0: the initial
        state) folded in, in batch order."""
        return _fold(base, self._by_key.get(key, ()), t)

    def kick(self, client: pb.BulletScene, bodies: Sequence[int], t: int) -> None:
        """Apply the velocity edits of frame ``t`` (set / add / scale one component of a body's linear velocity, m/s):
        before the steps into frame ``t``, or for ``t`` 0 on the initial state before frame 0 is recorded."""
        for e in self._impulses.get(t, ()):
            _, k, axis = e.key
            lin, ang = client.bc.getBaseVelocity(bodies[k])
            lin = list(lin)
            lin[axis] = apply_op(e.op, lin[axis], e.value)
            client.bc.resetBaseVelocity(bodies[k], linearVelocity=lin, angularVelocity=list(ang))

    def masses(self, client: pb.BulletScene, bodies: Sequence[int], shapes: Sequence[int], sizes: Sequence[float],
               base: Sequence[float], current: list[float], t: int) -> None:
        """Set each edited body's mass (kg, inertia of its solid shape rescaled) in force at frame ``t``; ``current``
        holds the masses in force and is updated. Raises ValueError when an edit makes a mass <= 0 or not finite."""
        for k, body in enumerate(bodies):
            if ("mass", k) not in self._by_key:
                continue
            m = _fold(base[k], self._by_key[("mass", k)], t)
            if m <= 0 or not math.isfinite(m):
                raise ValueError(f"temporal edit made obj[{k}].mass {m} at frame {t}; mass must stay > 0")
            if m != current[k]:
                client.set_mass(body, shapes[k], sizes[k], m)
                current[k] = m


@dataclass
class SampleSeries:
    """One simulated sample: states (T, 13 N), energy (T,) in joules, deepest penetration (m)."""

    states: np.ndarray
    energy: np.ndarray
    max_penetration: float


class Simulator:
    """One PyBullet DIRECT server that simulates scenes of a :class:`Stage`, one after another.

    Every sample starts from ``resetSimulation`` and rebuilds its bodies, so a sample's
    result never depends on the samples simulated before it.
    """

    def __init__(self, stage: Stage, fps: int, substeps: int, frames: int) -> None:
        self.stage = stage
        self.substeps, self.frames = int(substeps), int(frames)
        self.dt = 1.0 / (fps * substeps)
        self.client = pb.BulletScene()

    def build(self, scene: Scene) -> tuple[list[int], list[int], list[int]]:
        """Reset and create scenery and bodies; returns (ground ids, wall ids, object ids).

        The first ground id carries the collision plane; the others only draw.
        """
        c, st = self.client, self.stage
        c.reset(self.dt, scene.gravity)
        ground = c.add_ground(half_size=st.ground_half, tiles=st.ground_tiles, colors=st.ground_colors,
                              friction=scene.friction, restitution=scene.restitution, outer=st.ground_outer)
        walls = []
        if scene.wall is not None:
            x, h = scene.wall
            walls.append(c.add_static_box(half_extents=(0.5 * WALL_THICKNESS, 0.5 * WALL_WIDTH, 0.5 * h), position=(x, 0.0, 0.5 * h),
                                          rgb=WALL_RGB, friction=scene.friction, restitution=scene.restitution))
        bodies = [c.add_object(shape=b.shape, size=b.size, mass=b.mass, position=b.position, orientation=b.orientation,
                               velocity=b.velocity, rgb=b.rgb, friction=b.friction, restitution=b.restitution)
                  for b in scene.bodies]
        return ground, walls, bodies

    def run(self, scene: Scene, edits: Sequence[Edit],
            on_frame: Callable[[int, list[int], list[int], np.ndarray], None] | None = None) -> SampleSeries:
        """Simulate one scene; ``on_frame(t, static ids, body ids, states[t])`` sees every recorded frame."""
        c = self.client
        T, N = self.frames, len(scene.bodies)
        ground_ids, walls, bodies = self.build(scene)
        static = ground_ids + walls
        sched = EditSchedule(edits)

        cur_g, cur_fric = scene.gravity, None
        base_fric = [scene.friction] + [scene.friction] * len(walls) + [b.friction for b in scene.bodies]
        fric_bodies = [ground_ids[0]] + walls + bodies
        cur_mass = [b.mass for b in scene.bodies]
        states = np.zeros((T, N * N_STATE), dtype=np.float64)
        energy = np.zeros(T, dtype=np.float64)

        def record(t: int) -> None:
            e_tot = 0.0
            for k, body in enumerate(bodies):
                pos, quat, lin, ang = c.state(body)
                row = states[t, k * N_STATE:(k + 1) * N_STATE]
                row[0:3], row[3:7], row[7:10], row[10:13] = pos, quat, lin, ang
                b, m = scene.bodies[k], cur_mass[k]
                inertia = np.asarray(pb.inertia_diagonal(b.shape, b.size, m))
                w_body = pb.quaternion_matrix(quat).T @ np.asarray(ang, dtype=np.float64)
                v2 = lin[0] * lin[0] + lin[1] * lin[1] + lin[2] * lin[2]
                e_tot += 0.5 * m * v2 + 0.5 * float(inertia @ (w_body * w_body)) + m * cur_g * pos[2]
            energy[t] = e_tot
            if on_frame is not None:
                on_frame(t, static, bodies, states[t])

        shapes, sizes, masses0 = [b.shape for b in scene.bodies], [b.size for b in scene.bodies], [b.mass for b in scene.bodies]

        def put_edits(t: int) -> float:
            """Put the edits in force at frame ``t`` into the simulator (before the step into t; frame 0: before
            recording the initial state); returns the wind in force (m/s^2)."""
            nonlocal cur_g, cur_fric
            g = sched.value(scene.gravity, ("gravity",), t)
            if g != cur_g:
                c.set_gravity(g)
                cur_g = g
            fe = sched.edits(("friction",))
            if fe:
                fr = [_fold(f0, fe, t) for f0 in base_fric]
                if fr != cur_fric and (t > 0 or fr != base_fric):  # frame 0: only an edit in force sets them
                    for body, f in zip(fric_bodies, fr):
                        c.set_friction(body, f)
                    cur_fric = fr
            sched.masses(c, bodies, shapes, sizes, masses0, cur_mass, t)
            sched.kick(c, bodies, t)  # one-shot velocity edits at the start of frame t's step (frame 0: initial state)
            return sched.value(scene.wind, ("wind",), t)

        c.bc.performCollisionDetection()
        min_d = c.min_contact_distance()
        put_edits(0)
        record(0)
        forces = scene.drag > 0 or scene.wind != 0 or ("wind",) in sched
        for t in range(1, T):
            wind = put_edits(t)
            for _ in range(self.substeps):
                if forces:
                    self._apply_forces(bodies, cur_mass, wind, scene.drag)
                c.bc.stepSimulation()
                min_d = min(min_d, c.min_contact_distance())
            record(t)
        pen = 0.0 if not math.isfinite(min_d) else max(0.0, -min_d)
        return SampleSeries(states=states, energy=energy, max_penetration=pen)

    def _apply_forces(self, bodies: Sequence[int], masses: Sequence[float], wind: float, drag: float) -> None:
        """Wind (m/s^2 along +x, as a force m * wind) and quadratic drag (-drag |v| v, N)."""
        c = self.client
        frame = c.p.WORLD_FRAME
        for body, m in zip(bodies, masses):
            pos, _ = c.bc.getBasePositionAndOrientation(body)
            (vx, vy, vz), _ = c.bc.getBaseVelocity(body)
            speed = math.sqrt(vx * vx + vy * vy + vz * vz)
            f = [m * wind - drag * speed * vx, -drag * speed * vy, -drag * speed * vz]
            if f != [0.0, 0.0, 0.0]:
                c.bc.applyExternalForce(body, -1, f, list(pos), frame)

    def close(self) -> None:
        self.client.close()
