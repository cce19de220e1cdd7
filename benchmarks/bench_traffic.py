"""Traffic video throughput: frames/s per catalogue traffic scene and renderer (top-down raster, dashcam),
the bare world against `crlgen run` side by side, the dashcam renderer alone, and its memory.

Three parts, each optional:

- Catalogue rows (``--scenes``; default every ``traffic/`` spec whose world is ``traffic/embedded``):
  each spec is run once per renderer, keeping only that renderer's cameras (``topdown`` cameras
  for the raster, ``mounted`` ones for the dashcam), shortened to ``--samples`` samples of
  ``--frames`` frames (temporal edits and counterfactual edits past the end dropped), ``--repeat`` times alternated,
  medians reported:

  - sim fps: the world's ``simulate()`` (the traffic simulation alone, no pixels), frames/s;
  - bare fps: the world's ``render()`` in one process on the sampled latents (simulation and
    every view's pixels, nothing else), after the world is built and a one-sample warm-up;
  - pipeline fps: ``crlgen run`` of the same spec inline in this process (sampling,
    feasibility, world build, compression and Zarr writes included); shards fps the same up to
    the last shard's commit (without the run's fixed tail of sidecars and previews);
  - the ratios pipeline/bare and shards/bare (1.0 = no overhead).

  Frames are counted per view (one image of one camera), as in bench_physics.py.
- ``--street W H ...``: the dashcam renderer alone (``scenes/traffic/_dashcam.py``, no
  simulator) on a synthetic street (a 500 m road, 40 building blocks, ``--cars`` moving boxes and
  two traffic lights), clear and in fog + rain (the weather's extra numpy work), per image size.
- ``--memory N``: resident set size over N dashcam frames at 320 x 240 on that street (boxes
  move and change colour every frame), against the same frames drawn by re-creating the moving
  boxes' shapes every frame (what the pooled bodies avoid: PyBullet keeps every shape).

Examples::

    python benchmarks/bench_traffic.py                                  # catalogue rows
    python benchmarks/bench_traffic.py --samples 2 --frames 100 --repeat 3 --size 256
    python benchmarks/bench_traffic.py --scenes --street 320 240 640 480 --memory 1000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

RENDERERS = {"topdown": "topdown", "dashcam": "mounted"}  # renderer -> camera kind it draws
EMBEDDED = "traffic/embedded"


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


# --------------------------------------------------------------------------- catalogue rows


def traffic_scenes() -> list[str]:
    """Names of every catalogue spec under ``traffic/`` whose world is the embedded simulator."""
    from crlgen.scenes.registry import catalog

    return [e.name for e in catalog() if e.name.startswith("traffic/") and e.world == EMBEDDED]


def shortened(spec, samples: int, frames: int | None, kind: str, size: int | None = None):
    """``spec`` with ``samples`` samples, ``frames`` frames (edits and a counterfactual edit past the end dropped,
    counterfactuals also below 2 samples), only its ``kind`` cameras, all ``size`` px square when given.

    Raises ValueError when the spec has no camera of that kind.
    """
    views = [c.model_dump(mode="json", exclude_unset=True) for c in spec.render.cameras() if c.kind == kind]
    if not views:
        raise ValueError(f"the spec has no {kind} camera")
    render = {**spec.render.model_dump(exclude_unset=True), "views": views}
    if size is not None:
        render["size"] = size
        for v in views:
            v.pop("size", None)
    changes: dict = {"samples": samples, "render": render}
    def fits(e) -> bool:
        return frames is None or (e.at_frame if e.at_frame is not None else e.at_time * spec.video.fps) < frames

    if frames is not None:
        changes["video"] = {**spec.video.model_dump(exclude_unset=True), "frames": frames}
        changes["temporal_edits"] = [e.model_dump(exclude_unset=True) for e in spec.temporal_edits if fits(e)]
    cf = spec.counterfactuals
    if cf is not None and (samples < 2 or (cf.edit is not None and not fits(cf.edit))):
        changes["counterfactuals"] = None
    return spec.replace(**changes)


def bare(spec, n: int) -> dict:
    """Frames/s of ``world.simulate`` and ``world.render`` on samples 0..n (one process, one thread), build seconds."""
    from crlgen.pipeline import CompiledSCM
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes import build_world

    model = CompiledSCM(spec)
    images = n * spec.video.n_frames * len(spec.render.cameras())
    t = time.perf_counter()
    with build_world(spec, threads=1) as world:
        build = time.perf_counter() - t
        world.render(world_batch(model, model.sample(0, 1)))  # warm-up
        batch = world_batch(model, model.sample(0, n))
        t = time.perf_counter()
        world.simulate(batch)
        sim = time.perf_counter() - t
        t = time.perf_counter()
        world.render(batch)
        dt = time.perf_counter() - t
    return {"fps": images / dt, "sim_fps": n * spec.video.n_frames / sim, "build_s": build}


def pipeline(spec) -> dict:
    """``crlgen run`` of ``spec`` inline into a temporary store: frames/s over the run and up to its last shard's commit."""
    from crlgen.pipeline import RunOptions, resolve, run

    marks: list[float] = []
    options = RunOptions(executor="inline", validate=False, on_progress=lambda summary: marks.append(time.perf_counter()))
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        res = run(spec, resolve(f"{d}/b.zarr"), options)
        dt = time.perf_counter() - t
    return {"fps": res.frames / dt, "shards_fps": res.frames / (marks[-1] - t)}


