"""Counterfactual pairs that change nothing: a note for ``crlgen check``.

A counterfactual partner copies its factual sample's noise and applies the spec's
``counterfactuals.intervention``. Where that intervention sets a value the factual sample already
has (``do(1)`` on a boolean that is 1 in 40 % of samples), the partner's latents equal the factual
ones and the pair shows no change: legal, but an uninformative pair for a method trained on
pairs. The check draws the spec's first samples (the sampler alone: no world, no pixels) and
counts such pairs; a flip of a boolean root keeps every pair informative: ``soft('1 - eps')``
(the root's own noise, which the partner shares with its factual sample, negated).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..schemas import DatasetSpec

from ._scm import ROLE_FACTUAL, CompiledSCM

#: Samples drawn to count unchanged pairs (the sampler is blockwise; a prefix is representative).
DRAWN = 2000


@dataclass(frozen=True)
class UnchangedPairs:
    """``unchanged`` of ``pairs`` counterfactual pairs drawn have partner latents equal to the factual ones
    (NaN equal to NaN); ``targets``: the intervention's targets, in spec order."""

    unchanged: int
    pairs: int
    targets: tuple[str, ...]

    @property
    def fraction(self) -> float:
        """unchanged / pairs (0 without pairs)."""
        return self.unchanged / self.pairs if self.pairs else 0.0

    def note(self) -> str:
        """One line for ``crlgen check``; empty where every pair changes."""
        if not self.unchanged:
            return ""
        return (f"counterfactuals: {self.unchanged} of the first {self.pairs} pairs ({100 * self.fraction:.0f} %) leave "
                f"every latent as in their factual sample (counterfactuals.intervention on {', '.join(self.targets)} "
                f"sets a value the factual sample already has); to flip a boolean root instead, use soft('1 - eps')")


def unchanged_pairs(spec: DatasetSpec, drawn: int = DRAWN) -> UnchangedPairs | None:
    """Count the counterfactual pairs among the spec's first ``drawn`` samples whose latents do not change.

    None where the spec has no ``counterfactuals.intervention`` (an ``edit`` acts on the world's
    per-frame states, which the sampler does not see). Raises what :class:`CompiledSCM` raises for a
    spec it cannot compile (``crlgen check`` has refused such a spec before it asks).
    """
    cf = spec.counterfactuals
    if cf is None or cf.intervention is None:
        return None
    model = CompiledSCM(spec, resamples=False)
    batch = model.sample(0, min(int(spec.samples), drawn))
    factual = np.flatnonzero(batch.pair_role == ROLE_FACTUAL)
    partner = batch.pair[factual].astype(np.int64)
    keep = partner < len(batch)  # a partner past the drawn prefix is not counted
    factual, partner = factual[keep], partner[keep]
    lat = batch.latents
    same = ((lat[factual] == lat[partner]) | (np.isnan(lat[factual]) & np.isnan(lat[partner]))).all(axis=1)
    return UnchangedPairs(int(same.sum()), int(len(factual)), tuple(cf.intervention))
