"""Cost from the price table: hand-computed figures, prefix matching, overrides, no double billing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.errors import InputError
from alphatrace.sdk.prices import ModelPrice, PriceTable, load_table, resolve_table, shipped_table


def test_shipped_table_is_versioned() -> None:
    t = shipped_table()
    assert t.version == "2025.06" and t.effective == "2025-06-10"
    assert t.models["gpt-4o"] == ModelPrice(input=2.50, output=10.00, cached_input=1.25)


def test_hand_computed_costs() -> None:
    t = shipped_table()
    # gpt-4o: 1830 in at $2.50/M + 421 out at $10/M = 0.004575 + 0.00421
    assert t.cost("gpt-4o", 1830, 421) == pytest.approx(0.008785, abs=1e-12)
    # 1000 of the 1830 prompt tokens cached at $1.25/M: 830·2.5e-6 + 1000·1.25e-6 + 421·1e-5
    assert t.cost("gpt-4o", 1830, 421, cached_tokens=1000) == pytest.approx(0.002075 + 0.00125 + 0.00421)
    # claude-sonnet-4: 10k in at $3/M, 2k out at $15/M = 0.03 + 0.03
    assert t.cost("claude-sonnet-4-20250514", 10_000, 2_000) == pytest.approx(0.06)


def test_prefix_matching_prefers_the_longest_name() -> None:
    t = shipped_table()
    assert t.price("gpt-4o-2024-08-06") == t.models["gpt-4o"]
    assert t.price("gpt-4o-mini-2024-07-18") == t.models["gpt-4o-mini"]
    assert t.price("gpt-x") is None and t.cost("gpt-x", 10, 10) is None
    assert t.price(None) is None and t.price("") is None


def test_overrides_merge_over_the_shipped_table(tmp_path: Path) -> None:
    t = resolve_table({"gpt-x": {"input": 1.0, "output": 2.0}})
    assert t.cost("gpt-x", 1_000_000, 500_000) == pytest.approx(1.0 + 1.0)
    assert t.models["gpt-x"].cached_input == 1.0  # defaults to the input price
    assert t.cost("gpt-4o", 1830, 421) == pytest.approx(0.008785)
    assert t.version == "2025.06+custom"
    f = tmp_path / "p.yaml"
    f.write_text("version: house-7\nmodels:\n  gpt-4o: {input: 1, output: 1, cached_input: 0}\n")
    t2 = resolve_table(f)
    assert t2.version == "2025.06+house-7"
    assert t2.cost("gpt-4o", 2_000_000, 1_000_000, cached_tokens=1_000_000) == pytest.approx(2.0)


def test_env_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("version: v9\nmodels:\n  m: {input: 3, output: 4}\n")
    monkeypatch.setenv("ALPHATRACE_PRICES", str(f))
    assert resolve_table(None).cost("m", 1_000_000, 0) == 3.0


@pytest.mark.parametrize("text,msg", [
    ("models: {m: {input: -1, output: 1}}", "must be a number >= 0"),
    ("models: {m: {input: 1}}", "needs `input` and `output`"),
    ("models: [1, 2]", "must be a mapping"),
    ("[", "not valid YAML"),
    ("per_tokens: 0\nmodels: {}", "per_tokens must be > 0"),
])
def test_bad_tables_name_the_problem(tmp_path: Path, text: str, msg: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(InputError, match=msg):
        load_table(f)


PRICE = st.floats(min_value=0, max_value=100, allow_nan=False)
TOKENS = st.integers(min_value=0, max_value=10_000_000)


@given(PRICE, PRICE, PRICE, TOKENS, TOKENS, st.integers(min_value=-5, max_value=20_000_000))
def test_cached_tokens_are_billed_once(inp: float, out: float, cached_rate: float,
                                       n_in: int, n_out: int, cached: int) -> None:
    t = PriceTable("v", "", {"m": ModelPrice(inp, out, cached_rate)})
    c = min(max(cached, 0), n_in)  # clamped: never negative, never more than the prompt
    expected = ((n_in - c) * inp + c * cached_rate + n_out * out) / 1e6
    got = t.cost("m", n_in, n_out, cached)
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-12)
    # Caching can only make a prompt cheaper when the cached rate is not above the input rate.
    if cached_rate <= inp:
        assert got <= t.cost("m", n_in, n_out, 0) + 1e-12  # type: ignore[operator]
