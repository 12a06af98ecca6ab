"""Significance from sufficient statistics, so thousands of slices are tested in one vector pass.

A slice's runs and the rest are compared with Welch's unequal-variance t-test computed from
(n, Σy, Σy²) of each side: the lattice search already has those sums for every slice, so no
slice's rows are touched again. False discoveries over every tested slice are controlled with
Benjamini–Hochberg.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def welch_from_sums(
    n1: npt.ArrayLike, s1: npt.ArrayLike, q1: npt.ArrayLike,
    n2: npt.ArrayLike, s2: npt.ArrayLike, q2: npt.ArrayLike,
    alternative: str = "less",
) -> tuple[F64, F64]:
    """(t, p) of Welch's test of mean₁ vs mean₂ from counts, sums and sums of squares.

    `alternative="less"` asks whether side 1 is worse (lower) than side 2. Sides with fewer
    than two values cannot be tested (p = 1). Two constant sides are decided by their means
    alone (p = 0 when the alternative holds, else 1), which is the limit of the test.
    Callers should centre y first: sums of squares of centred values lose no precision.
    """
    n1a, n2a = np.asarray(n1, np.float64), np.asarray(n2, np.float64)
    s1a, s2a = np.asarray(s1, np.float64), np.asarray(s2, np.float64)
    q1a, q2a = np.asarray(q1, np.float64), np.asarray(q2, np.float64)
    ok = (n1a >= 2) & (n2a >= 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        m1, m2 = s1a / n1a, s2a / n2a
        v1 = np.maximum((q1a - s1a * m1) / (n1a - 1), 0.0)
        v2 = np.maximum((q2a - s2a * m2) / (n2a - 1), 0.0)
        a, b = v1 / n1a, v2 / n2a
        se2 = a + b
        t = (m1 - m2) / np.sqrt(se2)
        df = se2**2 / (a**2 / (n1a - 1) + b**2 / (n2a - 1))
    # special.stdtr is Student's t CDF as a bare ufunc: the same numbers as scipy.stats.t.cdf
    # without its per-call overhead (the redundancy filter tests one slice at a time). Imported
    # here: scipy costs 0.2-0.4 s to import, which every CLI command would otherwise pay.
    from scipy import special

    with np.errstate(invalid="ignore"):
        if alternative == "less":
            p = special.stdtr(df, t)
            degenerate = np.where(m1 < m2, 0.0, 1.0)
        elif alternative == "greater":
            p = special.stdtr(df, -t)
            degenerate = np.where(m1 > m2, 0.0, 1.0)
        elif alternative == "two-sided":
            p = 2.0 * special.stdtr(df, -np.abs(t))
            degenerate = np.where(m1 != m2, 0.0, 1.0)
        else:
            raise ValueError(f"unknown alternative {alternative!r}")
    p = np.where(se2 > 0, p, degenerate)
    p = np.where(ok, p, 1.0)
    p = np.clip(np.nan_to_num(p, nan=1.0), 0.0, 1.0)
    return np.asarray(np.where(ok, t, np.nan), np.float64), np.asarray(p, np.float64)


def welch_samples(x: npt.ArrayLike, y: npt.ArrayLike, alternative: str = "less") -> float:
    """Welch's p-value for two samples (centred on their pooled mean for precision)."""
    xa, ya = np.asarray(x, np.float64), np.asarray(y, np.float64)
    c = float(np.concatenate([xa, ya]).mean()) if xa.size + ya.size else 0.0
    xa, ya = xa - c, ya - c
    _, p = welch_from_sums(xa.size, xa.sum(), (xa * xa).sum(), ya.size, ya.sum(), (ya * ya).sum(),
                           alternative)
    return float(p)


def bh_qvalues(p: npt.ArrayLike) -> F64:
    """Benjamini–Hochberg adjusted p-values (q-values), in the input order.

    q_(i) = min_{j ≥ i} p_(j) · m / j over the p-values sorted ascending, capped at 1; a slice
    is a discovery at FDR level q* when its q-value is ≤ q*.
    """
    pa = np.asarray(p, np.float64)
    m = pa.size
    if m == 0:
        return pa.copy()
    order = np.argsort(pa, kind="stable")
    ranked = pa[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m, np.float64)
    out[order] = np.minimum(ranked, 1.0)
    return out
