"""Shared base for every spec model: frozen, strict about unknown keys."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class SpecModel(BaseModel):
    """Frozen and ``extra="forbid"`` so a typo in a spec is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class TaggedModel(SpecModel):
    """A variant of a discriminated union: its tag is always written, even when it is the default."""

    tag_field: ClassVar[str] = ""

    @model_serializer(mode="wrap")
    def _keep_tag(self, handler: SerializerFunctionWrapHandler) -> Any:
        out = handler(self)
        if isinstance(out, dict) and self.tag_field and self.tag_field not in out:
            out = {self.tag_field: getattr(self, self.tag_field), **out}
        return out
