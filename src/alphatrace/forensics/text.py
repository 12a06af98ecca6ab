"""Numbers as people read them in findings: thousands separators, signed bps, short q-values.

Sentences are part of the JSON contract, so formatting is deterministic and locale-free.
"""

from __future__ import annotations

import math

MINUS = "−"  # U+2212: reads as a minus sign, not a hyphen


def num(v: float) -> str:
    """A threshold or count: integers with separators, other values to 3 significant digits."""
    if not math.isfinite(v):
        return str(v)
    if float(v).is_integer() or abs(v) >= 1000:
        s = f"{abs(v):,.0f}"
    else:
        s = f"{abs(v):.3g}"
        if "e" in s:
            s = f"{abs(v):.3e}"
    return (MINUS + s) if v < 0 and s.strip("0.,") else s


def signed(v: float, digits: int = 0) -> str:
    """+8 / −90: the sign always shown, so a reader sees the direction at a glance."""
    r = round(v, digits)
    if r == 0:
        return f"{0:.{digits}f}"
    body = f"{abs(r):,.{digits}f}"
    return ("+" if r > 0 else MINUS) + body


def usd(v: float) -> str:
    """$1,234.50; below a cent two significant digits ($0.0032), so LLM costs stay visible."""
    a = abs(v)
    body = f"{a:.2g}" if 0 < a < 0.01 else f"{a:,.2f}"
    return (MINUS if v < 0 else "") + f"${body}"


def qvalue(q: float) -> str:
    """q = 1e-9, q = 0.012: scientific below 0.001, else three decimals."""
    if q <= 0:
        return "<1e-300"
    if q < 0.001:
        mant, exp = f"{q:.0e}".split("e")
        return f"{mant}e{int(exp)}"
    return f"{q:.3f}"


def pct(share: float, digits: int = 1) -> str:
    return f"{share * 100:.{digits}f}%"


def round_sig(v: float, sig: int = 3) -> float:
    """`v` rounded to `sig` significant digits: cut points are stored as they are shown."""
    if v == 0 or not math.isfinite(v):
        return float(v)
    return float(f"{v:.{sig}g}")
