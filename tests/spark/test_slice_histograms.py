"""The slice search's histograms on Spark's executors (`engines.spark.slices.histograms`): the
kernel (`forensics.slices.histogram`) per partition, partials added on the driver, equal to
the kernel over all rows bit for bit, for generated rows split over 1, 3 and 7 partitions
(counts, sums of the grid weights, maxima; two feature combinations in one pass)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from alphatrace.forensics.slices import histogram, on_grid

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`


def _rows(n: int) -> pa.Table:
    rng = np.random.default_rng(11)
    y = rng.normal(0, 1, n) * np.exp(rng.normal(0, 6, n))  # magnitudes over ~15 decades
    e = on_grid(np.maximum(0.0, -y))
    yc = on_grid(y - float(on_grid(y).sum()) / n)
    return pa.table({"a": rng.integers(0, 5, n).astype(np.int32),
                     "b": rng.integers(0, 7, n).astype(np.int32),
                     "c": rng.integers(0, 3, n).astype(np.int32),
                     "one": np.ones(n), "e": e, "y": yc, "y2": on_grid(yc * yc)})


@pytest.mark.parametrize("parts", [1, 3, 7])
def test_executor_histograms_equal_the_kernel(spark: Any, parts: int) -> None:
    from alphatrace.engines.spark.slices import histograms

    tbl = _rows(20_000)
    cols = {n: tbl.column(n).to_numpy() for n in tbl.column_names}
    weights = ["one", "e", "y", "y2"]
    want, want_max = histogram([cols["a"], cols["b"], cols["c"]], (5, 7, 3),
                               [cols[w] for w in weights], cols["e"])
    df = spark.createDataFrame(tbl.to_pandas()).repartition(parts)
    assert df.rdd.getNumPartitions() == parts
    dims = {"a": 5, "b": 7, "c": 3}
    (got, got_max), (pair, pair_max) = histograms(df, [["a", "b", "c"], ["c", "a"]], dims,
                                                  weights, "e")
    assert got_max is not None and pair_max is not None
    assert got.tobytes() == want.tobytes() and got_max.tobytes() == want_max.tobytes()
    assert int(got[:, 0].sum()) == 20_000
    want, want_max = histogram([cols["c"], cols["a"]], (3, 5), [cols[w] for w in weights],
                               cols["e"])
    assert pair.tobytes() == want.tobytes() and pair_max.tobytes() == want_max.tobytes()
    # a plain double sum would not do: the raw y added in this split differs somewhere
    raw = np.asarray(cols["y"]) + np.exp(np.arange(20_000) % 50 - 25.0)
    parts_sum = sum(histogram([cols["a"][i::parts]], (5,), [raw[i::parts]])[0]
                    for i in range(parts))
    if parts > 1:
        assert parts_sum.tobytes() != histogram([cols["a"]], (5,), [raw])[0].tobytes()
