"""`alphatrace reconcile`, `alphatrace ledger`, `alphatrace agents`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import duckdb
import pyarrow as pa
import typer

from alphatrace import metrics
from alphatrace.cli import names
from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    console,
    emit,
    err_console,
    handle_errors,
    open_store,
    print_json,
)
from alphatrace.cli.engine import root_engine
from alphatrace.errors import InputError
from alphatrace.ledger import policy as rpolicy
from alphatrace.ledger.api import agent_summary, ledger_rows
from alphatrace.ledger.query import STATUSES, summary_line
from alphatrace.ledger.reconcile import newest_file_id
from alphatrace.ledger.reconcile import reconcile as run_reconcile

TABLE_COLUMNS = ["run_id", "agent", "ts", "symbols", "direction", "status", "realized_pnl_bps",
                 "pnl_source", "pnl_usd", "cost_usd", "net_usd"]
AGENT_COLUMNS = ["agent", *metrics.summary(metrics.View.TABLE)]
# Most important first: dropped from the end when a terminal is too narrow for every column
# (a column left out here would be dropped first).
AGENT_PRIORITY = ["agent", "runs", "net_usd", "mean_net_bps", "hit_rate", "sharpe",
                  "max_drawdown_bps", "total_pnl_usd", "total_cost_usd", "pnl_per_cost",
                  "realized_runs", "profit_factor", "median_net_bps", "max_losing_streak",
                  "mean_latency_ms"]
LEDGER_PRIORITY = ["run_id", "agent", "ts", "net_usd", "realized_pnl_bps", "status", "symbols",
                   "direction", "pnl_usd", "cost_usd", "pnl_source"]
DEFAULT_SHOWN = 50

PolicyOption = Annotated[
    Path | None,
    typer.Option("--policy", help="Policy file (YAML/TOML); its `reconcile:` section prices the "
                                  "legs. Default: the shipped policy."),
]


def register(app: typer.Typer) -> None:
    """Adds this area's commands to the app."""
    app.command("reconcile")(reconcile)
    app.command("ledger")(ledger)
    app.command("agents")(agents)


EngineOption = Annotated[str, typer.Option(
    "--engine", help="duckdb (the store) or spark: run on Spark over an export (--tables DIR), "
                     "writing Parquet to --out (docs/spark.md).")]
TablesOption = Annotated[Path | None, typer.Option(
    "--tables", help="With --engine spark: the folder `alphatrace export --to parquet` wrote.")]