def catalogue_rows(scenes: list[str], samples: int, frames: int | None, repeat: int, size: int | None = None) -> list[dict]:
    from crlgen.pipeline import load_spec
    from crlgen.schemas import SpecError

    rows = []
    print(f"{'scene':24s} {'renderer':8s} {'views':>5s} {'size':>9s} {'build s':>7s} {'sim fps':>8s} {'bare fps':>8s} "
          f"{'pipeline fps':>12s} {'pipeline/bare':>13s} {'shards fps':>10s} {'shards/bare':>11s}", flush=True)
    for name in scenes:
        for renderer, kind in RENDERERS.items():
            try:
                spec = shortened(load_spec(name), samples, frames, kind, size)
            except (SpecError, ValueError) as e:
                print(f"{name:24s} {renderer:8s} not run: {str(e).splitlines()[0]}", flush=True)
                continue
            cams = spec.render.cameras()
            shape = "x".join(map(str, spec.render.camera_size(cams[0])))
            runs = [(bare(spec, samples), pipeline(spec)) for _ in range(repeat)]  # alternated
            b = {k: statistics.median(r[0][k] for r in runs) for k in ("fps", "sim_fps", "build_s")}
            p = {k: statistics.median(r[1][k] for r in runs) for k in ("fps", "shards_fps")}
            rows.append({"scene": name, "renderer": renderer, "views": len(cams), "size": shape, "build_s": b["build_s"],
                         "sim_fps": b["sim_fps"], "bare_fps": b["fps"], "pipeline_fps": p["fps"],
                         "pipeline_over_bare": p["fps"] / b["fps"], "shards_fps": p["shards_fps"],
                         "shards_over_bare": p["shards_fps"] / b["fps"]})
            print(f"{name:24s} {renderer:8s} {len(cams):5d} {shape:>9s} {b['build_s']:7.2f} {b['sim_fps']:8.0f} {b['fps']:8.1f} "
                  f"{p['fps']:12.1f} {p['fps'] / b['fps']:13.2f} {p['shards_fps']:10.1f} {p['shards_fps'] / b['fps']:11.2f}",
                  flush=True)
    print(f"({samples} samples x {frames or 'spec'} frames per row, median of {repeat}; frames counted per view; "
          f"sim fps counts simulated frames; pipeline inline)", flush=True)
    return rows


# --------------------------------------------------------------------------- the dashcam alone


