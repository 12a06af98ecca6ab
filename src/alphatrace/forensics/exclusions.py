"""Runs that do not count for governance, with the reason kept per run (issue 4.4).

Rules are declarative (`field`, `op`, `value` conditions, all of which must hold) rather than
expressions: they compile to one parameterised SQL predicate over the ledger, cannot inject
SQL, and do not depend on the governance expression language. Rules are applied in order; a
run is attributed to the first rule it matches. Forensics and gates decide which runs count
through the one predicate `included_sql`.
"""

from __future__ import annotations

from typing import Any

import duckdb

from alphatrace.forensics.config import FIELDS, Condition, ExclusionRule
from alphatrace.ledger import changes
from alphatrace.store.connection import has_table


def included_sql(relation: str) -> str:
    """SQL true for the runs of `relation` (a table or alias with run_id) that count: those
    without an exclusion. NOT EXISTS, not NOT IN: a NULL run_id in the exclusions cannot make
    every run drop out, and DuckDB plans it as an anti-join."""
    return (f"NOT EXISTS (SELECT 1 FROM run_exclusions x "
            f"WHERE x.run_id = {relation}.run_id)")


INCLUDED_SQL = included_sql("ledger")  # for the queries that read `FROM ledger`


def condition_sql(c: Condition) -> tuple[str, list[Any]]:
    col = f'"{FIELDS[c.field]}"'
    if c.op == "is_null":
        return f"{col} IS NULL", []
    if c.op == "not_null":
        return f"{col} IS NOT NULL", []
    if c.op in ("in", "not_in"):
        assert isinstance(c.value, list)
        marks = ", ".join("?" for _ in c.value)
        neg = "NOT " if c.op == "not_in" else ""
        return f"coalesce({col} {neg}IN ({marks}), false)", list(c.value)
    op = "=" if c.op == "==" else "<>" if c.op == "!=" else c.op
    return f"coalesce({col} {op} ?, false)", [c.value]


def rule_sql(rule: ExclusionRule) -> tuple[str, list[Any]]:
    parts, params = [], []
    for c in rule.when:
        s, p = condition_sql(c)
        parts.append(s)
        params.extend(p)
    return " AND ".join(parts), params


def apply(con: duckdb.DuckDBPyConnection, rules: list[ExclusionRule], policy_hash: str) -> dict[str, Any]:
    """Rewrite `run_exclusions` from `rules` (the caller owns the transaction). The runs whose
    exclusion this applied or lifted are recorded in `ledger_changes` (`ledger.changes`): the
    gates' catch-up judges their subjects again at their marks, as a changed ledger row."""
    con.execute("CREATE OR REPLACE TEMP TABLE _ex_before AS SELECT run_id FROM run_exclusions")
    con.execute("DELETE FROM run_exclusions")
    counts: dict[str, int] = {}
    for rule in rules:
        where, params = rule_sql(rule)
        con.execute(
            f"""INSERT INTO run_exclusions (run_id, rule, reason, policy_hash)
                SELECT run_id, ?, ?, ? FROM ledger
                WHERE {where} AND run_id NOT IN (SELECT run_id FROM run_exclusions)
                ORDER BY ts, run_id""",
            [rule.name, rule.reason, policy_hash, *params],
        )
        counts[rule.name] = int(con.execute(
            "SELECT count(*) FROM run_exclusions WHERE rule = ?", [rule.name]).fetchall()[0][0])
    if has_table(con, "ledger_changes"):
        changes.record_exclusions(
            con, "((SELECT run_id FROM _ex_before EXCEPT SELECT run_id FROM run_exclusions) "
                 "UNION ALL (SELECT run_id FROM run_exclusions EXCEPT SELECT run_id FROM _ex_before))")
    con.execute("DROP TABLE _ex_before")
    total = int(con.execute("SELECT count(*) FROM run_exclusions").fetchall()[0][0])
    return {"excluded": total, "rules": counts, "policy_hash": policy_hash}


def listing(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = con.sql(
        """SELECT x.run_id, l.agent, l.ts, x.rule, x.reason, x.policy_hash
           FROM run_exclusions x LEFT JOIN ledger l USING (run_id)
           ORDER BY l.ts NULLS LAST, x.run_id""").to_arrow_table().to_pylist()
    return rows
