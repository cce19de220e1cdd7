"""Edit a catalogue spec from Python: the spring, with one more intervention.

Loads ``static/spring``, sets the sample count, adds a hard intervention on the
spring constant, checks the spec against its world, writes it as YAML and reads
it back, prints the causal graph, then samples the latents (no rendering) and
prints a few statistics.

    python examples/spring_python.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from crlgen.pipeline import CompiledSCM, check_spec, load_spec


def main() -> None:
    spec = load_spec("static/spring").with_samples(1000)
    spec = spec.intervene("k", do=350.0, fraction=0.2)  # replaces the catalogue's do(uniform(300, 400)) on k
    check_spec(spec)  # every problem at once, one "path: message" line each

    with tempfile.TemporaryDirectory() as tmp:
        path = spec.dump(Path(tmp) / "my_spring.yaml")
        again = load_spec(path)
        assert again == spec
        print(f"wrote and re-read {path.name} ({len(path.read_text().splitlines())} lines)")

    g = spec.graph
    print("causal graph:", ", ".join(f"{p} -> {c}" for p, c in g.edges()))
    print("interventions:", {t: iv.model_dump() for t, iv in spec.interventions.targets.items()},
          f"on {spec.interventions.fraction:.0%} of samples")

    batch = CompiledSCM(spec).sample(0, spec.samples)
    print(f"\n{len(batch)} samples of {len(batch.names)} latents")
    print(f"{'latent':>6} {'mean':>10} {'std':>10} {'min':>10} {'max':>10} {'intervened':>10}")
    for j, name in enumerate(batch.names):
        x = batch.latents[:, j]
        print(f"{name:>6} {x.mean():10.4g} {x.std():10.4g} {x.min():10.4g} {x.max():10.4g} {batch.intervention_mask[:, j].sum():10d}")

    domains = list(spec.domains)
    counts = np.bincount(batch.domain, minlength=len(domains))
    print("\ndomains:", ", ".join(f"{d} {c}" for d, c in zip(domains, counts)))
    # the moon's lower gravity compresses the spring less
    free = ~batch.intervention_mask.any(axis=1)
    length = batch.column("l")
    for d, name in enumerate(domains):
        print(f"  mean spring length on {name} (observational): {length[free & (batch.domain == d)].mean():.4f} m")
    partners = np.flatnonzero(batch.pair_role == 2)  # 2 = counterfactual partner (see the pair_role labels)
    print(f"counterfactual pairs: {partners.size}; k of every partner = {np.unique(batch.column('k')[partners])}")


if __name__ == "__main__":
    main()
