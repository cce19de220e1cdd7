"""Write your own causal model in Python and generate a latents-only dataset.

Builds a small SCM from scratch with the model classes: a categorical material,
two balls (a per-object template ``ball[i]``), a derived total weight, two
domains (earth and mars gravity), a "sets" intervention regime and counterfactual
pairs. It checks the spec, runs the pipeline in-process (no Ray) into a Zarr
store in a temporary directory, opens the store with xarray and prints the
dataset and the validation report.

    python examples/custom_scm.py
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from crlgen.pipeline import RunOptions, check_spec, open_store, resolve, run
from crlgen.schemas import (Categorical, CategoricalVariable, Continuous, Counterfactuals, Dataset, Do, Domain, Normal,
                            Scale, Sets, Uniform)
from crlgen.schemas.interventions import TargetSet


def build() -> Dataset:
    return Dataset(
        name="two_balls",
        description="Two balls of one material; their weight depends on gravity.",
        samples=2000,
        seed=7,
        objects=2,
        parameters={"g": 9.81},
        variables={
            "material": CategoricalVariable(levels=("wood", "steel", "lead"), noise=Categorical(probs=(0.5, 0.3, 0.2))),
            "ball[i].radius": Continuous(range=(0.02, 0.1), unit="m", noise=Uniform(low=0.02, high=0.1)),
            "ball[i].mass": Continuous(unit="kg", noise=Normal(std=0.01),
                                       mechanism="(700 + 7000 * material) * 4.18879 * ball[i].radius**3 + eps"),
            "weight": Continuous(unit="N", mechanism="g * (ball[0].mass + ball[1].mass)"),
        },
        domains={"earth": Domain(weight=0.5), "mars": Domain(weight=0.5, parameters={"g": 3.71})},
        interventions=Sets(fraction=0.3, sets=(
            TargetSet(name="steel", targets={"material": Do(value=1)}),
            TargetSet(name="big_light", targets={"ball[i].radius": Do(value=0.09), "ball[i].mass": Scale(by=0.5)}),
        )),
        counterfactuals=Counterfactuals(fraction=0.1, intervention="do(material = 2)"),
    )


def main() -> None:
    spec = check_spec(build())
    print("graph:", ", ".join(f"{p} -> {c}" for p, c in spec.graph.edges()))

    with tempfile.TemporaryDirectory() as tmp:
        location = resolve(str(Path(tmp) / "two_balls.zarr"))
        result = run(spec, location, RunOptions(executor="inline"))
        print(f"wrote {result.shards_run} shard(s) in {result.seconds:.1f} s\n")

        ds = open_store(location.url)
        print(ds)
        latents = ds["latents"].load()
        print("\nmean of each latent:", {str(k): round(float(v), 4) for k, v in zip(ds["latent"].values, latents.mean("sample").values)})
        print("domain counts:", dict(zip(spec.domains, np.bincount(ds["domain"].values).tolist())))
        print("sets used:", dict(zip(["none", "steel", "big_light"], np.bincount(ds["intervention"].values + 1).tolist())))

        report = json.loads((Path(tmp) / "two_balls.zarr" / "validation.json").read_text())
        assert report == result.report
        print("\nvalidation:", "passed" if result.valid else "FAILED")
        for check in report["checks"]:
            status = "skipped: " + check["skipped"] if check.get("skipped") else ("ok" if check["passed"] else check["problems"])
            print(f"  {check['name']:>16}: {status}")
        if not result.valid:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
