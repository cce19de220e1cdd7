"""Tests for schemas.expression: what the spec-file expression grammar accepts and rejects.

Spec files are shared between users, so the rejection list doubles as a catalogue of
sandbox-escape attempts; every rejection must be an ExpressionError that names the
offending part, and no other exception may ever escape parse_expression.
"""

from __future__ import annotations

import ast
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crlgen.schemas.expression import (
    ALLOWED_FUNCTIONS,
    MAX_CONST_EXPONENT,
    MAX_DEPTH,
    MAX_LENGTH,
    MAX_NODES,
    Expression,
    ExpressionError,
    flatten_name,
    parse_expression,
)

# -- acceptance -------------------------------------------------------------------------

ACCEPTED = [
    ("rho * 3.14159 * r**2 * h", {"rho", "r", "h"}, set()),
    ("0.12 - 9.81 * m / k + eps", {"m", "k", "eps"}, set()),
    ("where(x > 0, sqrt(x), -x)", {"x"}, {"where", "sqrt"}),
    ("7800 * 4.18879 * ball[i].radius**3", {"ball[i].radius"}, set()),
    ("ball[0].vx + 1", {"ball[0].vx"}, set()),
    ("a if b > 1 else c", {"a", "b", "c"}, set()),
    ("clip(x, 0, 1)", {"x"}, {"clip"}),
    ("-x", {"x"}, set()),
    ("not x", {"x"}, set()),
    ("x < y <= z", {"x", "y", "z"}, set()),
    ("ball[0]", {"ball[0]"}, set()),
    ("a.b + a.b * 2", {"a.b"}, set()),
    ("scene.ball[2].pos[1]", {"scene.ball[2].pos[1]"}, set()),
    ("max(a, b, c, 1) + min(a, 2)", {"a", "b", "c"}, {"max", "min"}),
    ("x and y or not z", {"x", "y", "z"}, set()),
    ("True + False * x", {"x"}, set()),
    ("x // 2 % 3", {"x"}, set()),
    ("pow(x, 2.5) + x ** -64 + x ** 64", {"x"}, {"pow"}),
    ("sigmoid(softplus(g)) * tanh(rho)", {"g", "rho"}, {"sigmoid", "softplus", "tanh"}),
    # Only *calls* of unknown functions are rejected; as variables these are just names.
    ("numpy + eval + open + os", {"numpy", "eval", "open", "os"}, set()),
    ("  x + 1\n", {"x"}, set()),
    ("(x\n + y)", {"x", "y"}, set()),
    ("1e999 + 0x10 + 1_000", set(), set()),
    ("ρ * 2", {"ρ"}, set()),
]


@pytest.mark.parametrize(("source", "names", "functions"), ACCEPTED)
def test_accepts_and_collects_names(source: str, names: set[str], functions: set[str]) -> None:
    expr = parse_expression(source)
    assert isinstance(expr, Expression)
    assert expr.names == frozenset(names)
    assert expr.functions == frozenset(functions)
    assert isinstance(expr.tree, ast.Expression)


def test_source_is_stripped_so_tree_positions_index_into_it() -> None:
    expr = parse_expression("   x + open_rate\n")
    assert expr.source == "x + open_rate"
    right = expr.tree.body.right  # type: ignore[attr-defined]
    assert ast.get_source_segment(expr.source, right) == "open_rate"


def test_expression_equality_ignores_tree_identity() -> None:
    first, second = parse_expression("a + b"), parse_expression("a + b")
    assert first == second and hash(first) == hash(second)
    assert first != parse_expression("a - b")


def test_allowed_functions_cover_the_documented_set() -> None:
    unary = ["exp", "log", "log1p", "expm1", "sqrt", "square", "sin", "cos", "tan",
             "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "sigmoid", "softplus",
             "abs", "sign", "floor", "ceil", "round"]
    for name in unary:
        assert ALLOWED_FUNCTIONS[name] == (1, 1), name
    for name in ["arctan2", "minimum", "maximum", "hypot", "pow"]:
        assert ALLOWED_FUNCTIONS[name] == (2, 2), name
    assert ALLOWED_FUNCTIONS["clip"] == (3, 3)
    assert ALLOWED_FUNCTIONS["where"] == (3, 3)
    assert ALLOWED_FUNCTIONS["min"] == (2, 8)
    assert ALLOWED_FUNCTIONS["max"] == (2, 8)


# -- flatten_name -------------------------------------------------------------------------

def _body(source: str) -> ast.expr:
    return ast.parse(source, mode="eval").body


