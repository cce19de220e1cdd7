"""Compile validated structural-equation expressions into vectorised numpy closures.

The tree from ``schemas.expression.parse_expression`` is walked once into nested
closures, each doing one numpy call, so evaluating on 1e6-element arrays costs about
the same as hand-written numpy. Source text is never passed to ``eval``/``exec``/
``compile``: only whitelisted node types map to whitelisted numpy functions.

Semantics (chosen so results do not depend on Python's int/bool rules):

* all arithmetic is float64 (int literals become floats; ``2**64`` never builds a big int);
  ``x ** 2`` / ``pow(x, 2)`` are computed as ``x * x`` (np.square), like numpy's ``ndarray ** 2``;
* comparisons, ``not``, ``and``/``or`` yield 0.0/1.0; truthiness is ``value != 0``
  (so NaN is true, as in Python); ``and``/``or`` do not short-circuit;
* ``a if c else b`` and ``where(c, a, b)`` are ``np.where(c != 0, a, b)`` (both branches
  are evaluated);
* NaN/inf results are allowed (evaluation runs under ``np.errstate(all="ignore")``);
  callers check finiteness.

The compiler stands next to the grammar (:mod:`.expression`) so that every reader of a
mechanism takes one meaning from it: the pipeline's sampler (``crlgen.pipeline``) and a world
that evaluates the spec's equations on its own per-frame values (``robotics/buttons`` drives its
lamps with the spec's ``lamp[i].on`` mechanisms). ``crlgen.schemas`` itself does not import it,
so importing the spec language stays free of numpy and scipy.
"""

from __future__ import annotations

import ast
import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import special

from .expression import Expression, ExpressionError, flatten_name, parse_expression

__all__ = ["Env", "Expression", "ExpressionError", "compile_expression"]

Env = Mapping[str, np.ndarray | float]
_Values = dict[str, np.ndarray]
_Run = Callable[[_Values], Any]

_BINARY: dict[type[ast.operator], np.ufunc] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.mod,
    ast.Pow: np.power,
}
_UNARY: dict[type[ast.unaryop], np.ufunc] = {ast.USub: np.negative, ast.UAdd: np.positive}
_COMPARE: dict[type[ast.cmpop], np.ufunc] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}


def _softplus(x: Any) -> Any:
    return np.logaddexp(0.0, x)


def _reduce(ufunc: np.ufunc) -> Callable[..., Any]:
    """n-ary min/max as a left fold, NaN-propagating like np.minimum/np.maximum."""

    def apply(*args: Any) -> Any:
        return functools.reduce(ufunc, args)

    return apply


# Functions taking float operands; ``where`` is handled separately (its condition is a truth value).
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "exp": np.exp,
    "log": np.log,
    "log1p": np.log1p,
    "expm1": np.expm1,
    "sqrt": np.sqrt,
    "square": np.square,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "arctan2": np.arctan2,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "sigmoid": special.expit,  # stable logistic ufunc: no overflow for large |x|
    "softplus": _softplus,
    "abs": np.abs,
    "sign": np.sign,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.rint,  # half-to-even, like numpy (and Python 3's round)
    "clip": np.clip,
    "minimum": np.minimum,
    "maximum": np.maximum,
    "min": _reduce(np.minimum),
    "max": _reduce(np.maximum),
    "hypot": np.hypot,
    "pow": np.power,
}


@dataclass(frozen=True)
class _Node:
    """A compiled subtree: a closure over the looked-up inputs, or a folded constant.

    ``is_bool`` marks truth-valued results (comparisons, not, and/or) kept as numpy bool
    so they feed ``where`` without a conversion; arithmetic converts them to float first.
    """

    run: _Run | None = None
    value: Any = None
    is_bool: bool = False


