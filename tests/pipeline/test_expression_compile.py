"""Tests for crlgen.schemas.compiler: compiled expressions agree with an independent reference.

The reference evaluator below interprets a generated tree element by element with Python
floats (IEEE special cases of division, truthiness, NaN-aware min/max/clip and rounding
spelled out), so it shares neither the parser nor the compiler with the code under test.
Only transcendental kernels (exp, log, pow, ...) are numpy's, applied to one scalar.
"""

from __future__ import annotations

import ast
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import crlgen.schemas.compiler as expressions_module
import crlgen.schemas.expression as expression_module
from crlgen.schemas.compiler import compile_expression
from crlgen.schemas.expression import ExpressionError, parse_expression

INF, NAN = math.inf, math.nan


def _run(source: str, **env: Any) -> np.ndarray:
    return compile_expression(source)(env)


# -- semantics ----------------------------------------------------------------------------

X = np.array([-2.5, -1.0, -0.5, 0.0, 0.5, 1.0, 2.5, 7.0])
Y = np.array([3.0, -2.0, 0.25, 1.0, -4.0, 2.0, 0.0, 3.5])

with np.errstate(all="ignore"):  # expected values include NaN/inf on purpose
    SEMANTICS = [
        ("x + y", X + Y), ("x - y", X - Y), ("x * y", X * Y), ("x / y", X / Y),
        ("x // y", np.floor_divide(X, Y)), ("x % y", np.mod(X, Y)), ("x ** y", X**Y),
        ("-x", -X), ("+x", X), ("exp(x)", np.exp(X)), ("log(x)", np.log(X)),
        ("log1p(x)", np.log1p(X)), ("expm1(x)", np.expm1(X)), ("sqrt(x)", np.sqrt(X)),
        ("square(x)", X * X), ("sin(x)", np.sin(X)), ("cos(x)", np.cos(X)),
        ("tan(x)", np.tan(X)), ("arcsin(x)", np.arcsin(X)), ("arccos(x)", np.arccos(X)),
        ("arctan(x)", np.arctan(X)), ("arctan2(x, y)", np.arctan2(X, Y)),
        ("sinh(x)", np.sinh(X)), ("cosh(x)", np.cosh(X)), ("tanh(x)", np.tanh(X)),
        ("abs(x)", np.abs(X)), ("sign(x)", np.sign(X)), ("floor(x)", np.floor(X)),
        ("ceil(x)", np.ceil(X)), ("round(x)", np.array([-2, -1, -0, 0, 0, 1, 2, 7.0])),
        ("clip(x, -1, 1)", np.clip(X, -1, 1)), ("minimum(x, y)", np.minimum(X, Y)),
        ("maximum(x, y)", np.maximum(X, Y)), ("hypot(x, y)", np.hypot(X, Y)),
        ("pow(x, 2)", X**2), ("min(x, y, 0.5)", np.minimum(np.minimum(X, Y), 0.5)),
        ("max(x, y, 0.5, -x)", np.maximum.reduce([X, Y, np.full(8, 0.5), -X])),
        ("x < y", (X < Y) * 1.0), ("x <= y", (X <= Y) * 1.0), ("x > y", (X > Y) * 1.0),
        ("x >= y", (X >= Y) * 1.0), ("x == y", (X == Y) * 1.0), ("x != y", (X != Y) * 1.0),
        ("-1 < x <= y", ((-1 < X) & (X <= Y)) * 1.0),
        ("not x", (X == 0) * 1.0), ("x and y", ((X != 0) & (Y != 0)) * 1.0),
        ("x or y", ((X != 0) | (Y != 0)) * 1.0),
        ("x if y > 0 else -x", np.where(Y > 0, X, -X)),
        ("where(y, x, 2)", np.where(Y != 0, X, 2.0)),
        ("(x > 0) + (y > 0)", (X > 0) * 1.0 + (Y > 0) * 1.0),  # 2.0, not logical or
        ("-(x > 0)", -((X > 0) * 1.0)),
        ("sigmoid(x)", 1 / (1 + np.exp(-X))), ("softplus(x)", np.log1p(np.exp(X))),
    ]


