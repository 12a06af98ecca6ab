"""Spark's spelling of `Dialect.quantile` gives the numpy kernel's quantiles
(`alphatrace.quantiles`) bit for bit, as DuckDB's does (tests/test_quantiles.py): groups of
0 to 40 values over many magnitudes, with NULLs, ties, -0.0 beside 0.0 and NaN, at fixed and
random q."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest

from alphatrace.engines.spark.dialect import SPARK
from alphatrace.quantiles import quantile

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`


def _bits(v: float | None) -> Any:
    return None if v is None else "nan" if math.isnan(v) else struct.pack("<d", v)


def test_spark_quantile_is_the_kernel_bit_for_bit(spark: Any) -> None:
    rng = np.random.default_rng(7)
    rows: list[tuple[int, float | None]] = []
    groups: dict[int, list[float]] = {}
    for g in range(300):
        n = int(rng.integers(0, 41))
        xs = (rng.standard_normal(n) * 10.0 ** int(rng.integers(-6, 9))).tolist()
        if n > 3:
            xs[1] = xs[0]  # a tie
        if n > 5:
            xs[2] = -0.0
            xs[4] = 0.0
        if n > 30:
            xs[5] = float("nan")
        groups[g] = xs
        rows += [(g, x) for x in xs] + [(g, None)]  # every group has a NULL
    qs = [0.0, 0.1, 0.5, 0.9, 1.0, *(float(q) for q in rng.random(3))]
    spark.createDataFrame(rows, "g INT, v DOUBLE").createOrReplaceTempView("qt")
    cols = ", ".join(f"{SPARK.quantile('v', q)} AS q{i}" for i, q in enumerate(qs))
    got = {r["g"]: [_bits(r[f"q{i}"]) for i in range(len(qs))]
           for r in spark.sql(f"SELECT g, {cols} FROM qt GROUP BY g").collect()}
    want = {g: [_bits(quantile(xs, q)) if xs else None for q in qs] for g, xs in groups.items()}
    assert got == want
    assert sum(v is None for vs in want.values() for v in vs) == len(qs) * sum(
        not xs for xs in groups.values())