def compile_expression(expr: Expression | str) -> Callable[[Env], np.ndarray]:
    """Compile ``expr`` (parsed here if given as text) into ``evaluate(env) -> ndarray``.

    ``env`` maps every name in ``expr.names`` (flattened, e.g. ``"ball[0].radius"``) to a
    float64 array of shape (n,) or a Python float. The result is a new float64 array with
    the broadcast shape of the inputs; with only scalar inputs, or none (a constant
    expression), it is a 0-d array and the caller broadcasts it. A missing name raises
    ``KeyError(name)``; inputs whose shapes do not broadcast raise ``ValueError``.
    """
    parsed = expr if isinstance(expr, Expression) else parse_expression(expr)
    root = _compile(parsed.tree.body)
    names = tuple(sorted(parsed.names))
    run = root.run
    constant = root.value

    def evaluate(env: Env) -> np.ndarray:
        values = _lookup(env, names)
        if run is None:
            result = constant
        else:
            with np.errstate(all="ignore"):
                result = run(values)
        return _finish(result, values)

    evaluate.__doc__ = f"Evaluate {parsed.source!r} on an environment of float64 arrays."
    return evaluate


def _lookup(env: Env, names: tuple[str, ...]) -> _Values:
    """Fetch every referenced input once, as float64 (ints would change ``**``/``//``)."""
    values: _Values = {}
    for name in names:
        try:
            raw = env[name]
        except KeyError:
            raise KeyError(name) from None
        values[name] = np.asarray(raw, dtype=np.float64)
    return values


def _finish(result: Any, values: _Values) -> np.ndarray:
    """Return a fresh float64 array with the inputs' broadcast shape."""
    out = np.asarray(result, dtype=np.float64)
    shape = np.broadcast_shapes(*(v.shape for v in values.values())) if values else ()
    if out.shape != shape:  # a branch folded away at compile time dropped an input
        return np.broadcast_to(out, shape).copy()
    if any(out is v for v in values.values()):  # bare-name expression: never alias inputs
        return out.copy()
    return out


# -- tree walk ------------------------------------------------------------------------
def _compile(node: ast.AST) -> _Node:
    """Compile one validated node (recursion depth is bounded by MAX_DEPTH)."""
    if isinstance(node, ast.Constant):
        return _Node(value=np.float64(node.value))
    if isinstance(node, (ast.Name, ast.Attribute, ast.Subscript)):
        return _compile_name(node)
    if isinstance(node, ast.BinOp):
        left, right = _float(_compile(node.left)), _float(_compile(node.right))
        if isinstance(node.op, ast.Pow):
            return _power(left, right)
        return _apply(_BINARY[type(node.op)], [left, right])
    if isinstance(node, ast.UnaryOp):
        return _compile_unary(node)
    if isinstance(node, ast.Compare):
        return _compile_compare(node)
    if isinstance(node, ast.BoolOp):
        ufunc = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return _fold_left(ufunc, [_compile(v) for v in node.values], is_bool=True)
    if isinstance(node, ast.IfExp):
        return _where(_compile(node.test), _compile(node.body), _compile(node.orelse))
    if isinstance(node, ast.Call):
        return _compile_call(node)
    # Unreachable for trees from parse_expression; guards hand-built trees.
    raise ExpressionError(f"cannot compile node {type(node).__name__}")


def _compile_name(node: ast.AST) -> _Node:
    name = flatten_name(node)
    if name is None:
        raise ExpressionError(f"cannot compile reference {ast.dump(node)}")
    return _Node(run=operator.itemgetter(name))


def _compile_unary(node: ast.UnaryOp) -> _Node:
    operand = _compile(node.operand)
    if isinstance(node.op, ast.Not):
        # logical_not treats any nonzero (including NaN) as true: truthiness is value != 0.
        return _apply(np.logical_not, [operand], is_bool=True)
    return _apply(_UNARY[type(node.op)], [_float(operand)])


