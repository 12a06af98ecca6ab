"""The rule language: grammar, null semantics, error positions, and a property test against an
independent reference evaluator."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace import metrics
from alphatrace.governance import expr

KNOWN = {"a", "b", "c", "error_rate", "rolling_pnl_bps"}


def parse(text: str) -> expr.Node:
    return expr.parse(text, lambda n: n in KNOWN, sorted(KNOWN))


def ev(text: str, **values: float | None) -> bool:
    return expr.evaluate_one(parse(text), values)


def test_precedence_and_binds_tighter_than_or() -> None:
    # a or (b and c): with a true, b false → true; (a or b) and c would be false
    assert ev("a > 0 or b > 0 and c > 0", a=1, b=-1, c=-1) is True
    assert ev("(a > 0 or b > 0) and c > 0", a=1, b=-1, c=-1) is False


def test_not_binds_tighter_than_and() -> None:
    assert ev("not a > 0 and b > 0", a=-1, b=1) is True
    assert ev("not (a > 0 and b > 0)", a=1, b=-1) is True
    assert ev("not not a > 0", a=1) is True


@pytest.mark.parametrize(("text", "a", "want"), [
    ("a < -20", -20.0, False), ("a < -20", -20.5, True), ("a <= -20", -20.0, True),
    ("a == 0.2", 0.2, True), ("a != 0.2", 0.2, False), ("a >= 1e2", 100.0, True),
    ("a > .5", 0.5, False), ("a > +3", 3.5, True), ("-1 < a", 0.0, True),
    ("a > 1.5E-3", 0.0016, True),
])
def test_comparisons(text: str, a: float, want: bool) -> None:
    assert ev(text, a=a) is want


def test_keywords_are_case_insensitive() -> None:
    assert ev("a > 0 AND b > 0 Or c > 0", a=1, b=1, c=-1) is True


def test_comparing_two_metrics() -> None:
    assert ev("a > b", a=2, b=1) is True
    assert ev("a > b", a=1, b=2) is False


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_missing_value_makes_every_comparison_false(op: str) -> None:
    assert ev(f"a {op} 1", a=None) is False
    assert ev(f"1 {op} a", a=None) is False
    # and `not` of a false comparison is true: documented, a rule must be written positively
    assert ev(f"not a {op} 1", a=None) is True


def test_vectorised_evaluation_matches_per_row() -> None:
    node = parse("a > 1 and not b <= 2 or c == 3")
    a = np.array([2.0, 0.0, np.nan, 2.0])
    b = np.array([3.0, 3.0, 3.0, np.nan])
    c = np.array([0.0, 3.0, 0.0, 0.0])
    got = expr.evaluate(node, {"a": a, "b": b, "c": c}, 4).tolist()
    # row 3: b is missing, so `b <= 2` is false and `not b <= 2` is true
    assert got == [True, True, False, True]


def test_names_in_first_use_order() -> None:
    assert expr.names(parse("c > 1 or a < b and c > 2")) == ["c", "a", "b"]


@pytest.mark.parametrize(("text", "pos", "fragment", "hint"), [
    ("eror_rate > 0.2", 0, "unknown metric 'eror_rate'", "did you mean 'error_rate'?"),
    ("a > 1 and bb < 2", 10, "unknown metric 'bb'", None),
    ("a = 1", 2, "unknown operator '='", "'=='"),
    ("a > 1 && b > 1", 6, "unknown operator '&&'", "'and'"),
    ("a > 1 || b > 1", 6, "unknown operator '||'", "'or'"),
    ("a < b < c", 6, "chained comparisons", "a < b and b < c"),
    ("a", 1, "expected a comparison after metric 'a'", None),
    ("a > 1 and b", 11, "expected a comparison after metric 'b'", None),
    ("", 0, "empty rule", None),
    ("(a > 1", 6, "expected `)`", "column 1"),
    ("a > 1)", 5, "unexpected ')'", "no matching"),
    ("(a > 1) > 2", 8, "cannot compare a condition", None),
    ("a > 1 b > 2", 6, "unexpected name 'b'", "join conditions"),
    ("a > 5d", 5, "unexpected 'd' after the number", None),
    ("a > -b", 5, "expected a number after '-'", None),
    ("a > and", 4, "`and` cannot stand here", None),
    ("a > 1e999", 4, "out of range", None),
    ("a > 1 $", 6, "unexpected character '$'", None),
])
def test_errors_name_the_column(text: str, pos: int, fragment: str, hint: str | None) -> None:
    with pytest.raises(expr.ExprError) as ei:
        parse(text)
    assert fragment in ei.value.message
    assert ei.value.pos == pos
    if hint is not None:
        assert ei.value.suggestion is not None and hint in ei.value.suggestion


def test_gate_metric_names_come_from_the_metric_module() -> None:
    node = expr.parse("last_7_runs_pnl < -100 and sharpe > 1", metrics.is_metric, metrics.names())
    assert expr.names(node) == ["last_7_runs_pnl", "sharpe"]
    with pytest.raises(expr.ExprError, match="unknown metric 'last_0_runs_pnl'"):
        expr.parse("last_0_runs_pnl < 1", metrics.is_metric, metrics.names())


# ------------------------------------------------------------------ property: random rules

VARS = ["a", "b", "c"]
OPS = {"<": lambda x, y: x < y, "<=": lambda x, y: x <= y, ">": lambda x, y: x > y,
       ">=": lambda x, y: x >= y, "==": lambda x, y: x == y, "!=": lambda x, y: x != y}

Values = dict[str, float | None]


def _operand() -> st.SearchStrategy[tuple[str, object]]:
    nums = st.integers(-5, 5).map(lambda v: (str(v) if v >= 0 else f"-{-v}", float(v)))
    return st.one_of(nums, st.sampled_from(VARS).map(lambda v: (v, v)))


def _cmp() -> st.SearchStrategy[tuple[str, object]]:
    return st.tuples(_operand(), st.sampled_from(sorted(OPS)), _operand()).map(
        lambda t: (f"{t[0][0]} {t[1]} {t[2][0]}", ("cmp", t[1], t[0][1], t[2][1])))


def _rule() -> st.SearchStrategy[tuple[str, object]]:
    return st.recursive(_cmp(), lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda t: (f"({t[0][0]}) and ({t[1][0]})", ("and", t[0][1], t[1][1]))),
        st.tuples(inner, inner).map(lambda t: (f"({t[0][0]}) or ({t[1][0]})", ("or", t[0][1], t[1][1]))),
        inner.map(lambda t: (f"not ({t[0]})", ("not", t[1]))),
    ), max_leaves=8)


def reference(tree: object, values: Values) -> bool:
    """Independent evaluator over the generated tree, with the documented null rule."""
    assert isinstance(tree, tuple)
    tag = tree[0]
    if tag == "cmp":
        _, op, left, right = tree

        def val(x: object) -> float | None:
            return values[x] if isinstance(x, str) else float(x)  # type: ignore[arg-type]

        lv, rv = val(left), val(right)
        if lv is None or rv is None:
            return False
        return bool(OPS[op](lv, rv))
    if tag == "and":
        return reference(tree[1], values) and reference(tree[2], values)
    if tag == "or":
        return reference(tree[1], values) or reference(tree[2], values)
    return not reference(tree[1], values)


value = st.one_of(st.none(), st.integers(-6, 6).map(float))


@settings(max_examples=300)
@given(_rule(), st.lists(st.fixed_dictionaries({v: value for v in VARS}), min_size=1, max_size=6))
def test_random_rules_match_reference(rule: tuple[str, object], rows: list[Values]) -> None:
    text, tree = rule
    node = parse(text)
    env = {v: np.array([math.nan if r[v] is None else r[v] for r in rows]) for v in VARS}
    got = expr.evaluate(node, env, len(rows)).tolist()
    assert got == [reference(tree, r) for r in rows]


@settings(max_examples=300)
@given(st.text(alphabet="ab c()<>=!&|-+.0123456789eandortx", max_size=30))
def test_arbitrary_text_parses_or_fails_cleanly(text: str) -> None:
    try:
        node = parse(text)
    except expr.ExprError as e:
        assert 0 <= e.pos <= len(text)
    else:
        expr.evaluate(node, {v: np.array([1.0]) for v in KNOWN}, 1)
