"""Parse and validate structural-equation expressions from user-shared spec files.

Spec files travel between users, so an expression is untrusted input. General-purpose
"safe eval" libraries (simpleeval, asteval, sympy's ``parse_expr``) have all had sandbox
escapes, so we accept only a small whitelisted subset of Python expression syntax and
never hand the text to ``eval``/``exec``/``compile``. This module only parses and checks;
``pipeline.expressions`` turns the validated tree into a numpy closure.

Grammar (everything else is rejected):

* numeric constants (int, float, True/False),
* variable names, and object-variable chains such as ``ball[0].radius`` or
  ``ball[i].radius`` (subscripts: a non-negative int literal or a bare index name),
* ``+ - * / // % **``, unary ``- + not``, comparisons ``< <= > >= == !=`` (chained ok),
  ``and``/``or``, ``a if c else b``,
* calls of whitelisted functions (``ALLOWED_FUNCTIONS``) with positional arguments.

Names and attributes starting with ``_`` are rejected, and so are caps breaches
(length, depth, node count, large constant exponents, power towers).
"""

from __future__ import annotations

import ast
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ALLOWED_FUNCTIONS",
    "MAX_CONST_EXPONENT",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "MAX_NODES",
    "Expression",
    "ExpressionError",
    "flatten_name",
    "parse_expression",
]

MAX_LENGTH = 2000
MAX_DEPTH = 100
MAX_NODES = 1000
MAX_CONST_EXPONENT = 64

_VARIADIC_MAX = 8

#: Function name -> (min positional args, max positional args).
ALLOWED_FUNCTIONS: dict[str, tuple[int, int]] = {
    **{
        name: (1, 1)
        for name in (
            "exp", "log", "log1p", "expm1", "sqrt", "square",
            "sin", "cos", "tan", "arcsin", "arccos", "arctan",
            "sinh", "cosh", "tanh", "sigmoid", "softplus",
            "abs", "sign", "floor", "ceil", "round",
        )
    },
    "arctan2": (2, 2),
    "hypot": (2, 2),
    "pow": (2, 2),
    "minimum": (2, 2),
    "maximum": (2, 2),
    "clip": (3, 3),
    "where": (3, 3),
    "min": (2, _VARIADIC_MAX),
    "max": (2, _VARIADIC_MAX),
}

_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/",
    ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}
_UNARYOPS: dict[type[ast.unaryop], str] = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
}
_BOOLOPS: dict[type[ast.boolop], str] = {ast.And: "and", ast.Or: "or"}

# Symbols of rejected operators, so the error names what the user typed.
_REJECTED_OPS: dict[type[ast.AST], str] = {
    ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitXor: "^", ast.BitAnd: "&", ast.Invert: "~",
    ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in",
}

# Leaf nodes that carry no expression content; they do not count towards the caps.
_LEAF_TYPES = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)

_QUOTE_LIMIT = 80
_WARNINGS_LOCK = threading.Lock()


class ExpressionError(ValueError):
    """A rejected expression.

    The message is one line that quotes the offending part and where it is, e.g.
    ``"disallowed call 'open' at column 5 in 'x + open(1)'; allowed functions: abs, ..."``,
    so a spec author can fix the file without reading this module.
    """


@dataclass(frozen=True)
class Expression:
    """A validated expression.

    ``source`` is the text as parsed (surrounding whitespace stripped, so the node
    positions in ``tree`` index into it). ``names`` holds variable references with
    object chains flattened (``"ball[i].radius"``; the index name ``i`` is part of
    that string, not a separate entry); ``functions`` the called function names.
    Equality ignores ``tree`` because it is derived from ``source``.
    """

    source: str
    tree: ast.Expression = field(compare=False, repr=False)
    names: frozenset[str]
    functions: frozenset[str]


