"""Seeded runs with planted patterns, for tests and benchmarks (pure: arrays in, arrays out).

`runs()` plants a loss cluster of known predicates; `breaks()` plants a cost rise followed
by a PnL fall in one agent. `ledger_table()` shapes either as ledger rows to insert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

T0 = dt.datetime(2024, 1, 1)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet", "deepseek-chat")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
REGIMES = ("TRENDING", "RANGING", "HIGH_VOL")


@dataclass(frozen=True)
class Planted:
    """Runs with latency_ms > latency and tokens_in > tokens_in lose `mean_bps` on average."""

    latency: float = 912.0
    tokens_in: float = 2380.0
    mean_bps: float = -90.0


def runs(n: int, seed: int, planted: Planted | None = Planted(), base_bps: float = 8.0,
         sd_bps: float = 40.0, extra_numeric: int = 0) -> dict[str, Any]:
    """`n` runs of one agent, one per minute: features, `y` (bps) and `in_cluster`.

    latency ~ lognormal(median 700 ms, σ 0.3) and tokens_in ~ lognormal(median 1,900, σ 0.2)
    are independent, so the default cluster holds about 2.5% of runs.
    """
    rng = np.random.default_rng(seed)
    latency = np.round(700 * np.exp(rng.normal(0, 0.3, n)), 1)
    tokens_in = np.round(1900 * np.exp(rng.normal(0, 0.2, n))).astype(np.int64)
    tokens_out = np.round(420 * np.exp(rng.normal(0, 0.25, n))).astype(np.int64)
    cost = np.round((tokens_in * 2.5 + tokens_out * 10) / 1e6, 6)
    errors = (rng.random(n) < 0.03).astype(np.int64)
    score = np.round(rng.normal(0, 1, n), 3)
    cols: dict[str, Any] = {
        "run_id": np.array([f"r{i:07d}" for i in range(n)], dtype=object),
        "ts": np.array([T0 + dt.timedelta(minutes=i) for i in range(n)], dtype=object),
        "latency_ms": latency, "tokens_in": tokens_in, "tokens_out": tokens_out,
        "cost_usd": cost, "errors": errors, "score_final": score,
        "symbols": np.asarray(SYMBOLS, dtype=object)[rng.integers(0, len(SYMBOLS), n)],
        "direction": np.asarray(("LONG", "SHORT"), dtype=object)[rng.integers(0, 2, n)],
        "regime": np.asarray(REGIMES, dtype=object)[rng.integers(0, len(REGIMES), n)],
        "model": np.asarray(MODELS, dtype=object)[rng.integers(0, len(MODELS), n)],
        "hour": (np.arange(n) // 60) % 24,
    }
    for j in range(extra_numeric):
        cols[f"f{j}"] = np.round(rng.normal(0, 1, n), 3)
    y = rng.normal(base_bps, sd_bps, n)
    if planted is not None:
        inside = (latency > planted.latency) & (tokens_in > planted.tokens_in)
        y = np.where(inside, rng.normal(planted.mean_bps, sd_bps, n), y)
    else:
        inside = np.zeros(n, np.bool_)
    cols["y"] = np.round(y, 4)
    cols["in_cluster"] = inside
    return cols


def breaks(n: int, seed: int, cost_at: int, pnl_at: int, cost_ratio: float = 2.1,
           pnl_before: float = 12.0, pnl_after: float = -31.0, agent: str = "BreakAgent",
           pnl_sd: float = 40.0) -> dict[str, Any]:
    """One agent whose cost per run multiplies by `cost_ratio` from run `cost_at` (0-based)
    and whose PnL mean falls from `pnl_before` to `pnl_after` from run `pnl_at`."""
    rng = np.random.default_rng(seed)
    i = np.arange(n)
    cost = 0.004 * np.exp(rng.normal(0, 0.15, n)) * np.where(i >= cost_at, cost_ratio, 1.0)
    y = rng.normal(np.where(i >= pnl_at, pnl_after, pnl_before), pnl_sd)
    return {
        "run_id": np.array([f"{agent}-{k:05d}" for k in i], dtype=object),
        "agent": np.full(n, agent, dtype=object),
        "ts": np.array([T0 + dt.timedelta(hours=int(k)) for k in i], dtype=object),
        "latency_ms": np.round(600 * np.exp(rng.normal(0, 0.3, n)), 1),
        "tokens_in": np.round(1800 * np.exp(rng.normal(0, 0.1, n))).astype(np.int64),
        "tokens_out": np.round(400 * np.exp(rng.normal(0, 0.1, n))).astype(np.int64),
        "cost_usd": np.round(cost, 6), "errors": np.zeros(n, np.int64), "y": np.round(y, 4),
    }


def ledger_table(cols: dict[str, Any], agent: str = "SynthAgent",
                 size_usd: float = 10_000.0) -> pa.Table:
    """Realized ledger rows from `runs()`/`breaks()` columns (PnL reconciled, no gap)."""
    n = len(cols["run_id"])
    y = np.asarray(cols["y"], dtype=np.float64)
    cost = np.asarray(cols.get("cost_usd", np.zeros(n)), dtype=np.float64)
    pnl_usd = y * size_usd / 1e4

    def col(name: str, default: Any = None) -> Any:
        v = cols.get(name)
        return [default] * n if v is None else v.tolist() if hasattr(v, "tolist") else list(v)

    return pa.table({
        "run_id": col("run_id"), "agent": col("agent", agent), "strategy": col("strategy", "SYNTH"),
        "ts": pa.array(col("ts"), pa.timestamp("us")), "symbols": col("symbols", "BTCUSDT"),
        "direction": col("direction", "LONG"), "score_final": pa.array(col("score_final"), pa.float64()),
        "regime": pa.array(col("regime"), pa.string()),
        "latency_ms": pa.array(col("latency_ms"), pa.float64()),
        "tokens_in": pa.array(col("tokens_in"), pa.int64()),
        "tokens_out": pa.array(col("tokens_out"), pa.int64()),
        "cost_usd": cost, "errors": pa.array(col("errors", 0), pa.int64()),
        "model": pa.array(col("model"), pa.string()),
        "gross_bps": y + 10.0, "fee_bps": np.full(n, -10.0), "funding_bps": np.zeros(n),
        "paper_pnl_bps": y, "realized_pnl_bps": y, "pnl_source": ["reconciled"] * n,
        "size_usd": np.full(n, size_usd), "pnl_usd": pnl_usd, "net_usd": pnl_usd - cost,
        "net_bps": y - cost / size_usd * 1e4, "status": ["realized"] * n,
    })


def quantile_level(values: npt.ArrayLike, x: float) -> float:
    """Empirical CDF at x: where a threshold sits among the data, for 'within one step' checks."""
    v = np.asarray(values, dtype=np.float64)
    return float((v <= x).mean())