@handle_errors
def reconcile(
    ctx: typer.Context,
    policy: PolicyOption = None,
    full: Annotated[bool, typer.Option("--full", help="Re-price every leg, not only new or "
                                                      "changed ones (same result).")] = False,
    engine: EngineOption = "duckdb",
    tables: TablesOption = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="With --engine spark: the folder to write `legs/` and `ledger/` "
                      "(Parquet directories, replaced) to, or a catalog namespace "
                      "(catalog.schema: tables `legs` and `ledger`).")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Price signals against market data (new or changed ones only) and rebuild the ledger."""
    cfg = rpolicy.load(policy)
    if root_engine(ctx, engine) == "spark":
        _spark_reconcile(tables, out, cfg, as_json)
        return
    if tables is not None or out is not None:
        raise InputError("--tables and --out go with --engine spark")
    with open_store(db) as store:
        if as_json:
            report = run_reconcile(store, cfg, full=full)
        else:
            with err_console.status("reconciling") as status:
                report = run_reconcile(store, cfg, full=full,
                                       step=lambda msg: status.update(msg))
    data = report.to_dict()
    if as_json:
        print_json(data)
        return
    emit(data, False, title="reconcile")


def _spark_reconcile(tables: Path | None, out: Path | None, cfg: rpolicy.ReconcileConfig,
                     as_json: bool) -> None:
    if tables is None or out is None:
        raise InputError("--engine spark needs --tables DIR (an export) and --out DIR")
    from alphatrace.engines.spark.run import reconcile_to_parquet

    data = {"engine": "spark", **reconcile_to_parquet(tables, out, cfg), "out": str(out)}
    if as_json:
        print_json(data)
        return
    emit(data, False, title="reconcile (Spark)")


def _stale_note(con: duckdb.DuckDBPyConnection) -> str | None:
    """A reminder when events or market files arrived after the last reconcile."""
    rows = con.execute("SELECT max_file_id FROM reconcile_log ORDER BY seq DESC LIMIT 1").fetchall()
    if not rows:
        return "nothing reconciled yet: run `alphatrace reconcile`"
    if newest_file_id(con) > int(rows[0][0] or 0):
        return "files were ingested or imported since the last reconcile: run `alphatrace reconcile`"
    return None


@handle_errors
def ledger(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's runs.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="Only this strategy.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Runs at or after this time: ISO 8601 (UTC if no offset), epoch "
                        "seconds or ms, or a span back from now (7d).")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help=f"Only runs with this status: {' | '.join(STATUSES)}.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Write every selected row to a .parquet or .csv file (with --engine "
                      "spark: a Parquet folder, or a catalog namespace: table `ledger`).")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", help="Rows shown in the table (the newest); --json and --out write all.")]
    = DEFAULT_SHOWN,
    engine: EngineOption = "duckdb",
    tables: TablesOption = None,
    policy: PolicyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One row per run (docs/architecture.md §Ledger), ordered by (ts, run_id), with a status summary line."""
    if root_engine(ctx, engine) == "spark":
        _spark_ledger(tables, out, policy, as_json)
        return
    if tables is not None or policy is not None:
        raise InputError("--tables and --policy go with --engine spark")
    if out is not None and as_json:
        raise InputError("use either --json or --out, not both")
    if out is not None and out.suffix.lower() not in (".parquet", ".csv"):
        raise InputError(f"--out {out}: the file name must end in .parquet or .csv")
    with open_store(db, read_only=True) as store:
        names.check(store.con, agent, strategy)
        result = ledger_rows(store.con, agent, strategy, since, status)
        note = None if as_json else _stale_note(store.con)
    if as_json:
        print_json(result.to_pylist())
        return
    if out is not None:
        _write(result.table, out)
        console.print(f"wrote {len(result):,} runs to {out}")
        return
    rows = result.to_pylist()
    shown = rows[-limit:] if limit > 0 else []
    emit(shown, False, columns=TABLE_COLUMNS, title="ledger", priority=LEDGER_PRIORITY)
    if len(shown) < len(rows):
        console.print(f"[dim]showing the newest {len(shown):,} of {len(rows):,} runs; "
                      "--json or --out for all[/]")
    console.print(summary_line(result.summary), highlight=False)
    if note:
        console.print(f"[yellow]{note}[/]")


def _spark_ledger(tables: Path | None, out: Path | None, policy: Path | None,
                  as_json: bool) -> None:
    if tables is None or out is None:
        raise InputError("--engine spark needs --tables DIR (an export) and --out DIR")
    from alphatrace.engines.spark.run import ledger_to_parquet

    rows = ledger_to_parquet(tables, out, rpolicy.load(policy))
    if as_json:
        print_json({"engine": "spark", "runs": rows, "out": str(out)})
    else:
        console.print(f"wrote {rows:,} runs to {out} (Spark)")


def _write(table: pa.Table, out: Path) -> None:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        if out.suffix.lower() == ".parquet":
            pq.write_table(table, out)
        else:
            pcsv.write_csv(table, out)
    except OSError as e:
        raise InputError(f"--out {out}: cannot write: {e}") from None


@handle_errors
def agents(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Per-agent summary: hit rate, net bps, USD, Sharpe, drawdown, latency, cost efficiency."""
    with open_store(db, read_only=True) as store:
        rows = agent_summary(store.con)
    emit(rows, as_json, columns=AGENT_COLUMNS, title="agents", priority=AGENT_PRIORITY)
