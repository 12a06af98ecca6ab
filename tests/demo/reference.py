"""An independent, deliberately plain re-implementation of what the tests check the demo data
against: event parsing and the docs/architecture.md §Reconciliation paper PnL, one event at a time with `bisect`.

It shares no code with `alphatrace.demo` (which is vectorised numpy), so agreement between the
two is evidence, not a tautology.
"""

from __future__ import annotations

import bisect
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

FEE = 0.0005
HOUR_MS = 3_600_000


def ts_ms(v: Any) -> int:
    """ISO 8601 (Z or offset) or epoch seconds/milliseconds, to epoch ms."""
    if isinstance(v, int | float):
        return round(v if abs(v) >= 1e11 else v * 1000)
    t = dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    return round(t.timestamp() * 1000)


def horizon_ms(v: Any) -> int:
    if isinstance(v, int | float):
        return int(v * 1000)
    m = re.fullmatch(r"(\d+)([smhd])", v)
    assert m, v
    return int(m.group(1)) * {"s": 1000, "m": 60_000, "h": HOUR_MS, "d": 24 * HOUR_MS}[m.group(2)]


def full_symbol(s: str) -> str:
    return s if s.endswith("USDT") else s + "USDT"


def sign(direction: str) -> int:
    return {"LONG": 1, "SHORT": -1, "FLAT": 0}[direction.upper()]


@dataclass
class Series:
    ms: list[int]
    open: list[float]
    f_ms: list[int]
    f_rate: list[float]
    f_mark: list[float]


def series(bars: pa.Table, funding: pa.Table | None) -> dict[str, Series]:
    out: dict[str, Series] = {}
    rows = sorted(bars.select(["symbol", "ts", "open"]).to_pylist(), key=lambda r: (r["symbol"], r["ts"]))
    for r in rows:
        s = out.setdefault(r["symbol"], Series([], [], [], [], []))
        s.ms.append(int(r["ts"].replace(tzinfo=dt.UTC).timestamp() * 1000))
        s.open.append(r["open"])
    if funding is not None:
        frows = sorted(funding.to_pylist(), key=lambda r: (r["symbol"], r["ts"]))
        for r in frows:
            s = out[r["symbol"]]
            s.f_ms.append(int(r["ts"].replace(tzinfo=dt.UTC).timestamp() * 1000))
            s.f_rate.append(r["funding_rate"])
            s.f_mark.append(r["mark_price"])
    return out


def paper_bps(s: Series, signal_ms: int, hz_ms: int, d: int) -> float | None:
    """§4: entry/exit at bar opens, fees both sides, funding in (entry, exit]; None if open."""
    i = bisect.bisect_left(s.ms, signal_ms)
    if i >= len(s.ms) or d == 0:
        return None
    j = bisect.bisect_left(s.ms, s.ms[i] + hz_ms)
    if j >= len(s.ms):
        return None
    entry, exit_ = s.open[i], s.open[j]
    if d > 0:
        price = ((exit_ * (1 - FEE)) / (entry * (1 + FEE)) - 1) * 1e4
    else:
        price = (1 - (exit_ * (1 + FEE)) / (entry * (1 - FEE))) * 1e4
    funding = 0.0
    for t, rate, mark in zip(s.f_ms, s.f_rate, s.f_mark, strict=True):
        if s.ms[i] < t <= s.ms[j]:
            funding += -d * rate * mark / entry * 1e4
    return price + funding


def run_pnl(events: dict[str, list[dict[str, Any]]], mkts: dict[str, Series]) -> dict[str, float]:
    """Paper bps per run (size-weighted mean of its legs), runs with at least one closed leg."""
    legs: dict[str, list[tuple[float, float]]] = {}
    for e in events["alpha"]:
        d = sign(e["direction"])
        bps = paper_bps(mkts[full_symbol(e["symbol"])], ts_ms(e["ts"]), horizon_ms(e["horizon"]), d)
        if bps is not None:
            legs.setdefault(str(e["run_id"]), []).append((bps, float(e.get("size_usd", 10_000))))
    return {r: sum(b * w for b, w in v) / sum(w for _, w in v) for r, v in legs.items()}


def run_sums(events: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, float]]:
    """Per run: summed latency, tokens and cost over its telemetry records, and its agent."""
    out: dict[str, dict[str, Any]] = {}
    for e in events["telemetry"]:
        r = out.setdefault(str(e["run_id"]), {"latency_ms": 0.0, "tokens_in": 0, "cost_usd": 0.0,
                                              "agent": e["agent"], "ts": ts_ms(e["ts"]),
                                              "models": set()})
        r["latency_ms"] += e["latency_ms"]
        r["tokens_in"] += e["tokens_in"]
        r["cost_usd"] += e["cost_usd"]
        r["ts"] = min(r["ts"], ts_ms(e["ts"]))
        r["models"].add(e["model"])
    return out
