"""toy/pendulum: a controlled pendulum, simulated and rendered in numpy (no engine).

A bob of ``radius`` hangs on a rod of ``length`` from a pivot at ``PIVOT`` and swings in the
x-z plane under ``gravity`` with ``damping``; a controller pushes against the swing with
torque ``gain`` (rad/s^2) whenever |theta| exceeds ``THRESHOLD``: that decision is the
per-frame input ``torque``. Each render task takes one ``toy_slot`` custom resource (as a
CARLA world takes one server). The bob (a sphere, colour from ``hue``) and a checkered ground
are ray cast exactly through crlgen's camera model, so colour, depth and segmentation agree
with the stored camera geometry by construction. Mount point ``bob`` carries a camera.
"""

from __future__ import annotations

import colorsys
from pathlib import Path
from typing import ClassVar

import numpy as np

from crlgen.scenes import (Output, Rendered, Resources, Simulation, World, WorldBatch, WorldCheck, WorldInfo,
                           check_latent_values)
from crlgen.scenes.cameras import CameraRig, pixel_rays, pose_matrix
from crlgen.scenes.outputs import allocate, camera_outputs, declared_states, input_output, state_output

CATALOG = Path(__file__).resolve().parent / "catalog"
PIVOT = np.array([0.0, 0.0, 1.5])
THRESHOLD = 0.3
SUBSTEPS = 8
LIGHT = np.array([0.4, -0.6, 0.7]) / np.linalg.norm([0.4, -0.6, 0.7])
GROUND_ID, BOB_ID = 1, 2
RANGES = {"gravity": (1.0, 20.0), "length": (0.3, 1.2), "radius": (0.05, 0.2), "theta0": (-1.2, 1.2),
          "damping": (0.0, 2.0), "gain": (0.0, 20.0), "hue": (0.0, 1.0)}


def _swing_stays_bounded(world, batch: WorldBatch, sim: Simulation) -> list[str]:
    theta = sim.states[:, :, 0]
    return [f"sample {int(batch.index[i])}: the pendulum went over the top" for i in np.flatnonzero(np.abs(theta).max(1) > np.pi)]


