"""DuckDB's spelling of `engines.dialect.Dialect`."""

from __future__ import annotations

from alphatrace.engines.dialect import TS_TEXT, type7_sql
from alphatrace.sql import lit


class DuckDBDialect:
    name = "duckdb"

    def exact_sum(self, expr: str, where: str | None = None) -> str:
        # `list_sum` adds a list's values in order, from the first; `list` keeps NULLs, which
        # sort first and which `list_sum` skips.
        filt = f" FILTER (WHERE {where})" if where else ""
        return f"list_sum(list_sort(list({expr}){filt}))"

    def exact_mean(self, expr: str) -> str:
        return f"({self.exact_sum(expr)} / count({expr}))"

    def quantile(self, expr: str, q: float) -> str:
        # the sorted values bound once to `s_` (a one-element list mapped by a lambda)
        body = type7_sql("len(s_)", "s_[{i}]", q)
        return (f"list_transform([list_sort(list(({expr}) + CAST(0.0 AS DOUBLE)) "
                f"FILTER (WHERE ({expr}) IS NOT NULL))], "
                f"lambda s_: {body})[1]")

    def epoch_us(self, ts: str) -> str:
        return f"epoch_us({ts})"

    def ts_from_us(self, us: str) -> str:
        return f"make_timestamp({us})"

    def format_ts(self, ts: str) -> str:
        return f"strftime({ts}, {lit(TS_TEXT)})"

    def join_array(self, expr: str, sep: str) -> str:
        return f"array_to_string({expr}, {lit(sep)})"

    def first_by(self, expr: str, order: str) -> str:
        return f"first({expr} ORDER BY {order})"

    def sorted_distinct_join(self, expr: str, sep: str = ",") -> str:
        return (f"array_to_string(list_sort(list_distinct(list({expr}))), {lit(sep)})")

    def sorted_labels(self, key: str, label: str, where: str) -> str:
        return (f"coalesce(array_to_string(list_transform(list_sort(list_distinct("
                f"list({{'s': {key}, 'label': {label}}}) FILTER (WHERE {where}))), "
                f"lambda lab_: lab_.label), ','), '')")

    def semi_join(self) -> str:
        return "SEMI JOIN"

    def anti_join(self) -> str:
        return "ANTI JOIN"

    def materialized(self) -> str:
        return "MATERIALIZED "

    def any_value(self, expr: str) -> str:
        return f"any_value({expr})"


DUCKDB = DuckDBDialect()
