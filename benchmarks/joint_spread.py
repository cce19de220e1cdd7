"""How far does each arm joint move over a scene's clips? The per-frame joint angles, simulated without rendering.

A joint whose angle barely varies over clips and frames (a few degrees) is sub-pixel at 64 px, so no probe
on pixels reads it; this measures the spread before spending a render and a probe. For a catalogue arm scene
(``robotics/arm``), sample its first N samples with the spec's sampler (observational, without temporal
edits), simulate them with the world, and print the standard deviation (rad) of each ``joint[k].q`` over
all clips and frames: once as the spec draws ``arm.twist`` (the rest angle of the upper arm's roll joint,
which the IK's null space follows) and once with ``arm.twist`` removed (the world's default 0), on the same
draws of every other latent. Also prints how many clips end with ``obj[0]`` within 3 cm of the goal
(scenes with cubes; ``robotics/buttons_lights`` has none).

    python benchmarks/joint_spread.py [--samples 24] [robotics/open_space ...]

Recorded in docs/probe.md (eleventh and thirteenth rounds).
"""

from __future__ import annotations

import argparse
import os

import numpy as np

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _spread(spec, samples: int) -> tuple[list[float], int]:
    from crlgen.pipeline._feasible import world_batch
    from crlgen.pipeline._scm import CompiledSCM
    from crlgen.scenes.registry import build_world

    model = CompiledSCM(spec)
    batch = model.sample(0, samples)
    wb = world_batch(model, batch)
    with build_world(spec) as world:
        sim = world.simulate(wb)
        names = list(sim.state_names)
        joints = len(world.model.joints)
    q = [float(sim.states[:, :, names.index(f"joint[{k}].q")].std()) for k in range(joints)]
    if "obj[0].x" not in names:  # robotics/buttons: no cube; the world's checks say every planned press landed
        return q, None
    end = np.stack([sim.states[:, -1, names.index(f"obj[0].{a}")] for a in "xy"], axis=1)
    goal = np.stack([wb.latents[f"goal.{a}"] for a in "xy"], axis=1)
    return q, int((np.linalg.norm(end - goal, axis=1) < 0.03).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenes", nargs="*", default=["robotics/open_space"])
    ap.add_argument("--samples", type=int, default=24)
    a = ap.parse_args()

    from crlgen.pipeline import load_spec

    for name in a.scenes:
        spec = load_spec(name).replace(samples=a.samples, temporal_edits=(), interventions={"regime": "observational"})
        if "arm.twist" not in spec.variables:
            raise SystemExit(f"{name}: the spec does not draw arm.twist")
        plain = spec.replace(variables={k: v for k, v in spec.variables.items() if k != "arm.twist"})
        print(f"{name}, {a.samples} clips: std of joint[k].q over clips and frames (rad); clips placing obj[0] within 3 cm")
        noise = spec.variables["arm.twist"].noise.model_dump()  # the shorthand, e.g. "uniform(-1, 1)"
        for label, s in (("without arm.twist", plain), (f"arm.twist {noise}", spec)):
            q, placed = _spread(s, a.samples)
            print(f"  {label:28s} " + "  ".join(f"{k}: {v:.3f}" for k, v in enumerate(q))
                  + (f"   placed {placed}/{a.samples}" if placed is not None else ""))


if __name__ == "__main__":
    main()
