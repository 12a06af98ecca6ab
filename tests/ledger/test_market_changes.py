"""`ledger.market_changes.classify` against the SQL that classified the market before it
(reconcile's `_MARKET_CHANGES` until 2026-12-07), run by DuckDB over the same rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.ledger.market_changes import APPENDED, CHANGED, SAME, classify

# the oracle: the CTEs reconcile planned twice a pass, verbatim but for the table names
_ORACLE = """
WITH bars_change AS (
  SELECT coalesce(m.symbol, s.symbol) AS symbol, m.last_us,
    CASE WHEN m.symbol IS NULL AND s.interval_s IS NULL THEN 'same'
         WHEN m.symbol IS NULL OR s.interval_s IS NULL OR m.interval_s <> s.interval_s
           THEN 'changed'
         WHEN m.n = s.bars_n AND m.digest = s.bars_digest THEN 'same'
         WHEN p.prefix_n = s.bars_n AND p.prefix_digest = s.bars_digest THEN 'appended'
         ELSE 'changed' END AS kind
  FROM (SELECT * FROM profile WHERE chosen) m
  FULL JOIN state s ON s.symbol = m.symbol
  LEFT JOIN profile p ON p.symbol = m.symbol AND p.interval_s = m.interval_s
),
funding_change AS (
  SELECT coalesce(f.symbol, s.symbol) AS symbol, s.funding_last AS watermark,
    CASE WHEN f.symbol IS NULL AND coalesce(s.funding_n, 0) = 0 THEN 'same'
         WHEN f.symbol IS NULL THEN 'changed'
         WHEN coalesce(s.funding_n, 0) = 0 THEN 'appended'
         WHEN f.n = s.funding_n AND f.digest = s.funding_digest THEN 'same'
         WHEN f.prefix_n = s.funding_n AND f.prefix_digest = s.funding_digest THEN 'appended'
         ELSE 'changed' END AS kind
  FROM fprofile f FULL JOIN state s ON s.symbol = f.symbol
)
SELECT 'bars' AS side, symbol, kind, last_us, NULL::TIMESTAMP AS watermark FROM bars_change
UNION ALL
SELECT 'funding', symbol, kind, NULL, watermark FROM funding_change"""

SYMBOLS = ["A", "B", "C", "D"]
small = st.integers(0, 2)
maybe = st.one_of(st.none(), small)
times = st.one_of(st.none(), st.integers(0, 3).map(
    lambda h: dt.datetime(2025, 1, 1) + dt.timedelta(hours=h)))


@st.composite
def markets(draw: st.DrawFn) -> tuple[dict[str, list[Any]], dict[str, list[Any]],
                                      list[tuple[Any, ...]]]:
    profile: dict[str, list[Any]] = {c: [] for c in (
        "symbol", "interval_s", "n", "digest", "last_us", "prefix_n", "prefix_digest",
        "chosen")}
    for sym in draw(st.lists(st.sampled_from(SYMBOLS), unique=True)):
        intervals = draw(st.lists(st.sampled_from([60, 3600]), min_size=1, max_size=2,
                                  unique=True))
        pick = draw(st.sampled_from(intervals))
        for iv in intervals:
            for c, v in zip(profile, (sym, iv, draw(small), draw(small), draw(small),
                                      draw(maybe), draw(maybe), iv == pick), strict=True):
                profile[c].append(v)
    fprofile: dict[str, list[Any]] = {c: [] for c in (
        "symbol", "n", "digest", "prefix_n", "prefix_digest")}
    for sym in draw(st.lists(st.sampled_from(SYMBOLS), unique=True)):
        for c, v in zip(fprofile, (sym, draw(small), draw(small), draw(maybe), draw(maybe)),
                        strict=True):
            fprofile[c].append(v)
    state = [(sym, draw(st.one_of(st.none(), st.sampled_from([60, 3600]))), draw(maybe),
              draw(times), draw(maybe), draw(maybe), draw(times), draw(maybe))
             for sym in draw(st.lists(st.sampled_from(SYMBOLS), unique=True))]
    return profile, fprofile, state


def _oracle(profile: dict[str, list[Any]], fprofile: dict[str, list[Any]],
            state: list[tuple[Any, ...]]) -> dict[tuple[str, str], tuple[Any, ...]]:
    con = duckdb.connect()
    con.register("profile", pa.table({
        **{c: pa.array(v, pa.string() if c == "symbol" else pa.bool_() if c == "chosen"
                       else pa.int64()) for c, v in profile.items()}}))
    con.register("fprofile", pa.table({c: pa.array(v, pa.string() if c == "symbol"
                                                   else pa.int64())
                                       for c, v in fprofile.items()}))
    cols = list(zip(*state, strict=True)) if state else [[]] * 8
    con.register("state", pa.table({
        "symbol": pa.array(cols[0], pa.string()), "interval_s": pa.array(cols[1], pa.int32()),
        "bars_n": pa.array(cols[2], pa.int64()), "bars_last": pa.array(cols[3], pa.timestamp("us")),
        "bars_digest": pa.array(cols[4], pa.uint64()), "funding_n": pa.array(cols[5], pa.int64()),
        "funding_last": pa.array(cols[6], pa.timestamp("us")),
        "funding_digest": pa.array(cols[7], pa.uint64())}))
    return {(side, sym): (kind, last_us, watermark)
            for side, sym, kind, last_us, watermark in con.execute(_ORACLE).fetchall()}


@settings(max_examples=400)
@given(markets())
def test_classify_matches_the_sql_it_replaced(market: tuple[Any, Any, Any]) -> None:
    profile, fprofile, state = market
    got = classify(profile, fprofile, state)
    want = _oracle(profile, fprofile, state)
    # a symbol the SQL gave no row on a side joins no row there: NULL kind, which no
    # condition of a stale leg matches, as `same` matches none
    for c in got.rows:
        bars = want.get(("bars", c.symbol), (SAME, None, None))
        funding = want.get(("funding", c.symbol), (SAME, None, None))
        assert (c.bars, c.last_us) == bars[:2]
        assert c.funding == funding[0]
        if ("funding", c.symbol) in want:
            assert c.watermark == funding[2]
    assert {c.symbol for c in got.rows} >= {sym for _, sym in want}
    # what the `moved` statement read from the same CTEs
    kinds = [(side, sym, k[0]) for (side, sym), k in want.items()]
    assert got.moved == any((side == "bars" and k == CHANGED) or (side == "funding" and k != SAME)
                            for side, _, k in kinds)
    assert got.symbols == sorted({sym for side, sym, k in kinds
                                  if (side == "bars" and k == CHANGED)
                                  or (side == "funding" and k != SAME)})
    assert got.touched == sorted({sym for _, sym, k in kinds if k != SAME})


def test_an_appended_series_and_new_funding_by_hand() -> None:
    """BTC's recorded 10 bars are the prefix of its 12 now; ETH's interval changed; SOL's
    funding is new (none recorded); XRP is gone from the market."""
    t = dt.datetime(2025, 1, 1)
    profile = {"symbol": ["BTC", "ETH", "ETH"], "interval_s": [60, 60, 3600],
               "n": [12, 5, 3], "digest": [7, 1, 2], "last_us": [720, 300, 400],
               "prefix_n": [10, 5, 0], "prefix_digest": [9, 1, None],
               "chosen": [True, False, True]}
    fprofile = {"symbol": ["SOL"], "n": [2], "digest": [4], "prefix_n": [0],
                "prefix_digest": [None]}
    state = [("BTC", 60, 10, t, 9, None, None, None), ("ETH", 60, 5, t, 1, None, None, None),
             ("XRP", 60, 3, t, 3, 1, t, 5)]
    got = {c.symbol: (c.bars, c.last_us, c.funding, c.watermark)
           for c in classify(profile, fprofile, state).rows}
    assert got == {"BTC": (APPENDED, 720, SAME, None), "ETH": (CHANGED, 400, SAME, None),
                   "SOL": (SAME, None, APPENDED, None), "XRP": (CHANGED, None, CHANGED, t)}
