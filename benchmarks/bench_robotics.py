"""Robotics video throughput: frames/s per scene and arm, the bare world against `crlgen run`, and memory.

For every catalogue spec under ``robotics/`` (the four rooms with their default arm, and any
further robotics spec present) and for each arm (kuka_iiwa, xarm6, franka_panda) on
``robotics/open_space``, one run measures side by side, on the same spec and sample count
(shortened to ``--frames`` frames, temporal edits past the end dropped; ``--repeat`` times,
alternated, medians reported):

- bare fps: the world's ``render()`` in one process on the sampled latents (PyBullet stepping,
  IK and the scripted controller, TinyRenderer for every view: nothing else), after the
  world is built and a one-sample warm-up;
- pipeline fps: ``crlgen run`` of the same spec (sampling, feasibility redraws, world build,
  compression and Zarr writes included), inline in this process by default or on
  ``--workers`` local Ray workers (Ray start-up excluded: a cluster is up before jobs arrive);
- pipeline/bare: the ratio (1.0 = no overhead); build s: the world's build time (room, arm
  and props loaded once per world), which the pipeline pays and the bare rate does not;
- shards fps, shards/bare: the pipeline's rate up to its last shard's commit, i.e. without the
  run's fixed tail (sidecars, preview plots, consolidation: seconds per run, whatever its size),
  which dominates a run of a few samples.

Frames are counted per view (one image of one camera), as in bench_physics.py.

``--memory N`` also runs N samples through one world (one long shard) at 16 px and 8 frames,
in batches of 50, and reports the resident set size after each batch: PyBullet leaks when
shapes are re-created after a reset, so a world that does so grows linearly. Examples::

    python benchmarks/bench_robotics.py
    python benchmarks/bench_robotics.py --samples 4 --frames 70 --workers 2
    python benchmarks/bench_robotics.py --scenes robotics/open_space --arms --repeat 3
    python benchmarks/bench_robotics.py --scenes --arms --memory 400     # memory only
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

ARMS = ("kuka_iiwa", "xarm6", "franka_panda")
ARM_SCENE = "robotics/open_space"


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def robotics_scenes() -> list[str]:
    """Names of every catalogue spec under ``robotics/``."""
    from crlgen.scenes.registry import catalog

    return [e.name for e in catalog() if e.name.startswith("robotics/")]


def shortened(spec, samples: int, frames: int | None = None, size: int | None = None, arm: str | None = None):
    """``spec`` with ``samples`` samples, ``frames`` frames (edits past the end dropped), ``size`` px and ``arm``."""
    changes: dict = {"samples": samples}
    if frames is not None:
        changes["video"] = {**spec.video.model_dump(exclude_unset=True), "frames": frames}
        changes["temporal_edits"] = [e.model_dump(exclude_unset=True) for e in spec.temporal_edits
                                     if (e.at_frame if e.at_frame is not None else e.at_time * spec.video.fps) < frames]
    if size is not None:
        changes["render"] = {**spec.render.model_dump(exclude_unset=True), "size": size}
    if arm is not None:
        from crlgen.scenes.robotics._arms import arm_model

        code = ARMS.index(arm)
        changes["parameters"] = {**spec.parameters, "arm": code}
        changes["objects"] = {**spec.objects, "joint": len(arm_model(code).joints)}
    return spec.replace(**changes)


def bare(spec, n: int) -> dict:
    """Images/s of ``world.render`` on samples 0..n (one process, one thread) and the world's build seconds."""
    from crlgen.pipeline import CompiledSCM
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes import build_world

    model = CompiledSCM(spec)
    t = time.perf_counter()
    with build_world(spec, threads=1) as world:
        build = time.perf_counter() - t
        world.render(world_batch(model, model.sample(0, 1)))  # warm-up
        t = time.perf_counter()
        out = world.render(world_batch(model, model.sample(0, n)))
        dt = time.perf_counter() - t
    images = out.outputs["frames"].shape[:3]
    return {"fps": images[0] * images[1] * images[2] / dt, "build_s": build}


def pipeline(spec, workers: int) -> dict:
    """``crlgen run`` of ``spec`` into a temporary store (inline when ``workers`` is 0).

    Returns images/s over the whole run (``fps``) and up to the last shard's commit
    (``shards_fps``: without the run's fixed tail of sidecars, previews and consolidation).
    With workers, a fresh local Ray is started for the run (not timed: a cluster is up before
    jobs arrive) and shut down after it: a worker keeps its world between runs, keyed by the
    world, render and video settings only, so a kept world would serve the next row's room or arm.
    """
    from crlgen.pipeline import RunOptions, resolve, run

    marks: list[float] = []
    kw = {"validate": False, "on_progress": lambda summary: marks.append(time.perf_counter())}
    options = RunOptions(executor="inline", **kw) if workers == 0 else RunOptions(**kw)
    if workers:
        from crlgen.pipeline._run import start_ray

        start_ray(RunOptions(workers=workers))  # imports ray with its addresses on loopback
        import ray
    try:
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            res = run(spec, resolve(f"{d}/b.zarr"), options)
            dt = time.perf_counter() - t
    finally:
        if workers:
            ray.shutdown()
    return {"fps": res.frames / dt, "shards_fps": res.frames / (marks[-1] - t)}


