"""Does each physics scene show what it is about? Framing and interactions, without rendering.

For each catalogue scene: sample N samples with the spec's sampler, simulate them with the
scene's world (the same state series the renderer films), and project every object through the
spec's cameras (the stored intrinsics K and camera-to-world). Reports, per scene:

- in view: the share of samples whose every object stays wholly inside a view's image at every
  frame (a ball of radius size around its centre), per view and for all views at once;
- at t = 0: the same at the first frame only (the issue-10 finding: objects cut at the border);
- size px: the median and 10th percentile of an object's projected diameter (px);
- contact: for scenes with 2+ objects, the share of samples in which some two objects come
  within 1 cm of touching at a frame, or close enough to touch before the next one at their
  relative speed (centres closer than their reaches: a sphere's or cylinder's radius, a box's
  half diagonal): an upper bound on the share with a collision;
- travel: the 90th percentile of the largest |x| / |y| an object reaches (m).

    python benchmarks/framing.py [--samples 200] [physics/collision_simple ...]

It is an instrument for issue 10's "framing that keeps every object in view, interactions that
always happen", used before spending a probe run; no timing is involved.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
DEFAULT = ("physics/falling_simple", "physics/falling_complex", "physics/projectile_simple",
           "physics/projectile_complex", "physics/collision_simple", "physics/collision_complex")


def analyse(scene, samples: int) -> dict:
    """The framing and interaction figures of one catalogue scene name or ``DatasetSpec`` (see the module docstring)."""
    from crlgen.pipeline import CompiledSCM, load_spec
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes.cameras import project
    from crlgen.scenes.registry import build_world

    spec = (load_spec(scene) if isinstance(scene, str) else scene).replace(samples=samples)
    scene = scene if isinstance(scene, str) else spec.name
    model = CompiledSCM(spec)
    batch = model.sample(0, samples)
    with build_world(spec) as world:
        rig = type(world).rig(spec)
        if rig.moving:
            raise SystemExit(f"{scene}: mounted cameras move; this tool handles fixed ones")
        sim = world.simulate(world_batch(model, batch))
    n, T = sim.states.shape[:2]
    n_obj = sim.states.shape[2] // 13
    centres = sim.states.reshape(n, T, n_obj, 13)[..., 0:3]  # (n, T, N, 3) m
    sizes = np.stack([batch.column(f"obj[{k}].size") for k in range(n_obj)], axis=1)  # (n, N) m
    inside = np.ones((len(rig.cameras), n, T, n_obj), bool)
    diam = []
    for v, cam in enumerate(rig.cameras):
        pose = cam.camera_to_world()
        pts = centres.reshape(-1, 3)
        uv, z = project(pts, cam.K, pose, cam.orthographic)
        r = np.repeat(sizes[:, None, :], T, axis=1).reshape(-1)
        rad_px = r * cam.K[0, 0] / np.maximum(z, 1e-6) if not cam.orthographic else r * cam.K[0, 0]
        ok = (z > 0) & (uv[:, 0] - rad_px >= -0.5) & (uv[:, 0] + rad_px <= cam.width - 0.5) \
            & (uv[:, 1] - rad_px >= -0.5) & (uv[:, 1] + rad_px <= cam.height - 0.5)
        inside[v] = ok.reshape(n, T, n_obj)
        diam.append(2 * rad_px.reshape(n, T, n_obj)[:, 0])
    diam = np.stack(diam)  # (V, n, N) px at t = 0
    out = {
        "scene": scene, "samples": n, "frames": T, "objects": n_obj,
        "in_view_all": float(inside.all(axis=(0, 2, 3)).mean()),
        "in_view_per_view": {c.name: float(inside[v].all(axis=(1, 2)).mean()) for v, c in enumerate(rig.cameras)},
        "at_t0_per_view": {c.name: float(inside[v][:, 0].all(axis=1).mean()) for v, c in enumerate(rig.cameras)},
        "size_px_median": float(np.median(diam)), "size_px_p10": float(np.percentile(diam, 10)),
        "travel_p90_m": float(np.percentile(np.abs(centres[..., :2]).max(axis=(1, 2, 3)), 90)),
    }
    if n_obj >= 2:
        touch = np.zeros(n, bool)
        # reach from the centre: a sphere's or cylinder's radius, a box's half diagonal (it may be turned)
        shapes = np.stack([batch.column(f"obj[{k}].shape") for k in range(n_obj)], axis=1)
        reach = sizes * np.where(shapes == 1, np.sqrt(3.0), 1.0)
        vel = sim.states.reshape(n, T, n_obj, 13)[..., 7:10]  # (n, T, N, 3) m/s
        for a in range(n_obj):
            for b in range(a + 1, n_obj):
                gap = np.linalg.norm(centres[:, :, a] - centres[:, :, b], axis=-1) - (reach[:, a] + reach[:, b])[:, None]
                between = np.linalg.norm(vel[:, :, a] - vel[:, :, b], axis=-1) / spec.video.fps  # closing distance per frame
                touch |= (gap < 0.01 + between).any(axis=1)  # touching at a frame, or possibly between two
        out["contact"] = float(touch.mean())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="*", default=list(DEFAULT))
    ap.add_argument("--samples", type=int, default=200)
    a = ap.parse_args()
    print("| scene | in view (all views, all frames) | per view | at t = 0 per view | size px median / p10 | contact | travel p90 m |")
    print("|---|---|---|---|---|---|---|")
    for scene in a.scenes:
        r = analyse(scene, a.samples)
        pv = ", ".join(f"{k} {v:.2f}" for k, v in r["in_view_per_view"].items())
        t0 = ", ".join(f"{k} {v:.2f}" for k, v in r["at_t0_per_view"].items())
        contact = f"{r['contact']:.2f}" if "contact" in r else "-"
        print(f"| {scene} | {r['in_view_all']:.2f} | {pv} | {t0} | {r['size_px_median']:.1f} / {r['size_px_p10']:.1f} | "
              f"{contact} | {r['travel_p90_m']:.2f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
