"""Counterfactual image pairs (CausalDiffAE-style): one do-intervention, all noise shared.

Generates a small version of the catalogue's ``papers/causaldiffae_spring`` (Blender, 32 px,
one view) in-process; every factual sample has a partner with the same exogenous noise and
``do(h = ...)``. :class:`crlgen.pipeline.loaders.PairDataset` serves them as (x, x') with
(z, z') and the mask of latents that changed: exactly h and its descendants m and l, never
a root the intervention does not touch.

    python examples/causaldiffae_pairs.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from crlgen.pipeline import RunOptions, check_spec, load_spec, resolve, run


def main() -> None:
    spec = load_spec("papers/causaldiffae_spring").replace(samples=60, shard_size=20,
                                                           render={"size": 32, "views": 1, "engine": "cycles", "samples": 4})
    check_spec(spec)
    from torch.utils.data import DataLoader

    from crlgen.pipeline.loaders import PairDataset

    with tempfile.TemporaryDirectory() as tmp:
        location = resolve(str(Path(tmp) / "pairs.zarr"))
        result = run(spec, location, RunOptions(executor="inline"))
        print(f"generated {spec.samples} samples in {result.seconds:.1f} s; validation {'passed' if result.valid else 'FAILED'}")

        pairs = PairDataset(location.url, split=None)
        names = pairs.latent_names
        batch = next(iter(DataLoader(pairs, batch_size=len(pairs))))
        print(f"{len(pairs)} pairs; x {tuple(batch['x'].shape)}, x_pair {tuple(batch['x_pair'].shape)}")
        changed = batch["changed"].numpy()
        print("latents that changed in some pair:", [n for n, c in zip(names, changed.any(0)) if c])
        allowed = {"h", "m", "l"}  # the target and its descendants
        assert not changed[:, [names.index(n) for n in names if n not in allowed]].any(), "only h and its effects change"
        assert batch["intervened"][:, names.index("h")].all()
        moved = (batch["x"] - batch["x_pair"]).abs().flatten(1).amax(1).numpy()
        print(f"pixels differ in {int((moved > 0).sum())} of {len(pairs)} pairs (max |dx| median {np.median(moved):.3f})")
        k = names.index("h")
        print("first pairs, h -> h':", ", ".join(f"{a:.3f} -> {b:.3f}" for a, b in zip(batch["z"][:4, k], batch["z_pair"][:4, k])))
        if not result.valid:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
