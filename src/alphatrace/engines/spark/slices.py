"""The slice search's joint histograms on Spark's executors: `forensics.slices.histogram` (the
kernel the embedded search runs over all rows) per partition through `mapInArrow`, the
partial histograms added up on the driver.

Counts are integers; the other sums are of weights on their grids (`slices.on_grid`), so
every partial sum is exact and the total is the embedded engine's, bit for bit, whatever the
partitioning; the driver still adds them in partition order. A partition sends one row: its
histogram as raw float64 bytes (cells × weights sums, and the cells' maxima), never its rows.

Not yet called by `forensics --engine spark` (docs/spark.md, "Forensics and explain on
Spark"): the search there still runs on the driver, because the encoding (quantile cut
points, per population) and the redundancy filter (the rows of kept clusters) read rows too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from alphatrace.forensics.slices import histogram

F64 = npt.NDArray[np.float64]
_PARTIAL = pa.schema([("part", pa.int64()), ("sums", pa.binary()), ("max", pa.binary())])


def _partial(codes: Sequence[str], dims: Sequence[int], weights: Sequence[str],
             maximum: str | None, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition's histogram (in a Python worker), as one row."""
    from pyspark import TaskContext

    cells = int(np.prod(dims))
    sums = np.zeros((cells, len(weights)), np.float64)
    top = np.zeros(cells, np.float64) if maximum is not None else None
    for b in batches:
        if not b.num_rows:
            continue
        cols = {n: b.column(n).to_numpy(zero_copy_only=False) for n in b.schema.names}
        s, m = histogram([cols[c] for c in codes], dims,
                         [np.asarray(cols[w], np.float64) for w in weights],
                         None if maximum is None else np.asarray(cols[maximum], np.float64))
        sums += s
        if top is not None and m is not None:
            np.maximum(top, m, out=top)
    ctx = TaskContext.get()
    part = ctx.partitionId() if ctx is not None else 0
    yield pa.RecordBatch.from_pylist(
        [{"part": part, "sums": sums.tobytes(), "max": None if top is None else top.tobytes()}],
        schema=_PARTIAL)


def histograms(df: Any, codes: Sequence[str], dims: Sequence[int], weights: Sequence[str],
               maximum: str | None = None) -> tuple[F64, F64 | None]:
    """`slices.histogram` of the rows of `df` (columns `codes`, `weights` and `maximum`),
    computed per partition on the executors and added up on the driver: (cells × weights
    sums, cell maxima or None), cells row-major over `dims`."""
    from pyspark.sql.pandas.types import from_arrow_schema

    cols = list(dict.fromkeys([*codes, *weights, *([maximum] if maximum else [])]))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _partial(codes, dims, weights, maximum, batches)

    rows = df.select(*cols).mapInArrow(run, from_arrow_schema(_PARTIAL)).toArrow().to_pylist()
    cells = int(np.prod(dims))
    sums = np.zeros((cells, len(weights)), np.float64)
    top = np.zeros(cells, np.float64) if maximum is not None else None
    for r in sorted(rows, key=lambda r: int(r["part"])):
        sums += np.frombuffer(r["sums"], np.float64).reshape(cells, len(weights))
        if top is not None:
            np.maximum(top, np.frombuffer(r["max"], np.float64), out=top)
    return sums, top
