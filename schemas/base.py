"""Shared base for every spec model: frozen, strict about unknown keys."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class SpecModel(BaseModel):
    """Frozen and ``extra="forbid"`` so a typo in a spec is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
