"""Spark SQL's spelling of `engines.dialect.Dialect` (text only: no pyspark import)."""

from __future__ import annotations

from alphatrace.engines.dialect import type7_sql
from alphatrace.sql import lit


class SparkDialect:
    name = "spark"

    def exact_sum(self, expr: str, where: str | None = None) -> str:
        # `collect_list` drops NULLs; `array_sort` puts NaN last like DuckDB's `list_sort`;
        # `aggregate` folds from the left, from +0.0 like DuckDB's `list_sum` (so a sum of
        # -0.0 alone is +0.0 in both).
        x = f"CASE WHEN {where} THEN {expr} END" if where else expr
        return (f"CASE WHEN count({x}) > 0 THEN aggregate(array_sort(collect_list({x})), "
                f"CAST(0 AS DOUBLE), (acc, v) -> acc + v) END")

    def exact_mean(self, expr: str) -> str:
        return f"({self.exact_sum(expr)} / count({expr}))"

    def quantile(self, expr: str, q: float) -> str:
        # collect_list leaves NULLs out; the sorted values bound once to `s_` by a lambda
        body = type7_sql("size(s_)", "element_at(s_, {i})", q, "INT")
        return (f"element_at(transform(array(array_sort(collect_list(({expr}) + CAST(0.0 AS DOUBLE)))), "
                f"s_ -> {body}), 1)")

    def epoch_us(self, ts: str) -> str:
        return f"unix_micros({ts})"

    def ts_from_us(self, us: str) -> str:
        return f"timestamp_micros({us})"

    def format_ts(self, ts: str) -> str:
        return f"date_format({ts}, \"yyyy-MM-dd'T'HH:mm:ss'Z'\")"

    def join_array(self, expr: str, sep: str) -> str:
        return f"array_join({expr}, {lit(sep)})"

    def first_by(self, expr: str, order: str) -> str:
        return f"min_by({expr}, struct({_sort_keys(order)}))"

    def sorted_distinct_join(self, expr: str, sep: str = ",") -> str:
        return f"array_join(array_sort(collect_set({expr})), {lit(sep)})"

    def sorted_labels(self, key: str, label: str, where: str) -> str:
        # Sorted, then equal neighbours dropped by comparing the fields. Not `collect_set` or
        # `array_distinct` on the structs: they compare a struct's bytes, and a struct built
        # from a joined row can carry stale padding bytes, so equal pairs came out twice
        # ('1h,1h' for a run with two 1h legs, on the demo data).
        pair = f"CASE WHEN {where} THEN named_struct('s', {key}, 'label', {label}) END"
        pairs = f"array_sort(collect_list({pair}))"
        last = "element_at(acc_, -1)"
        kept = (f"aggregate({pairs}, slice({pairs}, 1, 0), (acc_, p_) -> CASE WHEN size(acc_) > 0 "
                f"AND {last}.s = p_.s AND {last}.label = p_.label THEN acc_ "
                f"ELSE concat(acc_, array(p_)) END)")
        return f"array_join(transform({kept}, lab_ -> lab_.label), ',')"

    def semi_join(self) -> str:
        return "LEFT SEMI JOIN"

    def anti_join(self) -> str:
        return "LEFT ANTI JOIN"

    def materialized(self) -> str:
        return ""

    def any_value(self, expr: str) -> str:
        return f"any_value({expr}, true)"


def _sort_keys(order: str) -> str:
    """An ascending ORDER BY list (`x NULLS LAST, y, …`; give NULLS FIRST/LAST where a key can
    be NULL) as struct fields that sort the same way: each key after a flag placing its
    NULLs. DESC keys are refused (strings cannot be negated)."""
    fields = []
    for i, part in enumerate(p.strip() for p in order.split(",")):
        words = part.split()
        upper = [w.upper() for w in words]
        if "DESC" in upper:
            raise ValueError(f"first_by: DESC keys are not supported: {part!r}")
        nulls_first = upper[-2:] == ["NULLS", "FIRST"]
        if upper[-2:] in (["NULLS", "FIRST"], ["NULLS", "LAST"]):
            words = words[:-2]
        if words and words[-1].upper() == "ASC":
            words = words[:-1]
        key = " ".join(words)
        flag = f"({key}) IS NOT NULL" if nulls_first else f"({key}) IS NULL"
        fields.append(f"{flag} AS n{i}, ({key}) AS k{i}")
    return ", ".join(fields)


SPARK = SparkDialect()
