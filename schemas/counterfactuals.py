"""Counterfactual pairs: a partner shares all exogenous noise and differs by one intervention."""

from __future__ import annotations

from pydantic import Field, model_validator

from .base import SpecModel
from .interventions import Targets
from .temporal import TemporalEdit


class Counterfactuals(SpecModel):
    """``fraction`` of samples are partners of another sample (so at most one half).

    The partner copies its factual sample's noise, domain, interventions and
    edits, then applies ``intervention`` (at t=0) or ``edit`` (a temporal edit).
    """

    fraction: float = Field(gt=0, le=0.5)
    intervention: Targets | None = None
    edit: TemporalEdit | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.intervention is None) == (self.edit is None):
            raise ValueError("give exactly one of intervention or edit")
        if self.intervention is not None and not self.intervention:
            raise ValueError("intervention needs at least one target")
        return self