def flatten_name(node: ast.AST) -> str | None:
    """Render a name chain (``x``, ``a.b``, ``ball[0].radius``, ``ball[i]``) as a string.

    Returns ``None`` when ``node`` is not a pure chain of Name / Attribute / Subscript
    whose subscripts are non-negative int literals or bare names. It does not check
    for leading underscores; ``parse_expression`` does that.
    """
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Name):
            parts.append(node.id)
            return "".join(reversed(parts))
        if isinstance(node, ast.Attribute):
            parts.append("." + node.attr)
        elif isinstance(node, ast.Subscript):
            index = _index_text(node.slice)
            if index is None:
                return None
            parts.append(f"[{index}]")
        else:
            return None
        node = node.value


def _index_text(node: ast.AST) -> str | None:
    """Text of an allowed subscript: a non-negative int literal or a bare index name."""
    if isinstance(node, ast.Name):
        return node.id
    if (
        isinstance(node, ast.Constant)
        and type(node.value) is int  # bool is an int subclass but not an index
        and node.value >= 0
    ):
        return str(node.value)
    return None


def parse_expression(source: str) -> Expression:
    """Parse and validate ``source``; raise ``ExpressionError`` for anything outside the grammar.

    No other exception escapes for any input, so callers can report spec errors uniformly.
    """
    if not isinstance(source, str):
        raise ExpressionError(
            f"expression must be a string, got {type(source).__name__} {_quote(repr(source))}"
        )
    try:
        return _parse(source)
    except ExpressionError:
        raise
    except Exception as exc:  # noqa: BLE001 - the contract is "only ExpressionError"
        # Defensive: the checks in _parse already turn known failures into clear
        # messages; the exception type is kept so an internal bug stays recognisable.
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise ExpressionError(f"cannot parse {_quote(source)} ({reason})") from None


def _parse(raw: str) -> Expression:
    source = raw.strip()
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(source)} characters long (limit {MAX_LENGTH}): {_quote(source)}"
        )
    if not source:
        raise ExpressionError(f"empty expression {_quote(raw)}")
    if "\x00" in source:
        raise ExpressionError(
            f"null byte at column {source.index(chr(0)) + 1} in {_quote(source)}"
        )
    tree = _ast_parse(source)
    _check_size(source, tree)
    checker = _Checker(source)
    checker.visit(tree.body)
    return Expression(
        source=source,
        tree=tree,
        names=frozenset(checker.names),
        functions=frozenset(checker.functions),
    )


def _ast_parse(source: str) -> ast.Expression:
    """ast.parse with the tokenizer's warnings silenced.

    Without this, sloppy input such as ``1if x else y`` (a SyntaxWarning) would be
    accepted or rejected depending on the process's warning filters (``-W error`` in
    CI), and would print noise. The lock keeps our own concurrent calls from
    interleaving catch_warnings' save/restore of the global filter list.
    """
    try:
        with _WARNINGS_LOCK, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source, mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        if exc.lineno and exc.lineno > 1:
            where = f" at line {exc.lineno}, column {exc.offset}"
        raise ExpressionError(f"syntax error ({exc.msg}){where} in {_quote(source)}") from None
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        # ValueError covers e.g. lone surrogates (UnicodeEncodeError).
        reason = str(exc).replace("\n", " ")
        raise ExpressionError(
            f"cannot parse {_quote(source)} ({type(exc).__name__}: {reason})"
        ) from None


