"""The realised-regime rule on constructed price paths, and declared-label families."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from alphatrace.forensics import regime as rg
from alphatrace.forensics.config import RegimeConfig

CFG = RegimeConfig()


def path(log_returns: list[float], p0: float = 100.0) -> list[float]:
    return (p0 * np.exp(np.concatenate([[0.0], np.cumsum(log_returns)]))).tolist()


def test_straight_line_is_a_trend() -> None:
    r = rg.read(path([0.01] * 8), CFG)
    assert r is not None
    assert r.efficiency_ratio == pytest.approx(1.0)
    assert r.er_normalised == pytest.approx(math.sqrt(8))  # ER·√n
    assert r.direction == "TREND"


def test_zigzag_is_mean_reverting() -> None:
    r = rg.read(path([0.01, -0.01] * 4), CFG)
    assert r is not None
    assert r.efficiency_ratio == pytest.approx(0.0, abs=1e-12)
    # every two-step sum is 0: the lag-2 variance ratio is 0
    assert r.variance_ratio == pytest.approx(0.0, abs=1e-12)
    assert r.direction == "MEAN_REVERT"


def test_path_back_to_start_without_reversals_is_not_called_mean_reverting() -> None:
    # up four, down four: ER = 0 but moves persist (VR > 1): neither trend nor mean reversion
    r = rg.read(path([0.01] * 4 + [-0.01] * 4), CFG)
    assert r is not None
    assert r.er_normalised == pytest.approx(0.0, abs=1e-12)
    # two-step sums: 0.02 ×3, 0, -0.02 ×3 → var 2.67e-4·(7/6)... against 2·var(r) = 2·1.14e-4
    assert r.variance_ratio is not None and r.variance_ratio > 1
    assert r.direction == "NEUTRAL"


def test_hand_computed_mixed_path() -> None:
    # returns +2, +1, -1, +2 (%): |Σ| = 4, Σ|r| = 6 → ER = 2/3, ER* = 2/3·2 = 1.33 → NEUTRAL
    r = rg.read(path([0.02, 0.01, -0.01, 0.02]), CFG)
    assert r is not None
    assert r.efficiency_ratio == pytest.approx(4 / 6)
    assert r.er_normalised == pytest.approx(4 / 6 * 2)
    assert r.direction == "NEUTRAL"


def test_too_short_a_window_is_not_judged() -> None:
    assert rg.read(path([0.01] * 3), CFG) is None  # min_steps = 4


def test_volatility_against_the_lookback() -> None:
    rng = np.random.default_rng(1)
    calm_lookback = path(rng.normal(0, 0.002, 100).tolist())
    wild = path([0.02, -0.015, 0.018, -0.02, 0.01, -0.012])
    r = rg.read(wild, CFG, calm_lookback)
    assert r is not None and r.vol_ratio is not None
    sd_w = np.std(np.diff(np.log(wild)), ddof=1)
    sd_l = np.std(np.diff(np.log(calm_lookback)), ddof=1)
    assert r.vol_ratio == pytest.approx(sd_w / sd_l)
    assert r.volatility == "VOLATILE"
    r2 = rg.read(path([0.0001, -0.0001] * 3), CFG, path(rng.normal(0, 0.01, 100).tolist()))
    assert r2 is not None and r2.volatility == "CALM"


def test_families_and_aliases() -> None:
    assert rg.family("TRENDING") == "TREND"
    assert rg.family("mean-revert") == "MEAN_REVERT"
    assert rg.family(" Ranging ") == "MEAN_REVERT"
    assert rg.family("HIGH_VOL") == "VOLATILE"
    assert rg.family("CARRY") is None and rg.family(None) is None
    assert rg.family("breakout-up", {"BREAKOUT_UP": "TREND"}) == "TREND"


def test_contradictions() -> None:
    trend = rg.read(path([0.01] * 8), CFG)
    zig = rg.read(path([0.01, -0.01] * 4), CFG)
    assert rg.contradiction("MEAN_REVERT", trend) == "TREND"
    assert rg.contradiction("TREND", zig) == "MEAN_REVERT"
    assert rg.contradiction("TREND", trend) is None
    assert rg.contradiction(None, trend) is None
    assert rg.contradiction("TREND", None) is None


# Real moves: no move, or at least 1e-6 (a tick); sub-1e-9 moves are float noise by definition.
moves = st.floats(-0.05, 0.05, allow_nan=False).map(lambda x: 0.0 if abs(x) < 1e-6 else x)


@settings(max_examples=100)
@given(st.lists(moves, min_size=4, max_size=60))
@example([0.0, 0.0, 0.0, 1e-12])  # float noise at one price level must not read as a trend
def test_er_bounds_and_scale_invariance(rets: list[float]) -> None:
    r1 = rg.read(path(rets), CFG)
    r2 = rg.read(path(rets, p0=3.7), CFG)  # same returns, other price level
    assert r1 is not None and r2 is not None
    assert 0.0 <= r1.efficiency_ratio <= 1.0 + 1e-12
    assert r1.direction == r2.direction
    assert r1.efficiency_ratio == pytest.approx(r2.efficiency_ratio, abs=1e-9)
