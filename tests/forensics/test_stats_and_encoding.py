"""Welch and BH from sums against scipy; predicates from bin codes against raw comparisons;
slice statistics from histogram contractions against direct masks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from alphatrace.forensics.slices import (
    Categorical,
    Predicate,
    SearchParams,
    categorical_feature,
    numeric_feature,
    search,
    slice_mask,
)
from alphatrace.forensics.stats import bh_qvalues, welch_from_sums, welch_samples
from alphatrace.forensics.text import num, qvalue, round_sig, signed, usd

finite = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@settings(max_examples=80)
@given(st.lists(finite, min_size=2, max_size=40), st.lists(finite, min_size=2, max_size=40),
       st.sampled_from(["less", "greater", "two-sided"]))
def test_welch_from_sums_matches_scipy(a: list[float], b: list[float], alt: str) -> None:
    x, y = np.asarray(a), np.asarray(b)
    scale = max(1.0, float(np.abs(np.concatenate([x, y])).max()))
    if np.std(x) < 1e-6 * scale or np.std(y) < 1e-6 * scale:
        return  # (near-)constant sides: scipy loses precision or returns nan; tested below
    ref = sps.ttest_ind(x, y, equal_var=False, alternative=alt).pvalue
    c = np.concatenate([x, y]).mean()
    xc, yc = x - c, y - c
    _, p = welch_from_sums(x.size, xc.sum(), (xc * xc).sum(), y.size, yc.sum(), (yc * yc).sum(), alt)
    assert float(p) == pytest.approx(ref, rel=1e-6, abs=1e-9)


def test_welch_degenerate_cases() -> None:
    # one value on a side cannot be tested
    assert welch_samples([1.0], [2.0, 3.0]) == 1.0
    # two constant sides: decided by the means
    assert welch_samples([1.0, 1.0, 1.0], [5.0, 5.0]) == 0.0
    assert welch_samples([5.0, 5.0], [1.0, 1.0]) == 1.0


@settings(max_examples=60)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=200))
def test_bh_matches_scipy(p: list[float]) -> None:
    assert bh_qvalues(p) == pytest.approx(sps.false_discovery_control(p), abs=1e-12)


def test_bh_hand_example() -> None:
    # m = 4, sorted p: .01 .02 .03 .5 → p·m/rank = .04 .04 .04 .5 (running minimum from the top)
    assert bh_qvalues([0.5, 0.01, 0.03, 0.02]).tolist() == pytest.approx([0.5, 0.04, 0.04, 0.04])


@settings(max_examples=60)
@given(st.lists(st.one_of(st.floats(-50, 3000, allow_nan=False), st.just(float("nan"))),
                min_size=5, max_size=120),
       st.lists(st.floats(0.01, 0.99), min_size=1, max_size=8))
def test_numeric_codes_agree_with_raw_thresholds(values: list[float], qs: list[float]) -> None:
    x = np.asarray(values)
    f = numeric_feature("x", x, sorted(set(qs)))
    if f is None:
        return
    for j, pred in enumerate(f.predicates):
        from_codes = f.masks[j][f.codes]
        assert np.array_equal(from_codes, pred.mask(x)), pred.text
        # the shown value is the real cut: 3 significant digits
        assert pred.value == round_sig(float(pred.value))


def test_numeric_feature_hand_example() -> None:
    x = np.array([100.0, 200, 300, 400, np.nan, 500])
    f = numeric_feature("latency_ms", x, [0.5])  # median of the finite values = 300
    assert f is not None
    assert [p.text for p in f.predicates] == ["latency_ms > 300", "latency_ms <= 300"]
    assert f.masks[0][f.codes].tolist() == [False, False, False, True, False, True]
    assert f.masks[1][f.codes].tolist() == [True, True, True, False, False, False]


def test_categorical_feature_support_and_missing() -> None:
    vals = ["a"] * 5 + ["b"] * 2 + [None] * 3 + ["c"] * 4
    f = categorical_feature("model", vals, min_support=3)
    assert f is not None
    assert [p.text for p in f.predicates] == ["model = a", "model = c"]  # b is too rare
    assert f.masks[0][f.codes].sum() == 5 and f.masks[1][f.codes].sum() == 4
    cat = Categorical.from_values(vals)
    assert Predicate("model", "==", "b").mask(cat).sum() == 2
    assert Predicate("model", "==", "zzz").mask(cat).sum() == 0


@settings(max_examples=25)
@given(st.integers(0, 10_000))
def test_slice_statistics_equal_direct_computation(seed: int) -> None:
    """Every evaluated slice's size, Σe, max e, Σy, Σy² from the histogram contractions equal
    the same sums over the slice's rows."""
    rng = np.random.default_rng(seed)
    n = 300
    y = rng.normal(0, 30, n)
    e = np.maximum(0, -y)
    feats = [
        numeric_feature("a", rng.normal(size=n), [0.25, 0.5, 0.75]),
        numeric_feature("b", np.where(rng.random(n) < 0.1, np.nan, rng.exponential(size=n)), [0.3, 0.6]),
        categorical_feature("c", rng.choice(["x", "y", "z"], n).tolist(), 5),
    ]
    assert all(f is not None for f in feats)
    t = search([f for f in feats if f is not None], e, SearchParams(alpha=0.9, k=1000, max_level=3,
                                                                    min_support=5), y=y)
    fs = [f for f in feats if f is not None]
    for i in rng.choice(len(t), size=min(40, len(t)), replace=False).tolist():
        m = slice_mask(fs, t.feats[i].tolist(), t.preds[i].tolist())
        assert t.size[i] == m.sum()
        assert t.err[i] == pytest.approx(e[m].sum())
        assert t.err_max[i] == pytest.approx(e[m].max() if m.any() else 0.0)
        assert t.y_sum[i] == pytest.approx(y[m].sum())
        assert t.y_sq[i] == pytest.approx((y[m] ** 2).sum())


def test_text_formats() -> None:
    assert num(912.0) == "912" and num(2380) == "2,380" and num(0.00698) == "0.00698"
    assert signed(-90.4) == "−90" and signed(8.2) == "+8" and signed(0.2) == "0"
    assert qvalue(1e-9) == "1e-9" and qvalue(0.0123) == "0.012"
    assert round_sig(2383.0) == 2380.0 and round_sig(0.012345) == 0.0123
    assert usd(-40.5) == "−$40.50" and usd(0.00323) == "$0.0032" and usd(1234.5) == "$1,234.50"
