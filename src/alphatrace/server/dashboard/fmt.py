"""How numbers read in the pages' tables: signed dollars and bps, percentages, multipliers.
Raw values travel alongside (`data-v`) so sorting never parses formatted text."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from alphatrace import metrics
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


# a metric's declared format (alphatrace.metrics.FORMATS) → its formatter
FORMATTERS: dict[str, Callable[[Any], str]] = {
    "bps": bps, "usd": usd, "cost": cost, "amount_usd": amount_usd, "pct": pct,
    "n0": number, "n1": lambda v: number(v, 1), "n2": lambda v: number(v, 2),
    "n3": lambda v: number(v, 3),
}
# values shown beside the metrics that are not metrics
OTHER = {"multiplier": multiplier}


def metric(name: str, v: Any) -> str:
    """A summary value as its metric declares (alphatrace.metrics.Metric.fmt)."""
    if name in OTHER:
        return OTHER[name](v)
    if metrics.is_metric(name):
        return FORMATTERS[metrics.get(name).fmt](v)
    return plain(v)