@pytest.mark.parametrize(("source", "expected"), SEMANTICS)
def test_semantics_match_numpy(source: str, expected: np.ndarray) -> None:
    result = _run(source, x=X, y=Y)
    assert result.dtype == np.float64 and result.shape == X.shape
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=0)


def test_arithmetic_is_float64_not_python_int() -> None:
    # Exact int arithmetic would give 1; float64 absorbs the +1.
    assert _run("2**64 + 1 - 2**64") == 0.0
    assert _run("x ** 64", x=np.array([3, 10])).tolist() == [3.0**64, 1e64]  # int input: float
    assert _run("x // 2", x=np.array([7])).dtype == np.float64


def test_square_is_the_exact_product() -> None:
    x = np.random.default_rng(1).normal(scale=1e3, size=10_000)
    np.testing.assert_array_equal(_run("x ** 2", x=x), x * x)
    np.testing.assert_array_equal(_run("pow(x, 2.0)", x=x), x * x)
    np.testing.assert_array_equal(_run("x ** 3", x=x), np.power(x, 3.0))


def test_truthiness_is_nonzero_and_nan_is_true() -> None:
    v = np.array([0.0, -0.0, NAN, 2.0])
    assert _run("not v", v=v).tolist() == [1.0, 1.0, 0.0, 0.0]
    assert _run("v and 1", v=v).tolist() == [0.0, 0.0, 1.0, 1.0]
    assert _run("where(v, 1, 2)", v=v).tolist() == [2.0, 2.0, 1.0, 1.0]
    assert _run("1 if v else 2", v=v).tolist() == [2.0, 2.0, 1.0, 1.0]
    assert _run("v == v", v=v).tolist() == [1.0, 1.0, 0.0, 1.0]


def test_object_variable_chains_are_env_keys() -> None:
    env = {"ball[0].radius": np.array([1.0, 2.0]), "ball[i].vx": 0.5}
    result = compile_expression("7800 * ball[0].radius**3 + ball[i].vx")(env)
    np.testing.assert_allclose(result, 7800 * np.array([1.0, 8.0]) + 0.5)


def test_scalar_inputs_and_constants_give_0d_arrays() -> None:
    for result in (_run("1 + 2"), _run("x * 2", x=1.5), _run("x > 1", x=3.0)):
        assert isinstance(result, np.ndarray)
        assert result.shape == () and result.dtype == np.float64
    assert _run("x * 2", x=1.5) == 3.0


def test_result_has_broadcast_shape_even_when_a_branch_folds_away() -> None:
    # The constant condition picks "x" at compile time; "y" still sets the output shape.
    result = _run("x if 1 else y", x=2.0, y=np.zeros(3))
    assert result.shape == (3,) and result.tolist() == [2.0, 2.0, 2.0]
    result[0] = 5.0  # writable, not a read-only broadcast view


def test_result_never_aliases_an_input() -> None:
    x = np.arange(3.0)
    result = _run("x", x=x)
    result[0] = 99.0
    assert x[0] == 0.0


def test_missing_name_raises_key_error_with_the_name() -> None:
    evaluate = compile_expression("a + ball[0].radius")
    with pytest.raises(KeyError) as info:
        evaluate({"a": 1.0})
    assert info.value.args == ("ball[0].radius",)


def test_accepts_parsed_expression_and_rejects_bad_text() -> None:
    evaluate = compile_expression(parse_expression("a * 2"))
    assert evaluate({"a": np.array([1.0])}).tolist() == [2.0]
    with pytest.raises(ExpressionError, match="'open'"):
        compile_expression("open('f')")


def test_nan_and_inf_are_returned_silently_and_errstate_is_restored() -> None:
    before = np.geterr()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any RuntimeWarning would fail the test
        logs = _run("log(x)", x=np.array([0.0, -1.0]))
        quotients = _run("x / y", x=np.array([1.0, 0.0]), y=0.0)
        overflow = _run("exp(x) * x", x=1000.0)
    assert logs[0] == -INF and np.isnan(logs[1])
    assert quotients[0] == INF and np.isnan(quotients[1])
    assert overflow == INF
    assert np.geterr() == before


