"""Cross-check against an independent engine: backtesting.py on the shared real BTC bars.

The same signals become market orders that backtesting.py fills at the same bars: an order
placed while bar k−1 is the last closed bar fills at the open of bar k, so a leg entering at
bar k is bought/sold at bar k−1 and closed at bar j−1 to exit at bar j's open. Funding is
excluded (backtesting.py has none).

Fee conversion (backtesting.py's own model, made explicit): with commission rate c it charges
c·|size|·price in cash at entry and again at exit, so a closed trade's `pl` is
size·(exit − entry) − c·|size|·(entry + exit). Dividing by the cash the trade committed,
|size|·entry·(1 + c) for a long and |size|·entry·(1 − c) for a short, gives
  long:  (exit·(1−c) − entry·(1+c)) / (entry·(1+c)) = exit·(1−c) / (entry·(1+c)) − 1
  short: (entry·(1−c) − exit·(1+c)) / (entry·(1−c)) = 1 − exit·(1+c) / (entry·(1−c))
which are docs/architecture.md §Reconciliation's freqtrade-style formulas with f = c. So bps = pl / committed · 1e4.
"""

from __future__ import annotations

import datetime as dt
import random
import warnings
from pathlib import Path

import pandas as pd
import pytest

from alphatrace.store import Store
from tests.ledger.helpers import add_alpha, run_reconcile

BTC_1H = "binance_BTCUSDT_perp_1h.parquet"
START, END = dt.datetime(2024, 1, 1), dt.datetime(2024, 7, 1)


def _signals(bars: pd.DataFrame, n: int, seed: int) -> list[tuple[dt.datetime, int, int]]:
    """Non-overlapping (ts, direction, horizon_s): minute offsets inside the hour, horizons that
    are not whole hours, some signals exactly on a bar open."""
    rng = random.Random(seed)
    out = []
    t = bars.index[5].to_pydatetime()
    last = bars.index[-40].to_pydatetime()
    while len(out) < n and t < last:
        minute = 0 if rng.random() < 0.2 else rng.randint(1, 59)
        ts = t.replace(minute=minute, second=rng.randint(0, 59) if minute else 0)
        horizon = rng.choice([5400, 4 * 3600 + 600, 8 * 3600, 13 * 3600 - 1])
        out.append((ts, rng.choice([1, -1]), horizon))
        t = ts + dt.timedelta(seconds=horizon + 3 * 3600)
    return out


def _backtest(bars: pd.DataFrame, plan: dict[int, list[tuple[str, int]]], commission: float
              ) -> list[tuple[pd.Timestamp, pd.Timestamp, float, float, float, int]]:
    from backtesting import Backtest, Strategy

    class Replay(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            pass

        def next(self) -> None:
            for action, d in plan.get(len(self.data) - 1, []):
                if action == "open":
                    (self.buy if d > 0 else self.sell)(size=1)
                else:
                    self.position.close()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bt = Backtest(bars, Replay, cash=10_000_000, commission=commission,
                      exclusive_orders=False, finalize_trades=False)
        stats = bt.run()
    return [(t.EntryTime, t.ExitTime, t.EntryPrice, t.ExitPrice, t.PnL, int(t.Size))
            for t in stats._trades.itertuples()]


@pytest.mark.parametrize("fee_bps", [0.0, 5.0, 12.5])
def test_per_trade_returns_match_backtesting_py(market_dir: Path, store: Store,
                                                fee_bps: float) -> None:
    path = str(market_dir / BTC_1H)
    store.con.execute(
        "INSERT INTO bars SELECT symbol, 3600, ts, open, high, low, close, volume "
        "FROM read_parquet(?) WHERE ts >= ? AND ts < ?", [path, START, END])
    bars = store.con.sql("SELECT ts, open AS Open, high AS High, low AS Low, close AS Close, "
                         "volume AS Volume FROM bars ORDER BY ts").df().set_index("ts")
    signals = _signals(bars, 250, seed=int(fee_bps * 10))
    ids = [add_alpha(store, f"r{i}", "BTC", "LONG" if d > 0 else "SHORT", ts, horizon_s=h)
           for i, (ts, d, h) in enumerate(signals)]
    run_reconcile(store, f"reconcile: {{fee_bps: {fee_bps}, include_funding: false}}")
    legs = {r[0]: r[1:] for r in store.con.execute(
        "SELECT event_id, entry_ts, exit_ts, entry_price, exit_price, paper_pnl_bps, status "
        "FROM legs").fetchall()}
    index = {ts.to_pydatetime(): i for i, ts in enumerate(bars.index)}
    plan: dict[int, list[tuple[str, int]]] = {}
    for eid, (_, d, _) in zip(ids, signals, strict=True):
        entry_ts, exit_ts, *_ , status = legs[eid]
        assert status == "realized"
        plan.setdefault(index[entry_ts] - 1, []).append(("open", d))
        plan.setdefault(index[exit_ts] - 1, []).append(("close", d))
    trades = _backtest(bars, plan, fee_bps / 1e4)
    assert len(trades) == len(signals)
    c = fee_bps / 1e4
    for eid, (ts, d, _), (t_in, t_out, p_in, p_out, pl, size) in zip(
            ids, signals, trades, strict=True):
        entry_ts, exit_ts, entry_price, exit_price, bps, _ = legs[eid]
        assert (t_in.to_pydatetime(), t_out.to_pydatetime()) == (entry_ts, exit_ts)
        assert (p_in, p_out, size) == (entry_price, exit_price, d)
        committed = abs(size) * p_in * (1 + c if size > 0 else 1 - c)
        assert abs(pl / committed * 1e4 - bps) < 1e-9, (ts, pl, bps)
