"""Physics video throughput: `crlgen run` frames/s per scene against a bare PyBullet loop on the same latents.

bare = the world's render() called in one process on the same sampled latents (PyBullet
stepping + TinyRenderer, nothing else). pipeline = `crlgen run` on `--workers` local Ray
workers (sampling, Ray, Zarr compression and writes included; Ray start-up excluded).
Both are measured side by side in one run:

    python benchmarks/bench_physics.py --samples 24
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SCENES = ("falling_simple", "falling_complex", "projectile_simple", "projectile_complex", "collision_simple", "collision_complex")


def bare_fps(spec, n: int) -> float:
    from crlgen.pipeline import CompiledSCM
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes import build_world

    model = CompiledSCM(spec)
    with build_world(spec, threads=1) as world:
        world.render(world_batch(model, model.sample(0, 1)))  # warm-up
        t = time.perf_counter()
        out = world.render(world_batch(model, model.sample(0, n)))
        dt = time.perf_counter() - t
    return out.pixels.shape[0] * out.pixels.shape[1] * out.pixels.shape[2] / dt


def pipeline_fps(spec, workers: int) -> float:
    from crlgen.pipeline import RunOptions, resolve, run

    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        res = run(spec, resolve(f"{d}/b.zarr"), RunOptions(validate=False))
        return res.frames / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=24)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scenes", nargs="*", default=SCENES)
    args = ap.parse_args()
    import ray

    from crlgen.pipeline import RunOptions, load_spec
    from crlgen.pipeline._run import start_ray

    start_ray(RunOptions(workers=args.workers))  # up before the timed runs, as a cluster would be
    try:
        print(f"{'scene':20s} {'frames/sample':>13s} {'bare fps':>9s} {'pipeline fps':>12s} {'pipeline/bare':>13s} {'per worker':>10s}")
        for name in args.scenes:
            spec = load_spec(f"physics/{name}").with_samples(args.samples)
            per_sample = spec.video.n_frames * len(spec.render.cameras())
            bare = bare_fps(spec, min(8, args.samples))
            pipe = pipeline_fps(spec, args.workers)
            print(f"{name:20s} {per_sample:13d} {bare:9.0f} {pipe:12.0f} {pipe / bare:13.2f} {pipe / bare / args.workers:10.2f}")
    finally:
        ray.shutdown()
    print(f"(64 px, TinyRenderer, frames counted per view; {args.workers} workers; Ray start-up excluded)")


if __name__ == "__main__":
    main()