def test_sigmoid_and_softplus_are_stable_at_extremes() -> None:
    x = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sig = _run("sigmoid(x)", x=x)
        soft = _run("softplus(x)", x=x)
    assert sig[0] == 0.0 and sig[2] == 0.5 and sig[4] == 1.0
    assert math.isclose(sig[1], math.exp(-40.0) / (1 + math.exp(-40.0)), rel_tol=1e-12)
    assert soft[0] == 0.0 and soft[4] == 1000.0 and math.isclose(soft[2], math.log(2.0))
    assert math.isclose(soft[1], math.log1p(math.exp(-40.0)), rel_tol=1e-12)
    assert np.isfinite(sig).all() and np.isfinite(soft).all()


def test_million_element_evaluation_is_vectorised() -> None:
    rng = np.random.default_rng(0)
    n = 1_000_000
    m, k, eps = rng.uniform(0.1, 10, n), rng.uniform(0.1, 10, n), rng.normal(size=n)
    result = compile_expression("0.12 - 9.81 * m / k + eps")({"m": m, "k": k, "eps": eps})
    assert result.shape == (n,) and result.dtype == np.float64
    np.testing.assert_array_equal(result, 0.12 - 9.81 * m / k + eps)


def test_source_never_reaches_eval_exec_or_compile() -> None:
    """Static guard: no eval/exec/compile/__import__, and getattr only with literal names."""
    forbidden = {"eval", "exec", "compile", "__import__", "globals", "locals", "vars"}
    offenders = []
    for module in (expressions_module, expression_module):
        path = Path(module.__file__ or "")
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            dynamic_getattr = name in {"getattr", "setattr"} and not (
                len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)
            )
            if name in forbidden or dynamic_getattr:
                offenders.append(f"{path.name}:{node.lineno} {name}")
    assert not offenders


# -- reference evaluator ------------------------------------------------------------------

def _ieee_div(a: float, b: float) -> float:
    if b != 0.0 or math.isnan(b):
        return a / b
    if a == 0.0 or math.isnan(a):
        return NAN
    return math.copysign(INF, a) * math.copysign(1.0, b)


def _floor_div(a: float, b: float) -> float:
    # Python's float // and % use the same algorithm as numpy's, except for b == 0.
    return _ieee_div(a, b) if b == 0.0 else a // b


def _mod(a: float, b: float) -> float:
    return NAN if b == 0.0 else a % b


def _kernel(ufunc: np.ufunc) -> Any:
    """A numpy transcendental kernel applied to one scalar.

    Only the elementary kernel is borrowed: numpy's SIMD exp/tanh/arctan/power differ
    from ``math`` by an ulp, and ill-conditioned follow-ups (``b % exp(b)``) would turn
    that into a spurious mismatch. numpy's scalar and array paths agree bit for bit.
    """

    def apply(*args: float) -> float:
        with np.errstate(all="ignore"):
            return float(ufunc(*(np.float64(a) for a in args)))

    return apply


def _nan_min(*args: float) -> float:
    """Left fold of ``a if a < b else b``: NaN wins, and a tie (0.0 vs -0.0) keeps the
    later operand, as numpy's minimum does (Python's min() keeps the first)."""
    if any(math.isnan(a) for a in args):
        return NAN
    result = args[0]
    for value in args[1:]:
        result = result if result < value else value
    return result


def _nan_max(*args: float) -> float:
    if any(math.isnan(a) for a in args):
        return NAN
    result = args[0]
    for value in args[1:]:
        result = result if result > value else value
    return result


def _integral(rounder: Any) -> Any:
    """floor/ceil/round-half-even on floats; a zero result keeps the sign of x (IEEE:
    ceil(-0.5) is -0.0), which int-based Python rounding would drop."""

    def apply(x: float) -> float:
        if not math.isfinite(x):
            return x
        return float(rounder(x)) or math.copysign(0.0, x)

    return apply


def _sign(x: float) -> float:
    return NAN if math.isnan(x) else float((x > 0) - (x < 0))