@pytest.mark.parametrize(
    ("source", "flat"),
    [
        ("x", "x"),
        ("a.b", "a.b"),
        ("ball[0].radius", "ball[0].radius"),
        ("ball[i].radius", "ball[i].radius"),
        ("ball[0]", "ball[0]"),
        ("s.ball[12].pos[j]", "s.ball[12].pos[j]"),
        ("(1).real", None),
        ("a[1:2]", None),
        ("a[b + 1]", None),
        ("a[-1]", None),
        ("a[True]", None),
        ("a[1.0]", None),
        ("f(x).y", None),
        ("1", None),
    ],
)
def test_flatten_name(source: str, flat: str | None) -> None:
    assert flatten_name(_body(source)) == flat


def test_flatten_name_matches_hand_built_chain() -> None:
    chain = ast.Attribute(
        value=ast.Subscript(value=ast.Name("ball"), slice=ast.Constant(0)), attr="radius"
    )
    assert flatten_name(chain) == "ball[0].radius"


# -- rejection ----------------------------------------------------------------------------

REJECTED = [
    # (source, substring the message must contain)
    ("__import__('os')", "'__import__'"),
    ("x.__class__", "__class__"),
    ("a.b.__dict__", "__dict__"),
    ("x.y[0]._z", "'_z'"),
    ("_secret + 1", "'_secret'"),
    ("a[_i]", "'_i'"),
    ("open('f')", "'open'"),
    ("f(x)", "disallowed call 'f'"),
    ("np.exp(x)", "'np.exp'"),
    ("exp(x)(y)", "'exp(x)'"),
    ("lambda: 1", "lambda"),
    ("[1,2]", "[1,2]"),
    ("(1, 2)", "(1, 2)"),
    ("{'a':1}", "{'a':1}"),
    ("{1}", "{1}"),
    ("'str'", "'str'"),
    ("b'x'", "b'x'"),
    ("1j", "1j"),
    ("None", "None"),
    ("...", "..."),
    ("f'{x}'", "f'{x}'"),
    ("x[1:2]", "'1:2'"),
    ("a[b+1]", "'b+1'"),
    ("a[-1]", "'-1'"),
    ("(1).real", "(1).real"),
    ("exp(x, y)", "exp(x, y)"),
    ("clip(x, 1)", "clip(x, 1)"),
    ("max(x)", "max(x)"),
    ("min(" + ", ".join("x" * 9) + ")", "min("),
    ("exp", "'exp'"),
    ("exp + 1", "'exp'"),
    ("a[exp]", "'exp'"),
    ("exp(x=1)", "'x=1'"),
    ("exp(*x)", "'*x'"),
    ("exp(**k)", "'**k'"),
    ("x if", "x if"),
    ("", "empty"),
    ("   ", "empty"),
    ("1" * 3000, "3000 characters"),
    ("(" * 500 + "x" + ")" * 500, "nested"),
    ("-" * 100 + "x", "nested deeper"),
    ("9**9**9", "9**9**9"),
    ("x ** (y ** 2)", "power tower"),
    ("pow(x, pow(y, 2))", "power tower"),
    ("x**1000", "x**1000"),
    ("x ** -65", "x ** -65"),
    ("pow(x, 100)", "pow(x, 100)"),
    ("1" * 400, "too large"),
    ("x; y", "x; y"),
    ("x = 1", "x = 1"),
    ("(x := 1)", "x := 1"),
    ("(yield x)", "yield x"),
    ("await x", "await x"),
    ("x @ y", "'@'"),
    ("x << 2", "'<<'"),
    ("x & y", "'&'"),
    ("x | y", "'|'"),
    ("~x", "'~'"),
    ("x is y", "'is'"),
    ("x in y", "'in'"),
    ("[i for i in x]", "[i for i in x]"),
    ("(i for i in x)", "i for i in x"),
    ("x\x00", "null byte"),
    ("\ud800", "\\ud800"),
    ("import os", "import os"),
]


