"""Exogenous noise distributions (a discriminated union on ``dist``).

A spec may write a distribution as a mapping (``{dist: uniform, low: 0, high: 1}``)
or as a shorthand string (``uniform(0, 1)``); both validate to the same model.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_serializer, model_validator

from .base import SpecModel
from .shorthand import ShorthandError, parse_call


class _Dist(SpecModel):
    _positional: tuple[str, ...] = ()

    @model_serializer(mode="plain")
    def _as_shorthand(self) -> str:
        """Distributions are written back the way authors write them: ``uniform(0.02, 0.1)``."""
        return self.shorthand()

    def support(self) -> tuple[float, float]:
        """Smallest interval holding every draw (may be infinite)."""
        return (-math.inf, math.inf)

    def shorthand(self) -> str:
        vals = ", ".join(repr(getattr(self, f)) if not isinstance(getattr(self, f), tuple) else repr(list(getattr(self, f))) for f in self._positional)
        return f"{self.dist}({vals})"


class Normal(_Dist):
    """Gaussian noise: ``normal(mean, std)``, std > 0; unbounded support."""

    dist: Literal["normal"] = "normal"
    mean: float = 0.0
    std: float = Field(1.0, gt=0)
    _positional = ("mean", "std")


class _Interval(_Dist):
    """A distribution on [low, high]."""

    low: float = 0.0
    high: float = 1.0

    @model_validator(mode="after")
    def _order(self):
        if not self.low < self.high:
            raise ValueError(f"{self.dist} needs low < high, got low={self.low:g}, high={self.high:g}")
        return self

    def support(self):
        return (self.low, self.high)


class Uniform(_Interval):
    """Uniform on [low, high]: ``uniform(low, high)``."""

    dist: Literal["uniform"] = "uniform"
    _positional = ("low", "high")


class Laplace(_Dist):
    """Laplace (double exponential) noise: ``laplace(loc, scale)``, scale > 0; unbounded support."""

    dist: Literal["laplace"] = "laplace"
    loc: float = 0.0
    scale: float = Field(1.0, gt=0)
    _positional = ("loc", "scale")


class Beta(_Interval):
    """Beta(a, b) stretched onto [low, high]."""

    dist: Literal["beta"] = "beta"
    a: float = Field(gt=0)
    b: float = Field(gt=0)
    _positional = ("a", "b", "low", "high")


class Exponential(_Dist):
    """Exponential noise with mean ``scale`` > 0: ``exponential(scale)``; support [0, inf)."""

    dist: Literal["exponential"] = "exponential"
    scale: float = Field(1.0, gt=0)
    _positional = ("scale",)

    def support(self):
        return (0.0, math.inf)


class LogNormal(_Dist):
    """exp(Normal(mean, sigma)): ``lognormal(mean, sigma)``; support (0, inf)."""

    dist: Literal["lognormal"] = "lognormal"
    mean: float = 0.0
    sigma: float = Field(1.0, gt=0)
    _positional = ("mean", "sigma")

    def support(self):
        return (0.0, math.inf)


class Categorical(_Dist):
    """Draws integer codes 0..K-1 with the given probabilities (normalised)."""

    dist: Literal["categorical"] = "categorical"
    probs: tuple[float, ...] = Field(min_length=2, max_length=1024)
    _positional = ("probs",)

    @field_validator("probs")
    @classmethod
    def _probs(cls, v):
        if any(p < 0 or not math.isfinite(p) for p in v) or sum(v) <= 0:
            raise ValueError("expected non-negative finite probabilities with a positive sum")
        return v

    def support(self):
        return (0.0, float(len(self.probs) - 1))


class Bernoulli(_Dist):
    """1.0 with probability ``p``, else 0.0: ``bernoulli(p)`` (the noise of boolean roots)."""

    dist: Literal["bernoulli"] = "bernoulli"
    p: float = Field(0.5, ge=0, le=1)
    _positional = ("p",)

    def support(self):
        return (0.0, 1.0)


class Mixture(_Dist):
    """Picks a component per draw with probability ``weights`` (normalised)."""

    dist: Literal["mixture"] = "mixture"
    components: tuple["Noise", ...] = Field(min_length=2, max_length=32)
    weights: tuple[float, ...] | None = None

    @model_validator(mode="after")
    def _weights(self):
        if self.weights is not None:
            if len(self.weights) != len(self.components):
                raise ValueError(f"mixture has {len(self.components)} components but {len(self.weights)} weights")
            if any(w < 0 or not math.isfinite(w) for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError("mixture weights must be non-negative with a positive sum")
        return self

    def support(self):
        lows, highs = zip(*(c.support() for c in self.components))
        return (min(lows), max(highs))

    def shorthand(self) -> str:
        parts = ", ".join(c.shorthand() for c in self.components)
        w = f", weights={list(self.weights)}" if self.weights is not None else ""
        return f"mixture({parts}{w})"


DISTRIBUTIONS: dict[str, type[_Dist]] = {
    c.model_fields["dist"].default: c
    for c in (Normal, Uniform, Laplace, Beta, Exponential, LogNormal, Categorical, Bernoulli, Mixture)
}


def call_to_noise(call: dict[str, Any]) -> dict[str, Any]:
    """Turn a parsed shorthand call into the mapping form of a distribution."""
    name = call["name"]
    cls = DISTRIBUTIONS.get(name)
    if cls is None:
        raise ValueError(f"unknown noise distribution {name!r}; expected one of {', '.join(DISTRIBUTIONS)}")
    out: dict[str, Any] = {"dist": name}
    if cls is Mixture:
        comps = []
        for a in call["args"]:
            if not isinstance(a, dict):
                raise ValueError(f"mixture components must be distributions, got {a!r}")
            comps.append(call_to_noise(a))
        out["components"] = comps
    elif cls is Categorical and call["args"] and not isinstance(call["args"][0], list):
        out["probs"] = call["args"]
    else:
        fields = cls._positional.default if hasattr(cls._positional, "default") else cls._positional
        if len(call["args"]) > len(fields):
            raise ValueError(f"{name} takes at most {len(fields)} positional arguments ({', '.join(fields)}), got {len(call['args'])}")
        out.update(zip(fields, call["args"]))
    for k, v in call["kwargs"].items():
        if k in out:
            raise ValueError(f"{name} got {k!r} twice")
        out[k] = v
    return out


def parse_noise(value: Any) -> Any:
    """Before-validator: accept a shorthand string for any distribution."""
    if isinstance(value, str):
        try:
            return call_to_noise(parse_call(value))
        except ShorthandError as e:
            raise ValueError(str(e)) from None
    if isinstance(value, dict) and "dist" in value and value["dist"] not in DISTRIBUTIONS:
        raise ValueError(f"unknown noise distribution {value['dist']!r}; expected one of {', '.join(DISTRIBUTIONS)}")
    return value


_NoiseUnion = Annotated[
    Union[Normal, Uniform, Laplace, Beta, Exponential, LogNormal, Categorical, Bernoulli, Mixture],
    Field(discriminator="dist"),
]
Noise = Annotated[_NoiseUnion, BeforeValidator(parse_noise, json_schema_input_type=Union[str, _NoiseUnion])]
Mixture.model_rebuild()
