"""Explain one run: where its dollars went and which failure causes the evidence supports.

Pure functions over rows the API fetched (the ledger row, the agent's recent history, the
price path of each leg), so every rule can be tested on hand-built inputs.

The causes are small units in `forensics/causes.py`, one per cause, each with its rule and
its sentence; adding a cause means adding one unit to its `CAUSES` list.
"""

from __future__ import annotations

from typing import Any

from alphatrace.forensics.causes import BY_NAME, CAUSES, History, LegPath, RunContext
from alphatrace.forensics.config import ForensicsConfig
from alphatrace.forensics.text import signed, usd


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


def causes(row: dict[str, Any], hist: History, legs: list[LegPath],
           cfg: ForensicsConfig) -> list[dict[str, Any]]:
    """Every cause whose rule fires, in `CAUSES` order, with the numbers that made it fire."""
    ctx = RunContext(row, hist, legs, cfg)
    return [{"cause": c.name, "evidence": ev} for c in CAUSES if (ev := c.check(ctx)) is not None]


def _clause(c: dict[str, Any]) -> str:
    unit = BY_NAME.get(c["cause"])
    return unit.sentence(c["evidence"]) if unit is not None else c["cause"]


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


__all__ = ["History", "LegPath", "because", "causes", "explain", "waterfall"]
