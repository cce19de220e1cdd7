"""Reading spec files (YAML, JSON, or a Python file defining ``spec``) into a :class:`DatasetSpec`.

The spec language knows no catalogue: a caller that offers one (the pipeline offers
``crlgen.scenes``' catalogue) passes a ``catalog`` function that maps a name such as
``static/spring`` to its file, for both the spec argument and ``extends:``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from ._yaml import deep_merge, parse_text
from .dataset import DatasetSpec
from .errors import SpecError

#: ``extends:`` chains longer than this are refused (a loop, most likely).
MAX_EXTENDS_DEPTH = 8

#: Maps a catalogue name (``static/spring``) to its spec file, or None when there is none.
CatalogLookup = Callable[[str], "Path | None"]


def _no_catalog(name: str) -> Path | None:
    return None


def resolve_extends(data: dict[str, Any], here: Path | None, catalog: CatalogLookup = _no_catalog,
                    depth: int = 0) -> dict[str, Any]:
    """Apply ``extends: <catalogue name or path>``: the base spec, deep-merged with this one.

    Relative paths are read from ``here`` (the extending file's folder). Raises
    :class:`SpecError` for a missing base or a chain longer than ``MAX_EXTENDS_DEPTH``.
    """
    if "extends" not in data:
        return data
    if depth >= MAX_EXTENDS_DEPTH:
        raise SpecError([f"extends: chain longer than {MAX_EXTENDS_DEPTH} (a loop?)"])
    ref = data["extends"]
    if not isinstance(ref, str):
        raise SpecError(["extends: expected a catalogue name (static/spring) or a spec path"])
    path = catalog(ref)
    if path is None and here is not None and (here / ref).is_file():
        path = here / ref
    if path is None:
        raise SpecError([f"extends: no catalogue scene or file named {ref!r} (see `crlgen scenes`)"])
    base = resolve_extends(parse_text(path.read_text(), str(path)), path.parent, catalog, depth + 1)
    rest = {k: v for k, v in data.items() if k != "extends"}
    return deep_merge(base, rest)


def read_mapping(path: str | Path, catalog: CatalogLookup = _no_catalog) -> dict[str, Any]:
    """A spec file (or catalogue name) as a plain mapping with ``extends`` applied; raises SpecError."""
    p = Path(path)
    if not p.is_file():
        cat = catalog(str(path))
        if cat is None:
            raise SpecError([f"{path}: no such spec file or catalogue scene"])
        p = cat
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError([f"{p}: cannot read: {e}"]) from None
    if p.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise SpecError([f"{p}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"]) from None
        if not isinstance(data, dict):
            raise SpecError([f"{p}: expected a JSON object at the top level"])
    else:
        data = parse_text(text, str(p))
    return resolve_extends(data, p.parent, catalog)


def load_python(path: Path) -> DatasetSpec:
    """A Python spec is a program defining ``spec``: it runs, so load only files you trust.

    Raises :class:`SpecError` when the program fails or defines no ``spec = DatasetSpec(...)``.
    """
    import importlib.util

    mod_spec = importlib.util.spec_from_file_location(f"_crlgen_spec_{path.stem}", path)
    module = importlib.util.module_from_spec(mod_spec)
    try:
        mod_spec.loader.exec_module(module)
    except SpecError:
        raise
    except Exception as e:  # the user's program failed: report it in one line
        raise SpecError([f"{path}: the Python spec raised {type(e).__name__}: {e}"]) from None
    spec = getattr(module, "spec", None)
    if not isinstance(spec, DatasetSpec):
        raise SpecError([f"{path}: a Python spec must define `spec = DatasetSpec(...)`"])
    return spec


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None, *,
              catalog: CatalogLookup = _no_catalog) -> DatasetSpec:
    """Load and validate a spec file (``.yaml``, ``.json``, ``.py``) or a catalogue name.

    ``overrides`` are deep-merged into the file's mapping before validation.
    Raises :class:`SpecError` with one ``"path: message"`` line per problem.
    """
    p = Path(path)
    if p.suffix == ".py" and p.is_file():
        spec = load_python(p)
        return spec.replace(**overrides) if overrides else spec
    data = read_mapping(path, catalog)
    if overrides:
        data = deep_merge(data, overrides)
    return DatasetSpec.from_dict(data)