REF_FUNCTIONS: dict[str, Any] = {
    "exp": _kernel(np.exp),
    "log": _kernel(np.log),
    "sqrt": _kernel(np.sqrt),
    "sin": _kernel(np.sin),
    "cos": _kernel(np.cos),
    "tanh": _kernel(np.tanh),
    "arctan": _kernel(np.arctan),
    "abs": abs,
    "sign": _sign,
    "floor": _integral(math.floor),
    "ceil": _integral(math.ceil),
    "round": _integral(round),
    "square": lambda x: x * x,
    "minimum": _nan_min,
    "maximum": _nan_max,
    "min": _nan_min,
    "max": _nan_max,
    "hypot": _kernel(np.hypot),
    "arctan2": _kernel(np.arctan2),
    "pow": lambda a, b: _power(a, b),
    "clip": lambda x, lo, hi: _nan_min(_nan_max(x, lo), hi),
}
UNARY_FUNCS = ["exp", "log", "sqrt", "sin", "cos", "tanh", "arctan", "abs", "sign",
               "floor", "ceil", "round", "square"]
BINARY_FUNCS = ["minimum", "maximum", "hypot", "arctan2"]

def _power(a: float, b: float) -> float:
    """``x ** 2`` is defined as the exact product x * x; other exponents use pow."""
    return a * a if b == 2.0 else _kernel(np.power)(a, b)


BINOPS: dict[str, Any] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": _ieee_div,
    "//": _floor_div,
    "%": _mod,
    "**": _power,
}
COMPARE: dict[str, Any] = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


def _truth(v: float) -> bool:
    return v != 0.0  # NaN is true


def reference(tree: tuple, env: dict[str, float]) -> float:
    """Evaluate a generated tree on scalars, straight from the tuple form."""
    kind = tree[0]
    if kind == "var":
        return env[tree[1]]
    if kind == "const":
        return float(tree[1])
    if kind == "bin":
        return BINOPS[tree[1]](reference(tree[2], env), reference(tree[3], env))
    if kind == "unary":
        value = reference(tree[2], env)
        return {"-": -value, "+": value, "not": float(not _truth(value))}[tree[1]]
    if kind == "call":
        args = [reference(a, env) for a in tree[2]]
        if tree[1] == "where":
            return args[1] if _truth(args[0]) else args[2]
        return float(REF_FUNCTIONS[tree[1]](*args))
    if kind == "cmp":
        values = [reference(tree[1], env)] + [reference(r, env) for _, r in tree[2]]
        ok = all(COMPARE[op](values[i], values[i + 1]) for i, (op, _) in enumerate(tree[2]))
        return float(ok)
    if kind == "bool":
        truths = [_truth(reference(v, env)) for v in tree[2]]
        return float(all(truths) if tree[1] == "and" else any(truths))
    if kind == "ifexp":
        branch = tree[2] if _truth(reference(tree[1], env)) else tree[3]
        return reference(branch, env)
    raise AssertionError(kind)


def render(tree: tuple) -> str:
    """Source text for a tree; every compound is parenthesised so structure is explicit."""
    kind = tree[0]
    if kind == "var":
        return tree[1]
    if kind == "const":
        text = repr(tree[1])
        return f"({text})" if text.startswith("-") else text
    if kind == "bin":
        return f"({render(tree[2])} {tree[1]} {render(tree[3])})"
    if kind == "unary":
        space = " " if tree[1] == "not" else ""
        return f"({tree[1]}{space}{render(tree[2])})"
    if kind == "call":
        return f"{tree[1]}({', '.join(render(a) for a in tree[2])})"
    if kind == "cmp":
        rest = " ".join(f"{op} {render(r)}" for op, r in tree[2])
        return f"({render(tree[1])} {rest})"
    if kind == "bool":
        return "(" + f" {tree[1]} ".join(render(v) for v in tree[2]) + ")"
    if kind == "ifexp":
        return f"({render(tree[2])} if {render(tree[1])} else {render(tree[3])})"
    raise AssertionError(kind)


VARS = ("a", "b", "c")

var = st.sampled_from(VARS).map(lambda v: ("var", v))
const = st.one_of(
    st.floats(-10, 10, allow_nan=False, allow_infinity=False).map(lambda v: ("const", v)),
    st.integers(-5, 5).map(lambda v: ("const", v)),
)
exponent = st.one_of(
    st.integers(-3, 4).map(lambda v: ("const", v)),
    st.sampled_from([0.5, -0.5, 1.5, 2.0]).map(lambda v: ("const", v)),
    var,
)


