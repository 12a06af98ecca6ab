"""`ledger.locate.exits` on Spark: the numpy kernel itself, run per partition through
`mapInArrow` with the market (bar times and opens, funding settlements) in its closure.

Spark SQL has no ASOF join, and its as-of joins are quadratic (issue #18 measured 549 s for
100k signals); the kernel is exact and took 1.5 s for 1M signals this way. Each signal is
searched on its own, so how Spark splits the signals does not change a result.

It runs over every signal (`ledger.pricing.classified_sql`), pricing the priceable ones and
passing the rest through with NULL exits, so the pricing SQL after it reads one relation:
run over the priceable signals alone, its result had to be joined back to all of them on
`event_id`: a second scan of the signals and, by Spark's size estimate, a broadcast of every
priced signal or a shuffle of every signal on both sides (bench/RESULTS.md, session
"sparkprice").
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


# What `locate.exits` reads of a signal.
_KERNEL_IN = ("sid", "t_us", "h_us", "include_funding")


def _with_exits(batch: pa.RecordBatch, market: Any, schema: pa.Schema) -> pa.RecordBatch:
    """`batch` with the columns of `locate.exits` (EXIT_FIELDS) added: found for its rows
    with `priceable` set, NULL on the others."""
    n = batch.num_rows
    rows = np.flatnonzero(batch.column("priceable").to_numpy(zero_copy_only=False))
    found: locate.Columns = {}
    if len(rows):
        cols = _columns(batch.select(list(_KERNEL_IN)).take(pa.array(rows)))
        found = locate.exits(cols | {"_row": rows}, market.bars, market.opens,
                             market.settlements)
    arrays = list(batch.columns)
    for field in EXIT_FIELDS:
        values = np.zeros(n, dtype=field.type.to_pandas_dtype())
        missing = np.ones(n, dtype=bool)
        if len(rows):
            at, a = found["_row"], found[field.name]
            values[at] = np.ma.getdata(a)
            missing[at] = np.ma.getmaskarray(a)
        arrays.append(pa.array(values, type=field.type, mask=missing))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def exits_in_partitions(signals: Any, market: Any) -> Any:
    """`signals` (a Spark DataFrame with the columns of `ledger.pricing.classified_sql`) with
    the columns of `locate.exits`, NULL where a signal is not `priceable`; `market` is a
    `ledger.reconcile.Market`."""
    from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema

    tz = signals.sparkSession.conf.get("spark.sql.session.timeZone")
    arrow_schema = pa.schema([*to_arrow_schema(signals.schema, timezone=tz), *EXIT_FIELDS])

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for b in batches:
            if b.num_rows:
                yield _with_exits(b, market, arrow_schema)

    return signals.mapInArrow(run, from_arrow_schema(arrow_schema))
