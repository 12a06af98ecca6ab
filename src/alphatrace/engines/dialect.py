"""The SQL primitives DuckDB and Spark spell differently, as one small interface.

A SQL builder writes everything else in the subset both engines share (explicit `NULLS
FIRST/LAST`, no engine-specific functions) and asks the dialect for the rest. Each method
returns SQL text; none runs anything. The two implementations live in `engines.duckdb` and
`engines.spark` (text only: building Spark SQL needs no pyspark).
"""

from __future__ import annotations

from typing import Protocol

# A timestamp written the way reasons and messages show it: 2025-01-01T08:00:00Z.
TS_TEXT = "%Y-%m-%dT%H:%M:%SZ"


class Dialect(Protocol):
    """The primitives of one SQL dialect (arguments and results are SQL text)."""

    name: str

    def exact_sum(self, expr: str, where: str | None = None) -> str:
        """The deterministic float sum: the non-NULL terms sorted by value, then added one by
        one to +0.0, the smallest first (NULL over no terms). Both engines add the same terms in the
        same order, so the result does not depend on how rows were split between threads or
        executors, nor on the engine."""
        ...

    def exact_mean(self, expr: str) -> str:
        """`exact_sum(expr) / count(expr)` (NULL over no terms)."""
        ...

    def quantile(self, expr: str, q: float) -> str:
        """The aggregate: the q-quantile of the non-NULL values of `expr` by the formula of
        `alphatrace.quantiles` (type 7), each step the same double operation (NULL over no
        values)."""
        ...

    def epoch_us(self, ts: str) -> str:
        """Microseconds since the epoch of a TIMESTAMP (UTC wall time), as BIGINT."""
        ...

    def ts_from_us(self, us: str) -> str:
        """The TIMESTAMP of a BIGINT of epoch microseconds."""
        ...

    def format_ts(self, ts: str) -> str:
        """A TIMESTAMP as text in the form `TS_TEXT`."""
        ...

    def join_array(self, expr: str, sep: str) -> str:
        """An array of text joined by `sep`, in array order (NULL elements skipped)."""
        ...

    def first_by(self, expr: str, order: str) -> str:
        """The aggregate: `expr` of the group's first row in `order` (an ORDER BY list; give
        a total order, ending in a unique key)."""
        ...

    def sorted_distinct_join(self, expr: str, sep: str = ",") -> str:
        """The aggregate: the distinct non-NULL text values of `expr`, sorted, joined by `sep`
        ('' over none)."""
        ...

    def sorted_labels(self, key: str, label: str, where: str) -> str:
        """The aggregate: the distinct (key, label) pairs of the rows where `where` holds,
        sorted by key then label, their labels joined by ',' ('' over none). `where` must
        exclude NULL keys and labels (the engines place NULLs inside a pair differently)."""
        ...

    def semi_join(self) -> str:
        """The join keyword keeping left rows with a match (each once, left columns only)."""
        ...

    def anti_join(self) -> str:
        """The join keyword keeping left rows without a match."""
        ...

    def materialized(self) -> str:
        """The CTE hint to compute a CTE once ('' where the engine has none)."""
        ...

    def any_value(self, expr: str) -> str:
        """The aggregate: one of the group's non-NULL values of `expr` (use only where they
        are all equal or there is one)."""
        ...


def type7_sql(size: str, at: str, q: float, index_type: str = "BIGINT") -> str:
    """`alphatrace.quantiles`' formula over a sorted list of length `size`; `at` spells its
    element at a 1-based index `{i}` (of SQL type `index_type`)."""
    h = f"(CAST({size} - 1 AS DOUBLE) * CAST({float(q)!r} AS DOUBLE))"
    j = f"CAST(floor({h}) AS {index_type})"
    lo, hi = at.format(i=f"{j} + 1"), at.format(i=f"{j} + 2")
    return (f"CASE WHEN {size} = 0 THEN NULL WHEN {h} = floor({h}) THEN {lo} "
            f"ELSE {lo} + ({hi} - {lo}) * ({h} - floor({h})) END")
