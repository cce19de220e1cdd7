"""Train / validation / test splits, decided when the dataset is generated and stored with it.

By default every sample goes to a split at random (from the spec's seed) with the given
``fractions``. Two out-of-distribution rules can send samples to ``test`` instead:
``test_domains`` (the samples of these environments; ``few_shot`` keeps a share of them in
train), ``test_space`` (the samples of every domain that selects that intervention space: train
on space A, test on space B, as in CausalWorld) and ``test_range`` (every sample whose ``latent`` lies in ``[low, high]``: an
intervention-value or latent range never trained on).
A counterfactual partner is always in its factual sample's split.
"""

from __future__ import annotations

import math

from pydantic import Field, model_validator

from .base import SpecModel
from .variables import Space

SPLIT_NAMES = ("train", "val", "test")


class TestRange(SpecModel):
    """Samples whose ``latent`` lies in ``[low, high]`` (inclusive) go to ``test``."""

    latent: str = Field(min_length=1)
    low: float
    high: float

    @model_validator(mode="after")
    def _order(self):
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise ValueError(f"expected finite low <= high, got [{self.low:g}, {self.high:g}]")
        return self


class Splits(SpecModel):
    """How samples are split: random ``fractions`` (train, val, test) plus optional OOD rules."""

    fractions: dict[str, float] = Field(default_factory=lambda: {"train": 0.8, "val": 0.1, "test": 0.1},
                                        description="share of samples per split (train, val, test); sums to 1")
    test_domains: tuple[str, ...] = Field((), description="environments held out for test (zero-shot transfer)")
    few_shot: float = Field(0.0, ge=0.0, lt=1.0, description="share of the held-out environments' samples kept in "
                            "train (few-shot transfer); 0 = none")
    test_range: TestRange | None = Field(None, description="a latent range held out for test (out of support)")
    test_space: Space | None = Field(None, description="the samples of every domain with this `space` go to test "
                                     "(e.g. train on space A, test on B); few_shot applies as for test_domains")

    @model_validator(mode="after")
    def _fractions(self):
        unknown = sorted(set(self.fractions) - set(SPLIT_NAMES))
        if unknown:
            raise ValueError(f"unknown splits {unknown}; expected {', '.join(SPLIT_NAMES)}")
        if any(not (0.0 <= f <= 1.0) for f in self.fractions.values()):
            raise ValueError("fractions must lie in [0, 1]")
        total = sum(self.fractions.values())
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"fractions add up to {total:g}, expected 1")
        if self.few_shot > 0 and not self.test_domains and self.test_space is None:
            raise ValueError("few_shot keeps a share of the test_domains in train: give test_domains too (or test_space)")
        return self

    def fraction(self, name: str) -> float:
        return float(self.fractions.get(name, 0.0))
