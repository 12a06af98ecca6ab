"""`ledger.locate.exits` on Spark: the numpy kernel itself, run per partition through
`mapInArrow` with the market (bar times and opens, funding settlements) in its closure.

Spark SQL has no ASOF join, and its as-of joins are quadratic (issue #18 measured 549 s for
100k signals); the kernel is exact and took 1.5 s for 1M signals this way. Each signal is
searched on its own, so how Spark splits the signals does not change a result.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from alphatrace.ledger import locate

# What `locate.exits` adds to the narrow signals, with their Arrow types.
EXIT_FIELDS = pa.schema([("entry_us", pa.int64()), ("entry_price", pa.float64()),
                         ("target_us", pa.int64()), ("exit_us", pa.int64()),
                         ("exit_price", pa.float64()), ("funded", pa.bool_()),
                         ("entry_settle", pa.int64()), ("exit_settle", pa.int64())])


def _columns(batch: pa.RecordBatch) -> locate.Columns:
    """A record batch as the masked numpy columns DuckDB's `fetchnumpy` gives."""
    out: locate.Columns = {}
    for name, col in zip(batch.schema.names, batch.columns, strict=True):
        values = col.to_numpy(zero_copy_only=False)
        if col.null_count:
            filled = col.fill_null(False if pa.types.is_boolean(col.type) else 0)
            out[name] = np.ma.masked_array(filled.to_numpy(zero_copy_only=False),
                                           mask=col.is_null().to_numpy(zero_copy_only=False))
        else:
            out[name] = values
    return out


def _batch(cols: locate.Columns, schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for field in schema:
        a = cols[field.name]
        mask = np.ma.getmaskarray(a) if np.ma.isMaskedArray(a) else None
        arrays.append(pa.array(np.ma.getdata(a), type=field.type, mask=mask))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def exits_in_partitions(narrow: Any, market: Any) -> Any:
    """`narrow` (a Spark DataFrame with the columns of `ledger.pricing.narrow_sql`) with the
    columns of `locate.exits`; `market` is a `ledger.reconcile.Market`."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    arrow_schema = pa.schema([*to_arrow_schema(narrow.schema), *EXIT_FIELDS])
    bars, opens, settlements = market.bars, market.opens, market.settlements

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            if b.num_rows:
                yield _batch(locate.exits(_columns(b), bars, opens, settlements), arrow_schema)

    return narrow.mapInArrow(run, from_arrow_schema(arrow_schema))

