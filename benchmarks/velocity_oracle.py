"""Do the frames determine an arm's joint velocities? A reference read off the true joint angles.

The probe reads a per-frame state from its frame and the two beside it. A joint velocity
``joint[k].qd`` at frame t (rad/s, PyBullet's instantaneous joint velocity at the rendered instant)
is then at best a function of the angles ``joint[k].q`` at frames t-1, t, t+1. This measures how
much of it those angles carry, before any pixel: for a catalogue arm scene, sample N clips with the
spec's sampler (observational, without temporal edits), simulate them with the world, and fit
scikit-learn's ``RidgeCV`` (the central difference (q[t+1] - q[t-1]) / 2 dt is a linear function of
them) and ``HistGradientBoostingRegressor`` from the exact angles in a window of ``2 w + 1`` frames
(``--window w``, default 1: the probe's three) to ``joint[k].qd`` at the window's centre, per joint,
on 80 % of the clips; report held-out R^2 on the other 20 %, and again with Gaussian noise of
``--noise`` rad added to the angles (a pixel probe's error on the angles it reads best, about 0.03
rad at R^2 0.97 on a 0.2 rad spread). Joints whose angle does not vary are left out.

With ``--fps F`` the clips are simulated at F frames per second over the same duration (the
spec's ``video.fps``, ``frames`` and ``substeps`` scaled): does a higher frame rate carry the
velocities?

    python benchmarks/velocity_oracle.py [--samples 60] [--window 1] [--noise 0.03] [--fps 10] [robotics/open_space ...]

Recorded in docs/probe.md (thirteenth round).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _simulate(spec, samples: int):
    """(states (n, T, S), state names, joints) of the spec's first ``samples`` clips."""
    from crlgen.pipeline._feasible import world_batch
    from crlgen.pipeline._scm import CompiledSCM
    from crlgen.scenes.registry import build_world

    model = CompiledSCM(spec)
    batch = model.sample(0, samples)
    with build_world(spec) as world:
        sim = world.simulate(world_batch(model, batch))
        return sim.states, list(sim.state_names), len(world.model.joints)


def _windows(q: np.ndarray, qd: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, T) angles and velocities -> ((n, T - 2w, 2w + 1) angle windows, (n, T - 2w) centre velocities)."""
    T = q.shape[1]
    x = np.stack([q[:, i:T - 2 * w + i] for i in range(2 * w + 1)], axis=-1)
    return x, qd[:, w:T - w]


def _r2(model, x: np.ndarray, y: np.ndarray, train: np.ndarray) -> float:
    """Held-out R^2 of ``model`` fit on the training clips' frames (x: (n, T', F), y: (n, T'))."""
    xt, yt = x[train].reshape(-1, x.shape[-1]), y[train].ravel()
    xv, yv = x[~train].reshape(-1, x.shape[-1]), y[~train].ravel()
    p = model.fit(xt, yt).predict(xv)
    return float(1.0 - np.mean((p - yv) ** 2) / np.var(yv))


def analyse(spec, samples: int, window: int, noise: float) -> list[dict]:
    """Per moving joint k: {"joint", "std_q" (rad), "std_qd" (rad/s), "ridge", "trees", "ridge_noisy",
    "trees_noisy"} (held-out R^2 of joint[k].qd from the angles in the window, exact and noisy)."""
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import RidgeCV

    states, names, joints = _simulate(spec, samples)
    train = np.arange(samples) < int(0.8 * samples)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(joints):
        q = states[:, :, names.index(f"joint[{k}].q")].astype(np.float64)
        qd = states[:, :, names.index(f"joint[{k}].qd")].astype(np.float64)
        if q.std() < 1e-6:
            continue
        x, y = _windows(q, qd, window)
        noisy = x + rng.normal(0.0, noise, x.shape)
        row = {"joint": k, "std_q": float(q.std()), "std_qd": float(qd.std())}
        for tag, feats in (("", x), ("_noisy", noisy)):
            row["ridge" + tag] = _r2(RidgeCV(alphas=np.logspace(-8, 2, 11)), feats, y, train)
            row["trees" + tag] = _r2(HistGradientBoostingRegressor(max_iter=200, random_state=0), feats, y, train)
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="*", default=["robotics/open_space"])
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--window", type=int, default=1, help="frames either side of the centre frame")
    ap.add_argument("--noise", type=float, default=0.03, help="angle noise (rad) for the noisy columns")
    ap.add_argument("--fps", type=int, default=None, help="simulate at this frame rate over the same duration")
    a = ap.parse_args()

    from crlgen.pipeline import load_spec

    for name in a.scenes:
        spec = load_spec(name).replace(samples=a.samples, temporal_edits=(), interventions={"regime": "observational"})
        v = spec.video
        if a.fps is not None:
            scale = a.fps / v.fps
            if abs(v.substeps / scale - round(v.substeps / scale)) > 1e-9:
                raise SystemExit(f"--fps: {a.fps:g} does not divide the physics step ({v.fps * v.substeps:g} Hz) into whole substeps")
            spec = spec.replace(video={**v.model_dump(exclude={"duration"}), "fps": a.fps, "frames": round(v.frames * scale),
                                       "substeps": round(v.substeps / scale)})
        v = spec.video
        print(f"{name}: {a.samples} clips at {v.fps:g} fps ({v.frames} frames); joint[k].qd from joint[k].q at "
              f"{2 * a.window + 1} frames: held-out R^2, exact angles | angles + {a.noise:g} rad noise")
        for r in analyse(spec, a.samples, a.window, a.noise):
            print(f"  joint[{r['joint']}]  std q {r['std_q']:.3f} rad, qd {r['std_qd']:.3f} rad/s   "
                  f"ridge {r['ridge']:.3f} trees {r['trees']:.3f} | ridge {r['ridge_noisy']:.3f} trees {r['trees_noisy']:.3f}")


if __name__ == "__main__":
    main()
