"""The ledger side of a live pass whose round brought telemetry alone (an OTLP stream).

Such telemetry belongs to runs whose signals come later or never. When `reconcile` knows that
nothing else changed since the last reconcile — no signal and no pnl event is new, every
event it counted is still there, the market is the one it priced against, same policy and
aliases (`reconcile._telemetry_only`) — pricing again would give every leg it left, and only
the runs of the new telemetry can have another ledger row. A run with telemetry alone has no
leg and no pnl: its row is a projection of its telemetry rows (`build.telemetry_only_sql`),
with no pricing, symbol resolution or join with legs and pnl, and no subject to add (it has
no realized PnL). A run new to the ledger has nothing to delete.

So the pass costs what the new telemetry is, plus a few statements: one that finds the runs
of the new rows and which of them the ledger already holds (a scan of the ledger's run ids
when they are not sorted, skipped when the caller's `known_runs` shows it holds none), the
one that writes their rows, and the `reconcile_log` row. No
`ledger_changes`: such a row counts for no window before or after. A run the ledger holds
with telemetry alone (its spans came in several rounds) has its row deleted and built again
from all its telemetry; with the caller's `known_runs`, its row is found within the `ts` span
the set keeps and its telemetry read from the file it keeps (at 1M runs with UUID ids, a
round that adds 1,000 runs and more telemetry of 1,000 held ones: 37 against 126 ms a pass;
bench/RESULTS.md, 2026-12-07 20:40). When a run of the new telemetry already has a leg or a
pnl event in the ledger, its row depends on them: the pass answers None having written
nothing, and the caller runs the full incremental pass.
"""

from __future__ import annotations

import duckdb
import numpy as np

from alphatrace.ledger.build import LEDGER_COLUMNS, telemetry_only_sql
from alphatrace.ledger.known_runs import ROW_TS, rows_since, ts_within
from alphatrace.store.statements import parsed

_COLS = ", ".join(LEDGER_COLUMNS)


# The telemetry rows from files after the last reconcile's newest (parameter `seen`).
_NEW_ROWS = "(SELECT * FROM telemetry WHERE file_id > $seen)"

# The runs of those rows, each with its number of rows.
_PER_RUN = f"(SELECT run_id, count(*) AS n FROM {_NEW_ROWS} GROUP BY run_id)"

# The runs of those rows: how many, how many the ledger holds, how many of those have a leg or
# a pnl event, and the most rows one run has among the new rows. The ledger's rows are read
# where a `ts` condition holds (`known_runs.ts_within`): `true`, or the span of the held runs'.
_CHECK = f"""
SELECT count(*), count(l.run_id), count(*) FILTER (WHERE l.n_legs > 0 OR l.n_pnl > 0),
       coalesce(max(r.n), 0)
FROM {_PER_RUN} r
LEFT JOIN (SELECT run_id, n_legs, n_pnl FROM ledger WHERE {{within}}) l ON l.run_id = r.run_id"""

# The same when the ledger is known to hold none of those runs.
_CHECK_NEW = f"SELECT count(*), 0, 0, coalesce(max(n), 0) FROM {_PER_RUN}"


# What the rows written give the caller's set of known runs (`known_runs.KnownRuns.stage`).
_WRITTEN = f" RETURNING hash(run_id) AS h, {ROW_TS} AS t"


def build(con: duckdb.DuckDBPyConnection, policy_hash: str, seen: int, all_new: bool = False,
          span: tuple[int, int] | None = None, since: int = 0
          ) -> tuple[int, int, dict[str, np.ndarray]] | None:
    """Write the ledger rows of the runs of telemetry from files after `seen` (the last
    reconcile's newest) and return how many rows were built, by how many the ledger grew,
    and each row's `hash(run_id)` (`h`) and `ts` (`t`, epoch µs; `known_runs.NO_TS`: none).
    None (nothing written): some of those runs has a leg or a pnl event. Nothing goes to
    `ledger_changes`: such a row counts for no window before or after (`changes.record`).
    `all_new`: the ledger holds none of those runs (the ledger is not read to find out).
    `span`: the `ts` span of the rows of those runs the ledger may hold (`KnownRuns.span`;
    None: not known), within which their rows are found and deleted; `since`: a file id no
    newer than any of their telemetry rows (`KnownRuns.find`; 0: none known), from which
    those are read. With UUID run ids both spare a read of the whole ledger and telemetry."""
    at = {"seen": int(seen)}
    within = ts_within(span)
    check = (parsed(con, _CHECK_NEW) if all_new else
             parsed(con, _CHECK.format(within=within)) if span is None
             else _CHECK.format(within=within))  # a text of its own each pass: not kept
    runs, held, other, most = (int(x) for x in con.execute(check, at).fetchall()[0])
    if other:
        return None
    if held == 0:  # runs new to the ledger: their rows are the new rows' projection
        written = con.execute(parsed(
            con, f"INSERT INTO ledger ({_COLS}) SELECT {_COLS} FROM ("
                 f"{telemetry_only_sql(policy_hash, _NEW_ROWS, most == 1)}){_WRITTEN}"),
            at).fetchnumpy()
        return runs, runs, written
    # some runs had telemetry alone before: their rows are rebuilt from all their telemetry
    con.execute(f"CREATE OR REPLACE TEMP TABLE _tp_runs AS SELECT DISTINCT run_id FROM "
                f"{_NEW_ROWS}", at)
    con.execute(f"DELETE FROM ledger WHERE run_id IN (SELECT run_id FROM _tp_runs) AND {within}")
    rows = f"(SELECT * FROM {rows_since('telemetry', since)} SEMI JOIN _tp_runs USING (run_id))"
    written = con.execute(f"INSERT INTO ledger ({_COLS}) SELECT {_COLS} FROM ("
                          f"{telemetry_only_sql(policy_hash, rows)}){_WRITTEN}").fetchnumpy()
    con.execute("DROP TABLE _tp_runs")
    return runs, runs - held, written
