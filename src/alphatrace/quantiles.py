"""Quantiles by one explicit formula, so every engine and kernel gives the same bits.

The q-quantile of n values sorted ascending, s[0] ≤ … ≤ s[n−1] (Hyndman & Fan's type 7, the
default of numpy, R and DuckDB's `quantile_cont`):

    h = (n − 1)·q,  j = ⌊h⌋,  g = h − j
    Q(q) = s[j]                         when g = 0
         = s[j] + (s[j+1] − s[j])·g     otherwise

every step one IEEE double operation, in this order, over the values plus 0.0 (so −0.0 is
0.0 and the order of equal values cannot change a bit of the result); NaN sorts above every
number, as in SQL. numpy (`b − (b − a)(1 − g)` when
g ≥ 0.5, and h from n·q − q), DuckDB's `quantile_cont` and Spark's `percentile` compute the
same value by other roundings, so their last bits differ between engines; the median is Q(0.5)
(not the mean of the two middle values). NULLs are left out; no values: NaN here, NULL in SQL.

`quantiles` is the definition for numpy kernels; `Dialect.quantile` spells the same steps in
SQL for DuckDB and Spark (engines/), checked against it bit for bit in the tests.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def quantiles(values: npt.ArrayLike, qs: npt.ArrayLike) -> F64:
    """Q(q) of `values` for each q in `qs` (each in [0, 1])."""
    s = np.sort(np.asarray(values, dtype=np.float64).ravel() + 0.0)
    q = np.asarray(qs, dtype=np.float64)
    n = np.array([s.size], dtype=np.int64)
    out = [rows_quantile(s[None, :], n, float(x))[0] for x in q.ravel()]
    return np.asarray(out, dtype=np.float64).reshape(q.shape)


def rows_quantile(s: F64, n: npt.NDArray[np.int64], q: float) -> F64:
    """Q(q) of each row of `s`, whose first n[i] cells are row i's values sorted ascending
    (NaN last); NaN for a row with none. The steps of the module docstring, one per
    vector operation; the values get their + 0.0 here (a −0.0 that sorted either side of a
    +0.0 gives the same bits)."""
    if s.shape[1] == 0:
        return np.full(len(n), np.nan)
    h = (n - 1).astype(np.float64) * q
    fl = np.floor(h)
    j = np.maximum(fl, 0).astype(np.int64)
    g = h - fl
    rows = np.arange(len(n))
    lo = s[rows, j] + 0.0
    hi = s[rows, np.minimum(j + 1, np.maximum(n - 1, 0))] + 0.0
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.where(g == 0, lo, lo + (hi - lo) * g)
    return np.asarray(np.where(n > 0, out, np.nan), dtype=np.float64)


def quantile(values: npt.ArrayLike, q: float) -> float:
    """Q(q) of `values`; NaN when there are none."""
    return float(quantiles(values, q))


def median(values: npt.ArrayLike) -> float:
    """Q(0.5)."""
    return quantile(values, 0.5)
