"""How much of each latent does the motion carry? A reference read off the true trajectories.

For each catalogue scene: sample N samples with the spec's sampler, simulate them with the
scene's world (the state series the renderer films), and fit scikit-learn's gradient boosting
from every object's true centre per frame (with Gaussian noise of ``--noise`` metres added, about
half a pixel at the catalogue cameras), its first and second differences (velocity and
acceleration per frame) and its orientation quaternion, to each latent; report held-out R^2
(accuracy for categorical latents) on the last 20 % of samples.

A dynamic latent (gravity, restitution, an initial velocity) that this reads poorly is barely in
the motion at this frame rate and these ranges (or in a form trees find hard: a bounce's speed
ratio is a quotient of two frames' differences), so a probe on pixels will hardly do better: the
scene (ranges, interactions) should change, or the latent be declared unidentifiable. A latent it
reads well but the pixel probe does not is a matter of framing, resolution or the probe.
Appearance latents (hue, light) do not act on the motion, so their low scores here mean nothing;
a quaternion reads a symmetric object's yaw that no pixel shows. This is the "forest on the
stored true trajectories" of issue 10, run before spending a render and a probe.

    python benchmarks/trajectory_oracle.py [--samples 1000] [--noise 0.005] [physics/falling_simple ...]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
DEFAULT = ("physics/falling_simple", "physics/falling_complex", "physics/projectile_simple",
           "physics/projectile_complex", "physics/collision_simple", "physics/collision_complex")


def features(states: np.ndarray, noise: float, seed: int = 0) -> np.ndarray:
    """(n, T, 13 N) world states -> (n, F) features: noisy centres (m), their per-frame first and
    second differences, and orientation quaternions, every object and frame."""
    n, T = states.shape[:2]
    st = states.reshape(n, T, -1, 13)
    pos = st[..., 0:3] + np.random.default_rng(seed).normal(0.0, noise, st[..., 0:3].shape)
    vel, acc = np.diff(pos, axis=1), np.diff(pos, n=2, axis=1)
    return np.concatenate([pos.reshape(n, -1), vel.reshape(n, -1), acc.reshape(n, -1), st[..., 3:7].reshape(n, -1)], 1)


def analyse(scene, samples: int, noise: float, progress: bool = False) -> list[dict]:
    """Per static latent of a catalogue scene name or ``DatasetSpec``: {"name", "metric", "score",
    "unidentifiable"} (the score of the oracle described in the module docstring)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    from crlgen.pipeline import CompiledSCM, load_spec
    from crlgen.pipeline._tasks import world_batch
    from crlgen.scenes.registry import build_world

    spec = (load_spec(scene) if isinstance(scene, str) else scene).replace(samples=samples)
    model = CompiledSCM(spec)
    batch = model.sample(0, samples)
    with build_world(spec) as world:
        sim = world.simulate(world_batch(model, batch))
    x = features(sim.states, noise)
    train = np.arange(samples) < int(0.8 * samples)
    rows = []
    for node in spec.graph.nodes:
        var = node.variable
        if var.time_varying:
            continue
        y = np.asarray(batch.column(node.name), dtype=float)
        if np.ptp(y[~train]) == 0:
            continue
        if var.type in ("categorical", "boolean"):
            m = HistGradientBoostingClassifier(max_iter=100, random_state=0).fit(x[train], y[train])
            metric, score = "accuracy", float(np.mean(m.predict(x[~train]) == y[~train]))
        else:
            m = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(x[train], y[train])
            p = m.predict(x[~train])
            metric, score = "r2", float(1.0 - np.mean((p - y[~train]) ** 2) / np.var(y[~train]))
        rows.append({"name": node.name, "metric": metric, "score": score, "unidentifiable": var.unidentifiable})
        if progress:
            print(f"  {node.name} {metric} {score:.3f}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="*", default=list(DEFAULT))
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--noise", type=float, default=0.005, help="position noise (m) added to the true centres")
    a = ap.parse_args()
    for scene in a.scenes:
        rows = analyse(scene, a.samples, a.noise, progress=True)
        cells = ", ".join(f"{r['name']} {r['score']:.3f}{' (acc)' if r['metric'] == 'accuracy' else ''}"
                          f"{' [declared unidentifiable]' if r['unidentifiable'] else ''}" for r in rows)
        print(f"{scene}: {cells}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
