"""`slices.on_grid`: weights rounded so that every histogram sum is exact, hence the same bits
however the rows are ordered or split (what lets Spark add partial histograms,
engines/spark/slices.py). Checked against exact rational sums (`fractions.Fraction`), not
against the code under test."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.forensics.slices import histogram, on_grid

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@settings(max_examples=200, deadline=None)
@given(st.lists(finite, min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_any_subset_in_any_order_sums_exactly(xs: list[float], rnd: object) -> None:
    g = on_grid(np.asarray(xs))
    top = max(abs(x) for x in xs)
    for x, q in zip(xs, g.tolist(), strict=True):  # moved by at most 2^-51·n·max|x|
        assert abs(Fraction(q) - Fraction(x)) <= Fraction(top) * len(xs) / 2**51
    idx = list(range(len(xs)))
    for _ in range(3):
        rnd.shuffle(idx)  # type: ignore[attr-defined]
        sub = idx[: rnd.randint(1, len(idx))]  # type: ignore[attr-defined]
        exact = sum((Fraction(float(g[i])) for i in sub), Fraction(0))
        acc = 0.0
        for i in sub:  # one by one, in a random order
            acc += float(g[i])
        assert Fraction(acc) == exact
        assert Fraction(float(np.sum(g[sub]))) == exact  # numpy's pairwise grouping


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 400), st.integers(0, 2**32 - 1), st.lists(st.integers(0, 400), max_size=6))
def test_histograms_of_a_split_add_up_to_the_whole_bit_for_bit(n: int, seed: int,
                                                               cuts: list[int]) -> None:
    rng = np.random.default_rng(seed)
    codes = [rng.integers(0, 3, n), rng.integers(0, 4, n)]
    y = rng.normal(0, 1, n) * np.exp(rng.normal(0, 8, n))  # magnitudes over ~20 decades
    e = on_grid(np.maximum(0.0, -y))
    yc = on_grid(y - float(on_grid(y).sum()) / n)
    weights = [np.ones(n), e, yc, on_grid(yc * yc)]
    whole, wmax = histogram(codes, (3, 4), weights, e)
    bounds = [0, *sorted(min(c, n) for c in cuts), n]
    sums, top = np.zeros_like(whole), np.zeros_like(wmax)
    for a, b in itertools.pairwise(bounds):
        s, m = histogram([c[a:b] for c in codes], (3, 4), [w[a:b] for w in weights], e[a:b])
        sums += s
        top = np.maximum(top, m)
    assert sums.tobytes() == whole.tobytes() and top.tobytes() == wmax.tobytes()
    for j, w in enumerate(weights):  # and each cell is the exact sum of its rows
        cell = codes[0] * 4 + codes[1]
        for k in range(12):
            assert Fraction(float(whole[k, j])) == sum(
                (Fraction(float(v)) for v in w[cell == k]), Fraction(0))


def test_without_the_grid_a_split_changes_the_bits() -> None:
    """Why the grid is needed: plain doubles added in two parts are not the same sum."""
    y = np.array([1.0, 2.0**-53, 2.0**-53])
    whole, _ = histogram([np.zeros(3, np.int64)], (1,), [y])
    a, _ = histogram([np.zeros(1, np.int64)], (1,), [y[:1]])
    b, _ = histogram([np.zeros(2, np.int64)], (1,), [y[1:]])
    assert (a + b).tobytes() != whole.tobytes()
    g = on_grid(y)
    assert math.isclose(float(g.sum()), 1.0)
    whole, _ = histogram([np.zeros(3, np.int64)], (1,), [g])
    a, _ = histogram([np.zeros(1, np.int64)], (1,), [g[:1]])
    b, _ = histogram([np.zeros(2, np.int64)], (1,), [g[1:]])
    assert (a + b).tobytes() == whole.tobytes()


def test_a_target_that_is_not_finite_is_refused_naming_the_run() -> None:
    import pytest

    from alphatrace.errors import InputError
    from alphatrace.forensics.clusters import scan
    from alphatrace.forensics.config import ForensicsConfig

    y = np.array([1.0, -2.0, float("inf"), 3.0])
    with pytest.raises(InputError, match=r"run 'c'.*inf"):
        scan({"x": np.arange(4.0)}, ["x"], y, ["a", "b", "c", "d"], ForensicsConfig().clusters)
