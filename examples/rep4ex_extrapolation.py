"""Intervention extrapolation (Rep4Ex): actions A act linearly on the latents; test actions lie
outside the training support.

Generates a small version of the catalogue's ``papers/rep4ex_spring`` (Blender, 32 px, one
view) in-process into a temporary store, then builds what the paper's setting needs:

- the out-of-support test set: every sample with action A1 in [0.5, 1] is in ``test`` (the
  split was decided at generation, from the spec's ``splits.test_range``), so no training
  image ever saw those actions;
- the check behind Rep4Ex's assumption Z = M A + V: a linear map fitted from A to Z on the
  training rows predicts Z on the unseen actions (held-out R^2 per latent);
- the images of the test set, ready for a representation to be evaluated on (with
  ``crlgen evaluate``).

    python examples/rep4ex_extrapolation.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from crlgen.pipeline import RunOptions, check_spec, load_spec, open_store, resolve, run
from crlgen.pipeline.metrics import r2

#: The spec's action matrix: h = 0.06 + 0.03 A1, r = 0.03 + 0.006 A1 + 0.008 A2, k = 225 + 120 A2 (plus noise).
TRUE_M = np.array([[0.03, 0.0], [0.006, 0.008], [0.0, 120.0]])


def main() -> None:
    spec = load_spec("papers/rep4ex_spring").replace(samples=120, shard_size=40,
                                                     render={"size": 32, "views": 1, "engine": "cycles", "samples": 4})
    check_spec(spec)
    with tempfile.TemporaryDirectory() as tmp:
        location = resolve(str(Path(tmp) / "rep4ex.zarr"))
        result = run(spec, location, RunOptions(executor="inline"))
        print(f"generated {spec.samples} samples in {result.seconds:.1f} s; validation {'passed' if result.valid else 'FAILED'}")

        ds = open_store(location.url)
        z = ds["latents"]
        split = ds["split"].values
        a1 = z.sel(latent="A1").values
        train, test = np.flatnonzero(split == 0), np.flatnonzero(split == 2)
        print(f"A1 on train: [{a1[train].min():.3f}, {a1[train].max():.3f}]   A1 on test: [{a1[test].min():.3f}, {a1[test].max():.3f}]")
        out_of_support = test[a1[test] >= 0.5]
        assert a1[train].max() < 0.5 and out_of_support.size > 0, "the test actions must lie outside the training support"
        print(f"out-of-support test set: {out_of_support.size} samples (all with A1 >= 0.5, never trained on)")

        actions = z.sel(latent=["A1", "A2"]).values
        targets = z.sel(latent=["h", "r", "k"]).values
        design = np.c_[actions, np.ones(len(actions))]
        coef, *_ = np.linalg.lstsq(design[train], targets[train], rcond=None)  # Z = M A + c + V on train
        M = coef[:2].T
        print("M fitted on train (rows h, r, k; columns A1, A2):\n", np.array2string(M, precision=4, suppress_small=True))
        scale = np.abs(TRUE_M).max(1, keepdims=True)
        assert (np.abs(M - TRUE_M) / scale < 0.1).all(), "the latents must move linearly with the actions"
        error = np.abs(design[out_of_support] @ coef - targets[out_of_support]).mean(0)
        print("mean |error| of the linear map on the unseen actions:", ", ".join(f"{n} {e:.4g}" for n, e in zip("hrk", error)),
              "(noise half-widths 0.005, 0.003, 30)")
        scores = r2(actions, targets, train, test, model="linear")
        print("held-out R^2 of Z from A on the whole test split:", ", ".join(f"{n} {s:.3f}" for n, s in zip("hrk", scores)))

        images = ds["images"].isel(sample=out_of_support).values  # (n, view, y, x, 3) uint8
        print(f"test images: {images.shape} {images.dtype}; outcome y on them: mean {z.sel(latent='y').values[out_of_support].mean():.3f}")
        if not result.valid:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
