"""Domains (environments): named overrides of parameters, mechanisms or noise."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from .base import SpecModel
from .noise import Noise
from .variables import Space, check_mechanism


class Domain(SpecModel):
    """One environment; every sample carries the label of the domain it was drawn in."""

    description: str = ""
    weight: float | None = Field(None, gt=0, description="relative share of samples")
    samples: int | None = Field(None, ge=0, description="exact sample count (all domains must then give one)")
    parameters: dict[str, float] = Field(default_factory=dict, description="overridden parameter values")
    overrides: dict[str, str] = Field(default_factory=dict, description="variable -> replacement mechanism")
    noise: dict[str, Noise] = Field(default_factory=dict, description="variable -> replacement noise")
    space: Space | None = Field(None, description="intervention space (A or B): every root variable that declares "
                                "`spaces` is drawn uniformly in that space's range in this domain; do(space) draws there too")

    @field_validator("overrides")
    @classmethod
    def _mechs(cls, v):
        for name, src in v.items():
            try:
                check_mechanism(src)
            except ValueError as e:
                raise ValueError(f"@{name}: {e}") from None  # "@": reported at overrides.<name>
        return v

    @model_validator(mode="after")
    def _one_share(self):
        if self.weight is not None and self.samples is not None:
            raise ValueError("give a domain either weight or samples, not both")
        return self
