"""Sampling speed: 1,000,000 samples of a 20-variable nonlinear SCM, random single-node interventions.

Target (issue 2): under 1 second on one core. Prints the figure and the ratio to
the target; run with ``python benchmarks/bench_scm.py``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from crlgen.schemas import DatasetSpec  # noqa: E402
from crlgen.pipeline._scm import CompiledSCM  # noqa: E402

FUNCS = ["tanh({})", "sin({})", "sigmoid({})", "{}**2", "exp(-abs({}))", "log1p(abs({}))"]


def twenty_variable_spec(n: int, seed: int = 0) -> DatasetSpec:
    """A random-DAG SCM of 20 variables: roots with noise, children nonlinear in 1-3 parents plus noise."""
    rng = np.random.default_rng(seed)
    variables: dict[str, dict] = {}
    for j in range(20):
        if j < 4:
            variables[f"x{j}"] = {"noise": "normal(0, 1)"}
            continue
        parents = rng.choice(j, size=min(j, rng.integers(1, 4)), replace=False)
        terms = [f"{rng.uniform(0.5, 1.5):.3f} * " + FUNCS[rng.integers(len(FUNCS))].format(f"x{p}") for p in parents]
        variables[f"x{j}"] = {"mechanism": " + ".join(terms) + " + eps", "noise": "normal(0, 0.5)"}
    targets = {f"x{j}": f"do({rng.uniform(-2, 2):.3f})" if j % 2 else "shift(1.0)" for j in range(20)}
    return DatasetSpec.from_dict({
        "name": "bench20", "variables": variables, "samples": n, "seed": seed,
        "interventions": {"regime": "single_node", "fraction": 0.5, "targets": targets},
    })


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    spec = twenty_variable_spec(args.samples)
    model = CompiledSCM(spec)
    model.sample(0, min(args.samples, 10_000))  # warm-up
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        batch = model.sample(0, args.samples)
        times.append(time.perf_counter() - t)
    best = min(times)
    print(f"samples={args.samples} variables={len(batch.names)} intervened={float((batch.intervention >= 0).mean()):.3f}")
    print(f"best of {args.repeats}: {best:.3f} s  ({args.samples / best / 1e6:.2f} M samples/s); target 1.0 s -> ratio {best / 1.0:.2f}")


if __name__ == "__main__":
    main()
