"""Loading and checking specs with the catalogue and the worlds in view (the spec language knows neither)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..scenes.registry import catalog_path, check_world
from ..schemas import DatasetSpec, SpecError
from ..schemas.loading import load_spec as _load_with
from ._scm import CompiledSCM

#: How many leading samples ``check_spec`` draws to find values outside declared ranges.
DRY_RUN_SAMPLES = 4096


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> DatasetSpec:
    """A spec from a file (``.yaml``, ``.json``, ``.py``) or a catalogue name (``static/spring``).

    ``extends:`` may name catalogue scenes too; ``overrides`` are deep-merged into the
    mapping before validation. Raises :class:`~crlgen.schemas.SpecError` (one line per problem).
    """
    return _load_with(path, overrides, catalog=catalog_path)


def check_spec(spec: DatasetSpec, *, dry_run: bool = True) -> DatasetSpec:
    """Check a spec against its world (latents it needs, states, engines installed, edits) and,
    with ``dry_run``, sample its first ``DRY_RUN_SAMPLES`` samples so out-of-range and non-finite
    values show before a run. Returns the spec; raises :class:`~crlgen.schemas.SpecError`.
    """
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"check_spec: expected a DatasetSpec (load one with load_spec), got {type(spec).__name__}")
    problems = check_world(spec)
    if problems:
        raise SpecError(problems)
    if dry_run:
        CompiledSCM(spec).sample(0, min(spec.samples, DRY_RUN_SAMPLES))
    return spec
