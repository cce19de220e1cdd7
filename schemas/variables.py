"""Latent variables: type, range, unit and structural equation (mechanism + noise)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, ConfigDict, Field, field_validator, model_validator

from .base import TaggedModel
from .expression import ExpressionError, parse_expression
from .noise import Noise

#: The name a mechanism uses for its own exogenous noise term.
NOISE_NAME = "eps"


def check_mechanism(src: str | None) -> str | None:
    if src is None:
        return None
    try:
        parse_expression(src)
    except ExpressionError as e:
        raise ValueError(str(e)) from None
    return src


class _Variable(TaggedModel):
    description: str = ""
    unit: str | None = None
    mechanism: str | None = Field(None, description="structural equation over parents and 'eps'; omit for a root")
    noise: Noise | None = Field(None, description="distribution of the exogenous noise 'eps' (a root's value)")
    time_varying: bool = Field(False, description="a per-frame state simulated by the world, stored in `states`")
    unidentifiable: str | None = Field(
        None, min_length=1, max_length=500,
        description="why the observations cannot determine this latent (physics or symmetry hides it); the graph "
                    "sidecar and dataset card show the reason and `crlgen probe` scores it apart")

    _check_mech = field_validator("mechanism")(classmethod(lambda cls, v: check_mechanism(v)))

    @model_validator(mode="after")
    def _equation(self):
        uses_eps = self.mechanism is not None and NOISE_NAME in parse_expression(self.mechanism).names
        if self.time_varying:
            if self.mechanism is not None or self.noise is not None:
                raise ValueError("a time_varying variable is simulated by the world: give it no mechanism or noise (its initial value is a separate latent)")
        elif self.mechanism is None and self.noise is None:
            raise ValueError("expected a mechanism, a noise distribution (for a root) or time_varying: true")
        if uses_eps and self.noise is None:
            raise ValueError(f"mechanism uses '{NOISE_NAME}' but no noise distribution is declared")
        if self.mechanism is not None and self.noise is not None and not uses_eps:
            raise ValueError(f"noise is declared but the mechanism does not use '{NOISE_NAME}'")
        return self

    @property
    def is_root(self) -> bool:
        return self.mechanism is None and not self.time_varying

    def bounds(self) -> tuple[float, float]:
        return (-math.inf, math.inf)


def _require_type(schema: dict[str, Any], cls: type) -> None:
    """JSON Schema: only a continuous variable may omit ``type`` (a missing type reads as continuous)."""
    if "type" not in schema.setdefault("required", []):
        schema["required"].append("type")


#: For every type but continuous: ``type`` is always written (to_dict drops defaults) and required in the JSON Schema.
_TAGGED = ConfigDict(json_schema_extra=_require_type)


def _check_range(rng, integer: bool):
    if rng is None:
        return rng
    lo, hi = rng
    if not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi:
        raise ValueError(f"expected a finite [low, high] with low < high, got [{lo:g}, {hi:g}]")
    if integer and (lo != int(lo) or hi != int(hi)):
        raise ValueError(f"an integer variable needs integer bounds, got [{lo:g}, {hi:g}]")
    return rng


#: The two intervention spaces a variable may declare (CausalWorld's space_a and space_b).
SPACE_NAMES = ("A", "B")
Space = Literal["A", "B"]
_SPACES_DOC = ("intervention spaces (CausalWorld's space_a / space_b): {A: [low, high], B: [low, high]}, two disjoint "
               "value ranges inside the declared range; a domain with `space: A` draws a root uniformly in A, "
               "`do(space)` draws the variable in the space of the sample's domain")


def _check_spaces(spaces: dict[str, tuple[float, float]] | None, integer: bool):
    """Both spaces given, each a finite [low, high] (integers for an integer variable), and disjoint
    (for a continuous variable the two may share an end point, as CausalWorld's do)."""
    if spaces is None:
        return spaces
    missing = [k for k in SPACE_NAMES if k not in spaces]
    if missing:
        raise ValueError(f"expected both spaces A and B, missing {', '.join(missing)}")
    for k in SPACE_NAMES:
        try:
            _check_range(spaces[k], integer)
        except ValueError as e:
            raise ValueError(f"space {k}: {e}") from None
    (a0, a1), (b0, b1) = spaces["A"], spaces["B"]
    if max(a0, b0) < min(a1, b1) or (integer and max(a0, b0) <= min(a1, b1)):
        raise ValueError(f"spaces A [{a0:g}, {a1:g}] and B [{b0:g}, {b1:g}] overlap; they must be disjoint"
                         + ("" if integer else " (they may share an end point)"))
    return spaces


def _spaces_inside(var) -> None:
    if var.spaces is None or var.range is None:
        return
    lo, hi = var.range
    for k in SPACE_NAMES:
        a, b = var.spaces[k]
        if a < lo or b > hi:
            raise ValueError(f"@spaces: space {k} [{a:g}, {b:g}] lies outside the declared range [{lo:g}, {hi:g}]")


class Continuous(_Variable):
    """A real-valued latent (the default type), with an optional declared ``range`` [low, high] and
    ``period`` (an angle or a hue: values that differ by a multiple of it look the same)."""

    type: Literal["continuous"] = "continuous"
    range: tuple[float, float] | None = Field(None, description="declared [low, high]; values outside fail validation")
    period: float | None = Field(None, gt=0, description="the value repeats every `period` (2*pi for an angle, 1 for a hue)")
    spaces: dict[Space, tuple[float, float]] | None = Field(None, description=_SPACES_DOC)

    _r = field_validator("range")(classmethod(lambda cls, v: _check_range(v, False)))
    _s = field_validator("spaces")(classmethod(lambda cls, v: _check_spaces(v, False)))

    @model_validator(mode="after")
    def _spaces_in_range(self):
        _spaces_inside(self)
        return self

    def bounds(self):
        return tuple(self.range) if self.range else (-math.inf, math.inf)


class Integer(_Variable):
    """Values are rounded to the nearest integer after the mechanism."""

    model_config = _TAGGED
    tag_field = "type"
    type: Literal["integer"] = "integer"
    range: tuple[float, float] | None = None
    spaces: dict[Space, tuple[float, float]] | None = Field(None, description=_SPACES_DOC)

    _r = field_validator("range")(classmethod(lambda cls, v: _check_range(v, True)))
    _s = field_validator("spaces")(classmethod(lambda cls, v: _check_spaces(v, True)))

    @model_validator(mode="after")
    def _spaces_in_range(self):
        _spaces_inside(self)
        return self

    def bounds(self):
        return tuple(self.range) if self.range else (-math.inf, math.inf)


class Categorical(_Variable):
    """Stored as integer codes 0..K-1 into ``levels``."""

    model_config = _TAGGED
    tag_field = "type"
    type: Literal["categorical"] = "categorical"
    levels: tuple[str, ...] = Field(min_length=2, max_length=1024)

    @field_validator("levels")
    @classmethod
    def _levels(cls, v):
        dup = sorted({x for x in v if v.count(x) > 1})
        if dup:
            raise ValueError(f"duplicate levels {dup}")
        return v

    @model_validator(mode="after")
    def _noise_matches(self):
        if self.is_root and self.noise is not None:
            if self.noise.dist != "categorical" or len(self.noise.probs) != len(self.levels):
                raise ValueError(f"a categorical root needs categorical noise with {len(self.levels)} probabilities (one per level)")
        return self

    def bounds(self):
        return (0.0, float(len(self.levels) - 1))


class Boolean(_Variable):
    """Stored as 0.0 / 1.0; its mechanism must give 0 or 1 (a truth value: a comparison, and/or/not), any
    other value is a spec error (the sampler never coerces ``b + 0.5`` to true)."""

    model_config = _TAGGED
    tag_field = "type"
    type: Literal["boolean"] = "boolean"

    @model_validator(mode="after")
    def _noise_matches(self):
        if self.is_root and self.noise is not None and self.noise.dist != "bernoulli":
            raise ValueError("a boolean root needs bernoulli noise")
        return self

    def bounds(self):
        return (0.0, 1.0)


def _default_type(v: Any) -> Any:
    if isinstance(v, dict) and "type" not in v:
        return {"type": "continuous", **v}
    return v


Variable = Annotated[
    Annotated[Union[Continuous, Integer, Categorical, Boolean], Field(discriminator="type")],
    BeforeValidator(_default_type),
]
