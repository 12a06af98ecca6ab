"""A seeded simulator of trading-agent runs over real bars: telemetry, signals, external PnL.

Pure: bars (and optionally funding) in, events and the planted truth out; nothing touches the
store. Each agent trades a simple real strategy of its class on the actual prices (momentum:
sign of the past 24h return; mean-revert: the opposite; funding: against crowded funding), and
with probability `skill` the realised move instead, so some agents make money and some lose
for reasons the data can show. Two stories are planted for forensics to rediscover:

- a loss cluster: `MeanReversionAgent` trades against the move when a run is slow over a long
  prompt (latency_ms > 800 and tokens_in > 2200);
- a cost-then-performance break: `BreakoutMomentumAgent` switches to a model with twice the
  token prices at run k, and its signal turns against the market ~100 runs later.

Every random draw comes from `numpy.random.default_rng([seed, agent_index])`, so the output is
byte-identical for a seed and one agent's draws never shift another's.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from alphatrace.demo import agents as cast
from alphatrace.demo.agents import AGENTS, MODELS, Agent, TsStyle
from alphatrace.demo.badlines import corrupt
from alphatrace.demo.market import DAY_MS, LOOKBACK_BARS_S, Market, markets
from alphatrace.demo.paper import F64, I64, legs
from alphatrace.demo.truth import LossCluster, QualityBreak, Truth
from alphatrace.errors import InputError

FILES = ("telemetry.jsonl", "alpha.jsonl", "pnl.jsonl")
KIND_FILE = {"telemetry": "telemetry.jsonl", "alpha": "alpha.jsonl", "pnl": "pnl.jsonl"}

WARMUP_MS = 3 * DAY_MS  # history strategies need before the first signal
QUIET_END_MS = 2 * DAY_MS  # no signals in the last days, so most legs close
EXTERNAL_SHARE = 0.15
BREAK_SKILL_AFTER = -0.25
DUPLICATES = 3
EPOCH = dt.datetime(1970, 1, 1)


@dataclass
class _Event:
    ms: int
    run_id: str
    seq: int
    kind: str
    body: dict[str, Any]


@dataclass
class _AgentOut:
    events: list[_Event] = field(default_factory=list)
    run_ids: list[str] = field(default_factory=list)
    run_ms: list[int] = field(default_factory=list)
    cluster_run_ids: list[str] = field(default_factory=list)
    external_runs: int = 0
    no_signal_runs: int = 0


@dataclass(frozen=True)
class DemoEvents:
    """The simulated input: valid events per kind, the file lines (with the bad lines and
    retried duplicates mixed in), and what was planted."""

    events: dict[str, list[dict[str, Any]]]
    lines: dict[str, list[str]]
    truth: Truth

    def write_jsonl(self, directory: str | Path) -> list[Path]:
        """One file per kind; bytes depend only on the seed and the bars."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        out = []
        for name in FILES:
            p = d / name
            p.write_bytes(("".join(line + "\n" for line in self.lines[name])).encode("utf-8"))
            out.append(p)
        return out


def fmt_ts(ms: int, style: TsStyle) -> str | int | float:
    if style == "epoch_ms":
        return int(ms)
    if style == "epoch_s":
        return round(ms / 1000, 3)
    t = EPOCH + dt.timedelta(milliseconds=int(ms))
    text = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}"
    return text + ("Z" if style == "iso_z" else "+00:00")


def _run_ids(agent: Agent, rng: np.random.Generator, start_ms: I64) -> list[Any]:
    n = len(start_ms)
    if agent.run_id_style == "uuid":
        raw = rng.bytes(16 * n)
        return [str(uuid.UUID(bytes=raw[16 * i : 16 * i + 16], version=4)) for i in range(n)]
    if agent.run_id_style == "int":
        return [10_000_000 + i for i in range(n)]
    days = [(EPOCH + dt.timedelta(milliseconds=int(m))).strftime("%Y%m%d") for m in start_ms]
    return [f"{agent.run_id_prefix}{d}-{i:05d}" for i, d in enumerate(days)]


