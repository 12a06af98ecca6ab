"""Arrow columns as numpy arrays for the numeric code (metrics, gates, confidence, forensics,
the dashboard): one conversion, so NULL means the same (NaN) wherever a column is read."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa


def floats(col: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.float64]:
    """`col` as float64, NULL as NaN (copied when it must be: nulls, several chunks, a cast)."""
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
