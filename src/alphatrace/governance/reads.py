"""Where the gates read the ledger: the store's DuckDB connection, or another engine.

`api.Gates` decides, walks and records in one place; only these reads differ between the
embedded engine (`StoreReads`, the functions of `gates`, `replay` and `runs` on the store) and
Spark (`engines.spark.governance.SparkReads`, over an export). Everything else (the decision
log, the lifecycle, the progress marks) stays in the store. The few queries of the backtest's
report are written once over the dialect (`dialect`) and run where the ledger is (`query`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Protocol

import duckdb
import pyarrow as pa

from alphatrace.engines.dialect import Dialect
from alphatrace.engines.duckdb import DUCKDB
from alphatrace.governance import replay
from alphatrace.governance.gates import Assessment, Members, assess, members
from alphatrace.governance.lifecycle import SubjectKey
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.runs import data_as_of, eligible_sql, needed_columns
from alphatrace.store.connection import registered
from alphatrace.store.statements import query_table


class Reads(replay.RunReads, Protocol):
    """The ledger reads of an evaluation (one or a catch-up), a backtest and the audit's
    re-computation."""

    @property
    def dialect(self) -> Dialect:
        """The SQL dialect `runs_sql` and `query` speak."""
        ...

    def runs_sql(self, gp: GovernancePolicy, metric_names: list[str]) -> str:
        """Every run that counts at some time (`runs.eligible_sql` with no as-of), with the
        ledger columns `metric_names` read: a relation for `query`."""
        ...

    def query(self, sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
        """The rows of `sql` (in `dialect`) run where the ledger is, with `tables` readable by
        name (pass times as epoch microseconds: `dialect.ts_from_us`)."""
        ...

    def as_of(self, at_least: dt.datetime | None = None) -> dt.datetime | None:
        """The newest knowledge time in the ledger (the default as-of). `at_least`: a time
        it is probably not before (the last catch-up's), which a reader may use to read less;
        the answer does not depend on it."""
        ...

    def plan(self, gp: GovernancePolicy, marks: Mapping[SubjectKey, dt.datetime],
             target: dt.datetime, after: int | None = None) -> replay.Plan:
        """`replay.plan`: every subject's assessments at its points after its mark; a subject
        that a run changed after `after` (a `ledger_changes` seq) entered or left is judged at
        its mark."""
        ...

    def members(self, as_of: dt.datetime) -> Members:
        """`gates.members`: the cascade targets of killed strategies at `as_of`."""
        ...


class StoreReads:
    """The embedded engine: the ledger of the store's connection."""

    dialect: Dialect = DUCKDB

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def runs_sql(self, gp: GovernancePolicy, metric_names: list[str]) -> str:
        sql, params = eligible_sql(self.con, gp, needed_columns(self.con, metric_names), None)
        assert not params  # no as-of: nothing to bind
        return sql

    def query(self, sql: str, tables: Mapping[str, pa.Table]) -> pa.Table:
        with ExitStack() as stack:
            for name, tbl in tables.items():
                stack.enter_context(registered(self.con, name, tbl))
            return query_table(self.con, sql)

    def as_of(self, at_least: dt.datetime | None = None) -> dt.datetime | None:
        return data_as_of(self.con, at_least)

    def assess(self, gp: GovernancePolicy, as_of: dt.datetime,
               only: list[SubjectKey] | None = None) -> list[Assessment]:
        return assess(self.con, gp, as_of, only)

    def plan(self, gp: GovernancePolicy, marks: Mapping[SubjectKey, dt.datetime],
             target: dt.datetime, after: int | None = None) -> replay.Plan:
        return replay.plan(self.con, gp, marks, target, after)

    def members(self, as_of: dt.datetime) -> Members:
        return members(self.con, as_of)

    def membership(self, target: dt.datetime) -> replay.Membership:
        return replay.Membership.load(self.con, target)
