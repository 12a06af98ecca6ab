"""Metrics of many windows of one table of runs at once, in numpy: a catch-up's points.

A catch-up (governance.replay) judges a subject at every point its window changes, so it needs
the metrics of every window (lo, hi] of each subject's ordered runs — about (points × window)
rows if every window is written out as rows and aggregated in SQL. Here each window is a slice
of the one table (rows `lo[i]` to `hi[i] - 1`), gathered into a matrix of at most a few million
cells at a time, and each metric a handful of vector operations over it.

The kernels are the metrics of `alphatrace.metrics` (the definition: their SQL) spelled again
in numpy, bit for bit — `tests/test_metric_windows.py` compares every one with
`metrics.compute_one` on random windows, NULLs, ties and signed zeros included:
- an exact sum (`Dialect.exact_sum`) adds the window's non-NULL terms sorted by value, one by one
  from +0.0. A NULL (or a cell past the window's end) enters as +0.0: with the sum started at
  +0.0, a zero term never changes it, wherever it sorts;
- a median or p90 is `quantiles.rows_quantile` of the window's sorted non-NULL values, the
  one formula `Dialect.quantile` spells in SQL.
A metric without a kernel here (`supported` says which) is computed by `metrics.compute` over the
written-out windows, as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from alphatrace.metrics import PNL
from alphatrace.quantiles import rows_quantile

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# Cells of one gathered matrix (each column read is one such matrix of float64).
_CELLS = 1 << 22


class _Chunk:
    """Windows `lo[i]:hi[i]` of `rows`, gathered as a matrix padded to the longest one."""

    def __init__(self, rows: pa.Table, lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64],
                 cache: dict[str, tuple[Floats, Bools]]) -> None:
        self.size = hi - lo
        width = int(self.size.max()) if len(lo) else 0
        col = np.arange(width, dtype=np.int64)
        self.inside = col[None, :] < self.size[:, None]
        self.idx = np.where(self.inside, lo[:, None] + col[None, :], 0)
        self._rows, self._cache = rows, cache
        self._got: dict[str, tuple[Floats, Bools]] = {}
        self._ordered: dict[str, tuple[Floats, npt.NDArray[np.int64], Bools]] = {}
        self._totals: dict[str, Floats] = {}

    def col(self, name: str) -> tuple[Floats, Bools]:
        """The column's values in each window (0.0 where NULL or past the end) and where they
        are present (non-NULL and inside the window)."""
        if name not in self._got:
            if name not in self._cache:
                c = self._rows.column(name).combine_chunks() if self._rows.num_rows else None
                if c is None:
                    self._cache[name] = (np.zeros(0), np.zeros(0, dtype=bool))
                else:
                    present = np.asarray(c.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
                    vals = np.asarray(c.cast(pa.float64()).fill_null(0.0)
                                      .to_numpy(zero_copy_only=False), dtype=np.float64)
                    self._cache[name] = (vals, present)
            vals, present = self._cache[name]
            if len(vals) == 0:
                shape = self.idx.shape
                self._got[name] = (np.zeros(shape), np.zeros(shape, dtype=bool))
            else:
                p = present[self.idx] & self.inside
                self._got[name] = (np.where(p, vals[self.idx], 0.0), p)
        return self._got[name]


    def ordered(self, name: str) -> tuple[Floats, npt.NDArray[np.int64], Bools]:
        """The column's present values in each window sorted ascending (+inf after them, then
        NaN values), how many are present, and which windows hold a NaN value."""
        if name not in self._ordered:
            v, p = self.col(name)
            nan = np.asarray((p & np.isnan(v)).any(axis=1), dtype=np.bool_)
            self._ordered[name] = (np.sort(np.where(p, v, np.inf), axis=1), count(p), nan)
        return self._ordered[name]

    def first(self, n: npt.NDArray[np.int64]) -> Bools:
        """The first n[i] cells of each window's row."""
        return np.arange(self.idx.shape[1])[None, :] < n[:, None]

    def total(self, name: str) -> Floats:
        """`exact_sum` of the column in each window (NaN: NULL or a NaN term)."""
        if name not in self._totals:
            s, n, nan = self.ordered(name)
            x = _added(np.where(self.first(n), s, 0.0))
            self._totals[name] = np.where((n == 0) | nan, np.nan, x)
        return self._totals[name]


