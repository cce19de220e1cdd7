"""Parse the one-line shorthands of spec files (``uniform(0, 1)``, ``do(k = 350)``).

Shorthands are parsed with :mod:`ast` into plain dicts that the Pydantic models
then validate; nothing is evaluated. Only numeric literals (with a sign), lists
of them, nested calls and ``name = value`` keywords are accepted.
"""

from __future__ import annotations

import ast
import re
from typing import Any

_MAX = 500


class ShorthandError(ValueError):
    """A shorthand that is not of the form ``name(args...)``."""


def _literal(node: ast.AST, src: str) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float) :
        return node.value
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _literal(node.operand, src)
        if isinstance(v, (int, float)):
            return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e, src) for e in node.elts]
    if isinstance(node, ast.Call):
        return _call(node, src)
    seg = ast.get_source_segment(src, node) or ast.dump(node)
    raise ShorthandError(f"expected a number, a list or a call, got {seg!r} in {src!r}")


def _call(node: ast.Call, src: str) -> dict[str, Any]:
    if not isinstance(node.func, ast.Name):
        raise ShorthandError(f"expected name(args...) in {src!r}")
    if any(isinstance(a, ast.Starred) for a in node.args):
        raise ShorthandError(f"starred arguments are not allowed in {src!r}")
    out: dict[str, Any] = {"name": node.func.id, "args": [_literal(a, src) for a in node.args], "kwargs": {}}
    for kw in node.keywords:
        if kw.arg is None:
            raise ShorthandError(f"**kwargs are not allowed in {src!r}")
        out["kwargs"][kw.arg] = _literal(kw.value, src)
    return out


def parse_call(src: str) -> dict[str, Any]:
    """``"uniform(0, 1)"`` -> ``{"name": "uniform", "args": [0, 1], "kwargs": {}}``."""
    if not isinstance(src, str) or len(src) > _MAX:
        raise ShorthandError(f"expected a shorthand string of at most {_MAX} characters")
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        hint = ""
        if src.count("(") > src.count(")"):
            hint = ' (cut at a comma? inside a YAML {...} mapping, quote it: noise: "uniform(0, 1)")'
        raise ShorthandError(f"cannot parse {src!r}: {getattr(e, 'msg', e)}{hint}") from None
    if not isinstance(tree.body, ast.Call):
        raise ShorthandError(f"expected name(args...), got {src!r}")
    return _call(tree.body, src.strip())


_ASSIGN = re.compile(r"^\s*(?P<target>[A-Za-z_][\w\[\]\.]*)\s*(?P<op>\+=|-=|\*=|=|~)\s*(?P<value>.+?)\s*$", re.S)


def parse_assignment(src: str) -> tuple[str, str, Any]:
    """``"ball[0].vx += 1.5"`` -> ``("ball[0].vx", "+=", 1.5)``; the value may be a call (a distribution)."""
    if not isinstance(src, str) or len(src) > _MAX:
        raise ShorthandError(f"expected 'target = value' of at most {_MAX} characters")
    m = _ASSIGN.match(src)
    if not m:
        raise ShorthandError(f"expected 'target = value', 'target += value', 'target *= value' or 'target ~ dist(...)', got {src!r}")
    value_src = m["value"]
    try:
        tree = ast.parse(value_src, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ShorthandError(f"cannot parse the value {value_src!r} in {src!r}") from None
    return m["target"], m["op"], _literal(tree.body, value_src)
