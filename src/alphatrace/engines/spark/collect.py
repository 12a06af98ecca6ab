"""Rows brought to the driver, with Spark's size limit turned into an error that says what to do.

Spark refuses a job whose results add up to more than `spark.driver.maxResultSize` (1 GiB by
default) with a Py4J `SparkException` and a Java stack. `forensics --engine spark` collects
every selected run's features to the driver (~120 MB per million runs, docs/spark.md), so at
10M runs it meets that limit (bench/RESULTS.md, session of 2026-12-04 19:24); the user needs
to know which setting to raise, or how to select fewer runs.
"""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa

from alphatrace.errors import InputError

_TOO_BIG = re.compile(r"Total size of serialized results of \d+ tasks \(([^)]+)\) is bigger "
                      r"than spark\.driver\.maxResultSize \(([^)]+)\)")


def too_big(message: str) -> tuple[str, str] | None:
    """(collected, limit) as Spark spells them when `message` is its maxResultSize refusal."""
    m = _TOO_BIG.search(message)
    return None if m is None else (m.group(1), m.group(2))


def to_driver(df: Any, what: str, narrow: str) -> pa.Table:
    """`df.toArrow()`; Spark's maxResultSize refusal becomes an InputError naming `what` was
    collected, the setting, and `narrow` (how to select fewer rows)."""
    try:
        return df.toArrow()
    except Exception as e:
        sizes = too_big(str(e))
        if sizes is None:
            raise
        raise InputError(
            f"{what} reached {sizes[0]} on the driver, above spark.driver.maxResultSize "
            f"({sizes[1]}): raise it and the driver's memory (e.g. PYSPARK_SUBMIT_ARGS="
            f"\"--driver-memory 8g --conf spark.driver.maxResultSize=4g pyspark-shell\", or "
            f"the cluster's settings), or {narrow}") from None
