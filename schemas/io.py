"""Reading and writing spec files (YAML, JSON, or a Python file defining ``spec``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

CATALOG = Path(__file__).resolve().parents[1] / "scenes" / "catalog"
MAX_SPEC_BYTES = 4 * 1024 * 1024
MAX_EXTENDS_DEPTH = 8


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (a silently dropped variable is a wrong dataset)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    out: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if not isinstance(key, (str, int, float, bool)) and key is not None:
            raise SpecError([f"line {key_node.start_mark.line + 1}: expected a plain key, got {type(key).__name__}"])
        if key in out:
            raise SpecError([f"line {key_node.start_mark.line + 1}: duplicate key {key!r}"])
        out[key] = loader.construct_object(value_node, deep=deep)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse_text(text: str, source: str = "<spec>") -> dict[str, Any]:
    """YAML (a superset of JSON) -> mapping; syntax errors become a one-line SpecError."""
    if len(text.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise SpecError([f"{source}: spec is larger than {MAX_SPEC_BYTES // 1024 // 1024} MiB"])
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise SpecError([f"{source}: not valid YAML/JSON at {where}: {e.problem}"]) from None
    except yaml.YAMLError as e:
        raise SpecError([f"{source}: not valid YAML/JSON: {e}"]) from None
    except RecursionError:
        raise SpecError([f"{source}: nesting too deep"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"{source}: expected a mapping at the top level, got {type(data).__name__}"])
    return data


def catalog_path(name: str) -> Path | None:
    """``static/spring`` -> the catalogue's spec file, if there is one."""
    if ".." in name or name.startswith("/"):
        return None
    p = CATALOG / f"{name}.yaml"
    return p if p.is_file() else None


def deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def resolve_extends(data: dict[str, Any], here: Path | None, depth: int = 0) -> dict[str, Any]:
    """Apply ``extends: <catalogue name or path>``: the base spec, deep-merged with this one."""
    if "extends" not in data:
        return data
    if depth >= MAX_EXTENDS_DEPTH:
        raise SpecError([f"extends: chain longer than {MAX_EXTENDS_DEPTH} (a loop?)"])
    ref = data["extends"]
    if not isinstance(ref, str):
        raise SpecError(["extends: expected a catalogue name (static/spring) or a spec path"])
    path = catalog_path(ref)
    if path is None and here is not None and (here / ref).is_file():
        path = here / ref
    if path is None:
        raise SpecError([f"extends: no catalogue scene or file named {ref!r} (see `crlgen scenes`)"])
    base = resolve_extends(parse_text(path.read_text(), str(path)), path.parent, depth + 1)
    rest = {k: v for k, v in data.items() if k != "extends"}
    return deep_merge(base, rest)


def read_mapping(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        cat = catalog_path(str(path))
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
    return resolve_extends(data, p.parent)


def load_python(path: Path):
    """A Python spec is a program defining ``spec``: it runs, so load only files you trust."""
    import importlib.util

    from .dataset import DatasetSpec

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


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None):
    """Load and validate a spec file or catalogue name; raises :class:`SpecError`."""
    from .dataset import DatasetSpec

    p = Path(path)
    if p.suffix == ".py" and p.is_file():
        spec = load_python(p)
        return spec.replace(**overrides) if overrides else spec
    data = read_mapping(path)
    if overrides:
        data = deep_merge(data, overrides)
    return DatasetSpec.from_dict(data)


def dump_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
