"""Interventions (hard, soft, shift, scale) and the regimes that assign them to samples."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field, field_validator, model_serializer, model_validator

from .base import SpecModel, TaggedModel
from .noise import Noise, call_to_noise
from .shorthand import ShorthandError, parse_call
from .variables import check_mechanism


class Do(SpecModel):
    """Hard intervention: the variable is set to ``value``, drawn from ``dist``, or (``space: true``,
    written ``do(space)``) drawn uniformly in the target's intervention space of the sample's domain
    (its ``spaces`` range A or B, the one the domain's ``space`` selects)."""

    kind: Literal["do"] = "do"
    value: float | None = None
    dist: Noise | None = None
    space: bool = Field(False, description="draw uniformly in the target's space (A or B) of the sample's domain")

    @model_validator(mode="after")
    def _one(self):
        if (self.value is not None) + (self.dist is not None) + self.space != 1:
            raise ValueError("do() needs exactly one of a value, a distribution or space")
        if self.value is not None and not math.isfinite(self.value):
            raise ValueError("do() value must be finite")
        return self

    def support(self) -> tuple[float, float]:
        """Smallest interval holding every value; for ``do(space)`` the whole line (it depends on the
        target's spaces: see ``DatasetSpec``)."""
        if self.space:
            return (-math.inf, math.inf)
        return (self.value, self.value) if self.value is not None else self.dist.support()

    @model_serializer(mode="plain")
    def _as_shorthand(self) -> str:
        if self.space:
            return "do(space)"
        return f"do({self.value!r})" if self.value is not None else f"do({self.dist.shorthand()})"


class _Amount(SpecModel):
    """Shared by shift and scale: a finite number, written back as ``kind(by)``."""

    by: float

    @model_serializer(mode="plain")
    def _as_shorthand(self) -> str:
        return f"{self.kind}({self.by!r})"

    @field_validator("by")
    @classmethod
    def _finite(cls, v):
        if not math.isfinite(v):
            raise ValueError("the amount must be finite")
        return v


class Shift(_Amount):
    """The mechanism's value plus ``by``."""

    kind: Literal["shift"] = "shift"


class Scale(_Amount):
    """The mechanism's value times ``by``."""

    kind: Literal["scale"] = "scale"


class Soft(TaggedModel):
    """Soft intervention: a replacement mechanism (and optionally a new noise)."""

    tag_field = "kind"
    kind: Literal["soft"] = "soft"
    mechanism: str
    noise: Noise | None = None

    _m = field_validator("mechanism")(classmethod(lambda cls, v: check_mechanism(v)))


def _call_to_intervention(call: dict[str, Any]) -> dict[str, Any]:
    name, args, kwargs = call["name"], call["args"], call["kwargs"]
    if name == "do":
        if len(args) != 1 or kwargs:
            raise ValueError("expected do(value), do(distribution(...)) or do(space)")
        a = args[0]
        return {"kind": "do", "dist": call_to_noise(a)} if isinstance(a, dict) else {"kind": "do", "value": a}
    if name in ("shift", "scale"):
        if len(args) != 1 or kwargs or not isinstance(args[0], (int, float)):
            raise ValueError(f"expected {name}(number)")
        return {"kind": name, "by": args[0]}
    if name == "soft":
        out = {"kind": "soft"}
        if args:
            if len(args) != 1 or not isinstance(args[0], str):
                raise ValueError("expected soft('mechanism') or soft(mechanism='...', noise=dist(...))")
            out["mechanism"] = args[0]
        for k, v in kwargs.items():
            if k in out:
                raise ValueError(f"soft() got {k!r} twice; give the mechanism either first or as mechanism='...'")
            out[k] = call_to_noise(v) if k == "noise" and isinstance(v, dict) else v
        return out
    raise ValueError(f"unknown intervention {name!r}; expected do(...), shift(...), scale(...) or soft(...)")


def parse_intervention(value: Any) -> Any:
    """Before-validator: ``"do(350)"``, ``"do(uniform(300, 400))"``, ``"shift(+2000)"``, a bare number (= do)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return {"kind": "do", "value": value}
    if isinstance(value, str):
        if "".join(value.split()) == "do(space)":
            return {"kind": "do", "space": True}
        try:
            return _call_to_intervention(parse_call(value))
        except ShorthandError as e:
            raise ValueError(str(e)) from None
    return value


_InterventionUnion = Annotated[Union[Do, Shift, Scale, Soft], Field(discriminator="kind")]
Intervention = Annotated[
    _InterventionUnion,
    BeforeValidator(parse_intervention, json_schema_input_type=Union[str, float, _InterventionUnion]),
]


def parse_targets(value: Any) -> Any:
    """Before-validator for a target map; also takes ``"do(k = 350, h = 0.05)"``."""
    if isinstance(value, str):
        try:
            call = parse_call(value)
        except ShorthandError as e:
            hint = " (for names with [ ] or . use a mapping: {target: do(value)})" if any(c in value for c in "[].") else ""
            raise ValueError(f"{e}{hint}") from None
        if call["args"] or not call["kwargs"]:
            raise ValueError(f"expected {call['name']}(target = value, ...) naming each target, got {value!r}")
        return {t: _call_to_intervention({"name": call["name"], "args": [v], "kwargs": {}}) for t, v in call["kwargs"].items()}
    return value


Targets = Annotated[
    dict[str, Intervention],
    BeforeValidator(parse_targets, json_schema_input_type=Union[str, dict[str, _InterventionUnion | str | float]]),
]


def _non_empty(v: dict) -> dict:
    if not v:
        raise ValueError("expected at least one target")
    return v


class Observational(TaggedModel):
    """No sample is intervened on."""

    tag_field = "regime"
    regime: Literal["observational"] = "observational"

    def options(self) -> tuple[dict[str, Any], ...]:
        return ()


class SingleNode(TaggedModel):
    """A ``fraction`` of samples each get one target drawn uniformly from ``targets``
    (a templated target counts once per object, except an object a specific target names:
    ``ball[1].x`` wins over ``ball[i].x`` for ball 1; on objects with a ``present`` flag only
    the objects present in the sample are drawn, and a sample with no target left stays
    observational).

    With counterfactual pairs, ``fraction`` is still the share of all samples: it is drawn
    among the factual and unpaired samples, and a partner copies its factual sample's
    intervention (and adds the counterfactual one).
    """

    tag_field = "regime"
    regime: Literal["single_node"] = "single_node"
    fraction: float = Field(gt=0, le=1)
    targets: Targets

    _t = field_validator("targets")(classmethod(lambda cls, v: _non_empty(v)))

    def options(self):
        return tuple({k: v} for k, v in self.targets.items())


class TargetSet(SpecModel):
    name: str | None = None
    weight: float = Field(1.0, gt=0)
    targets: Targets

    _t = field_validator("targets")(classmethod(lambda cls, v: _non_empty(v)))


class Sets(TaggedModel):
    """A ``fraction`` of samples each get one of the fixed target sets, chosen by weight.

    As for single_node, partners of counterfactual pairs copy their factual's set.
    """

    tag_field = "regime"
    regime: Literal["sets"] = "sets"
    fraction: float = Field(gt=0, le=1)
    sets: tuple[TargetSet, ...] = Field(min_length=1, max_length=10_000)

    def options(self):
        return tuple(dict(s.targets) for s in self.sets)


class SampleRange(SpecModel):
    start: int = Field(ge=0)
    stop: int = Field(ge=0)

    @model_validator(mode="after")
    def _order(self):
        if self.stop <= self.start:
            raise ValueError(f"expected start < stop, got {self.start}..{self.stop}")
        return self


class Assignment(SpecModel):
    samples: SampleRange | tuple[int, ...]
    targets: Targets

    _t = field_validator("targets")(classmethod(lambda cls, v: _non_empty(v)))

    @field_validator("samples")
    @classmethod
    def _idx(cls, v):
        if isinstance(v, tuple):
            if not v:
                raise ValueError("expected at least one sample index")
            if min(v) < 0:
                raise ValueError("sample indices must be >= 0")
            if len(set(v)) != len(v):
                raise ValueError("duplicate sample indices")
        return v

    def indices(self) -> range | tuple[int, ...]:
        return range(self.samples.start, self.samples.stop) if isinstance(self.samples, SampleRange) else self.samples


class Explicit(TaggedModel):
    """Named sample indices (or ranges) get named interventions."""

    tag_field = "regime"
    regime: Literal["explicit"] = "explicit"
    assignments: tuple[Assignment, ...] = Field(min_length=1, max_length=10_000)

    def options(self):
        return tuple(dict(a.targets) for a in self.assignments)


Regime = Annotated[Union[Observational, SingleNode, Sets, Explicit], Field(discriminator="regime")]