def _check_size(source: str, tree: ast.Expression) -> None:
    """Enforce MAX_DEPTH / MAX_NODES iteratively, before any recursive walk can overflow."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > MAX_DEPTH:
            raise ExpressionError(
                f"expression nested deeper than {MAX_DEPTH} levels at {_where(source, node)}"
            )
        if count > MAX_NODES:
            raise ExpressionError(
                f"expression has more than {MAX_NODES} nodes in {_quote(source)}"
            )
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, _LEAF_TYPES):
                stack.append((child, depth + 1))


class _Checker:
    """Recursive whitelist check (depth already bounded) that also collects names/functions."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.names: set[str] = set()
        self.functions: set[str] = set()
        # Explicit whitelist: node type -> handler. Any other node type is rejected.
        self._visitors: dict[type[ast.AST], Callable[[Any], None]] = {
            ast.Constant: self.visit_Constant,
            ast.Name: self.visit_Name,
            ast.Attribute: self._visit_chain,
            ast.Subscript: self._visit_chain,
            ast.BinOp: self.visit_BinOp,
            ast.UnaryOp: self.visit_UnaryOp,
            ast.Compare: self.visit_Compare,
            ast.BoolOp: self.visit_BoolOp,
            ast.IfExp: self.visit_IfExp,
            ast.Call: self.visit_Call,
        }

    def fail(self, node: ast.AST, problem: str, hint: str = "") -> ExpressionError:
        """Build (not raise) an error quoting ``node``; callers ``raise self.fail(...)``."""
        suffix = f"; {hint}" if hint else ""
        return ExpressionError(f"{problem} {_snippet(self.source, node)} at "
                               f"{_where(self.source, node)}{suffix}")

    def visit(self, node: ast.AST) -> None:
        method = self._visitors.get(type(node))
        if method is None:
            raise self.fail(node, f"disallowed syntax ({_describe(node)})")
        method(node)

    # -- leaves ---------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool) or type(value) is float:
            return
        if type(value) is int:
            try:
                float(value)
            except OverflowError:
                raise self.fail(node, "number too large for float64") from None
            return
        raise self.fail(node, f"disallowed constant of type {type(value).__name__}",
                        "only int and float numbers are allowed")

    def visit_Name(self, node: ast.Name) -> None:
        self._check_identifier(node, node.id)
        self.names.add(node.id)

    def _visit_chain(self, node: ast.Attribute | ast.Subscript) -> None:
        """Object-variable reference such as ``ball[i].radius``: checked and kept as one name."""
        current: ast.AST = node
        while isinstance(current, (ast.Attribute, ast.Subscript)):
            if isinstance(current, ast.Attribute):
                if current.attr.startswith("_"):
                    raise self.fail(current, f"disallowed attribute {current.attr!r} in",
                                    "names starting with '_' are not allowed")
            else:
                index = current.slice
                if _index_text(index) is None:
                    raise self.fail(index, "disallowed subscript",
                                    "an index must be a non-negative integer or an index name")
                if isinstance(index, ast.Name):
                    self._check_identifier(index, index.id)
            current = current.value
        if not isinstance(current, ast.Name):
            raise self.fail(node, "attribute/subscript on a non-variable",
                            "only variables such as ball[0].radius can be indexed")
        self._check_identifier(current, current.id)
        flat = flatten_name(node)
        if flat is None:  # unreachable after the walk above; never record a None name
            raise self.fail(node, "unsupported reference")
        self.names.add(flat)

    def _check_identifier(self, node: ast.AST, name: str) -> None:
        if name.startswith("_"):
            raise self.fail(node, "disallowed name", "names starting with '_' are not allowed")
        if name in ALLOWED_FUNCTIONS:
            raise self.fail(node, "function name used as a variable",
                            f"call it, e.g. {name}(x), or rename the variable")

    # -- operators ------------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp) -> None:
        if type(node.op) not in _BINOPS:
            raise self.fail(node, f"disallowed operator {_op_symbol(node.op)!r} in",
                            "allowed: + - * / // % **")
        if isinstance(node.op, ast.Pow):
            self._check_exponent(node, node.right)
        self.visit(node.left)
        self.visit(node.right)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if type(node.op) not in _UNARYOPS:
            raise self.fail(node, f"disallowed operator {_op_symbol(node.op)!r} in",
                            "allowed unary operators: - + not")
        self.visit(node.operand)

    def visit_Compare(self, node: ast.Compare) -> None:
        for op in node.ops:
            if type(op) not in _CMPOPS:
                raise self.fail(node, f"disallowed comparison {_op_symbol(op)!r} in",
                                "allowed: < <= > >= == !=")
        self.visit(node.left)
        for comparator in node.comparators:
            self.visit(comparator)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        if type(node.op) not in _BOOLOPS:  # only And/Or exist today; stay a whitelist
            raise self.fail(node, "disallowed boolean operator in")
        for value in node.values:
            self.visit(value)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.test)
        self.visit(node.body)
        self.visit(node.orelse)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
        if not isinstance(func, ast.Name) or func.id not in ALLOWED_FUNCTIONS:
            raise self.fail(func, "disallowed call", f"allowed functions: {allowed}")
        if node.keywords:
            raise self.fail(node.keywords[0], "keyword argument", "pass arguments by position")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.fail(arg, "starred argument", "pass arguments by position")
        low, high = ALLOWED_FUNCTIONS[func.id]
        if not low <= len(node.args) <= high:
            expected = str(low) if low == high else f"{low} to {high}"
            plural = "" if high == 1 else "s"
            raise self.fail(node, f"{func.id}() takes {expected} argument{plural}, "
                                  f"got {len(node.args)}, in")
        if func.id == "pow":
            self._check_exponent(node, node.args[1])
        self.functions.add(func.id)
        for arg in node.args:
            self.visit(arg)

    def _check_exponent(self, power: ast.AST, exponent: ast.AST) -> None:
        """Bound exponents so no evaluation strategy (e.g. exact int folding) can blow up."""
        for sub in ast.walk(exponent):
            nested_binop = isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Pow)
            nested_call = (isinstance(sub, ast.Call) and isinstance(sub.func, ast.Name)
                           and sub.func.id == "pow")
            if nested_binop or nested_call:
                raise self.fail(power, "power tower (an exponent containing a power)",
                                "compute the inner power separately")
        value = _signed_constant(exponent)
        if value is not None and abs(value) > MAX_CONST_EXPONENT:
            raise self.fail(power, f"constant exponent larger than {MAX_CONST_EXPONENT} in")