def memory(name: str, n: int, batch: int = 50) -> dict:
    """RSS (MiB) after each batch of ``batch`` samples while one world renders ``n`` samples (16 px, 8 frames)."""
    from crlgen.pipeline import CompiledSCM, load_spec
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes import build_world

    spec = shortened(load_spec(name), n, frames=8, size=16)
    model = CompiledSCM(spec)
    rss = []
    with build_world(spec, threads=1) as world:
        for start in range(0, n, batch):
            world.render(world_batch(model, model.sample(start, min(n, start + batch))))
            rss.append(round(_rss_mb(), 1))
    # growth over the second half: the world opens a new PyBullet client every REBUILD_EVERY sample set-ups,
    # and the allocator's footprint settles over the first few rebuilds
    tail = rss[len(rss) // 2:] if len(rss) > 2 else rss
    per_1000 = (tail[-1] - tail[0]) / max(1, (len(tail) - 1) * batch) * 1000
    return {"scene": name, "samples": n, "rss_mb_after_each_batch": rss, "growth_mb_per_1000_second_half": round(per_1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="*", help="catalogue names (default: every robotics/ spec)")
    ap.add_argument("--arms", nargs="*", default=list(ARMS), choices=ARMS, help=f"arms to run on {ARM_SCENE} (none: --arms alone)")
    ap.add_argument("--samples", type=int, default=2, help="samples per row (bare and pipeline)")
    ap.add_argument("--frames", type=int, default=30, help="frames per sample (0: the spec's)")
    ap.add_argument("--repeat", type=int, default=1, help="alternate bare and pipeline this often per row; medians reported")
    ap.add_argument("--workers", type=int, default=0, help="Ray workers of the pipeline run (0: inline, this process)")
    ap.add_argument("--memory", type=int, default=0, help=f"also measure RSS over this many samples of {ARM_SCENE}")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.samples < 1 or args.repeat < 1 or args.frames < 0 or args.workers < 0 or args.memory < 0:
        ap.error("--samples and --repeat must be >= 1; --frames, --workers and --memory >= 0")
    from crlgen.pipeline import load_spec
    from crlgen.schemas import SpecError

    scenes = robotics_scenes() if args.scenes is None else args.scenes
    jobs = [(name, None) for name in scenes] + [(ARM_SCENE, arm) for arm in args.arms]
    rows = []
    if jobs:
        print(f"{'scene':24s} {'arm':13s} {'img/sample':>10s} {'build s':>7s} {'bare fps':>8s} {'pipeline fps':>12s} "
              f"{'pipeline/bare':>13s} {'shards fps':>10s} {'shards/bare':>11s}", flush=True)
    for name, arm in jobs:
        try:
            spec = shortened(load_spec(name), args.samples, frames=args.frames or None, arm=arm)
        except (SpecError, ValueError) as e:  # e.g. a scene whose edits or task need more frames
            print(f"{name:24s} {arm or '':13s} not run: {str(e).splitlines()[0]}", flush=True)
            continue
        arm_name = arm or (ARMS[int(spec.parameters["arm"])] if "arm" in spec.parameters else "-")
        per_sample = spec.video.n_frames * len(spec.render.cameras())
        runs = [(bare(spec, args.samples), pipeline(spec, args.workers)) for _ in range(args.repeat)]  # alternated
        b = {k: statistics.median(r[0][k] for r in runs) for k in ("fps", "build_s")}
        p = {k: statistics.median(r[1][k] for r in runs) for k in ("fps", "shards_fps")}
        rows.append({"scene": name, "arm": arm_name, "images_per_sample": per_sample, "build_s": b["build_s"],
                     "bare_fps": b["fps"], "pipeline_fps": p["fps"], "pipeline_over_bare": p["fps"] / b["fps"],
                     "shards_fps": p["shards_fps"], "shards_over_bare": p["shards_fps"] / b["fps"]})
        print(f"{name:24s} {arm_name:13s} {per_sample:10d} {b['build_s']:7.1f} {b['fps']:8.1f} {p['fps']:12.1f} "
              f"{p['fps'] / b['fps']:13.2f} {p['shards_fps']:10.1f} {p['shards_fps'] / b['fps']:11.2f}", flush=True)
    where = "inline" if args.workers == 0 else f"{args.workers} Ray workers, Ray start-up excluded"
    if jobs:
        print(f"({args.samples} samples x {args.frames or 'spec'} frames per row, median of {args.repeat}, spec sizes, TinyRenderer; "
              f"frames counted per view; pipeline {where})", flush=True)
    mem = []
    if args.memory:
        m = memory(ARM_SCENE, args.memory)
        mem.append(m)
        print(f"{ARM_SCENE} RSS MiB per 50 samples (16 px, 8 frames): {m['rss_mb_after_each_batch']} "
              f"(growth over the second half: {m['growth_mb_per_1000_second_half']} MiB per 1000)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"speed": rows, "memory": mem}, f, indent=1)


if __name__ == "__main__":
    main()