def _compile_compare(node: ast.Compare) -> _Node:
    """``a < b <= c`` is ``(a < b) and (b <= c)`` with ``b`` evaluated once."""
    operands = [_compile(node.left), *(_compile(c) for c in node.comparators)]
    if len(node.ops) == 1:
        return _apply(_COMPARE[type(node.ops[0])], operands, is_bool=True)
    getters = [_getter(o) for o in operands]
    ufuncs = [_COMPARE[type(op)] for op in node.ops]

    def chain(*values: Any) -> Any:
        result = ufuncs[0](values[0], values[1])
        for i in range(1, len(ufuncs)):
            result = np.logical_and(result, ufuncs[i](values[i], values[i + 1]))
        return result

    if all(o.run is None for o in operands):
        return _Node(value=_fold(chain, [o.value for o in operands]), is_bool=True)
    return _Node(run=lambda vals: chain(*(g(vals) for g in getters)), is_bool=True)


def _compile_call(node: ast.Call) -> _Node:
    name = node.func.id  # type: ignore[attr-defined]  # validated: a bare Name
    args = [_compile(a) for a in node.args]
    if name == "where":
        return _where(*args)
    if name == "pow":
        return _power(_float(args[0]), _float(args[1]))
    return _apply(_FUNCTIONS[name], [_float(a) for a in args])


def _power(base: _Node, exponent: _Node) -> _Node:
    """``x ** 2`` as np.square (exact x*x, and ~1.5x faster than np.power on 1e6
    elements), matching numpy's own ``ndarray ** 2`` fast path."""
    if exponent.run is None and exponent.value == 2.0:
        return _apply(np.square, [base])
    return _apply(np.power, [base, exponent])


def _where(cond: _Node, body: _Node, orelse: _Node) -> _Node:
    """np.where(c != 0, a, b); a constant condition picks its branch at compile time."""
    if cond.run is None:
        return body if bool(cond.value) else orelse  # NaN is truthy, as in np.where
    is_bool = body.is_bool and orelse.is_bool
    return _apply(np.where, [cond, body, orelse], is_bool=is_bool)


# -- closure builders -----------------------------------------------------------------
def _float(node: _Node) -> _Node:
    """Truth values (numpy bool) become 0.0/1.0 before arithmetic (True + True is 2.0)."""
    if not node.is_bool:
        return node
    if node.run is None:
        return _Node(value=np.float64(node.value))
    run = node.run
    return _Node(run=lambda vals: run(vals).astype(np.float64))


def _getter(node: _Node) -> _Run:
    if node.run is not None:
        return node.run
    value = node.value
    return lambda vals: value


def _fold(func: Callable[..., Any], values: list[Any]) -> Any:
    with np.errstate(all="ignore"):
        return func(*values)


def _apply(func: Callable[..., Any], args: list[_Node], is_bool: bool = False) -> _Node:
    """Node computing ``func(*args)``: folded if all args are constant, else one closure
    specialised on arity and constant operands to keep per-call Python overhead small."""
    if all(a.run is None for a in args):
        return _Node(value=_fold(func, [a.value for a in args]), is_bool=is_bool)
    return _Node(run=_closure(func, args), is_bool=is_bool)


def _closure(func: Callable[..., Any], args: list[_Node]) -> _Run:
    """Specialise the common shapes (unary; binary with an optional constant side)."""
    if len(args) == 1 and args[0].run is not None:
        f = args[0].run
        return lambda vals: func(f(vals))
    if len(args) == 2:
        left, right = args
        if left.run is None and right.run is not None:
            c, g = left.value, right.run
            return lambda vals: func(c, g(vals))
        if left.run is not None and right.run is None:
            f, c = left.run, right.value
            return lambda vals: func(f(vals), c)
        if left.run is not None and right.run is not None:
            f, g = left.run, right.run
            return lambda vals: func(f(vals), g(vals))
    getters = [_getter(a) for a in args]
    return lambda vals: func(*[g(vals) for g in getters])


def _fold_left(ufunc: np.ufunc, nodes: list[_Node], is_bool: bool) -> _Node:
    """``a op b op c`` as nested binary nodes, so constant prefixes fold."""
    result = nodes[0]
    for node in nodes[1:]:
        result = _apply(ufunc, [result, node], is_bool=is_bool)
    return result
