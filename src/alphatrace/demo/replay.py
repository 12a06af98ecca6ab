"""What `alphatrace demo --live` sends, in which order, and what its closing table says.

Pure functions over plain rows, so the order of the replay and the arithmetic of the table are
tested without a server.

Each item is sent at the market time it became known:
- a bar when it closes (open time + interval): a price recorder has a bar whole only then;
- a funding settlement at its time;
- an event (telemetry, alpha, pnl) at its `ts`.
The replay clock advances in steps (`next_tick`); a step sends what became known within it,
one request per route (and bar interval), funding first, then bars, then events, each in
time order. Steps never
overlap, so nothing is sent before an item known earlier in a previous step.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alphatrace.parse import parse_time

DAY_MS = 86_400_000
BARS, FUNDING, EVENTS = "/v1/market/bars", "/v1/market/funding", "/v1/events"
ROUTE_ORDER = {FUNDING: 0, BARS: 1, EVENTS: 2}
MAX_BATCH = 2000  # items per request: far under the collector's 5 MB body limit


@dataclass(frozen=True)
class Item:
    at_ms: int  # market time it became known (epoch ms, UTC)
    route: str
    body: dict[str, Any]
    query: str = ""  # e.g. `?interval=3600s`: a single bar's interval for the collector

    @property
    def path(self) -> str:
        return self.route + self.query


@dataclass
class Tick:
    """One step of the replay clock: (start_ms, end_ms] and the requests (path, rows) it
    sends."""

    start_ms: int
    end_ms: int
    requests: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)


def epoch_ms(t: Any) -> int:
    """A time as the collector reads it (ISO text, epoch s or ms, datetime) in epoch ms."""
    return int(parse_time(t).timestamp() * 1000)


def iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def bar_items(rows: Iterable[Mapping[str, Any]]) -> list[Item]:
    """Rows with symbol, ts (open time), open, high, low, close, volume, interval_s."""
    out = []
    for r in rows:
        t = epoch_ms(r["ts"])
        body = {"symbol": r["symbol"], "ts": iso(t), "open": r["open"], "high": r["high"],
                "low": r["low"], "close": r["close"], "volume": r.get("volume")}
        iv = int(r["interval_s"])
        out.append(Item(t + iv * 1000, BARS, body, f"?interval={iv}s"))
    return out


def funding_items(rows: Iterable[Mapping[str, Any]]) -> list[Item]:
    """Rows with symbol, ts, funding_rate, mark_price."""
    out = []
    for r in rows:
        t = epoch_ms(r["ts"])
        body = {"symbol": r["symbol"], "ts": iso(t), "funding_rate": r["funding_rate"],
                "mark_price": r.get("mark_price")}
        out.append(Item(t, FUNDING, body))
    return out


def event_items(events: Iterable[Mapping[str, Any]]) -> list[Item]:
    return [Item(epoch_ms(e["ts"]), EVENTS, dict(e)) for e in events]


def timeline(*parts: Sequence[Item]) -> list[Item]:
    """Every item in the order it became known (ties: funding, bars, events; then as given)."""
    items = [it for part in parts for it in part]
    order = sorted(range(len(items)), key=lambda i: (items[i].at_ms, ROUTE_ORDER[items[i].route], i))
    return [items[i] for i in order]


def next_tick(items: Sequence[Item], i: int, start_ms: int, end_ms: int) -> tuple[Tick, int]:
    """The step (start_ms, end_ms] from `items[i]` on: its requests, and the index after it.
    `items` must be in `timeline` order and `items[i:]` known after start_ms."""
    j = i
    while j < len(items) and items[j].at_ms <= end_ms:
        j += 1
    tick = Tick(start_ms, end_ms)
    step = items[i:j]
    for route in sorted(ROUTE_ORDER, key=ROUTE_ORDER.__getitem__):
        for path in sorted({it.path for it in step if it.route == route}):
            bodies = [it.body for it in step if it.path == path]
            for b in range(0, len(bodies), MAX_BATCH):
                tick.requests.append((path, bodies[b : b + MAX_BATCH]))
    return tick, j


def ticks(items: Sequence[Item], step_ms: int) -> Iterator[Tick]:
    """The timeline in clock steps of `step_ms`, starting just before the first item; steps
    with nothing to send are skipped. `items` must be in `timeline` order."""
    if step_ms <= 0:
        raise ValueError("step_ms must be positive")
    if not items:
        return
    start = items[0].at_ms - 1
    i = 0
    while i < len(items):
        k = (items[i].at_ms - start - 1) // step_ms  # the step holding the next item
        tick, i = next_tick(items, i, start + k * step_ms, start + (k + 1) * step_ms)
        yield tick


# -- when a decision's evidence was sent ----------------------------------------------------

def knowledge_times(route: str, bodies: Iterable[Mapping[str, Any]]) -> list[int]:
    """The knowledge times (epoch ms) one request of the replay carries: what makes a run's PnL
    known (docs/governance.md §Knowledge time), so a decision whose `as_of` is one of them was
    made on this request's data. A reconciled run is known at its exit bar's open time (the
    bar's `ts`; the replay sends the bar when it closes); an external PnL figure at its pnl
    event's `ts`; an all-FLAT run at its signal's `ts`. Funding and telemetry carry none."""
    if route == BARS:
        return [epoch_ms(b["ts"]) for b in bodies]
    if route == EVENTS:
        return [epoch_ms(e["ts"]) for e in bodies if is_pnl(e) or is_flat(e)]
    return []


def is_pnl(event: Mapping[str, Any]) -> bool:
    """A pnl event: typed so, or untyped with the pnl marker field (the seed's bare shape)."""
    kind = event.get("type")
    return kind == "pnl" if kind is not None else "realized_pnl_bps" in event


def is_flat(event: Mapping[str, Any]) -> bool:
    """A FLAT signal (typed alpha or signal, or untyped with a direction)."""
    kind = event.get("type")
    alpha = kind in ("alpha", "signal") if kind is not None else "direction" in event
    return alpha and str(event.get("direction", "")).strip().upper() == "FLAT"


# -- the closing table ---------------------------------------------------------------------

@dataclass(frozen=True)
class Run:
    run_id: str
    agent: str | None
    strategy: str | None
    ts: dt.datetime  # signal time (naive UTC)
    net_usd: float | None
    index: int  # position among its agent's runs by (ts, run_id), 0-based


def of_subject(runs: Sequence[Run], scope: str, subject: str) -> list[Run]:
    key = "agent" if scope == "agent" else "strategy"
    return [r for r in runs if getattr(r, key) == subject]


def fired_at(rec: Mapping[str, Any], by_id: Mapping[str, Run]) -> Run | None:
    """The newest run (by signal time) of the decision's window: the run at which it fired."""
    known = [by_id[str(r)] for r in rec.get("run_ids") or [] if str(r) in by_id]
    return max(known, key=lambda r: (r.ts, r.run_id)) if known else None


def as_of_time(rec: Mapping[str, Any]) -> dt.datetime | None:
    t = rec.get("as_of")
    return None if t is None else parse_time(t).replace(tzinfo=None)


def after(runs: Sequence[Run], t: dt.datetime) -> tuple[int, float]:
    """(runs signalled after t, their summed net PnL in USD)."""
    later = [r for r in runs if r.ts > t]
    return len(later), sum((r.net_usd or 0.0 for r in later), 0.0)


def first_kills(records: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """Each subject's first kill record, by (scope, subject)."""
    out: dict[tuple[str, str], Mapping[str, Any]] = {}
    for rec in records:
        if rec.get("action") == "kill":
            out.setdefault((str(rec["scope"]), str(rec["subject"])), rec)
    return out


def kill_table(live: Iterable[Mapping[str, Any]], batch: Iterable[Mapping[str, Any]],
               runs: Sequence[Run]) -> list[dict[str, Any]]:
    """Per subject killed live or by the batch evaluation: when, at which run, and the PnL its
    runs made after each kill (after the live kill: what the loop kept it from; negative is a
    loss avoided)."""
    lk, bk = first_kills(live), first_kills(batch)
    by_id = {r.run_id: r for r in runs}
    rows = []
    for key in sorted(set(lk) | set(bk)):
        scope, subject = key
        mine = of_subject(runs, scope, subject)
        row: dict[str, Any] = {"scope": scope, "subject": subject}
        for label, recs in (("live", lk), ("batch", bk)):
            rec = recs.get(key)
            t = as_of_time(rec) if rec is not None else None
            run = fired_at(rec, by_id) if rec is not None else None
            n, pnl = after(mine, t) if t is not None else (None, None)  # not killed: no "after"
            row[f"{label}_killed_at"] = None if t is None else t.isoformat(timespec="seconds")
            row[f"{label}_rule"] = None if rec is None else rec.get("rule")
            row[f"{label}_run"] = None if run is None else run.run_id
            row[f"{label}_run_index"] = None if run is None else run.index
            row[f"{label}_runs_after"] = n
            row[f"{label}_pnl_after_usd"] = None if pnl is None else round(pnl, 2)
        rows.append(row)
    return rows
