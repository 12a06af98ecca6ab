"""The regime prices actually showed over a holding window, and whether a declared one fits.

Rule (documented in docs/forensics.md; every threshold is in the policy's `regime:` block):
over the n log-returns r₁…r_n of the bar opens from entry to exit,

- efficiency ratio ER = |Σ r| / Σ |r| ∈ [0, 1] (1: a straight line, 0: back where it began);
- normalised ER* = ER·√n. For a random walk ER* ≈ 1.25·|Z| whatever n, so one threshold
  works for 4 bars or 400: ER* ≥ trend_min (2.0; a random walk gets there ~11% of the time)
  reads as TREND;
- variance ratio VR = Var(r_t + r_{t+1}) / (2·Var(r_t)) (Lo–MacKinlay, lag 2): below 1 when
  moves undo each other. MEAN_REVERT needs both ER* ≤ revert_max (0.5) and VR ≤ vr_max (0.8),
  so a random walk that merely ends near its start is not called mean-reverting;
- otherwise NEUTRAL, which contradicts nothing.
- volatility: σ(window) / σ(lookback before entry) ≥ volatile_min (1.5) is VOLATILE,
  ≤ calm_max (0.67) is CALM, else NORMAL.

Declared labels map to families (TRENDING → TREND, RANGING → MEAN_REVERT, HIGH_VOL →
VOLATILE, ...; the policy can add aliases). A run is mis-regimed when its family is
contradicted: TREND vs realised MEAN_REVERT, MEAN_REVERT vs realised TREND, VOLATILE vs CALM.
Unknown labels and windows with fewer than `min_steps` returns are not judged.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from alphatrace.forensics.config import RegimeConfig

FAMILIES: dict[str, str] = {
    **dict.fromkeys((
        "TREND", "TRENDING", "TREND_UP", "TREND_DOWN", "UPTREND", "DOWNTREND", "MOMENTUM",
        "BREAKOUT", "BULL", "BEAR", "DIRECTIONAL", "TREND_FOLLOWING"), "TREND"),
    **dict.fromkeys((
        "MEAN_REVERT", "MEAN_REVERTING", "MEAN_REVERSION", "MEANREVERT", "REVERSION", "RANGE",
        "RANGING", "RANGE_BOUND", "RANGEBOUND", "SIDEWAYS", "CHOP", "CHOPPY", "CONSOLIDATION",
        "REVERSAL"), "MEAN_REVERT"),
    **dict.fromkeys((
        "VOLATILE", "HIGH_VOL", "HIGH_VOLATILITY", "HIGHVOL", "VOL_EXPANSION", "TURBULENT"),
        "VOLATILE"),
}

_CONTRADICTS = {("TREND", "MEAN_REVERT"), ("MEAN_REVERT", "TREND"), ("VOLATILE", "CALM")}


def family(declared: str | None, aliases: Mapping[str, str] | None = None) -> str | None:
    """The family of a declared label, case- and punctuation-insensitive; None if unknown."""
    if not declared:
        return None
    key = re.sub(r"[^A-Z0-9]+", "_", declared.strip().upper()).strip("_")
    extra = {re.sub(r"[^A-Z0-9]+", "_", k.upper()).strip("_"): v for k, v in (aliases or {}).items()}
    return extra.get(key) or FAMILIES.get(key)


@dataclass(frozen=True)
class Reading:
    steps: int
    efficiency_ratio: float
    er_normalised: float
    variance_ratio: float | None
    vol_ratio: float | None
    direction: str  # TREND | MEAN_REVERT | NEUTRAL
    volatility: str  # VOLATILE | CALM | NORMAL | UNKNOWN

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sd(r: npt.NDArray[np.float64]) -> float | None:
    return float(np.std(r, ddof=1)) if r.size >= 2 else None


def read(prices: npt.ArrayLike, cfg: RegimeConfig,
         lookback_prices: npt.ArrayLike | None = None) -> Reading | None:
    """The realised regime of a price path (entry → exit); None when too short to judge."""
    p = np.asarray(prices, dtype=np.float64)
    p = p[np.isfinite(p) & (p > 0)]
    r = np.diff(np.log(p))
    # A log move under 1e-9 (0.00001 bps, far below any exchange tick) is float noise of a flat
    # price, not a move; the cut sits well above noise so the price level cannot flip a reading.
    r = np.where(np.abs(r) < 1e-9, 0.0, r)
    n = int(r.size)
    if n < cfg.min_steps:
        return None
    path = float(np.abs(r).sum())
    er = abs(float(r.sum())) / path if path > 0 else 0.0
    ern = er * math.sqrt(n)
    vr: float | None = None
    if n >= 3:
        v1 = float(np.var(r, ddof=1))
        two = r[1:] + r[:-1]
        vr = float(np.var(two, ddof=1)) / (2 * v1) if v1 > 0 else None
    if ern >= cfg.trend_min:
        direction = "TREND"
    elif ern <= cfg.revert_max and vr is not None and vr <= cfg.vr_max:
        direction = "MEAN_REVERT"
    else:
        direction = "NEUTRAL"
    vol_ratio: float | None = None
    volatility = "UNKNOWN"
    if lookback_prices is not None:
        lp = np.asarray(lookback_prices, dtype=np.float64)
        lp = lp[np.isfinite(lp) & (lp > 0)]
        sd_lb = _sd(np.diff(np.log(lp))) if lp.size >= 3 else None
        sd_w = _sd(r)
        if sd_lb and sd_w is not None:
            vol_ratio = sd_w / sd_lb
            volatility = ("VOLATILE" if vol_ratio >= cfg.volatile_min
                          else "CALM" if vol_ratio <= cfg.calm_max else "NORMAL")
    return Reading(n, er, ern, vr, vol_ratio, direction, volatility)


def contradiction(declared_family: str | None, reading: Reading | None) -> str | None:
    """The realised label that contradicts the declared family, if any."""
    if declared_family is None or reading is None:
        return None
    for realised in (reading.direction, reading.volatility):
        if (declared_family, realised) in _CONTRADICTS:
            return realised
    return None
