"""Reading spec files (YAML, JSON, or a Python file defining ``spec``) into a :class:`DatasetSpec`.

The spec language knows no catalogue: a caller that offers one (the pipeline offers
``crlgen.scenes``' catalogue) passes a ``catalog`` function that maps a name such as
``static/spring`` to its file, for both the spec argument and ``extends:``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ._yaml import deep_merge, parse_json, parse_text
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

    A null value deletes the base's key (``variables: {x: null}`` drops variable ``x``), and a key
    that is one of several alternatives replaces the base's others (an extending spec's
    counterfactual ``intervention`` drops the base's ``edit``; see :data:`_ALTERNATIVES`).
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
    if path is None and here is not None and _is_file(here / ref):
        path = here / ref
    if path is None:
        raise SpecError([f"extends: no catalogue scene or file named {ref!r} (see `crlgen scenes`)"])
    base = resolve_extends(parse_text(_read(path, "extends"), str(path)), path.parent, catalog, depth + 1)
    rest = {k: v for k, v in data.items() if k != "extends"}
    problems = _nulls_without_base_key(base, rest, ref)
    if problems:
        raise SpecError(problems)
    return _drop_nulls(deep_merge(_drop_alternatives(base, rest), rest), rest)


def _nulls_without_base_key(base: Any, over: dict[str, Any], ref: str, path: tuple[str, ...] = ()) -> list[str]:
    """One line per null in ``over`` that deletes nothing because ``base`` has no such key (a typo
    such as ``variables: {rhoo: null}``). A top-level spec field the base leaves out is at its
    default already, so nulling it (``render: null``) is no mistake."""
    base = base if isinstance(base, dict) else {}
    problems = []
    for k, v in over.items():
        if v is None and k not in base and not (not path and k in DatasetSpec.model_fields):
            where = ".".join((*path, str(k)))
            if base:
                known = f"expected one of {', '.join(map(str, base))}"
            else:
                known = f"it has no {'.'.join(path)} at all" if path else "it is empty"
            problems.append(f"{where}: null deletes a key of the base spec, but the base ({ref}) has no {k!r}; {known}")
        elif isinstance(v, dict):
            problems += _nulls_without_base_key(base.get(k), v, ref, (*path, str(k)))
    return problems


#: Keys that are alternatives (a spec gives one of them), by where they sit (``*``: any name):
#: an extending spec that gives one drops the base's others, so they are not merged into a
#: spec that gives both.
_ALTERNATIVES: tuple[tuple[tuple[str, ...], tuple[tuple[str, ...], ...]], ...] = (
    (("counterfactuals",), (("intervention",), ("edit",))),
    (("counterfactuals", "edit"), (("at_frame",), ("at_time",))),
    (("counterfactuals", "edit"), (("do",), ("target", "op", "value"))),
    (("counterfactuals", "intervention", "*"), (("value",), ("dist",), ("space",))),
    (("interventions", "targets", "*"), (("value",), ("dist",), ("space",))),
    (("domains", "*"), (("weight",), ("samples",))),
    (("video",), (("frames",), ("duration",))),
)


def _matches(pattern: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return len(pattern) == len(path) and all(p in ("*", k) for p, k in zip(pattern, path))


def _drop_alternatives(base: dict[str, Any], over: dict[str, Any], path: tuple[str, ...] = ()) -> dict[str, Any]:
    """``base`` without the keys ``over`` replaces by giving one of their alternatives (:data:`_ALTERNATIVES`)."""
    out = dict(base)
    for pattern, alternatives in _ALTERNATIVES:
        if _matches(pattern, path):
            for given in alternatives:
                if any(k in over for k in given):
                    for other in alternatives:
                        if other != given:
                            for k in other:
                                if k not in over:
                                    out.pop(k, None)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _drop_alternatives(out[k], v, (*path, str(k)))
    return out


def _drop_nulls(merged: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``merged`` without the keys ``over`` sets to null: in an extending spec a null deletes the base's key."""
    out = dict(merged)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _drop_nulls(out[k], v)
    return out


def _is_file(p: Path) -> bool:
    try:
        return p.is_file()
    except (OSError, ValueError):  # a name too long for the filesystem, a NUL byte
        return False


def _read(p: Path, field: str | None = None) -> str:
    """A spec file's text; unreadable or non-UTF-8 files are one SpecError line."""
    where = f"{field}: {p}" if field else str(p)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpecError([f"{where}: not a text file (not UTF-8)"]) from None
    except OSError as e:
        raise SpecError([f"{where}: cannot read it: {e.strerror or e}"]) from None


def read_mapping(path: str | Path, catalog: CatalogLookup = _no_catalog) -> dict[str, Any]:
    """A spec file (or catalogue name) as a plain mapping with ``extends`` applied; raises SpecError."""
    if not str(path).strip():
        raise SpecError(["SPEC: expected a spec file or a catalogue name, got an empty string"])
    p = Path(path)
    if not _is_file(p):
        cat = catalog(str(path))
        if cat is None:
            try:
                folder = p.is_dir()
            except (OSError, ValueError):
                folder = False
            what = "is a folder, not a spec file" if folder else "no such spec file or catalogue scene"
            raise SpecError([f"{_short(path)}: {what}"])
        p = cat
    text = _read(p)
    if not text.strip():
        raise SpecError([f"{p}: the file is empty; expected a spec (a YAML or JSON mapping)"])
    if p.suffix == ".json":
        data = parse_json(text, str(p))
    else:
        data = parse_text(text, str(p))
    return resolve_extends(data, p.parent, catalog)


def _short(path: str | Path, limit: int = 120) -> str:
    """A path for an error line: one line, at most ``limit`` characters."""
    text = " ".join(str(path).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
    except (Exception, SystemExit) as e:  # the user's program failed (or exited): report it in one line
        detail = " ".join(str(e).split()) or "(no message)"
        raise SpecError([f"{path}: the Python spec raised {type(e).__name__}: {detail}"]) from None
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
    if p.suffix == ".py" and _is_file(p):
        spec = load_python(p)
        return spec.replace(**overrides) if overrides else spec
    data = read_mapping(path, catalog)
    if overrides:
        data = deep_merge(data, overrides)
    return DatasetSpec.from_dict(data)
