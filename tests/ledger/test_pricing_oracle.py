"""Property test: the relational pricing agrees with a brute-force oracle written in plain Python
(bisect over sorted bar times, a loop over settlements) on random markets: regular grids with
and without holes, off-grid timestamps and ticks (the ASOF path), funding on and off the hour,
missing mark prices, signals before, inside and after the data."""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.store import Store
from tests.ledger.helpers import T0, add_alpha, add_funding, add_ticks, long_bps, run_reconcile

US = 1_000_000


@dataclass
class Market:
    interval_s: int
    times: list[int]      # µs since T0, sorted
    opens: list[float]
    funding: list[tuple[int, float, float | None]]


@st.composite
def markets(draw: st.DrawFn) -> Market:
    interval_s = draw(st.sampled_from([0, 60, 900, 3600]))
    n = draw(st.integers(3, 60))
    if interval_s == 0:  # ticks: strictly increasing, irregular
        steps = draw(st.lists(st.integers(1, 5_000), min_size=n, max_size=n))
        times = [sum(steps[: i + 1]) * US for i in range(n)]
    else:
        keep = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        off_grid = draw(st.booleans()) and draw(st.booleans())  # 1 in 4: jittered times
        times = []
        for i, k in enumerate(keep):
            if k or i == 0:
                jitter = draw(st.integers(1, interval_s - 1)) * US if off_grid and i % 3 == 1 else 0
                times.append(i * interval_s * US + jitter)
    opens = draw(st.lists(st.floats(50, 150, allow_nan=False), min_size=len(times),
                          max_size=len(times)))
    span_h = times[-1] // (3600 * US) + 2
    on_hour = draw(st.booleans())
    fund = []
    for h in sorted(set(draw(st.lists(st.integers(0, span_h), max_size=8)))):
        t = h * 3600 * US + (0 if on_hour else draw(st.integers(1, 3599)) * US)
        mark = draw(st.one_of(st.none(), st.floats(50, 150)))
        fund.append((t, draw(st.floats(-0.001, 0.001)), mark))
    return Market(interval_s, times, opens, fund)


def oracle(m: Market, t: int, d: int, horizon_us: int, f: float) -> tuple[str, tuple[float, ...]]:
    iv = m.interval_s * US
    # the entry bar is unknown when the signal is a whole bar (ticks: any time) before the data
    if (t <= m.times[0] - iv) if iv else (t < m.times[0]):
        return "unpriced", ()
    i = bisect.bisect_left(m.times, t)
    if i == len(m.times):
        return "open", ()
    j = bisect.bisect_left(m.times, m.times[i] + horizon_us)
    if j == len(m.times):
        return "open", (m.times[i], m.opens[i])
    entry, exit_ = m.opens[i], m.opens[j]
    paid = 0.0
    for ts, rate, mark in m.funding:
        if m.times[i] < ts <= m.times[j]:
            if mark is None:
                mark = m.opens[bisect.bisect_left(m.times, ts)]
            paid += rate * mark
    price = long_bps(entry, exit_, f) if d == 1 else (
        1 - (exit_ * (1 + f)) / (entry * (1 - f))) * 1e4
    return "realized", (m.times[i], entry, m.times[j], exit_, price - d * paid / entry * 1e4)


def ts(us: int) -> dt.datetime:
    return T0 + dt.timedelta(microseconds=us)


@pytest.mark.slow
@settings(max_examples=40)
@given(m=markets(), data=st.data())
def test_pricing_matches_the_oracle(m: Market, data: st.DataObject) -> None:
    span = m.times[-1]
    iv = max(m.interval_s, 60) * US
    edges = [m.times[0] - m.interval_s * US + k for k in (-1, 0, 1)]  # one bar before the data
    signals = data.draw(st.lists(st.tuples(
        st.one_of(st.integers(-3 * iv, span + 2 * iv), st.sampled_from(edges)),
        st.sampled_from([1, -1]),
        st.integers(1, 20 * iv // US),
    ), min_size=1, max_size=12))
    with Store(":memory:") as store:
        add_ticks(store, "XYZUSDT", [(ts(t), o) for t, o in zip(m.times, m.opens, strict=True)],
                  interval_s=m.interval_s)
        add_funding(store, "XYZUSDT", [(ts(t), r, mk) for t, r, mk in m.funding])
        ids = [add_alpha(store, f"r{k}", "XYZ", "LONG" if d == 1 else "SHORT",
                         ts(t), horizon_s=h) for k, (t, d, h) in enumerate(signals)]
        run_reconcile(store)
        for eid, (t, d, h) in zip(ids, signals, strict=True):
            got = store.con.execute(
                "SELECT status, epoch_us(entry_ts) - epoch_us(?::TIMESTAMP), entry_price, "
                "epoch_us(exit_ts) - epoch_us(?::TIMESTAMP), exit_price, paper_pnl_bps "
                "FROM legs WHERE event_id = ?", [T0, T0, eid]).fetchall()[0]
            status, want = oracle(m, t, d, h * US, 5 / 1e4)
            assert got[0] == status, (got, status, want)
            if status == "open" and want:
                assert (got[1], got[2]) == want
            if status == "realized":
                assert got[1:5] == want[:4]
                assert abs(got[5] - want[4]) < 1e-9
