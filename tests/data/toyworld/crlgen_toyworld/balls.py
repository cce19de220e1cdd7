"""toy/balls: two balls resting on the ground, which must not start inside each other.

Ball k (k = 0, 1) of radius ``r{k}`` rests on the ground (z = 0) at ``(x{k}, 0, r{k})``. Two
balls whose centres are closer than the sum of their radii interpenetrate, a start no
physics engine can take: :meth:`BallsWorld.feasible` refuses it, so the pipeline redraws
such samples (the robotics worlds' "no initial interpenetration" in miniature). Rendered
by ray casting in numpy through crlgen's camera model (colour, depth, segmentation).
"""

from __future__ import annotations

import colorsys
from typing import ClassVar

import numpy as np

from crlgen.scenes import Output, Rendered, World, WorldBatch, WorldInfo, check_latent_values
from crlgen.scenes.cameras import CameraRig, pixel_rays
from crlgen.scenes.outputs import allocate, camera_outputs

GROUND_ID, BALL_IDS = 1, (2, 3)
LIGHT = np.array([0.4, -0.6, 0.7]) / np.linalg.norm([0.4, -0.6, 0.7])
RANGES = {"x0": (-1.0, 1.0), "x1": (-1.0, 1.0), "r0": (0.05, 0.4), "r1": (0.05, 0.4), "hue": (0.0, 1.0)}


def overlap(lat) -> np.ndarray:
    """How deep the two balls interpenetrate (m, > 0 where they do): r0 + r1 - |x0 - x1|, shape (n,)."""
    return lat["r0"] + lat["r1"] - np.abs(lat["x0"] - lat["x1"])


class BallsWorld(World):
    """toy/balls: see the module docstring."""

    info: ClassVar[WorldInfo] = WorldInfo(
        name="toy/balls", kind="image", engine="numpy", engines=("raycast",),
        description="Two balls on the ground that must not start inside each other, ray cast in numpy.",
        latents=("x0", "x1", "r0", "r1"), optional_latents=("hue",), ranges=RANGES, camera_kinds=("orbit", "fixed"),
    )

    @classmethod
    def rig(cls, spec) -> CameraRig:
        return CameraRig.from_settings(spec.render, (0.0, 0.0, 0.2), 3.0, 5.0)

    @classmethod
    def outputs(cls, spec) -> tuple[Output, ...]:
        ids = {0: "background", GROUND_ID: "ground", BALL_IDS[0]: "ball0", BALL_IDS[1]: "ball1"}
        return tuple(camera_outputs(spec, cls.rig(spec), rgb="images", segmentation_ids=ids))

    def __init__(self, spec, threads: int = 0) -> None:
        super().__init__(spec, threads)
        self.rig = type(self).rig(spec)
        self._outputs = type(self).outputs(spec)
        self._rays = [pixel_rays(c.K, c.pose, c.width, c.height, c.orthographic) for c in self.rig.cameras]

    def feasible(self, batch: WorldBatch) -> np.ndarray:
        """True where the balls do not interpenetrate (touching is allowed), shape (n,) bool."""
        return overlap(self._latents(batch)) <= 0.0

    def explain_infeasible(self, batch: WorldBatch) -> list[str]:
        depth = overlap(self._latents(batch))
        return [f"ball 0 and ball 1 interpenetrate by {d:.3f} m" if d > 0 else "" for d in depth]

    def _latents(self, batch: WorldBatch) -> dict[str, np.ndarray]:
        lat = {k: np.asarray(v, dtype=np.float64) for k, v in batch.latents.items()}
        check_latent_values(self.info, lat)
        return lat

    def render(self, batch: WorldBatch) -> Rendered:
        lat = self._latents(batch)
        n = len(batch)
        out = allocate(self._outputs, n)
        centres = np.zeros((n, 1, 2, 3))
        for i in range(n):
            hue = float(lat.get("hue", np.full(n, 0.1))[i])
            balls = [(np.array([lat[f"x{k}"][i], 0.0, lat[f"r{k}"][i]]), lat[f"r{k}"][i],
                      np.array(colorsys.hsv_to_rgb((hue + 0.5 * k) % 1.0, 0.8, 0.9))) for k in (0, 1)]
            centres[i, 0] = [b[0] for b in balls]
            for g in self.rig.groups:
                for j, v in enumerate(g.indices):
                    cam = self.rig.cameras[v]
                    px, z, ids = _cast(*self._rays[v], cam.pose, balls)
                    out[f"images{g.suffix}"][i, j] = px
                    if f"depth{g.suffix}" in out:
                        out[f"depth{g.suffix}"][i, j] = z
                    if f"segmentation{g.suffix}" in out:
                        out[f"segmentation{g.suffix}"][i, j] = ids
                out[f"camera_to_world{g.suffix}"][i] = np.stack([self.rig.cameras[v].pose for v in g.indices])
        radius = np.stack([lat["r0"], lat["r1"]], axis=-1)
        return Rendered(out, landmarks=centres, landmark_ids=np.array(BALL_IDS),
                        landmark_radius=np.stack([radius, radius], axis=-1))


def _cast(origins: np.ndarray, dirs: np.ndarray, c2w: np.ndarray, balls):
    """Colour (uint8), depth (camera z, m) and ids of rays against the balls and the ground (z = 0)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(dirs[..., 2] < 0, -origins[..., 2] / dirs[..., 2], np.inf)
    ids = np.where(np.isfinite(s), GROUND_ID, 0)
    a = np.einsum("...k,...k", dirs, dirs)
    for (centre, r, _), bid in zip(balls, BALL_IDS):
        oc = origins - centre
        b = 2.0 * np.einsum("...k,...k", dirs, oc)
        disc = b * b - 4.0 * a * (np.einsum("...k,...k", oc, oc) - r * r)
        with np.errstate(invalid="ignore"):
            sb = np.where(disc >= 0, (-b - np.sqrt(np.maximum(disc, 0.0))) / (2.0 * a), np.inf)
        sb = np.where(sb > 0, sb, np.inf)
        nearer = sb < s
        s, ids = np.where(nearer, sb, s), np.where(nearer, bid, ids)
    hit = np.isfinite(s)
    p = origins + np.where(hit, s, 0.0)[..., None] * dirs
    normal = np.broadcast_to(np.array([0.0, 0.0, 1.0]), p.shape).copy()
    colour = np.where(((np.floor(p[..., 0] / 0.25) + np.floor(p[..., 1] / 0.25)) % 2)[..., None] > 0, 0.8, 0.6) * np.ones(3)
    for (centre, r, rgb), bid in zip(balls, BALL_IDS):
        on = ids == bid
        normal[on] = (p[on] - centre) / r
        colour[on] = rgb
    shade = 0.35 + 0.65 * np.clip(np.einsum("...k,k", normal, LIGHT), 0.0, 1.0)
    colour = np.where(hit[..., None], colour * shade[..., None], np.array([0.85, 0.9, 1.0]))
    depth = np.where(hit, (p - c2w[:3, 3]) @ c2w[:3, 2], 0.0).astype(np.float32)
    return np.rint(255.0 * np.clip(colour, 0.0, 1.0)).astype(np.uint8), depth, ids.astype(np.uint8)
