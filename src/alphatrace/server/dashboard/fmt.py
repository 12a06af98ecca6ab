"""How numbers read in the pages' tables: signed dollars and bps, percentages, multipliers.
Raw values travel alongside (`data-v`) so sorting never parses formatted text."""

from __future__ import annotations

import math
from typing import Any

from alphatrace.governance.confidence import percent

DASH = "—"
MINUS = "\u2212"


def _finite(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _signed(text: str, v: float) -> str:
    return f"{MINUS}{text}" if v < 0 else (f"+{text}" if v > 0 else text)


def usd(v: Any) -> str:
    f = _finite(v)
    if f is None:
        return DASH
    a = abs(f)
    text = f"${a:,.2f}" if a >= 0.01 or a == 0 else f"${a:.4f}"
    return _signed(text, f)


def cost(v: Any) -> str:
    """Inference spend: small amounts keep their digits."""
    f = _finite(v)
    if f is None:
        return DASH
    return f"${f:,.2f}" if abs(f) >= 1 else f"${f:.4f}"


def bps(v: Any) -> str:
    """Two decimals, like the dollars in cents beside them."""
    f = _finite(v)
    if f is None:
        return DASH
    return _signed(f"{abs(f):,.2f}", f)


def amount_usd(v: Any) -> str:
    """An unsigned dollar amount (a drawdown is a size, not a gain or loss)."""
    f = _finite(v)
    return DASH if f is None else f"${f:,.2f}"


def pct(v: Any) -> str:
    f = _finite(v)
    return DASH if f is None else f"{f * 100:.1f}%"


def number(v: Any, digits: int = 0) -> str:
    f = _finite(v)
    if f is None:
        return DASH
    return f"{f:,.{digits}f}"


def multiplier(v: Any) -> str:
    """A confidence multiplier as a percentage (the same text as the CLI's)."""
    f = _finite(v)
    return DASH if f is None else percent(f)


def ts(v: Any) -> str:
    """'2025-06-05T13:53:10.312000Z' → '2025-06-05 13:53:10'."""
    if v is None:
        return DASH
    text = str(v)
    return text[:19].replace("T", " ") if len(text) >= 19 else text


def plain(v: Any) -> str:
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return number(v, 4) if abs(v) < 1 else number(v, 2)
    if isinstance(v, list):
        return ", ".join(plain(x) for x in v)
    return str(v)


# metric name → formatter, for the summary tables
BY_METRIC = {
    "runs": number, "realized_runs": number, "hit_rate": pct, "mean_pnl_bps": bps,
    "median_pnl_bps": bps, "mean_net_bps": bps, "median_net_bps": bps, "total_pnl_usd": usd,
    "total_cost_usd": cost, "net_usd": usd, "profit_factor": lambda v: number(v, 2),
    "sharpe": lambda v: number(v, 3), "sharpe_annualised": lambda v: number(v, 2),
    "max_drawdown_bps": lambda v: number(v, 2), "max_drawdown_usd": amount_usd, "max_losing_streak": number,
    "mean_latency_ms": number, "median_latency_ms": number, "cost_per_run": cost,
    "pnl_per_cost": lambda v: number(v, 1), "error_rate": pct, "multiplier": multiplier,
}


def metric(name: str, v: Any) -> str:
    return BY_METRIC.get(name, plain)(v)