def _extend(kids: st.SearchStrategy[tuple]) -> st.SearchStrategy[tuple]:
    def call(names: list[str], arity: int) -> st.SearchStrategy[tuple]:
        return st.tuples(st.just("call"), st.sampled_from(names), st.tuples(*[kids] * arity))

    return st.one_of(
        st.tuples(st.just("bin"), st.sampled_from(["+", "-", "*", "/", "//", "%"]), kids, kids),
        st.tuples(st.just("bin"), st.just("**"), kids, exponent),
        st.tuples(st.just("unary"), st.sampled_from(["-", "+", "not"]), kids),
        call(UNARY_FUNCS, 1),
        call(BINARY_FUNCS, 2),
        call(["clip", "where"], 3),
        st.tuples(st.just("call"), st.just("pow"), st.tuples(kids, exponent)),
        st.tuples(st.just("call"), st.sampled_from(["min", "max"]),
                  st.lists(kids, min_size=2, max_size=4).map(tuple)),
        st.tuples(st.just("cmp"), kids,
                  st.lists(st.tuples(st.sampled_from(list(COMPARE)), kids),
                           min_size=1, max_size=3).map(tuple)),
        st.tuples(st.just("bool"), st.sampled_from(["and", "or"]),
                  st.lists(kids, min_size=2, max_size=3).map(tuple)),
        st.tuples(st.just("ifexp"), kids, kids, kids),
    )


trees = st.recursive(st.one_of(var, const), _extend, max_leaves=12)
element = st.one_of(
    st.floats(-30, 30, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, INF, -INF, NAN]),
)


def _same(got: float, want: float) -> bool:
    if math.isnan(got) or math.isnan(want):
        return math.isnan(got) and math.isnan(want)
    if math.isinf(got) or math.isinf(want):
        return got == want
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-300)


@settings(max_examples=200, deadline=None)
@given(tree=trees, data=st.data())
def test_compiled_matches_reference_evaluator(tree: tuple, data: st.DataObject) -> None:
    source = render(tree)
    assume(parse_depth(source) <= 30)
    n = data.draw(st.integers(1, 6), label="n")
    env: dict[str, Any] = {}
    for name in VARS:
        if data.draw(st.booleans(), label=f"{name} is scalar"):
            env[name] = data.draw(element, label=name)  # python float: broadcast
        else:
            env[name] = np.array(data.draw(st.lists(element, min_size=n, max_size=n),
                                           label=name), dtype=np.float64)
    expr = parse_expression(source)
    result = compile_expression(expr)(env)
    # Only referenced inputs set the shape (unreferenced env entries are never looked up).
    any_array = any(isinstance(env[name], np.ndarray) for name in expr.names)
    assert result.dtype == np.float64
    assert result.shape == ((n,) if any_array else ())
    for i in range(n if any_array else 1):
        scalars = {k: float(v[i]) if isinstance(v, np.ndarray) else v for k, v in env.items()}
        want = reference(tree, scalars)
        got = float(result[i]) if any_array else float(result)
        assert _same(got, want), f"{source} at {scalars}: got {got!r}, want {want!r}"


def parse_depth(source: str) -> int:
    """AST depth of the rendered source (the generator can nest unary nodes deeply)."""
    def walk(node: ast.AST) -> int:
        return 1 + max((walk(c) for c in ast.iter_child_nodes(node)), default=0)
    return walk(ast.parse(source, mode="eval"))


# -- fuzz: anything that parses also compiles and evaluates ---------------------------------

FUZZ_ALPHABET = "abxy()[]._0123+-*/%<>=!, "
FUZZ_WORDS = ["exp(", "where(", "clip(", "max(", " if ", " else ", " and ", " not ", "**"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(FUZZ_WORDS), st.text(FUZZ_ALPHABET, max_size=3)),
                max_size=12).map("".join))
def test_anything_that_parses_compiles_and_evaluates(source: str) -> None:
    try:
        expr = parse_expression(source)
    except ExpressionError:
        return
    env = {name: np.linspace(-2.0, 2.0, 5) for name in expr.names}
    result = compile_expression(expr)(env)
    assert result.dtype == np.float64
    assert result.shape == ((5,) if env else ())
