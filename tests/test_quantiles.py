"""Quantiles by one formula (`alphatrace.quantiles`, type 7): against the exact rational value,
against numpy's default `np.quantile`, and DuckDB's SQL spelling (`Dialect.quantile`) against
the numpy kernel bit for bit. Spark's spelling: tests/spark/test_dialect.py."""

from __future__ import annotations

import math
from fractions import Fraction

import duckdb
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.engines.duckdb import DUCKDB
from alphatrace.quantiles import median, quantile, quantiles

finite = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
values = st.lists(finite, min_size=1, max_size=40)
probs = st.one_of(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]),
                  st.floats(min_value=0.0, max_value=1.0))


def _exact(xs: list[float], q: float) -> Fraction:
    """Type 7 in exact rational arithmetic: h = (n−1)·q, linear between the order statistics."""
    s = sorted(Fraction(x) for x in xs)
    h = (len(s) - 1) * Fraction(q)
    j = math.floor(h)
    g = h - j
    return s[j] if g == 0 else s[j] + (s[j + 1] - s[j]) * g


@given(values, probs)
def test_quantile_is_type_7_within_rounding(xs: list[float], q: float) -> None:
    got = quantile(xs, q)
    scale = max(abs(x) for x in xs)
    # h rounds once, the difference, product and sum once each: a few ulps of the largest value
    assert abs(Fraction(got) - _exact(xs, q)) <= Fraction(8 * scale) * Fraction(2.0 ** -52)
    s = sorted(xs)
    j = min(len(s) - 1, math.floor((len(s) - 1) * q))
    assert s[0] <= got <= s[-1] and s[j] <= got <= s[min(j + 1, len(s) - 1)]


@given(values, probs)
def test_quantile_agrees_with_numpys_default(xs: list[float], q: float) -> None:
    want = float(np.quantile(np.asarray(xs), q))
    scale = max(abs(x) for x in xs)
    assert abs(quantile(xs, q) - want) <= 8 * scale * 2.0 ** -52


def test_hand_values() -> None:
    # n = 4, q = 0.9: h = 2.7, between s[2] = 3 and s[3] = 10: 3 + 7·0.7 = 7.9
    assert quantile([10.0, 1.0, 3.0, 2.0], 0.9) == pytest.approx(7.9, abs=1e-12)
    assert median([4.0, 1.0, 2.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 10.0]) == 2.5
    assert quantile([5.0], 0.3) == 5.0
    assert math.isnan(quantile([], 0.5)) and math.isnan(median([float("nan")]))
    assert quantile([1.0, float("nan"), 3.0], 0.5) == 3.0  # NaN sorts last, as in SQL
    assert math.isnan(quantile([1.0, float("nan"), 3.0], 0.75))
    assert str(quantile([-0.0, 0.0, -0.0], 0.5)) == "0.0"  # −0.0 counts as 0.0
    got = quantiles([0.0, 10.0], [0.0, 0.25, 1.0])
    assert got.tolist() == [0.0, 2.5, 10.0]


@given(st.lists(st.one_of(st.none(), finite, st.sampled_from([-0.0, 0.0, math.nan, math.inf])),
                max_size=40), probs)
def test_duckdb_spelling_is_the_kernel_bit_for_bit(xs: list[float | None], q: float) -> None:
    con = duckdb.connect()
    got = con.execute(f"SELECT {DUCKDB.quantile('v', q)} FROM (SELECT unnest(?::DOUBLE[]) AS v)",
                      [xs]).fetchall()[0][0]
    present = [x for x in xs if x is not None]
    if not present:
        assert got is None
        return
    want = quantile(present, q)
    assert got is not None
    assert (math.isnan(got) and math.isnan(want)) or (
        np.float64(got).tobytes() == np.float64(want).tobytes())


def test_duckdb_spelling_per_group() -> None:
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT g, {DUCKDB.quantile('v', 0.5)} AS m FROM (VALUES (1, 4.0), (1, 1.0), (1, NULL), "
        "(2, 7.0), (3, NULL)) t(g, v) GROUP BY g ORDER BY g").fetchall()
    assert rows == [(1, 2.5), (2, 7.0), (3, None)]
