"""Where the gates read the ledger: the store's DuckDB connection, or another engine.

`api.Gates` decides, walks and records in one place; only these reads differ between the
embedded engine (`StoreReads`, the functions of `gates`, `replay` and `runs` on the store) and
Spark (`engines.spark.governance.SparkReads`, over an export). Everything else (the decision
log, the lifecycle, the progress marks) stays in the store.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol

import duckdb

from alphatrace.governance import replay
from alphatrace.governance.gates import Assessment, Members, assess, members
from alphatrace.governance.lifecycle import SubjectKey
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.runs import data_as_of


class Reads(replay.RunReads, Protocol):
    """The ledger reads of an evaluation (one or a catch-up)."""

    def as_of(self) -> dt.datetime | None:
        """The newest knowledge time in the ledger (the default as-of)."""
        ...

    def plan(self, gp: GovernancePolicy, marks: Mapping[SubjectKey, dt.datetime],
             target: dt.datetime) -> replay.Plan:
        """`replay.plan`: every subject's assessments at its points after its mark."""
        ...

    def members(self, as_of: dt.datetime) -> Members:
        """`gates.members`: the cascade targets of killed strategies at `as_of`."""
        ...


class StoreReads:
    """The embedded engine: the ledger of the store's connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def as_of(self) -> dt.datetime | None:
        return data_as_of(self.con)

    def assess(self, gp: GovernancePolicy, as_of: dt.datetime,
               only: list[SubjectKey] | None = None) -> list[Assessment]:
        return assess(self.con, gp, as_of, only)

    def plan(self, gp: GovernancePolicy, marks: Mapping[SubjectKey, dt.datetime],
             target: dt.datetime) -> replay.Plan:
        return replay.plan(self.con, gp, marks, target)

    def members(self, as_of: dt.datetime) -> Members:
        return members(self.con, as_of)

    def membership(self, target: dt.datetime) -> replay.Membership:
        return replay.Membership.load(self.con, target)
