"""Temporal edits: interventions on a video that start at a frame (or time) and may end."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from .base import SpecModel
from .noise import Noise, call_to_noise
from .shorthand import ShorthandError, parse_assignment

_OPS = {"=": "set", "~": "set", "+=": "add", "-=": "add", "*=": "scale"}


def _shorthand_schema(schema: dict[str, Any]) -> None:
    """JSON Schema: either target/op/value, or the one-line ``do: "target += value"``."""
    schema["properties"]["do"] = {"type": "string", "description": "shorthand: 'ball[0].vx += 1.5', 'gravity = 1.62', 'x *= 2'"}
    schema["required"] = [r for r in schema.get("required", []) if r not in ("target", "value")]
    schema["oneOf"] = [{"required": ["target", "value"], "not": {"required": ["do"]}},
                       {"required": ["do"], "not": {"anyOf": [{"required": [k]} for k in ("target", "op", "value")]}}]


class TemporalEdit(SpecModel):
    """``target`` is set / increased / scaled by ``value`` from ``at_frame`` until ``until_frame``.

    Written either explicitly or as ``do: "ball[0].vx += 1.5"``.
    """

    model_config = ConfigDict(json_schema_extra=_shorthand_schema)

    target: str = Field(min_length=1)
    op: Literal["set", "add", "scale"] = "set"
    value: float | Noise
    at_frame: int | None = Field(None, ge=0)
    at_time: float | None = Field(None, ge=0, description="seconds; alternative to at_frame")
    until_frame: int | None = Field(None, ge=1, description="exclusive end; None = until the video ends")
    fraction: float = Field(1.0, gt=0, le=1, description="share of samples that get this edit")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, dict) and "do" in data:
            both = [k for k in ("target", "op", "value") if k in data]
            if both:
                raise ValueError(f"give either do or target/op/value, not both (got do and {'/'.join(both)})")
            data = dict(data)
            src = data.pop("do")
            try:
                target, op, value = parse_assignment(src)
            except ShorthandError as e:
                raise ValueError(f"do: {e}") from None
            if isinstance(value, dict):
                value = call_to_noise(value)
            elif not isinstance(value, (int, float)):
                raise ValueError(f"do: expected a number or a distribution after {op!r} in {src!r}")
            elif op == "-=":
                value = -value
            data.update(target=target, op=_OPS[op], value=value)
        return data

    @model_validator(mode="after")
    def _when(self):
        if (self.at_frame is None) == (self.at_time is None):
            raise ValueError("give exactly one of at_frame or at_time")
        if isinstance(self.value, float) and not math.isfinite(self.value):
            raise ValueError("value must be finite")
        return self

    def start_frame(self, fps: int) -> int:
        return self.at_frame if self.at_frame is not None else int(round(self.at_time * fps))

    def end_frame(self) -> int:
        """Exclusive end frame, -1 meaning 'until the end'."""
        return -1 if self.until_frame is None else self.until_frame
