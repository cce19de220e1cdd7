"""Static Blender scenes: seconds per frame per scene and size, the world against bare `bpy`, and memory.

For each catalogue scene and each size (64, 128, 256 px, Cycles on the CPU at the spec's
samples, 4 views, depth and segmentation on) one process renders the same sampled latents and
reports, side by side:

- world s/frame: the world's ``render()`` (posing, Cycles, read-back of colour, depth and
  object ids into numpy) per camera view;
- bare s/frame: the time spent inside ``bpy.ops.render.render`` alone during those same calls
  (``BlenderScene.render_seconds``), i.e. what a bare bpy script rendering the same scene spends;
- world / bare: the world's overhead factor.

``--memory N`` also renders N samples (default 1000, one shard's worth) at 32 px, 1 view, 4 Cycles
samples, in batches of 100, and reports the resident set size after each batch: a world that
leaks Blender datablocks or render buffers per sample grows linearly (pixels do not matter for
that, so small renders keep it quick). Examples::

    python benchmarks/bench_static.py --samples 8
    python benchmarks/bench_static.py --scenes static/refraction --sizes 64 --memory 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time

STATIC = ("static/spring", "static/refraction", "static/slope", "static/plasticine", "static/figure_shop",
          "static/figure_living_room", "static/figure_apartment", "static/figure_wall", "static/figure_rooms",
          "static/objects_light", "static/pendulum")


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _blender_scenes(world) -> list:
    from crlgen.scenes.engines.blender import BlenderScene

    return [v for v in vars(world).values() if isinstance(v, BlenderScene)]


def seconds_per_frame(name: str, size: int, n: int) -> dict:
    """World and bare seconds per rendered view of ``n`` samples of catalogue scene ``name`` at ``size`` px."""
    from crlgen.pipeline import CompiledSCM, load_spec
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes import build_world

    spec = load_spec(name).replace(render={"size": size, "device": "cpu"})
    model = CompiledSCM(spec)
    with build_world(spec, threads=1) as world:
        world.render(world_batch(model, model.sample(0, 1)))  # warm-up: Cycles kernels, first sync
        batch = world_batch(model, model.sample(1, 1 + n))
        scenes = _blender_scenes(world)
        before = sum(bs.render_seconds for bs in scenes), sum(bs.render_calls for bs in scenes)
        t = time.perf_counter()
        out = world.render(batch)
        dt = time.perf_counter() - t
        bare = sum(bs.render_seconds for bs in scenes) - before[0]
        calls = sum(bs.render_calls for bs in scenes) - before[1]
    rgb = next(v for k, v in out.outputs.items() if k.startswith("images"))
    frames = rgb.shape[0] * rgb.shape[1]
    return {"scene": name, "size": size, "samples": n, "frames": frames, "world_s_per_frame": dt / frames,
            "bare_s_per_frame": bare / calls, "world_over_bare": dt / bare}


def memory(name: str, n: int, batch: int = 100) -> dict:
    """RSS (MiB) after each batch of ``batch`` samples while one world renders ``n`` samples."""
    from crlgen.pipeline import CompiledSCM, load_spec
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes import build_world

    spec = load_spec(name).replace(render={"size": 32, "views": 1, "samples": 4, "device": "cpu"})
    model = CompiledSCM(spec)
    rss = []
    with build_world(spec, threads=1) as world:
        for start in range(0, n, batch):
            world.render(world_batch(model, model.sample(start, min(n, start + batch))))
            rss.append(round(_rss_mb(), 1))
    tail = rss[1:] or rss
    per_1000 = (tail[-1] - tail[0]) / max(1, (len(tail) - 1) * batch) * 1000
    return {"scene": name, "samples": n, "rss_mb_after_each_batch": rss, "growth_mb_per_1000_after_first_batch": round(per_1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="*", default=STATIC)
    ap.add_argument("--sizes", nargs="*", type=int, default=[64, 128, 256])
    ap.add_argument("--samples", type=int, default=8, help="samples per scene and size (x4 views = frames)")
    ap.add_argument("--memory", type=int, default=0, help="also measure RSS over this many samples per scene")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    rows, mem = [], []
    if args.sizes and args.samples:
        print(f"{'scene':28s} {'px':>4s} {'world s/frame':>13s} {'bare s/frame':>12s} {'world/bare':>10s}", flush=True)
    for name in args.scenes:
        for size in args.sizes if args.samples else ():
            r = seconds_per_frame(name, size, args.samples)
            rows.append(r)
            print(f"{name:28s} {size:4d} {r['world_s_per_frame']:13.3f} {r['bare_s_per_frame']:12.3f} {r['world_over_bare']:10.2f}",
                  flush=True)
        if args.memory:
            m = memory(name, args.memory)
            mem.append(m)
            print(f"{name:28s} RSS MiB per 100 samples: {m['rss_mb_after_each_batch']} "
                  f"(growth after the first batch: {m['growth_mb_per_1000_after_first_batch']} MiB per 1000)", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"speed": rows, "memory": mem}, f, indent=1)


if __name__ == "__main__":
    main()
