"""``crlgen evaluate``: score a learned representation against a store's true latents.

The representation is an array (samples, K), row i for sample i. On the rows of one split
(default ``test``) it reports MCC (Pearson and Spearman, Hungarian matching, see
:mod:`crlgen.pipeline.metrics`) per latent and on average, and the R^2 of each latent predicted
from the representation by linear and kernel ridge regressions fitted on the ``train`` rows.
Latents constant on the scored rows have no correlation to speak of: they are listed as
constant and left out of the means.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..schemas.splits import SPLIT_NAMES
from ._reading import read
from ._store import Store, StoreError
from .metrics import mcc, r2

#: Fewer scored rows than this get a note that the numbers are noisy.
MIN_ROWS = 50


def evaluate_representation(store: Store, z_hat: np.ndarray, split: str = "test") -> dict[str, Any]:
    """Scores of ``z_hat`` ((samples, K) numeric, finite) against ``store``'s latents on ``split``.

    Returns ``{"rows", "dims", "split", "mcc_pearson", "mcc_spearman", "r2_linear", "r2_kernel",
    "latents": [{"name", "constant", "mcc_pearson", "matched_dim", "mcc_spearman", "r2_linear",
    "r2_kernel"}]}`` (None where undefined). Raises :class:`StoreError` (one line) for a
    representation of the wrong shape or type, or a split without enough rows.
    """
    g = store.group("r")
    z = read(g["latents"]).astype(np.float64)
    names = [str(x) for x in read(g["latent"])]
    codes = read(g["split"])
    z_hat = np.asarray(z_hat)
    if z_hat.dtype.kind not in "biuf":
        raise StoreError(f"REPRESENTATIONS: expected a real-valued numeric array, got dtype {z_hat.dtype}")
    if z_hat.ndim == 1:
        z_hat = z_hat[:, None]
    if z_hat.ndim != 2 or z_hat.shape[0] != z.shape[0] or z_hat.shape[1] == 0:
        raise StoreError(f"REPRESENTATIONS: expected shape ({z.shape[0]}, K) with K >= 1, one row per sample of the store, "
                         f"got {z_hat.shape}")
    z_hat = z_hat.astype(np.float64)
    if not np.isfinite(z_hat).all():
        raise StoreError("REPRESENTATIONS: expected finite numbers, found NaN or inf")
    # MCC and the R^2 of standardised inputs do not change when a column is rescaled; rescaling
    # first keeps huge values (1e300) from overflowing the variance
    peak = np.abs(z_hat).max(axis=0)
    z_hat = z_hat / np.where(peak > 0, peak, 1.0)
    rows = np.flatnonzero(codes == SPLIT_NAMES.index(split))
    train = np.flatnonzero(codes == SPLIT_NAMES.index("train"))
    if rows.size < 3:
        raise StoreError(f"--split {split}: the store's {split} split holds {rows.size} samples; at least 3 are needed")
    varying = [j for j in range(z.shape[1]) if np.ptp(z[rows, j]) > 0]
    per = [{"name": n, "constant": j not in varying, "mcc_pearson": None, "matched_dim": None, "mcc_spearman": None,
            "r2_linear": None, "r2_kernel": None} for j, n in enumerate(names)]
    out: dict[str, Any] = {"rows": int(rows.size), "dims": int(z_hat.shape[1]), "split": split, "latents": per,
                           "notes": []}
    if rows.size < MIN_ROWS:
        out["notes"].append(f"only {rows.size} {split} rows: correlations and R^2 this few rows give are noisy "
                            f"(a random representation can score high); use {MIN_ROWS} or more")
    if 3 <= train.size < MIN_ROWS and split != "train":
        out["notes"].append(f"only {train.size} train rows: the regressions behind R^2 are fitted on them, so R^2 "
                            f"says little (the kernel one least); use {MIN_ROWS} or more")
    if split == "train":
        out["notes"].append("R^2 is held out (fitted on train, scored on the split): not reported for --split train")
    if varying:
        zv = z[:, varying]
        for method in ("pearson", "spearman"):
            res = mcc(zv[rows], z_hat[rows], method=method)
            out[f"mcc_{method}"] = res.mcc
            for k, j in enumerate(varying):
                per[j][f"mcc_{method}"] = float(res.per_latent[k])
                if method == "pearson" and res.assignment[k] >= 0:
                    per[j]["matched_dim"] = int(res.assignment[k])
    else:
        out["mcc_pearson"] = out["mcc_spearman"] = None
    for model in ("linear", "kernel"):
        key = f"r2_{model}"
        if train.size >= 3 and rows.size >= 2 and varying and not (split == "train"):
            scores = r2(z_hat, z, train, rows, model=model)
            for j in varying:
                per[j][key] = float(scores[j]) if np.isfinite(scores[j]) else None
            vals = [per[j][key] for j in varying if per[j][key] is not None]
            out[key] = float(np.mean(vals)) if vals else None
        else:
            out[key] = None
    return out