def _added(sorted_terms: Floats) -> Floats:
    """Each row's terms added left to right, from +0.0."""
    s = np.zeros(sorted_terms.shape[0])
    with np.errstate(invalid="ignore", over="ignore"):
        for c in sorted_terms.T:  # column by column: each row left to right
            s = s + c
    return s


def exact_sum(values: Floats, present: Bools) -> Floats:
    """`Dialect.exact_sum` of each row's present terms (`values` 0.0 elsewhere); NaN (NULL)
    over none."""
    return np.where(present.any(axis=1), _added(np.sort(values, axis=1)), np.nan)


def share(flags: Bools, present: Bools) -> Floats:
    """`exact_mean` of a term that is 1.0 where `flags`, else 0.0, over the present cells: a
    sum of ones is exact in any order, so it is their count (NULL over no terms)."""
    n = count(present)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.asarray((flags & present).sum(axis=1), dtype=np.float64)
        return np.where(n > 0, k / np.maximum(n, 1), np.nan)


def count(present: Bools) -> npt.NDArray[np.int64]:
    return np.asarray(present.sum(axis=1), dtype=np.int64)


def mean(values: Floats, present: Bools) -> Floats:
    """`exact_sum / count` (NULL over no terms)."""
    n = count(present)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, exact_sum(values, present) / np.maximum(n, 1), np.nan)


def quantile(s: Floats, n: npt.NDArray[np.int64], nan: Bools, q: float) -> Floats:
    """The metrics' quantiles (`Dialect.quantile`, defined by `quantiles.rows_quantile`) of
    each row's n present values, given sorted as `_Chunk.ordered` gives them (NULL over
    none)."""
    if nan.any():  # NaN sorts after the +inf padding here, after every number in SQL:
        k = np.zeros(len(n), dtype=np.int64)  # put a row's NaNs in the last of its n places
        rows = np.flatnonzero(nan)
        k[rows] = np.isnan(s[rows]).sum(axis=1)
        pos = np.arange(s.shape[1])[None, :]
        s = np.where((pos >= (n - k)[:, None]) & (pos < n[:, None]), np.nan, s)
    return rows_quantile(s, n, q)


def _gt0(v: Floats) -> Bools:
    """SQL's `v > 0` for DuckDB, where NaN is above every number."""
    with np.errstate(invalid="ignore"):
        return (v > 0) | np.isnan(v)


def _coalesce0(x: Floats, present: Bools) -> Floats:
    """`coalesce(exact_sum(...), 0)`: 0 over no terms."""
    return np.where(present.any(axis=1), x, 0.0)


def _sharpe(w: _Chunk) -> Floats:
    """`mean / nullif(sd, 0)`, sd from the sums shifted by the window's first PnL (metrics'
    `_SD`): `sqrt(greatest(0, (Σd² − Σd·Σd / n) / nullif(n − 1, 0)))`. Subtracting one number
    keeps the order, so the shifted terms are the sorted PnL shifted: one sort fewer."""
    v, p = w.col(PNL)
    s, n, nan = w.ordered(PNL)
    pnl0 = v[np.arange(len(n)), np.argmax(p, axis=1)] if v.shape[1] else np.zeros(len(n))
    first = w.first(n)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        d = np.where(first, s - pnl0[:, None], 0.0)
        s1 = np.where(nan, np.nan, _added(d))
        s2 = exact_sum(d * d, first)
        var = (s2 - s1 * s1 / n) / np.where(n > 1, n - 1, 1)
        # greatest(0, var) (NaN stays NaN); n ≤ 1: a NULL variance, which greatest turns to 0
        sd = np.where(n > 1, np.sqrt(np.where(np.isnan(var) | (var > 0), var, 0.0)), 0.0)
        m = w.total(PNL) / n
        return np.where((n > 0) & (sd != 0), m / np.where(sd != 0, sd, 1.0), np.nan)


def _hit_rate(w: _Chunk) -> Floats:
    v, p = w.col(PNL)
    return share(_gt0(v), p)


def _error_rate(w: _Chunk) -> Floats:
    v, p = w.col("errors")
    return _coalesce0(share(p & _gt0(v), w.inside), w.inside)


def _profit_factor(w: _Chunk) -> Floats:
    v, p = w.col(PNL)
    with np.errstate(invalid="ignore", divide="ignore"):
        win = exact_sum(np.where(p & _gt0(v), v, 0.0), w.inside)
        loss = -exact_sum(np.where(p & (v < 0), v, 0.0), w.inside)
        return np.where(loss == 0, np.nan, win / np.where(loss == 0, 1.0, loss))


