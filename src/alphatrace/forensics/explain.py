"""Explain one run: where its dollars went and which failure causes the evidence supports.

Pure functions over rows the API fetched (the ledger row, the agent's recent history, the
price path of each leg), so every rule can be tested on hand-built inputs.

Causes (thresholds from the policy's `forensics.explain` / `forensics.regime`):
- slow: latency above the agent's own p90 over its previous runs (the `p90_latency_ms` metric,
  when it has at least `min_history` of them), or above the absolute `slow_abs_ms`;
- wrong: the market moved against the position over the holding window (gross_bps, the price
  move in the trade's favour before fees, below −wrong_bps);
- mis_regimed: the declared regime's family is contradicted by the realised one (regime.py);
- cost_spike: inference cost with robust z = (cost − median) / (1.4826·MAD) ≥ cost_z over the
  agent's previous runs, and at least cost_min_ratio × that median (MAD = 0: mean absolute
  deviation × 1.2533 stands in; both 0: the ratio alone decides);
- errored: errors > 0;
- execution_gap: |external − paper| PnL ≥ gap_bps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from alphatrace.forensics import regime as rg
from alphatrace.forensics.config import ForensicsConfig
from alphatrace.forensics.text import num, signed, usd

CAUSES = ("slow", "wrong", "mis_regimed", "cost_spike", "errored", "execution_gap")


@dataclass(frozen=True)
class History:
    """The agent's previous runs (newest `history_runs`, exclusions left out)."""

    runs: int = 0
    p90_latency_ms: float | None = None
    cost_runs: int = 0
    cost_median: float | None = None
    cost_mad: float | None = None
    cost_mean_ad: float | None = None


@dataclass(frozen=True)
class LegPath:
    symbol: str | None
    declared_regime: str | None
    entry_ts: Any
    exit_ts: Any
    prices: list[float] = field(default_factory=list)
    lookback: list[float] = field(default_factory=list)
    source: str = "alpha+horizon"


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def waterfall(row: dict[str, Any]) -> list[dict[str, Any]]:
    """Gross move → fees → funding → execution gap → inference cost = net, in USD and bps.

    Each step is bps × size / 1e4; the execution gap is what makes the trading steps add up to
    the ledger's pnl_usd (external PnL vs the reconciled paper legs), so the steps always sum
    to net_usd. Unpriced runs have only the inference step.
    """
    size = _f(row.get("size_usd"))
    cost = _f(row.get("cost_usd")) or 0.0
    pnl_usd = _f(row.get("pnl_usd"))
    steps: list[dict[str, Any]] = []

    def step(name: str, bps: float | None, amount: float | None) -> None:
        steps.append({"step": name, "bps": bps, "usd": amount})

    if pnl_usd is not None and size:
        parts = 0.0
        for name, col in (("gross_move", "gross_bps"), ("fees", "fee_bps"), ("funding", "funding_bps")):
            b = _f(row.get(col))
            amount = None if b is None else b * size / 1e4
            parts += amount or 0.0
            step(name, b, amount)
        gap_usd = pnl_usd - parts
        step("execution_gap", gap_usd / size * 1e4, gap_usd)
    elif pnl_usd is not None:
        step("trading_pnl", _f(row.get("realized_pnl_bps")), pnl_usd)
    step("inference_cost", -cost / size * 1e4 if size else None, -cost)
    net = _f(row.get("net_usd"))
    if net is None:
        net = (pnl_usd or 0.0) - cost
    cum = 0.0
    for s in steps:
        cum += s["usd"] or 0.0
        s["cumulative_usd"] = cum
    steps.append({"step": "net", "bps": _f(row.get("net_bps")), "usd": net, "cumulative_usd": net})
    return steps


def robust_z(x: float, h: History) -> float | None:
    if h.cost_median is None:
        return None
    if h.cost_mad and h.cost_mad > 0:
        return (x - h.cost_median) / (1.4826 * h.cost_mad)
    if h.cost_mean_ad and h.cost_mean_ad > 0:
        return (x - h.cost_median) / (1.2533 * h.cost_mean_ad)
    return None