@pytest.mark.parametrize(("source", "fragment"), REJECTED)
def test_rejects_with_message_quoting_the_offending_part(source: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(source)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message  # one line, even for multi-line or control-character input


@pytest.mark.parametrize("value", [None, 3, 3.5, b"x", ["x"], object()])
def test_rejects_non_string_input(value: object) -> None:
    with pytest.raises(ExpressionError, match="must be a string"):
        parse_expression(value)  # type: ignore[arg-type]


def test_error_reports_one_based_character_column() -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression("x + open(1)")
    assert str(info.value).startswith("disallowed call 'open' at column 5 in 'x + open(1)'")
    with pytest.raises(ExpressionError, match="column 5"):
        parse_expression("ρ + open(1)")  # columns count characters, not UTF-8 bytes


def test_error_reports_line_for_multiline_source() -> None:
    with pytest.raises(ExpressionError, match="line 2, column 3"):
        parse_expression("(x +\n  open(1))")


def test_result_does_not_depend_on_warning_filters() -> None:
    # "1if x else y" makes the tokenizer warn; -W error must not flip accept/reject.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_expression("1if x else y").names == frozenset({"x", "y"})
        with pytest.raises(ExpressionError, match="str"):
            parse_expression("'\\d' + x")  # invalid escape warns; strings are rejected
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse_expression("1if x else y")
    assert caught == []  # and no noise on stderr


def test_expression_errors_become_spec_errors_naming_the_field() -> None:
    # ExpressionError is a ValueError, so pydantic's validators report it at the mechanism's path.
    from crlgen.schemas import DatasetSpec, SpecError

    with pytest.raises(SpecError) as info:
        DatasetSpec.from_dict({"name": "x", "samples": 1,
                               "variables": {"a": {"noise": "uniform(0, 1)"}, "b": {"mechanism": "a.__class__"}}})
    assert len(info.value.problems) == 1 and info.value.problems[0].startswith("variables.b.mechanism: ")


def test_dotted_name_is_a_variable_reference_not_module_access() -> None:
    # "numpy.os" is an object-variable chain like "a.b"; the schema layer rejects it
    # later as an undeclared variable. It never reaches a module.
    assert parse_expression("numpy.os").names == frozenset({"numpy.os"})


# -- caps (exact boundaries) --------------------------------------------------------------

def _nested_negations(depth: int) -> str:
    return "-" * (depth - 1) + "x"  # depth levels: depth-1 UnaryOps + the Name


def test_depth_cap_boundary() -> None:
    parse_expression(_nested_negations(MAX_DEPTH))
    with pytest.raises(ExpressionError, match="nested deeper"):
        parse_expression(_nested_negations(MAX_DEPTH + 1))


def test_length_cap_boundary() -> None:
    parse_expression("x" * MAX_LENGTH)
    with pytest.raises(ExpressionError, match=f"{MAX_LENGTH + 1} characters"):
        parse_expression("x" * (MAX_LENGTH + 1))


def test_node_cap() -> None:
    # Wide but shallow: 30-term sums (depth 30) grouped under max(); 474 nodes per group.
    chain = "+".join(["x"] * 30)                        # 30 Names + 29 BinOps
    group = "max(" + ",".join([chain] * 8) + ")"        # + Call + its func Name
    parse_expression(" + ".join([group] * 2))           # 949 nodes: accepted
    too_many = " + ".join([group] * 3)                  # 1424 nodes
    assert len(too_many) <= MAX_LENGTH
    with pytest.raises(ExpressionError, match=f"more than {MAX_NODES} nodes"):
        parse_expression(too_many)


def test_exponent_cap_boundary() -> None:
    parse_expression(f"x ** {MAX_CONST_EXPONENT} + x ** -{MAX_CONST_EXPONENT}")
    parse_expression(f"pow(x, {MAX_CONST_EXPONENT}.0)")
    with pytest.raises(ExpressionError, match="exponent larger"):
        parse_expression(f"x ** {MAX_CONST_EXPONENT + 1}")
    with pytest.raises(ExpressionError, match="exponent larger"):
        parse_expression(f"pow(x, {MAX_CONST_EXPONENT}.5)")
    parse_expression("(x ** 2) ** 3")  # a power in the *base* is fine


# -- properties -----------------------------------------------------------------------------

SUSPICIOUS = "()[]{}._ab0123+-*/%<>=!,:;'\"\\ lambdaimportos\n\x00@&|~^#$`eE"


def _check_total(source: str) -> None:
    """parse_expression either succeeds with a sane result or raises ExpressionError."""
    try:
        expr = parse_expression(source)
    except ExpressionError as exc:
        assert "\n" not in str(exc)
        return
    assert expr.functions <= ALLOWED_FUNCTIONS.keys()
    for name in expr.names:
        assert not name.startswith("_") and ".__" not in name and "._" not in name
        assert name not in ALLOWED_FUNCTIONS


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_only_raises_expression_error(source: str) -> None:
    _check_total(source)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=SUSPICIOUS, max_size=60))
def test_suspicious_text_only_raises_expression_error(source: str) -> None:
    _check_total(source)


TOKENS = ["x", "a", "_", "__class__", "exp", "open", "(", ")", "[", "]", ".", ",", "0", "1",
          "**", "*", "+", "-", " if ", " else ", " not ", " and ", "<", "==", "lambda", ":",
          "'s'", "9", "i"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join))
def test_token_soup_only_raises_expression_error(source: str) -> None:
    _check_total(source)


@settings(max_examples=50, deadline=None)
@given(st.sampled_from(["(", "[", "-", "not ", "+", "exp(", "x**"]), st.integers(1, 1200))
def test_deep_or_long_input_only_raises_expression_error(opener: str, count: int) -> None:
    _check_total(opener * count + "x")