def _last_n(n: int) -> Callable[[_Chunk], Floats]:
    def k(w: _Chunk) -> Floats:
        v, p = w.col(PNL)
        keep = p & (np.cumsum(p[:, ::-1], axis=1)[:, ::-1] <= n)  # among the newest n realized
        return _coalesce0(exact_sum(np.where(keep, v, 0.0), keep), keep)
    return k


def _sum0(column: str) -> Callable[[_Chunk], Floats]:
    def k(w: _Chunk) -> Floats:
        return _coalesce0(w.total(column), w.col(column)[1])
    return k


def _mean(column: str, null_is_zero: bool = False) -> Callable[[_Chunk], Floats]:
    """The mean of a column; `null_is_zero`: of `coalesce(column, 0)`."""
    def k(w: _Chunk) -> Floats:
        if null_is_zero:
            return mean(w.col(column)[0], w.inside)
        n = count(w.col(column)[1])
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, w.total(column) / np.maximum(n, 1), np.nan)
    return k


def _quantile(column: str, q: float) -> Callable[[_Chunk], Floats]:
    def k(w: _Chunk) -> Floats:
        return quantile(*w.ordered(column), q)
    return k


_KERNELS: dict[str, Callable[[_Chunk], npt.NDArray[np.float64] | npt.NDArray[np.int64]]] = {
    "runs": lambda w: w.size.astype(np.int64),
    "realized_runs": lambda w: count(w.col(PNL)[1]),
    "hit_rate": _hit_rate,
    "rolling_pnl_bps": _sum0(PNL),
    "mean_pnl_bps": _mean(PNL),
    "median_pnl_bps": _quantile(PNL, 0.5),
    "mean_net_bps": _mean("net_bps"),
    "median_net_bps": _quantile("net_bps", 0.5),
    "total_pnl_usd": _sum0("pnl_usd"),
    "total_cost_usd": _sum0("cost_usd"),
    "profit_factor": _profit_factor,
    "sharpe": _sharpe,
    "error_rate": _error_rate,
    "mean_latency_ms": _mean("latency_ms"),
    "median_latency_ms": _quantile("latency_ms", 0.5),
    "p90_latency_ms": _quantile("latency_ms", 0.9),
    "cost_per_run": _mean("cost_usd", null_is_zero=True),
}
_LAST_N = re.compile(r"^last_(\d+)_runs_pnl$")


def _kernel(name: str) -> Callable[[_Chunk], npt.NDArray[np.float64] | npt.NDArray[np.int64]] | None:
    m = _LAST_N.match(name)
    if m and int(m.group(1)) >= 1:
        return _last_n(int(m.group(1)))
    return _KERNELS.get(name)


def supported(name: str) -> bool:
    """Whether `compute` has a kernel for the metric."""
    return _kernel(name) is not None


def compute(rows: pa.Table, lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64],
            names: list[str]) -> dict[str, npt.NDArray[np.float64] | npt.NDArray[np.int64]]:
    """Each metric of `names` (all `supported`) over each window: the rows `lo[i]` to
    `hi[i] - 1` of `rows`, in run order. `runs` and `realized_runs` as int64, the rest as
    float64 with NaN for NULL. Windows are taken shortest first in matrices of at most
    `_CELLS` cells, so one long window does not widen every other."""
    kernels = {n: _kernel(n) for n in names}
    missing = [n for n, k in kernels.items() if k is None]
    if missing:
        raise KeyError(f"no window kernel for {', '.join(missing)}")
    n = len(lo)
    out: dict[str, npt.NDArray[np.float64] | npt.NDArray[np.int64]] = {}
    for nm in names:
        out[nm] = (np.zeros(n, dtype=np.int64) if nm in ("runs", "realized_runs")
                   else np.zeros(n, dtype=np.float64))
    order = np.argsort(hi - lo, kind="stable")
    cache: dict[str, tuple[Floats, Bools]] = {}
    i = 0
    while i < n:
        width = max(int(hi[order[i]] - lo[order[i]]), 1)
        j = min(n, i + max(1, _CELLS // width))
        width = max(int(hi[order[j - 1]] - lo[order[j - 1]]), 1)
        j = min(j, i + max(1, _CELLS // width))
        part = order[i:j]
        chunk = _Chunk(rows, lo[part], hi[part], cache)
        for nm, k in kernels.items():
            assert k is not None
            out[nm][part] = k(chunk)
        i = j
    return out
