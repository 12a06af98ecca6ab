"""Canonical forms: the bytes a decision is hashed and compared as.

Metric values are rounded to 12 significant digits before rules read them and before they are
recorded. A parallel or reordered float sum differs from the ordered one in the last bits; the
rounding absorbs that, so the same runs give the same record bytes, and a window whose decimal
PnL adds up to exactly 150 bps compares as exactly 150 (the hand answer), not 149.99999999999997.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
from typing import Any

import numpy as np

from alphatrace.governance.expr import FloatArray
from alphatrace.utc import iso_z

SIG_DIGITS = 12
GENESIS = "0" * 64


def round_sig(x: FloatArray) -> FloatArray:
    """Each value rounded to SIG_DIGITS significant digits; NaN stays NaN, 0 stays 0."""
    out = np.array(x, dtype=np.float64, copy=True)
    m = np.isfinite(out) & (out != 0)
    if m.any():
        v = out[m]
        scale = 10.0 ** (SIG_DIGITS - 1 - np.floor(np.log10(np.abs(v))))
        out[m] = np.round(v * scale) / scale
    return out


def round_value(v: float | None) -> float | None:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    return float(round_sig(np.array([v], dtype=np.float64))[0])


@functools.lru_cache(maxsize=4096)
def ts_text(ts: dt.datetime | None) -> str | None:
    """`alphatrace.utc.iso_z`, None for None. Cached: an evaluation formats the same as-of once
    per subject."""
    if ts is None:
        return None
    return iso_z(ts)


def canonical_json(obj: Any) -> str:
    """Sorted keys, no spaces, shortest float repr: one text per value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