def causes(row: dict[str, Any], hist: History, legs: list[LegPath],
           cfg: ForensicsConfig) -> list[dict[str, Any]]:
    """Every cause whose rule fires, with the numbers that made it fire."""
    ec = cfg.explain
    out: list[dict[str, Any]] = []

    lat = _f(row.get("latency_ms"))
    if lat is not None:
        p90 = hist.p90_latency_ms if hist.runs >= ec.min_history else None
        over_p90 = p90 is not None and lat > p90
        over_abs = ec.slow_abs_ms is not None and lat > ec.slow_abs_ms
        if over_p90 or over_abs:
            out.append({"cause": "slow", "evidence": {
                "latency_ms": lat, "agent_p90_ms": p90, "history_runs": hist.runs,
                "abs_limit_ms": ec.slow_abs_ms,
                "rule": "above_agent_p90" if over_p90 else "above_abs_limit"}})

    gross = _f(row.get("gross_bps"))
    direction = row.get("direction")
    if gross is not None and direction in ("LONG", "SHORT", "MIXED") and gross < -ec.wrong_bps:
        out.append({"cause": "wrong", "evidence": {
            "direction": direction, "gross_bps": gross, "entry_price": row.get("entry_price"),
            "exit_price": row.get("exit_price"), "threshold_bps": -ec.wrong_bps or 0.0}})

    fam = rg.family(row.get("regime"), cfg.regime.aliases)
    judged: list[dict[str, Any]] = []
    for leg in legs:
        leg_fam = rg.family(leg.declared_regime or row.get("regime"), cfg.regime.aliases)
        reading = rg.read(leg.prices, cfg.regime, leg.lookback or None)
        bad = rg.contradiction(leg_fam, reading)
        judged.append({"symbol": leg.symbol, "declared": leg.declared_regime or row.get("regime"),
                       "declared_family": leg_fam, "realised": bad or (reading.direction if reading else None),
                       "window_start": leg.entry_ts, "window_end": leg.exit_ts,
                       "bars": len(leg.prices), "contradicted": bad is not None,
                       **({"reading": reading.to_dict()} if reading else {})})
    if any(j["contradicted"] for j in judged):
        out.append({"cause": "mis_regimed", "evidence": {
            "declared": row.get("regime"), "declared_family": fam, "legs": judged}})

    cost = _f(row.get("cost_usd"))
    if cost is not None and hist.cost_runs >= ec.min_history and hist.cost_median is not None:
        z = robust_z(cost, hist)
        ratio = cost / hist.cost_median if hist.cost_median > 0 else None
        big = ratio is None or ratio >= ec.cost_min_ratio
        if cost > hist.cost_median and big and (z is None or z >= ec.cost_z):
            out.append({"cause": "cost_spike", "evidence": {
                "cost_usd": cost, "median_usd": hist.cost_median, "mad_usd": hist.cost_mad,
                "robust_z": z, "ratio": ratio, "history_runs": hist.cost_runs,
                "z_threshold": ec.cost_z}})

    errors = row.get("errors")
    if errors is not None and int(errors) > 0:
        out.append({"cause": "errored", "evidence": {"errors": int(errors)}})

    gap = _f(row.get("execution_gap_bps"))
    if gap is not None and abs(gap) >= ec.gap_bps:
        out.append({"cause": "execution_gap", "evidence": {
            "execution_gap_bps": gap, "realized_pnl_bps": _f(row.get("realized_pnl_bps")),
            "paper_pnl_bps": _f(row.get("paper_pnl_bps")), "threshold_bps": ec.gap_bps}})
    return out


def _clause(c: dict[str, Any]) -> str:
    ev = c["evidence"]
    kind = c["cause"]
    if kind == "slow":
        if ev["rule"] == "above_agent_p90":
            return f"latency {num(ev['latency_ms'])} ms was above the agent's p90 of {num(round(ev['agent_p90_ms']))} ms"
        return f"latency {num(ev['latency_ms'])} ms was above the {num(ev['abs_limit_ms'])} ms limit"
    if kind == "wrong":
        return f"the market moved against the {ev['direction']} ({signed(ev['gross_bps'], 1)} bps gross)"
    if kind == "mis_regimed":
        leg = next(j for j in ev["legs"] if j["contradicted"])
        return f"it declared {leg['declared']} but {leg['symbol']} was {leg['realised']} over the holding window"
    if kind == "cost_spike":
        z = f", robust z {ev['robust_z']:.1f}" if ev["robust_z"] is not None else ""
        return (f"inference cost {usd(ev['cost_usd'])} was {ev['ratio']:.1f}× its recent median of "
                f"{usd(ev['median_usd'])}{z}" if ev["ratio"] is not None
                else f"inference cost {usd(ev['cost_usd'])} was far above its recent median{z}")
    if kind == "errored":
        n = ev["errors"]
        return f"it hit {n} error{'s' if n != 1 else ''}"
    if kind == "execution_gap":
        return (f"the executed PnL ({signed(ev['realized_pnl_bps'], 1)} bps) was "
                f"{signed(ev['execution_gap_bps'], 1)} bps off the paper PnL")
    return kind


def because(row: dict[str, Any], found: list[dict[str, Any]]) -> str:
    """One sentence a person can read: the outcome, then the causes in evidence order."""
    run = row.get("run_id")
    net = _f(row.get("net_usd"))
    pnl = _f(row.get("realized_pnl_bps"))
    cost = _f(row.get("cost_usd")) or 0.0
    if pnl is None:
        head = (f"Run {run} has no realized PnL (status {row.get('status') or 'unknown'}) and cost "
                f"{usd(cost)} in inference")
    else:
        verb = "lost" if (net if net is not None else pnl) < 0 else "made"
        amount = usd(abs(net)) if net is not None else f"{abs(pnl):.1f} bps"
        head = f"Run {run} {verb} {amount} net ({signed(pnl, 1)} bps before {usd(cost)} of inference)"
    if not found:
        return head + "; no failure cause fired."
    clauses = [_clause(c) for c in found]
    body = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + " and " + clauses[-1]
    return f"{head}: {body}."


def explain(row: dict[str, Any], hist: History, legs: list[LegPath], cfg: ForensicsConfig,
            exclusion: dict[str, Any] | None = None) -> dict[str, Any]:
    """The `alphatrace explain` document: ledger row + waterfall + causes + because."""
    found = causes(row, hist, legs, cfg)
    return {**row, "excluded": exclusion, "waterfall": waterfall(row), "causes": found,
            "because": because(row, found)}
