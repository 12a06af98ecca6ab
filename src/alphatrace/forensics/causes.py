"""The failure causes `explain` can name: one small unit per cause, in one registered list.

Each unit has the shape of a freqtrade protection: a `name`, a `check(run)` that returns the
evidence when its rule fires (else None), and a `sentence(evidence)` for the "because" line.
Adding a cause is adding one class here and listing it in `CAUSES`; the order of `CAUSES` is
the order causes are reported in. Thresholds come from the policy's `forensics.explain` and
`forensics.regime`:

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
from typing import Any, ClassVar

from alphatrace.forensics import regime as rg
from alphatrace.forensics.config import ForensicsConfig
from alphatrace.forensics.text import num, signed, usd

Evidence = dict[str, Any]


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


def robust_z(x: float, h: History) -> float | None:
    if h.cost_median is None:
        return None
    if h.cost_mad and h.cost_mad > 0:
        return (x - h.cost_median) / (1.4826 * h.cost_mad)
    if h.cost_mean_ad and h.cost_mean_ad > 0:
        return (x - h.cost_median) / (1.2533 * h.cost_mean_ad)
    return None




@dataclass(frozen=True)
class RunContext:
    """What every rule may read: the ledger row, the agent's history, the legs' price paths."""

    row: dict[str, Any]
    hist: History
    legs: list[LegPath]
    cfg: ForensicsConfig

    def f(self, key: str) -> float | None:
        v = self.row.get(key)
        return None if v is None else float(v)


class Cause:
    """One cause: its rule (`check`: the evidence when it fires, else None) and its sentence."""

    name: ClassVar[str]

    def check(self, run: RunContext) -> Evidence | None:
        raise NotImplementedError

    def sentence(self, ev: Evidence) -> str:
        raise NotImplementedError


class Slow(Cause):
    name = "slow"

    def check(self, run: RunContext) -> Evidence | None:
        ec, hist = run.cfg.explain, run.hist
        lat = run.f("latency_ms")
        if lat is None:
            return None
        p90 = hist.p90_latency_ms if hist.runs >= ec.min_history else None
        over_p90 = p90 is not None and lat > p90
        over_abs = ec.slow_abs_ms is not None and lat > ec.slow_abs_ms
        if not (over_p90 or over_abs):
            return None
        return {"latency_ms": lat, "agent_p90_ms": p90, "history_runs": hist.runs,
                "abs_limit_ms": ec.slow_abs_ms,
                "rule": "above_agent_p90" if over_p90 else "above_abs_limit"}

    def sentence(self, ev: Evidence) -> str:
        if ev["rule"] == "above_agent_p90":
            return (f"latency {num(ev['latency_ms'])} ms was above the agent's p90 of "
                    f"{num(round(ev['agent_p90_ms']))} ms")
        return f"latency {num(ev['latency_ms'])} ms was above the {num(ev['abs_limit_ms'])} ms limit"


class Wrong(Cause):
    name = "wrong"

    def check(self, run: RunContext) -> Evidence | None:
        ec = run.cfg.explain
        gross = run.f("gross_bps")
        direction = run.row.get("direction")
        if gross is None or direction not in ("LONG", "SHORT", "MIXED") or gross >= -ec.wrong_bps:
            return None
        return {"direction": direction, "gross_bps": gross,
                "entry_price": run.row.get("entry_price"), "exit_price": run.row.get("exit_price"),
                "threshold_bps": -ec.wrong_bps or 0.0}

    def sentence(self, ev: Evidence) -> str:
        return f"the market moved against the {ev['direction']} ({signed(ev['gross_bps'], 1)} bps gross)"


class MisRegimed(Cause):
    name = "mis_regimed"

    def check(self, run: RunContext) -> Evidence | None:
        row, cfg = run.row, run.cfg
        judged: list[dict[str, Any]] = []
        for leg in run.legs:
            leg_fam = rg.family(leg.declared_regime or row.get("regime"), cfg.regime.aliases)
            reading = rg.read(leg.prices, cfg.regime, leg.lookback or None)
            bad = rg.contradiction(leg_fam, reading)
            judged.append({"symbol": leg.symbol, "declared": leg.declared_regime or row.get("regime"),
                           "declared_family": leg_fam,
                           "realised": bad or (reading.direction if reading else None),
                           "window_start": leg.entry_ts, "window_end": leg.exit_ts,
                           "bars": len(leg.prices), "contradicted": bad is not None,
                           **({"reading": reading.to_dict()} if reading else {})})
        if not any(j["contradicted"] for j in judged):
            return None
        return {"declared": row.get("regime"),
                "declared_family": rg.family(row.get("regime"), cfg.regime.aliases), "legs": judged}

    def sentence(self, ev: Evidence) -> str:
        leg = next(j for j in ev["legs"] if j["contradicted"])
        return f"it declared {leg['declared']} but {leg['symbol']} was {leg['realised']} over the holding window"


class CostSpike(Cause):
    name = "cost_spike"

    def check(self, run: RunContext) -> Evidence | None:
        ec, hist = run.cfg.explain, run.hist
        cost = run.f("cost_usd")
        if cost is None or hist.cost_runs < ec.min_history or hist.cost_median is None:
            return None
        z = robust_z(cost, hist)
        ratio = cost / hist.cost_median if hist.cost_median > 0 else None
        big = ratio is None or ratio >= ec.cost_min_ratio
        if not (cost > hist.cost_median and big and (z is None or z >= ec.cost_z)):
            return None
        return {"cost_usd": cost, "median_usd": hist.cost_median, "mad_usd": hist.cost_mad,
                "robust_z": z, "ratio": ratio, "history_runs": hist.cost_runs,
                "z_threshold": ec.cost_z}

    def sentence(self, ev: Evidence) -> str:
        z = f", robust z {ev['robust_z']:.1f}" if ev["robust_z"] is not None else ""
        if ev["ratio"] is None:
            return f"inference cost {usd(ev['cost_usd'])} was far above its recent median{z}"
        return (f"inference cost {usd(ev['cost_usd'])} was {ev['ratio']:.1f}× its recent median of "
                f"{usd(ev['median_usd'])}{z}")


class Errored(Cause):
    name = "errored"

    def check(self, run: RunContext) -> Evidence | None:
        errors = run.row.get("errors")
        return {"errors": int(errors)} if errors is not None and int(errors) > 0 else None

    def sentence(self, ev: Evidence) -> str:
        n = ev["errors"]
        return f"it hit {n} error{'s' if n != 1 else ''}"


class ExecutionGap(Cause):
    name = "execution_gap"

    def check(self, run: RunContext) -> Evidence | None:
        ec = run.cfg.explain
        gap = run.f("execution_gap_bps")
        if gap is None or abs(gap) < ec.gap_bps:
            return None
        return {"execution_gap_bps": gap, "realized_pnl_bps": run.f("realized_pnl_bps"),
                "paper_pnl_bps": run.f("paper_pnl_bps"), "threshold_bps": ec.gap_bps}

    def sentence(self, ev: Evidence) -> str:
        return (f"the executed PnL ({signed(ev['realized_pnl_bps'], 1)} bps) was "
                f"{signed(ev['execution_gap_bps'], 1)} bps off the paper PnL")


CAUSES: tuple[Cause, ...] = (Slow(), Wrong(), MisRegimed(), CostSpike(), Errored(), ExecutionGap())
BY_NAME: dict[str, Cause] = {c.name: c for c in CAUSES}