def _direction_text(d: int, case: str) -> str:
    word = {1: "LONG", -1: "SHORT", 0: "FLAT"}[d]
    return word.lower() if case == "lower" else word.title() if case == "title" else word


def _horizon_ms(text: str) -> int:
    units = {"m": 60_000, "h": 3_600_000, "d": DAY_MS}
    return int(text[:-1]) * units[text[-1]]


def _symbol_text(symbol: str, bare: bool) -> str:
    return symbol.removesuffix("USDT") if bare else symbol


def _regime(m: Market, t_ms: I64, vol_hi: float) -> list[str]:
    r = m.past_return(t_ms, LOOKBACK_BARS_S * 1000)
    v = m.past_vol(t_ms, LOOKBACK_BARS_S * 1000)
    return [
        "HIGH_VOL" if vi > vol_hi else "TRENDING" if abs(ri) > 0.015 else "RANGING"
        for ri, vi in zip(r.tolist(), v.tolist(), strict=True)
    ]


def _rule(agent: Agent, m: Market, t_ms: I64) -> I64:
    """The class's textbook signal from data closed before t (+1 LONG, −1 SHORT)."""
    if agent.strategy == "FUNDING":
        s = -np.sign(m.funding_signal(t_ms))  # crowded longs (high funding): go short
    else:
        r = np.sign(m.past_return(t_ms, LOOKBACK_BARS_S * 1000))
        s = r if agent.strategy == "MOMENTUM" else -r
    s = np.nan_to_num(s, nan=1.0)
    out: I64 = np.where(s == 0, 1, s).astype(np.int64)
    return out


@dataclass(frozen=True)
class _Calls:
    """One agent's runs and their LLM calls (telemetry records)."""

    run_ids: list[Any]
    start_ms: I64  # per run
    alpha_ms: I64  # per run: when its signal is sent
    has_signal: npt.NDArray[np.bool_]
    run_lat: F64
    run_tok_in: I64
    run_of_call: I64  # per call from here on
    first_call: I64  # per run: index of its first call
    call_ms: I64
    tok_in: I64
    tok_out: I64
    lat: F64
    errs: I64
    model: npt.NDArray[np.str_]
    cost: F64


