"""`alphatrace explain`, `alphatrace forensics`, `alphatrace exclusions apply|list`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from alphatrace.cli import names
from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    PolicyOption,
    console,
    emit,
    err_console,
    fmt,
    handle_errors,
    print_json,
)
from alphatrace.cli.engine import EngineOption, TablesOption, spark_tables


def register(app: typer.Typer) -> None:
    app.command("explain")(explain)
    app.command("forensics")(forensics)
    ex = typer.Typer(help="Runs excluded from governance, with the reason kept per run.",
                     no_args_is_help=True)
    ex.command("apply")(exclusions_apply)
    ex.command("list")(exclusions_list)
    app.add_typer(ex, name="exclusions")


def _db(db: Path | None, *, create: bool = False) -> Any:
    """The store; a read command (create=False) refuses to create a missing one."""
    from alphatrace.api import Database  # lazy: keeps `alphatrace --help` fast

    if not create:
        names.require_store(db)
    return Database(db)


@handle_errors
def explain(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run to explain.")],
    db: DbOption = None,
    policy: PolicyOption = None,
    engine: EngineOption = None,
    tables: TablesOption = None,
    as_json: JsonOption = False,
) -> None:
    """Why a run made or lost money: its dollar waterfall and the causes with their evidence.

    With --engine spark: the run, its history and legs are read from an export (--tables)."""
    lake = spark_tables(ctx, engine, tables)
    if lake is not None:
        from alphatrace.engines.spark.run import explain_doc

        doc = explain_doc(lake, run_id, policy=policy)
    else:
        d = _db(db)
        try:
            doc = d.explain(run_id, policy=policy)
        finally:
            d.close()
    if as_json:
        print_json(doc)
        return
    keys = ["run_id", "agent", "strategy", "ts", "symbols", "direction", "regime", "status",
            "latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "model",
            "realized_pnl_bps", "pnl_source", "net_usd"]
    emit({k: doc.get(k) for k in keys}, False, title=f"run {run_id}")
    emit(doc["waterfall"], False, columns=["step", "bps", "usd", "cumulative_usd"], title="waterfall")
    if doc["causes"]:
        rows = [{"cause": c["cause"], "evidence": ", ".join(
            f"{k}={fmt(v)}" for k, v in c["evidence"].items() if not isinstance(v, list | dict))}
            for c in doc["causes"]]
        emit(rows, False, columns=["cause", "evidence"], title="causes")
    if doc.get("excluded"):
        console.print(f"[yellow]excluded from governance[/]: {doc['excluded']['rule']} "
                      f"({doc['excluded']['reason']})")
    console.print(f"[bold]because[/]: {doc['because']}")


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    if not enabled:
        yield None
        return
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as prog:
        task = prog.add_task("loss clusters: slice search (populations or feature sets)",
                             total=None)

        def update(done: int, total: int) -> None:
            # the search is the first part; the clock keeps running through the change points
            what = ("change points per agent" if total and done >= total
                    else "loss clusters: slice search (populations or feature sets)")
            prog.update(task, completed=done, total=total, description=what)

        yield update


@handle_errors
def forensics(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option("--agent", help="Only this agent's runs.")] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="Only this strategy class.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", help="Runs at or after this time: ISO 8601 (UTC if no offset), epoch seconds "
                        "or ms, or a span back from now (7d).")] = None,
    holdout: Annotated[float | None, typer.Option(
        "--holdout", help="Find clusters on the earlier runs, confirm them on this share of the latest.")] = None,
    depth: Annotated[int | None, typer.Option("--depth", help="Predicates per cluster (1-4; policy default 2).")] = None,
    db: DbOption = None,
    policy: PolicyOption = None,
    engine: EngineOption = None,
    tables: TablesOption = None,
    as_json: JsonOption = False,
) -> None:
    """Loss clusters, change points per agent, and what broke first.

    With --engine spark: the runs are read from an export (--tables); change points run on
    Spark per agent, the slice search on the driver (docs/spark.md)."""
    lake = spark_tables(ctx, engine, tables)
    if lake is not None:
        from alphatrace.engines.spark.run import forensics_doc, ledger_names

        for scope, name in (("agent", agent), ("strategy", strategy)):
            if name is not None and name not in (known := ledger_names(lake, scope)):
                raise names.not_found(scope, name, known)
        with _progress(not as_json) as prog:
            doc = forensics_doc(lake, agent=agent, strategy=strategy, since=since,
                                holdout=holdout, depth=depth, policy=policy, progress=prog)
    else:
        d = _db(db)
        try:
            names.check(d.con, agent, strategy)
            with _progress(not as_json) as prog:
                doc = d.forensics(agent, strategy, since, holdout, depth, policy=policy,
                                  progress=prog)
        finally:
            d.close()
    if as_json:
        print_json(doc)
        return
    rows = []
    for i, c in enumerate(doc["clusters"], 1):
        r = {"#": i, "population": c.get("population") or "all runs",
             "when": " and ".join(p["text"] for p in c["predicates"]), "runs": c["runs"],
             "share": c["share"], "mean_in_bps": c["mean_in_bps"], "mean_out_bps": c["mean_out_bps"],
             "loss_share": c["loss_share"], "q": c["q"]}
        if "holdout" in c:
            r["holdout"] = "confirmed" if c["holdout"]["confirmed"] else "not confirmed"
        rows.append(r)
    s = doc["search"]
    pops = s.get("populations", 1)
    emit(rows, False, title=f"loss clusters ({doc['runs']:,} runs, {s['slices_tested']:,} slices tested"
                            + (f" in {pops} populations: the store, each agent and strategy"
                               if pops > 1 else "") + f", FDR q ≤ {s['fdr_q']})",
         priority=["#", "population", "when", "runs", "mean_in_bps", "mean_out_bps", "q",
                   "loss_share", "share", "holdout"])
    cps = [{k: c[k] for k in ("agent", "metric", "run_index", "ts", "before", "after", "ratio", "p")}
           for c in doc["changepoints"]]
    emit(cps, False, title="change points")
    for line in doc["findings"]:
        console.print(f"• {line}")


@handle_errors
def exclusions_apply(
    db: DbOption = None,
    policy: PolicyOption = None,
    as_json: JsonOption = False,
) -> None:
    """Flag the runs the policy's forensics.exclusions rules match (replacing earlier flags)."""
    d = _db(db, create=True)
    try:
        out = d.apply_exclusions(policy)
    finally:
        d.close()
    if as_json:
        print_json(out)
        return
    emit([{"rule": k, "runs": v} for k, v in out["rules"].items()], False,
         title=f"excluded runs: {out['excluded']:,}")


@handle_errors
def exclusions_list(
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Runs excluded from governance, with rule and reason."""
    d = _db(db)
    try:
        rows = d.exclusions()
    finally:
        d.close()
    emit(rows, as_json, columns=["run_id", "agent", "ts", "rule", "reason"], title="excluded runs")