class PendulumWorld(World):
    """toy/pendulum: see the module docstring."""

    info: ClassVar[WorldInfo] = WorldInfo(
        name="toy/pendulum", kind="video", engine="numpy", engines=("raycast",),
        description="A controlled pendulum, ray cast in numpy.",
        latents=("gravity", "length", "radius", "theta0", "damping", "gain"), optional_latents=("hue",),
        ranges=RANGES, states=("theta", "omega"), state_units={"theta": "rad", "omega": "rad/s"},
        inputs=("torque",), edit_targets=("gravity",), camera_kinds=("orbit", "fixed", "mounted", "topdown"),
        mounts=("bob",),
        # like a CARLA server: one "toy_slot" per task, so a cluster runs as many at once as it has slots
        resources=Resources(cpus=1.0, custom={"toy_slot": 1.0}),
    )
    checks = (WorldCheck("bounded", "the pendulum never swings over the top", _swing_stays_bounded),)

    @classmethod
    def rig(cls, spec) -> CameraRig:
        return CameraRig.from_settings(spec.render, (0.0, 0.0, 1.0), 3.0, 5.0)

    @classmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        out = camera_outputs(spec, cls.rig(spec), rgb="frames", segmentation_ids={0: "background", GROUND_ID: "ground", BOB_ID: "bob"})
        names = declared_states(spec, cls.info.states)
        if names:
            out.append(state_output(spec, names, cls.info.state_units))
        out.append(input_output(spec, cls.info.inputs, {"torque": "rad/s^2"}))
        return tuple(out)

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        self.fps, self.frames = spec.video.fps, spec.video.n_frames
        self._rays = [pixel_rays(c.K, c.pose, c.width, c.height, c.orthographic) if c.pose is not None else None
                      for c in self.rig.cameras]
        self._stored = [("theta", "omega").index(s) for s in declared_states(spec, self.info.states)]

    def simulate(self, batch: WorldBatch) -> Simulation:
        lat = {k: np.asarray(v, dtype=np.float64) for k, v in batch.latents.items()}
        check_latent_values(self.info, lat)
        n, T = len(batch), self.frames
        states, inputs = np.zeros((n, T, 2)), np.zeros((n, T, 1))
        dt = 1.0 / (self.fps * SUBSTEPS)
        for i in range(n):
            g, L = lat["gravity"][i], lat["length"][i]
            th, om = lat["theta0"][i], 0.0
            for t in range(T):
                for e in batch.edits:
                    if e.target == "gravity" and 0 <= e.frame[i] <= t and (e.end_frame[i] < 0 or t < e.end_frame[i]):
                        g = {"set": e.value[i], "add": lat["gravity"][i] + e.value[i], "scale": lat["gravity"][i] * e.value[i]}[e.op]
                u = -lat["gain"][i] * np.sign(om) if abs(th) > THRESHOLD else 0.0  # decided inside the simulation
                states[i, t], inputs[i, t, 0] = (th, om), u
                for _ in range(SUBSTEPS):
                    om += dt * (-g / L * np.sin(th) - lat["damping"][i] * om + u)
                    th += dt * om
        return Simulation(states, ("theta", "omega"), inputs, ("torque",))

    def render(self, batch: WorldBatch) -> Rendered:
        sim = self.simulate(batch)
        lat = {k: np.asarray(v, dtype=np.float64) for k, v in batch.latents.items()}
        n, T = len(batch), self.frames
        out = allocate(self._outputs, n)
        centres = np.zeros((n, T, 1, 3))
        for i in range(n):
            rgb = np.array(colorsys.hsv_to_rgb(float(lat.get("hue", np.full(n, 0.6))[i]), 0.8, 0.9))
            for t in range(T):
                th = sim.states[i, t, 0]
                c = PIVOT + lat["length"][i] * np.array([np.sin(th), 0.0, -np.cos(th)])
                centres[i, t, 0] = c
                bob_pose = pose_matrix(c, (0.0, np.sin(th / 2), 0.0, np.cos(th / 2)))
                poses = self.rig.poses({"bob": bob_pose})
                for g in self.rig.groups:
                    for j, v in enumerate(g.indices):
                        cam = self.rig.cameras[v]
                        o, d = self._rays[v] if cam.pose is not None else pixel_rays(cam.K, poses[v], cam.width, cam.height)
                        px, z, ids = _cast(o, d, poses[v], c, lat["radius"][i], rgb)
                        out[f"frames{g.suffix}"][i, t, j] = px
                        if f"depth{g.suffix}" in out:
                            out[f"depth{g.suffix}"][i, t, j] = z
                        if f"segmentation{g.suffix}" in out:
                            out[f"segmentation{g.suffix}"][i, t, j] = ids
                    out[f"camera_to_world{g.suffix}"][i, t] = poses[list(g.indices)]
        if "states" in out:
            out["states"][:] = sim.states[:, :, self._stored]
        out["inputs"][:] = sim.inputs
        radius = np.stack([lat["radius"], lat["radius"]], axis=-1)[:, None, :]
        return Rendered(out, landmarks=centres, landmark_ids=np.array([BOB_ID]), landmark_radius=radius, simulation=sim)


def _cast(origins: np.ndarray, dirs: np.ndarray, c2w: np.ndarray, centre: np.ndarray, r: float, rgb: np.ndarray):
    """Colour (uint8), depth (camera z, m) and ids of rays against the bob (a sphere) and the ground (z = 0)."""
    axis = c2w[:3, 2]
    oc = origins - centre
    a = np.einsum("...k,...k", dirs, dirs)
    b = 2.0 * np.einsum("...k,...k", dirs, oc)
    disc = b * b - 4.0 * a * (np.einsum("...k,...k", oc, oc) - r * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        s_bob = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a), np.inf)
        s_gnd = np.where(dirs[..., 2] < 0, -origins[..., 2] / dirs[..., 2], np.inf)
    s_bob = np.where(s_bob > 0, s_bob, np.inf)
    hit_bob = s_bob <= s_gnd
    s = np.where(hit_bob, s_bob, s_gnd)
    hit = np.isfinite(s)
    p = origins + np.where(hit, s, 0.0)[..., None] * dirs
    ids = np.where(hit, np.where(hit_bob, BOB_ID, GROUND_ID), 0).astype(np.uint8)
    normal = np.where(hit_bob[..., None], (p - centre) / r, np.array([0.0, 0.0, 1.0]))
    shade = 0.35 + 0.65 * np.clip(normal @ LIGHT, 0.0, 1.0)
    checker = ((np.floor(p[..., 0] / 0.25) + np.floor(p[..., 1] / 0.25)) % 2)[..., None]
    ground = np.where(checker > 0, 0.8, 0.6) * np.ones(3)
    colour = np.where(hit_bob[..., None], rgb, ground) * shade[..., None]
    colour = np.where(hit[..., None], colour, np.array([0.85, 0.9, 1.0]))
    depth = np.where(hit, (p - c2w[:3, 3]) @ axis, 0.0).astype(np.float32)
    return np.rint(255.0 * np.clip(colour, 0.0, 1.0)).astype(np.uint8), depth, ids