def _calls(agent: Agent, rng: np.random.Generator, n: int, window: tuple[int, int],
           cost_break: int) -> _Calls:
    t0, t1 = window
    # Runs start on distinct minutes (plus jitter), so no latency can reorder two runs.
    minutes = np.sort(rng.choice((t1 - t0) // 60_000, size=n, replace=False)).astype(np.int64)
    start_ms = t0 + minutes * 60_000 + rng.integers(0, 20_000, n)
    run_ids = _run_ids(agent, rng, start_ms)
    ncalls = rng.integers(1, agent.max_calls + 1, n)
    run_of_call = np.repeat(np.arange(n), ncalls)
    m = int(ncalls.sum())
    tok_in = np.maximum(50, np.round(agent.tokens_in * np.exp(rng.normal(0, 0.22, m)))).astype(np.int64)
    tok_out = np.maximum(10, np.round(agent.tokens_out * np.exp(rng.normal(0, 0.3, m)))).astype(np.int64)
    lat = agent.latency_ms * (tok_in / agent.tokens_in) * np.exp(rng.normal(0, agent.latency_sigma, m))
    err_run = rng.random(n) < agent.error_rate
    last_call = np.cumsum(ncalls) - 1
    errs = np.zeros(m, dtype=np.int64)
    errs[last_call[err_run]] = np.where(rng.random(int(err_run.sum())) < 0.2, 2, 1)
    lat[last_call[err_run]] *= 2.0  # a failed call is retried before giving up
    lat = np.round(lat, 1)
    after = (np.arange(n) >= cost_break) if agent.name == cast.BREAK_AGENT else np.zeros(n, dtype=bool)
    model = np.where(after[run_of_call], cast.BREAK_MODEL_AFTER, agent.model)
    p_in = np.array([MODELS[x].usd_per_mtok_in for x in model])
    p_out = np.array([MODELS[x].usd_per_mtok_out for x in model])
    first_call = np.concatenate([[0], last_call[:-1] + 1])
    run_lat = np.add.reduceat(lat, first_call)
    cum = np.cumsum(lat)
    lat_before = cum - lat - np.repeat(cum[first_call] - lat[first_call], ncalls)
    return _Calls(
        run_ids=run_ids, start_ms=start_ms,
        alpha_ms=start_ms + np.ceil(run_lat).astype(np.int64) + rng.integers(5, 60, n),
        has_signal=~err_run | (rng.random(n) < 0.5),
        run_lat=run_lat, run_tok_in=np.add.reduceat(tok_in, first_call),
        run_of_call=run_of_call, first_call=first_call,
        call_ms=start_ms[run_of_call] + np.round(lat_before).astype(np.int64),
        tok_in=tok_in, tok_out=tok_out, lat=lat, errs=errs, model=model,
        cost=np.round((tok_in * p_in + tok_out * p_out) / 1e6, 6),
    )


@dataclass(frozen=True)
class _Legs:
    """One agent's signals, one per (run, symbol) leg, and how each leg actually played out."""

    run: I64
    sym: I64  # index into the agent's symbols
    hz_pick: I64  # per run: index into the agent's horizons
    multi: npt.NDArray[np.bool_]  # per run
    ms: I64
    direction: I64
    regime: list[str]
    score: F64
    pnl: F64  # paper bps (NaN: open or FLAT)
    entry_px: F64
    exit_px: F64
    exit_ms: I64
    cluster_run: npt.NDArray[np.bool_]  # per run


def _legs(agent: Agent, rng: np.random.Generator, mkts: dict[str, Market], syms: list[str],
          c: _Calls, pnl_break: int) -> _Legs:
    n = len(c.start_ms)
    multi = rng.random(n) < agent.multi_leg_rate
    pick = rng.integers(0, len(syms), n)
    leg_run = np.concatenate([np.arange(n)[~multi], np.repeat(np.arange(n)[multi], len(syms))])
    leg_sym = np.concatenate([pick[~multi], np.tile(np.arange(len(syms)), int(multi.sum()))])
    order = np.lexsort((leg_sym, leg_run))
    leg_run, leg_sym = leg_run[order], leg_sym[order]
    keep = c.has_signal[leg_run]
    leg_run, leg_sym = leg_run[keep], leg_sym[keep]
    n_legs = len(leg_run)
    hz_pick = rng.integers(0, len(agent.horizons), n)
    leg_hz = np.array([_horizon_ms(agent.horizons[i]) for i in hz_pick[leg_run]], dtype=np.int64)
    leg_ms = c.alpha_ms[leg_run]

    rule = np.zeros(n_legs, dtype=np.int64)
    oracle = np.zeros(n_legs, dtype=np.int64)
    regime: list[str] = [""] * n_legs
    for si, sym in enumerate(syms):
        mk = mkts[sym]
        sel = np.flatnonzero(leg_sym == si)
        if not len(sel):
            continue
        rule[sel] = _rule(agent, mk, leg_ms[sel])
        probe = legs(mk.bar_ms, mk.open, leg_ms[sel], leg_hz[sel], np.ones(len(sel), dtype=np.int64))
        oracle[sel] = np.nan_to_num(np.sign(probe.gross_long_bps)).astype(np.int64)
        vol_hi = float(np.nanquantile(mk.past_vol(mk.bar_ms, LOOKBACK_BARS_S * 1000), 0.8))
        for j, label in zip(sel.tolist(), _regime(mk, leg_ms[sel], vol_hi), strict=True):
            regime[j] = label
    skill = np.full(n_legs, agent.skill)
    if agent.name == cast.BREAK_AGENT:
        skill = np.where(leg_run >= pnl_break, BREAK_SKILL_AFTER, skill)
    informed = (rng.random(n_legs) < np.abs(skill)) & (oracle != 0)
    direction = np.where(informed, np.sign(skill).astype(np.int64) * oracle, rule)
    direction = np.where(rng.random(n_legs) < agent.flat_rate, 0, direction).astype(np.int64)
    cluster_run = (c.run_lat > cast.CLUSTER_LATENCY_MS) & (c.run_tok_in > cast.CLUSTER_TOKENS_IN)
    if agent.name == cast.CLUSTER_AGENT:
        # Slow runs on long prompts act on a stale read of the market and end up on the wrong
        # side of the move they hold through: a loss cluster forensics must find.
        wrong = np.where(oracle != 0, -oracle, -direction)
        direction = np.where(cluster_run[leg_run], wrong, direction)

    pnl = np.full(n_legs, np.nan)
    entry_px = np.full(n_legs, np.nan)
    exit_px = np.full(n_legs, np.nan)
    exit_ms = np.zeros(n_legs, dtype=np.int64)
    for si, sym in enumerate(syms):
        mk = mkts[sym]
        sel = np.flatnonzero(leg_sym == si)
        if not len(sel):
            continue
        lg = legs(mk.bar_ms, mk.open, leg_ms[sel], leg_hz[sel], direction[sel],
                  mk.funding_ms, mk.funding_rate, mk.funding_mark)
        pnl[sel] = lg.pnl_bps
        entry_px[sel] = lg.entry_price
        exit_px[sel] = lg.exit_price
        exit_ms[sel] = np.where(lg.closed, mk.bar_ms[np.maximum(lg.exit_idx, 0)], 0)
    score_mag = np.round(0.3 + np.abs(rng.normal(0.8, 0.6, n_legs)), 2)
    score_flat = np.round(rng.normal(0, 0.15, n_legs), 2)
    return _Legs(
        run=leg_run, sym=leg_sym, hz_pick=hz_pick, multi=multi, ms=leg_ms, direction=direction,
        regime=regime, score=np.where(direction == 0, score_flat, direction * score_mag),
        pnl=pnl, entry_px=entry_px, exit_px=exit_px, exit_ms=exit_ms, cluster_run=cluster_run,
    )


def _emit(agent: Agent, rng: np.random.Generator, syms: list[str], c: _Calls, lg: _Legs) -> _AgentOut:
    """The events as the agent writes them (its time, symbol, horizon and id habits)."""
    m, n_legs = len(c.run_of_call), len(lg.run)
    external = np.zeros(n_legs, dtype=bool)
    if agent.name == cast.EXTERNAL_PNL_AGENT:
        external = (rng.random(n_legs) < EXTERNAL_SHARE) & np.isfinite(lg.pnl)
    slip_bps = rng.normal(-2.5, 3.0, n_legs)
    px_slip = np.abs(rng.normal(0, 1.5, (2, n_legs)))
    revised = rng.random(n_legs) < 0.1
    prelim_err = rng.normal(0, 8.0, n_legs)
    pnl_delay = rng.integers(60, 1800, n_legs) * 1000

    # A run's time in the ledger: its signal's, else (no signal) its first LLM call's.
    out = _AgentOut(run_ids=[str(r) for r in c.run_ids],
                    run_ms=np.where(c.has_signal, c.alpha_ms, c.start_ms).tolist())
    out.no_signal_runs = int((~c.has_signal).sum())
    if agent.name == cast.CLUSTER_AGENT:
        out.cluster_run_ids = [str(c.run_ids[i]) for i in np.flatnonzero(lg.cluster_run)]
    steps = ("plan", "analyze", "decide")
    for k in range(m):
        r = int(c.run_of_call[k])
        body: dict[str, Any] = {**_head(agent, "telemetry"), "run_id": c.run_ids[r],
                                "agent": agent.name, "strategy": agent.strategy,
                                "ts": fmt_ts(int(c.call_ms[k]), agent.ts_style),
                                "model": str(c.model[k]), "latency_ms": float(c.lat[k]),
                                "tokens_in": int(c.tok_in[k]), "tokens_out": int(c.tok_out[k]),
                                "cost_usd": float(c.cost[k]), "errors": int(c.errs[k])}
        if agent.max_calls > 1:
            body["step"] = steps[min(k - int(c.first_call[r]), len(steps) - 1)]
        out.events.append(_Event(int(c.call_ms[k]), str(c.run_ids[r]), k, "telemetry", body))
    for j in range(n_legs):
        r = int(lg.run[j])
        d = int(lg.direction[j])
        sym = syms[int(lg.sym[j])]
        hz = agent.horizons[int(lg.hz_pick[r])]
        body = {**_head(agent, "alpha"), "run_id": c.run_ids[r], "agent": agent.name,
                "strategy": agent.strategy, "ts": fmt_ts(int(lg.ms[j]), agent.ts_style),
                "symbol": _symbol_text(sym, agent.bare_symbols),
                "direction": _direction_text(d, agent.direction_case),
                "score_final": float(lg.score[j]), "regime": lg.regime[j],
                "horizon": _horizon_ms(hz) // 1000 if agent.horizon_seconds else hz}
        if agent.size_usd is not None:
            size = agent.size_usd / (len(syms) if lg.multi[r] else 1)
            body["size_usd"] = int(size) if float(size).is_integer() else size
        out.events.append(_Event(int(lg.ms[j]), str(c.run_ids[r]), m + j, "alpha", body))
        if not external[j]:
            continue
        out.external_runs += 1
        final = round(float(lg.pnl[j] + slip_bps[j]), 2)
        entry = float(lg.entry_px[j]) * (1 + d * px_slip[0, j] / 1e4)
        exit_ = float(lg.exit_px[j]) * (1 - d * px_slip[1, j] / 1e4)
        t = int(lg.exit_ms[j] + pnl_delay[j])
        head: dict[str, Any] = {"type": "pnl", "run_id": c.run_ids[r], "agent": agent.name}
        tail: dict[str, Any] = {"symbol": _symbol_text(sym, agent.bare_symbols),
                                "entry_price": round(entry, 2), "exit_price": round(exit_, 2)}
        if revised[j]:  # a preliminary figure first, corrected an hour later
            first = {**head, "ts": fmt_ts(t, agent.ts_style),
                     "realized_pnl_bps": round(final + float(prelim_err[j]), 2), **tail,
                     "revision": 0}
            out.events.append(_Event(t, str(c.run_ids[r]), 2 * (m + n_legs) + j, "pnl", first))
            t += 3_600_000
            tail["revision"] = 1
        body = {**head, "ts": fmt_ts(t, agent.ts_style), "realized_pnl_bps": final, **tail}
        out.events.append(_Event(t, str(c.run_ids[r]), 3 * (m + n_legs) + j, "pnl", body))
    return out


def _simulate_agent(
    agent: Agent,
    rng: np.random.Generator,
    mkts: dict[str, Market],
    n: int,
    window: tuple[int, int],
    breaks: tuple[int, int],
) -> _AgentOut:
    """Calls, then legs, then events; the draws happen in this order, so the seed fixes all."""
    syms = [s for s in agent.symbols if s in mkts] or sorted(mkts)
    calls = _calls(agent, rng, n, window, breaks[0])
    leg = _legs(agent, rng, mkts, syms, calls, breaks[1])
    return _emit(agent, rng, syms, calls, leg)


def _window(mkts: dict[str, Market]) -> tuple[int, int]:
    first = max(int(m.bar_ms[0]) for m in mkts.values())
    last = min(int(m.bar_ms[-1]) for m in mkts.values())
    t0, t1 = first + WARMUP_MS, last - QUIET_END_MS
    if t1 - t0 < DAY_MS:
        raise InputError(
            "bars cover too short a common range: the simulator needs more than 6 days "
            "(3 of warm-up, 2 quiet at the end, 1 to trade)"
        )
    return t0, t1


def simulate(
    bars: dict[str, pa.Table] | pa.Table,
    seed: int = 7,
    runs_per_agent: int = 700,
    funding: dict[str, pa.Table] | pa.Table | None = None,
    agents: Sequence[Agent] = AGENTS,
) -> DemoEvents:
    """Simulated runs of every agent over the bars (1h bars, columns ts and open; close
    optional); funding (ts, funding_rate[, mark_price]) feeds the funding strategy and the
    paper PnL behind external pnl events, and is optional."""
    if runs_per_agent < 20:
        raise InputError(f"runs_per_agent must be at least 20 (got {runs_per_agent})")
    mkts = markets(bars, funding)
    window = _window(mkts)
    if runs_per_agent > (window[1] - window[0]) // 60_000:
        raise InputError(
            f"runs_per_agent {runs_per_agent:,} exceeds the minutes the bars leave to trade in "
            "(runs start on distinct minutes)"
        )
    cost_break = round(runs_per_agent * 0.45)
    pnl_break = min(runs_per_agent - 1, cost_break + max(1, min(100, runs_per_agent // 5)))
    outs: dict[str, _AgentOut] = {}
    for i, agent in enumerate(agents):
        rng = np.random.default_rng([seed, i])
        outs[agent.name] = _simulate_agent(agent, rng, mkts, runs_per_agent, window,
                                           (cost_break, pnl_break))
    events = sorted((e for o in outs.values() for e in o.events), key=lambda e: (e.ms, e.run_id, e.seq))
    by_kind: dict[str, list[dict[str, Any]]] = {k: [] for k in KIND_FILE}
    for e in events:
        by_kind[e.kind].append(e.body)
    lines = {KIND_FILE[k]: [_dumps(b) for b in v] for k, v in by_kind.items()}
    rng = np.random.default_rng([seed, len(agents)])
    lines, bad, dup = corrupt(lines, by_kind, rng, DUPLICATES)

    ba = outs.get(cast.BREAK_AGENT)
    ca = outs.get(cast.CLUSTER_AGENT)
    if ba is None or ca is None:
        raise InputError(f"the agents must include {cast.BREAK_AGENT} and {cast.CLUSTER_AGENT}")
    break_agent = next(a for a in agents if a.name == cast.BREAK_AGENT)
    before, after_m = MODELS[break_agent.model], MODELS[cast.BREAK_MODEL_AFTER]
    truth = Truth(
        seed=seed,
        runs=sum(len(o.run_ids) for o in outs.values()),
        runs_by_agent={a.name: len(outs[a.name].run_ids) for a in agents},
        strategy_by_agent={a.name: a.strategy for a in agents},
        events_by_kind={k: len(v) for k, v in by_kind.items()},
        duplicates=dup,
        bad_lines=tuple(bad),
        cluster=LossCluster(cast.CLUSTER_AGENT, cast.CLUSTER_LATENCY_MS, cast.CLUSTER_TOKENS_IN,
                            tuple(ca.cluster_run_ids), len(ca.run_ids)),
        quality_break=QualityBreak(
            agent=cast.BREAK_AGENT, model_before=before.name, model_after=after_m.name,
            cost_ratio=after_m.usd_per_mtok_in / before.usd_per_mtok_in,
            cost_break_index=cost_break, cost_break_run_id=ba.run_ids[cost_break],
            cost_break_ts=str(fmt_ts(ba.run_ms[cost_break], "iso_z")),
            pnl_break_index=pnl_break, pnl_break_run_id=ba.run_ids[pnl_break],
            pnl_break_ts=str(fmt_ts(ba.run_ms[pnl_break], "iso_z")),
            skill_before=break_agent.skill, skill_after=BREAK_SKILL_AFTER,
        ),
        external_pnl_agent=cast.EXTERNAL_PNL_AGENT,
        external_pnl_runs=outs[cast.EXTERNAL_PNL_AGENT].external_runs
        if cast.EXTERNAL_PNL_AGENT in outs else 0,
        no_signal_runs=sum(o.no_signal_runs for o in outs.values()),
    )
    return DemoEvents(by_kind, lines, truth)


def _dumps(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"), allow_nan=True)


def _head(agent: Agent, kind: str) -> dict[str, Any]:
    """Typed agents lead with "type"; the others write the seed's bare shapes."""
    return {"type": kind} if agent.typed else {}
