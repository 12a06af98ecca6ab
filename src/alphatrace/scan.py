"""Sequential scans restarted per segment: the one definition of a running sum (or max) of
doubles that every engine shares.

A running sum of doubles depends on the order its terms are added in. SQL windows add them
through a tree of partial sums (DuckDB's segment tree differs from a left-to-right scan on
most rows), and Spark splits the work again differently; a left-to-right scan per segment is
the definition here, and both engines call these functions (Spark through `applyInArrow`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt


def starts_of(ids: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """The first position of each run of equal values of `ids` (sorted or grouped)."""
    if len(ids) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]])).astype(np.int64)


# Segments at most this long are scanned together, one numpy step per position; longer ones
# one by one. Either way each value is combined with its predecessor's result, in order.
_SHORT = 64


def segmented_accumulate(op: np.ufunc, x: npt.NDArray[Any], starts: npt.NDArray[np.int64]
                         ) -> npt.NDArray[Any]:
    """`op.accumulate` restarted at each segment start: the same bits as calling it on each
    segment alone (a sequential left-to-right scan), with a few numpy calls per position of
    the short segments instead of several per segment. A sum past the double range is
    ±inf (IEEE arithmetic, as in SQL), without a warning."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _scan(op, x, starts)


def _scan(op: np.ufunc, x: npt.NDArray[Any], starts: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    out = np.array(x, copy=True)
    n = len(x)
    if n == 0:
        return out
    bounds = np.append(starts, n)
    lens = np.diff(bounds)
    long = lens > _SHORT
    for a, b in zip(bounds[:-1][long].tolist(), bounds[1:][long].tolist(), strict=True):
        out[a:b] = op.accumulate(x[a:b])
    order = np.argsort(-lens[~long], kind="stable")
    s_starts, s_lens = starts[~long][order], lens[~long][order]
    for j in range(1, int(s_lens[0]) if len(s_lens) else 0):
        idx = s_starts[: int(np.searchsorted(-s_lens, -j, side="left"))] + j
        out[idx] = op(out[idx - 1], x[idx])
    return out


def segment_cumsum_int(x: npt.NDArray[np.int64], starts: npt.NDArray[np.int64]
                        ) -> npt.NDArray[np.int64]:
    """Running integer sums restarted at each segment start (integers: exact in any order)."""
    c = np.cumsum(x, dtype=np.int64)
    before = np.concatenate([[0], c])[starts]
    return c - np.repeat(before, np.diff(np.append(starts, len(x))))
