"""The slice search's joint histograms on Spark's executors: `forensics.slices.histogram` (the
kernel the embedded search runs over all rows) per partition through `mapInArrow`, the
partial histograms added up on the driver.

Counts are integers; the other sums are of weights on their grids (`slices.on_grid`), so
every partial sum is exact and the total is the embedded engine's, bit for bit, whatever the
partitioning; the driver still adds them in partition order. A partition sends one row: its
histogram as raw float64 bytes (cells × weights sums, and the cells' maxima), never its rows.

`forensics --engine spark` runs its searches' passes here (`passes_on`): each population's
codes and weights are sent to the executors once, kept there, and each level of the lattice
is one Spark job over them, all of its feature combinations in one pass. The encoding
(quantile cut points, per population) and the redundancy filter (the rows of kept clusters)
still read the rows on the driver.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from alphatrace.engines.spark.session import spark_context
from alphatrace.forensics.slices import Feature, Passes, PassesOn, histogram

# The Spark job group of the passes (Spark's status tracker lists their jobs under it).
JOB_GROUP = "alphatrace-slice-histograms"
_GROUP_PROPERTIES = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel")
# Searches over fewer rows run their passes on the driver. Even at 1M rows the executor path
# cost ~2x the driver's CPU on 2 cores (bench/RESULTS.md, session "sparkhist"); below, the
# fixed part (the rows' trip, a job per lattice level) weighs more, and `forensics` searches
# every agent and strategy class, most of them small: what the executors take over is the
# passes of the large populations, whose rows would otherwise be read once per combination
# on the driver's one core.
MIN_ROWS = 100_000

F64 = npt.NDArray[np.float64]
Hist = tuple[F64, "F64 | None"]
_PARTIAL = pa.schema([("part", pa.int64()), ("combo", pa.int64()), ("sums", pa.binary()),
                      ("max", pa.binary())])


def _cells(combo: Sequence[str], dims: Mapping[str, int]) -> int:
    return int(np.prod([dims[c] for c in combo]))


def _partial(combos: Sequence[Sequence[str]], dims: Mapping[str, int], weights: Sequence[str],
             maximum: str | None, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """One partition's histogram of each combo (in a Python worker), one row each."""
    from pyspark import TaskContext

    acc: list[tuple[F64, F64 | None]] = [
        (np.zeros((_cells(c, dims), len(weights)), np.float64),
         np.zeros(_cells(c, dims), np.float64) if maximum is not None else None)
        for c in combos]
    for b in batches:
        if not b.num_rows:
            continue
        cols = {n: b.column(n).to_numpy(zero_copy_only=False) for n in b.schema.names}
        ws = [np.asarray(cols[w], np.float64) for w in weights]
        e = None if maximum is None else np.asarray(cols[maximum], np.float64)
        for combo, (sums, top) in zip(combos, acc, strict=True):
            s, m = histogram([cols[c] for c in combo], [dims[c] for c in combo], ws, e)
            sums += s
            if top is not None and m is not None:
                np.maximum(top, m, out=top)
    ctx = TaskContext.get()
    part = ctx.partitionId() if ctx is not None else 0
    yield pa.RecordBatch.from_pylist(
        [{"part": part, "combo": i, "sums": sums.tobytes(),
          "max": None if top is None else top.tobytes()} for i, (sums, top) in enumerate(acc)],
        schema=_PARTIAL)


def histograms(df: Any, combos: Sequence[Sequence[str]], dims: Mapping[str, int],
               weights: Sequence[str], maximum: str | None = None) -> list[Hist]:
    """`slices.histogram` of the rows of `df` for each combo of code columns (`dims`: each
    code column's number of codes), with the sums of `weights` and the maxima of `maximum`:
    one pass over the rows on the executors, each partition's histograms added up on the
    driver in partition order. One (cells × weights sums, cell maxima or None) per combo,
    cells row-major over the combo's columns."""
    from pyspark.sql.pandas.types import from_arrow_schema

    cols = list(dict.fromkeys([*(c for combo in combos for c in combo), *weights,
                               *([maximum] if maximum else [])]))

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _partial(combos, dims, weights, maximum, batches)

    rows = df.select(*cols).mapInArrow(run, from_arrow_schema(_PARTIAL)).toArrow().to_pylist()
    out: list[Hist] = [
        (np.zeros((_cells(c, dims), len(weights)), np.float64),
         np.zeros(_cells(c, dims), np.float64) if maximum is not None else None)
        for c in combos]
    for r in sorted(rows, key=lambda r: (int(r["part"]), int(r["combo"]))):
        sums, top = out[int(r["combo"])]
        sums += np.frombuffer(r["sums"], np.float64).reshape(sums.shape)
        if top is not None:
            np.maximum(top, np.frombuffer(r["max"], np.float64), out=top)
    return out


def passes_on(spark: Any, min_rows: int = MIN_ROWS) -> PassesOn:
    """`slices.PassesOn` on `spark`'s executors, for searches over at least `min_rows` rows
    (smaller ones stay on the driver: None). A search's rows (its features' codes and its
    weights, e last) become a DataFrame kept on the executors in `defaultParallelism`
    partitions (the shuffle partitions on Spark Connect); each call is one pass of
    `histograms` over them, in the job group `JOB_GROUP` (none on Connect)."""

    def on(features: Sequence[Feature], weights: Sequence[F64], e: F64) -> Passes | None:
        if e.size < min_rows:
            return None
        codes = {f"c{i}": np.asarray(f.codes, np.int32) for i, f in enumerate(features)}
        ws = {f"w{j}": np.asarray(w, np.float64) for j, w in enumerate(weights)}
        rows = pa.table({**codes, **ws, "e": np.asarray(e, np.float64)})
        sc = spark_context(spark)
        parts = (sc.defaultParallelism if sc is not None
                 else int(spark.conf.get("spark.sql.shuffle.partitions")))
        df = spark.createDataFrame(rows).repartition(parts).localCheckpoint(eager=True)
        dims = {f"c{i}": f.n_codes for i, f in enumerate(features)}

        def passes(combos: Sequence[tuple[int, ...]], with_max: bool) -> list[Hist]:
            def run() -> list[Hist]:
                return histograms(df, [[f"c{i}" for i in c] for c in combos], dims, list(ws),
                                  "e" if with_max else None)

            if sc is None:  # Spark Connect: no job groups on the client
                return run()
            before = {k: sc.getLocalProperty(k) for k in _GROUP_PROPERTIES}
            sc.setJobGroup(JOB_GROUP, "slice search histograms")
            try:
                return run()
            finally:
                for k, v in before.items():
                    sc.setLocalProperty(k, v)

        return passes

    return on
