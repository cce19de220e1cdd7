"""Pipeline efficiency: throughput of `crlgen run` on 2 Ray workers over the ideal.

ideal = 2 x the bare single-process render rate of the same world on the same latents
(one thread each, no Ray, no Zarr). The pipeline's time includes sampling, Ray
scheduling, worker start-up (bpy import, scene build), compression and writes, but
not starting the Ray cluster itself (a cluster is up before jobs arrive).
Both are measured here, side by side, in one run:

    python benchmarks/bench_pipeline.py --samples 160
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def bare_rate(spec, n: int) -> float:
    """Samples per second of world.render alone, one process, one thread, after a warm-up render."""
    from crlgen.pipeline import CompiledSCM
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes import build_world

    model = CompiledSCM(spec)
    with build_world(spec, threads=1) as world:
        world.render(world_batch(model, model.sample(0, 1)))
        t = time.perf_counter()
        for a in range(0, n, 8):
            world.render(world_batch(model, model.sample(a, min(a + 8, n))))
        return n / (time.perf_counter() - t)


def concurrent_bare_rate(spec_name: str, samples: int, n: int, procs: int) -> float:
    """Total samples/s of ``procs`` bare render processes running at once: what the hardware gives in parallel."""
    import subprocess
    import sys

    code = ("import runpy; bare_rate = runpy.run_path(%r)['bare_rate']; "
            "from crlgen.pipeline import load_spec; print(bare_rate(load_spec(%r).with_samples(%d), %d))"
            % (os.path.abspath(__file__), spec_name, samples, n))
    ps = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(procs)]
    return sum(float(p.communicate()[0].strip().splitlines()[-1]) for p in ps)


def pipeline_rate(spec, workers: int) -> tuple[float, float]:
    import ray

    from crlgen.pipeline import RunOptions, resolve, run
    from crlgen.pipeline._run import start_ray

    start_ray(RunOptions(workers=workers))  # up before the timed run, as a cluster would be
    try:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            res = run(spec, resolve(f"{d}/b.zarr"), RunOptions(validate=False))
            wall = time.perf_counter() - t
            return spec.samples / wall, res.render_seconds
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--spec", default="static/spring")
    ap.add_argument("--samples", type=int, default=160)
    ap.add_argument("--bare-samples", type=int, default=48)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from crlgen.pipeline import load_spec

    spec = load_spec(args.spec).with_samples(args.samples)
    # bare rates come from child processes, so the driver holds no Blender state while Ray runs
    bare = concurrent_bare_rate(args.spec, args.samples, args.bare_samples, 1)
    parallel = concurrent_bare_rate(args.spec, args.samples, args.bare_samples, args.workers)
    pipe, render_s = pipeline_rate(spec, args.workers)
    ideal = args.workers * bare
    print(f"spec={args.spec} samples={args.samples} views={len(spec.render.cameras())} size={spec.render.width}px "
          f"engine={spec.render.engine} cycles_samples={spec.render.samples}")
    print(f"bare render, 1 process: {bare:.2f} samples/s ({1 / bare:.3f} s/sample)")
    print(f"pipeline, {args.workers} Ray workers: {pipe:.2f} samples/s (render share {render_s / (args.samples / pipe) / args.workers:.0%} of worker time)")
    print(f"bare render, {args.workers} unpinned processes at once: {parallel:.2f} samples/s in total "
          f"({parallel / bare:.2f}x one process; Cycles' wait thread makes them contend)")
    print(f"efficiency = pipeline / ({args.workers} x bare) = {pipe / ideal:.2f}  (issue target >= 0.9)")
    print(f"overhead check = pipeline / ({args.workers} bare processes at once) = {pipe / parallel:.2f}")


if __name__ == "__main__":
    main()