def _signed_constant(node: ast.AST) -> float | None:
    """Value of a numeric literal with optional unary signs (``-100``), else None."""
    sign = 1.0
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        if isinstance(node.op, ast.USub):
            sign = -sign
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float, bool):
        try:
            return sign * float(node.value)
        except OverflowError:
            return float("inf")
    return None


# -- message helpers ------------------------------------------------------------------
def _quote(text: str) -> str:
    """repr() of ``text`` clipped to a readable length; repr keeps the message one line."""
    if len(text) > _QUOTE_LIMIT:
        text = text[: _QUOTE_LIMIT - 3] + "..."
    return repr(text)


def _snippet(source: str, node: ast.AST) -> str:
    try:
        segment = ast.get_source_segment(source, node)
    except Exception:  # positions are best effort; never let messaging fail
        segment = None
    return _quote(segment) if segment else f"<{type(node).__name__}>"


def _where(source: str, node: ast.AST) -> str:
    """'column C in <source>' (1-based, in characters), with the line when multi-line."""
    lineno = getattr(node, "lineno", None)
    offset = getattr(node, "col_offset", None)
    if lineno is None or offset is None:
        return f"in {_quote(source)}"
    lines = source.splitlines() or [""]
    line = lines[lineno - 1] if 0 < lineno <= len(lines) else ""
    # col_offset counts UTF-8 bytes; users count characters.
    column = len(line.encode("utf-8")[:offset].decode("utf-8", errors="ignore")) + 1
    place = f"column {column}" if lineno == 1 else f"line {lineno}, column {column}"
    return f"{place} in {_quote(source)}"


def _op_symbol(op: ast.AST) -> str:
    return _REJECTED_OPS.get(type(op), type(op).__name__)


def _describe(node: ast.AST) -> str:
    names = {
        ast.Lambda: "lambda", ast.List: "list", ast.Tuple: "tuple", ast.Dict: "dict",
        ast.Set: "set", ast.ListComp: "comprehension", ast.SetComp: "comprehension",
        ast.DictComp: "comprehension", ast.GeneratorExp: "generator",
        ast.Yield: "yield", ast.YieldFrom: "yield", ast.Await: "await",
        ast.JoinedStr: "f-string", ast.NamedExpr: "assignment expression",
        ast.Starred: "starred expression", ast.Slice: "slice",
    }
    return names.get(type(node), type(node).__name__)
