"""YAML (and JSON) text <-> plain mappings, strict about what a spec file may hold.

Knows nothing of the spec model: :mod:`.loading` and :mod:`.dataset` build on it.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from .errors import SpecError

#: Largest spec file read (bytes): a spec is text a person writes, not data.
MAX_SPEC_BYTES = 4 * 1024 * 1024


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML that refuses duplicate keys (a silently dropped variable is a wrong dataset) and reads
    booleans as YAML 1.2 does: only ``true``/``false``, so a variable named ``on``, ``off``, ``yes`` or ``no``
    (or a category label ``no``) stays the text written, not YAML 1.1's True/False."""


_BOOL = "tag:yaml.org,2002:bool"
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_StrictLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


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
    """YAML (a superset of JSON) text -> mapping.

    Raises :class:`~crlgen.schemas.SpecError` (one line naming ``source`` and the
    line/column) for syntax errors, duplicate keys, non-mapping documents and
    texts over ``MAX_SPEC_BYTES``.
    """
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


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out


def parse_json(text: str, source: str = "<spec>") -> dict[str, Any]:
    """JSON text -> mapping, refusing duplicate keys as YAML specs do (JSON's last-one-wins would
    silently drop a variable). Raises :class:`~crlgen.schemas.SpecError`, one line naming
    ``source`` (and the line, where the YAML reader, which reads JSON's structure too, finds it)
    for syntax errors, duplicate keys and a non-object document."""
    import json

    if len(text.encode("utf-8", "replace")) > MAX_SPEC_BYTES:
        raise SpecError([f"{source}: spec is larger than {MAX_SPEC_BYTES // 1024 // 1024} MiB"])
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as e:
        try:
            parse_text(text, source)
        except SpecError as y:
            if y.problems and "duplicate key" in y.problems[0]:  # the first in reading order, with its line
                raise SpecError([f"{source}: {y.problems[0]}"]) from None
        raise SpecError([f"{source}: duplicate key {e.args[0]!r}"]) from None
    except json.JSONDecodeError as e:
        raise SpecError([f"{source}: not valid JSON at line {e.lineno}, column {e.colno}: {e.msg}"]) from None
    except RecursionError:
        raise SpecError([f"{source}: nesting too deep"]) from None
    if not isinstance(data, dict):
        raise SpecError([f"{source}: expected a JSON object at the top level"])
    return data


#: Keys that pick a model out of a union (intervention regime, variable type, camera kind, noise
#: distribution): a mapping that changes one of them is another model and replaces the base's.
_UNION_TAGS = ("regime", "type", "kind", "dist")


def _same_model(a: dict, b: dict) -> bool:
    return all(a[t] == b[t] for t in _UNION_TAGS if t in a and t in b)


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` key by key: nested mappings merge unless they name different
    union members (``regime: observational`` over ``regime: single_node`` replaces it whole);
    anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        old = out.get(k)
        out[k] = deep_merge(old, v) if isinstance(v, dict) and isinstance(old, dict) and _same_model(old, v) else v
    return out


def dump_yaml(data: dict[str, Any]) -> str:
    """A mapping as block-style YAML, keys in their given order."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
