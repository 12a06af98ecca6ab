"""`alphatrace demo`: a fresh demo store from shipped real prices and simulated agents."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from alphatrace import metrics
from alphatrace.cli.common import console, emit, err_console, handle_errors, print_json
from alphatrace.cli.governance import StateChanges, cause_first
from alphatrace.demo.live import DEFAULT_SPEED
from alphatrace.demo.pipeline import (
    DEFAULT_DB,
    DEFAULT_RUNS_PER_AGENT,
    DEFAULT_SEED,
    Step,
    run_demo,
)
from alphatrace.errors import InputError
from alphatrace.governance.confidence import percent


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def _render_market(r: dict[str, Any]) -> None:
    console.print(f"[bold]market[/]: {r['bars']:,} bars, {r['funding']:,} funding rates "
                  f"({', '.join(r['symbols'])}) from {', '.join(r['file_names'])}")


def _render_simulate(r: dict[str, Any]) -> None:
    p = r["planted"]
    lc, br = p["loss_cluster"], p["cost_then_pnl_break"]
    console.print(
        f"[bold]simulate[/]: {r['runs']:,} runs of {r['agents']} agents (seed {r['seed']}); "
        f"{r['bad_lines']} bad lines and {r['duplicates']} retried duplicates mixed in"
    )
    console.print(
        f"  planted: loss cluster in [cyan]{lc['agent']}[/] when {lc['when']} "
        f"({lc['runs']} of {lc['of_runs']} runs); [cyan]{br['agent']}[/] cost ×"
        f"{br['cost_break']['cost_ratio']:g} from run {br['cost_break']['run_index']} "
        f"({br['cost_break']['model']}), PnL breaks from run {br['pnl_break']['run_index']}"
    )


def _render_ingest(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]ingest[/]: {r['accepted']:,} accepted, {r['duplicates']:,} duplicates, "
        f"{r['quarantined']:,} quarantined from {r['files']} files"
    )


def _render_summary(r: dict[str, Any]) -> None:
    emit(r["market"], False, title="market data")
    emit(r["events"], False, title="events per kind")
    emit(r["strategies"], False, title="runs per strategy")
    emit(r["agents"], False, title="runs per agent (all columns with --json)",
         columns=["strategy", "agent", "runs", "signals", "models", "cost_usd",
                  "error_runs", "ext_pnl_runs"])
    emit(r["quarantine"], False, title="quarantined lines")


def _render_reconcile(r: dict[str, Any]) -> None:
    console.print(
        f"[bold]reconcile[/]: {r['legs']:,} legs: {r['realized']:,} realized, {r['open']:,} open, "
        f"{r['unpriced']:,} unpriced"
    )


def _render_agents(r: dict[str, Any]) -> None:
    emit(r["agents"], False, title="per-agent summary (all metrics: alphatrace agents --json)",
         columns=["agent", *metrics.summary(metrics.View.DEMO)])


def _render_forensics(r: dict[str, Any]) -> None:
    from alphatrace.forensics import demo as forensics_demo

    for line in forensics_demo.render(r):
        console.print(line, highlight=False)


def _render_governance(r: dict[str, Any]) -> None:
    alt = r["with_recovery"]
    with_col = f"with recovery {alt['recovery']:g}"
    rows = [{**c, with_col: alt["multipliers"].get(c["agent"])} for c in r["confidence"]]
    emit(rows, False, title="confidence (alphatrace confidence)",
         columns=["agent", "multiplier", with_col, "runs", "state"],
         formats={"multiplier": percent, with_col: percent})
    if r.get("confidence_note"):
        console.print(f"[yellow]note:[/] {r['confidence_note']}", highlight=False)
    changes = StateChanges()
    shown = [d for d in r["decisions"] if changes(d)]
    rows = [{"as_of": str(d.get("as_of") or "")[:16].replace("T", " "), "subject": d["subject"],
             "scope": d["scope"], "action": d["action"], "rule": d.get("rule"),
             "state": d.get("state"), "cascade_from": d.get("cascade_from")}
            for d in cause_first(shown)]
    emit(rows, False, title="lifecycle changes (alphatrace gates evaluate, caught up run by run)")
    if changes.repeats:
        console.print(f"[dim]{changes.repeats:,} more records: a rule firing again on new "
                      "evidence without changing its subject's state (`alphatrace audit show "
                      "SUBJECT`)[/]", highlight=False)
    audit = r["audit"]
    status = "[green]verified[/]" if audit.get("ok") else "[red]problems found[/]"
    console.print(f"[bold]audit[/]: decision log {status}, {audit.get('records', 0)} records "
                  "(hash chain and each record's metrics; `alphatrace audit verify` also "
                  "re-decides every evaluation)", highlight=False)


RENDER = {
    "market": _render_market,
    "simulate": _render_simulate,
    "ingest": _render_ingest,
    "summary": _render_summary,
    "reconcile": _render_reconcile,
    "agents": _render_agents,
    "forensics": _render_forensics,
    "governance": _render_governance,
}


@contextmanager
def _progress(step: Step) -> Iterator[None]:
    t0 = time.perf_counter()
    with err_console.status(f"{step.title}…"):
        yield
    err_console.print(f"[green]✓[/] {step.title} [dim]({time.perf_counter() - t0:.1f} s)[/]")


@handle_errors
def demo(
    db: Annotated[Path | None, typer.Option(
        "--db", help="Demo store file; deleted and rebuilt (ALPHATRACE_DB is ignored on purpose). "
                     f"Default {DEFAULT_DB}; with --live, a temporary store.",
    )] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout, nothing else.")] = False,
    seed: Annotated[int, typer.Option(help="Simulator seed: same seed, same events.")] = DEFAULT_SEED,
    runs_per_agent: Annotated[int, typer.Option(help="Simulated runs per agent (6 agents).")] = DEFAULT_RUNS_PER_AGENT,
    data: Annotated[Path | None, typer.Option(
        "--data", help="Folder of market files to use instead of the shipped slice.",
    )] = None,
    events_dir: Annotated[Path | None, typer.Option(
        "--events-dir", help="Keep the simulated JSONL here (default: a temporary folder).",
    )] = None,
    live: Annotated[bool, typer.Option(
        "--live", help="Start a collector and replay the demo into it in accelerated time, "
                       "printing each decision as it is recorded.")] = False,
    speed: Annotated[float, typer.Option(
        "--speed", metavar="DAYS_PER_SECOND",
        help="With --live: market days replayed per second.")] = DEFAULT_SPEED,
) -> None:
    """Build a fresh demo store from shipped real BTC/ETH prices and simulated agents.

    With --live: replay the same data into a running collector, market day by market day, and
    show each gate decision as the live pipeline records it."""
    if live:
        if events_dir is not None:
            raise InputError("--events-dir is not used with --live")
        from alphatrace.cli.demo_live import live as run_live

        run_live(db, speed=speed, seed=seed, runs_per_agent=runs_per_agent, data=data,
                 as_json=as_json)
        return
    db = db if db is not None else DEFAULT_DB
    results = run_demo(
        db, seed=seed, runs_per_agent=runs_per_agent, data_dir=data, events_dir=events_dir,
        on_step=(lambda s: _null()) if as_json else _progress,
    )
    if as_json:
        print_json({"db": str(db), "steps": results})
        return
    for name, result in results.items():
        render = RENDER.get(name)
        if render is not None:
            render(result)
        else:
            emit(result, False, title=name)
    console.print(
        f"\nDemo store: [bold]{db}[/]. Next: `export ALPHATRACE_DB={db}`, then "
        "`alphatrace forensics`, `alphatrace confidence`, `alphatrace explain RUN_ID`, or the "
        "dashboard: `alphatrace serve`", highlight=False)


@contextmanager
def _null() -> Iterator[None]:
    yield