def synthetic_street(seed: int = 0):
    """A straight 500 m two-lane street: (Ground, static Boxes) with grass, asphalt, dashed centre line,
    a stop line and two rows of 20 building blocks 4-15 m tall (segmentation ids 1..5)."""
    from crlgen.scenes.traffic._dashcam import Boxes, Ground

    def quad(x0, y0, x1, y1):
        return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]

    corners = [quad(-500, -500, 500, 500), quad(-200, -7, 300, 7), quad(60, -7, 60.5, 0)]
    rgb, ids, layer = [(0.35, 0.55, 0.25), (0.3, 0.3, 0.32), (0.95, 0.95, 0.95)], [1, 2, 4], [0, 1, 2]
    for x in range(-200, 300, 12):
        corners.append(quad(x, -0.08, x + 6, 0.08))
        rgb.append((0.95, 0.95, 0.9))
        ids.append(3)
        layer.append(2)
    ground = Ground(np.array(corners, dtype=float), np.array(rgb), np.array(ids), np.array(layer))
    rng = np.random.default_rng(seed)
    n = 40
    x = np.concatenate([np.linspace(-150, 280, n // 2)] * 2)
    y = np.r_[np.full(n // 2, -18.0), np.full(n // 2, 18.0)]
    hz = rng.uniform(4, 15, n)
    blocks = Boxes(np.c_[x, y, hz], np.zeros(n), np.c_[rng.uniform(4, 9, n), np.full(n, 5.0), hz], rng.uniform(0.4, 0.9, (n, 3)),
                   np.full(n, 5))
    return ground, blocks


def street_traffic(t: int, n: int, rng: np.random.Generator):
    """Frame ``t``: ``n`` cars and pedestrians (every fifth) moving along the street in new colours, and two
    emissive traffic-light lamps whose colour cycles (ids 10.., 90, 91)."""
    from crlgen.scenes.traffic._dashcam import Boxes

    k = np.arange(n)
    half = np.where((k % 5 == 0)[:, None], [0.3, 0.3, 0.9], [2.2, 0.9, 0.75])
    centre = np.c_[(k * 11.0 + t * 1.5) % 200 - 40, np.where(k % 2, 1.75, -1.75), half[:, 2]]
    lamp = [(1.0, 0.1, 0.05), (1.0, 0.75, 0.0), (0.1, 1.0, 0.2)][(t // 20) % 3]
    return Boxes(np.r_[centre, [[61.0, -8.0, 4.5], [61.0, 8.0, 4.5]]], np.r_[0.05 * np.sin(0.1 * t + k), 0.0, 0.0],
                 np.r_[half, [[0.2, 0.2, 0.5]] * 2], np.r_[rng.uniform(0, 1, (n, 3)), [lamp] * 2], np.r_[k + 10, 90, 91],
                 np.r_[np.zeros(n, bool), True, True])


def _street_view(width: int, height: int, t: int = 0):
    from crlgen.scenes.cameras import look_at, perspective_intrinsics
    from crlgen.scenes.traffic._dashcam import View

    x = (t * 0.8) % 100.0 - 30.0
    return View(perspective_intrinsics(width, height, 60.0), look_at((x, -1.75, 1.4), (x + 50.0, -1.75, 1.2)), width, height,
                near=0.1, far=800.0)


def street_fps(sizes: list[tuple[int, int]], cars: int, frames: int) -> list[dict]:
    """Dashcam frames/s on the synthetic street per image size, clear and in fog (80 m) with rain 0.5."""
    from crlgen.scenes.traffic._dashcam import Dashcam, Weather

    ground, blocks = synthetic_street()
    rows = []
    for w, h in sizes:
        cam = Dashcam(None, ground, blocks, cars + 2)
        try:
            row = {"size": f"{w}x{h}", "cars": cars, "bodies": 0}
            for label, weather in (("clear", Weather()), ("fog_rain", Weather(visibility=80.0, rain=0.5, daylight=0.8))):
                rng = np.random.default_rng(0)
                cam.render(street_traffic(0, cars, rng), _street_view(w, h), weather)  # warm-up
                t0 = time.perf_counter()
                for t in range(frames):
                    cam.render(street_traffic(t, cars, rng), _street_view(w, h, t), weather)
                row[f"{label}_fps"] = frames / (time.perf_counter() - t0)
            row["bodies"] = cam.bodies
        finally:
            cam.close()
        rows.append(row)
        print(f"dashcam alone {row['size']:>9s}, {cars} moving boxes, {row['bodies']} bodies: clear {row['clear_fps']:.1f} fps, "
              f"fog + rain {row['fog_rain_fps']:.1f} fps ({frames} frames)", flush=True)
    return rows


def memory(frames: int, cars: int = 20, every: int = 100) -> list[dict]:
    """RSS growth (MiB) every ``every`` frames over ``frames`` dashcam frames (320 x 240), pooled bodies vs shapes re-created per frame."""
    from crlgen.scenes.traffic._dashcam import Boxes, Dashcam, Weather

    ground, blocks = synthetic_street()
    out = []
    for mode in ("pooled", "re-created"):
        cam = Dashcam(None, ground, blocks, cars + 2)
        rng = np.random.default_rng(1)
        try:
            cam.render(street_traffic(0, cars, rng), _street_view(320, 240), Weather())
            start, rss = _rss_mb(), []
            t0 = time.perf_counter()
            for t in range(frames):
                boxes = street_traffic(t, cars, rng)
                weather = Weather(visibility=float(rng.uniform(40, 1000)), rain=float(rng.uniform(0, 1)))
                if mode == "pooled":
                    cam.render(boxes, _street_view(320, 240, t), weather)
                else:  # what the pool avoids: new shapes and bodies every frame, removed after it
                    bc, p = cam.bc, cam.p
                    made = [bc.createMultiBody(0.0, -1, bc.createVisualShape(p.GEOM_BOX, halfExtents=boxes.half_extents[i].tolist(),
                                                                             rgbaColor=(*boxes.rgb[i], 1.0)),
                                               basePosition=boxes.centre[i].tolist()) for i in range(len(boxes))]
                    cam.render(Boxes.empty(), _street_view(320, 240, t), weather)
                    for b in made:
                        bc.removeBody(b)
                if (t + 1) % every == 0:
                    rss.append(round(_rss_mb() - start, 1))
            fps = frames / (time.perf_counter() - t0)
        finally:
            cam.close()
        out.append({"mode": mode, "frames": frames, "rss_growth_mb": rss, "fps": fps})
        print(f"dashcam RSS growth MiB every {every} frames, {mode}: {rss} ({fps:.1f} fps)", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="*", help=f"catalogue names (default: every traffic/ spec of {EMBEDDED}; none: skip)")
    ap.add_argument("--samples", type=int, default=2, help="samples per row (bare and pipeline)")
    ap.add_argument("--frames", type=int, default=100, help="frames per sample (0: the spec's); 100 = 10 s at 10 fps")
    ap.add_argument("--size", type=int, default=0, help="image side in pixels for every camera (0: the spec's)")
    ap.add_argument("--repeat", type=int, default=1, help="alternate bare and pipeline this often per row; medians reported")
    ap.add_argument("--street", type=int, nargs="*", default=[], metavar="W H", help="dashcam alone at these sizes (pairs)")
    ap.add_argument("--cars", type=int, default=20, help="moving boxes on the synthetic street")
    ap.add_argument("--street-frames", type=int, default=200, help="frames per size and weather on the synthetic street")
    ap.add_argument("--memory", type=int, default=0, help="also measure dashcam RSS over this many frames")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if (args.samples < 1 or args.repeat < 1 or args.frames < 0 or args.size < 0 or args.memory < 0 or args.cars < 0 or args.street_frames < 1
            or len(args.street) % 2 or any(s < 1 for s in args.street)):
        ap.error("--samples, --repeat, --street-frames >= 1; --frames, --size, --memory, --cars >= 0; --street takes W H pairs of >= 1")
    scenes = traffic_scenes() if args.scenes is None else args.scenes
    if args.scenes is None and not scenes:
        print(f"no catalogue spec of {EMBEDDED} under traffic/: catalogue rows not run", flush=True)
    rows = catalogue_rows(scenes, args.samples, args.frames or None, args.repeat, args.size or None) if scenes else []
    sizes = list(zip(args.street[::2], args.street[1::2]))
    street = street_fps(sizes, args.cars, args.street_frames) if sizes else []
    mem = memory(args.memory, args.cars) if args.memory else []
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"speed": rows, "dashcam_alone": street, "memory": mem}, f, indent=1)


if __name__ == "__main__":
    main()
