"""What `alphatrace demo --live` prints: each decision as it is recorded, each kill as the demo's
webhook receiver got it, then the kill table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alphatrace.cli.common import console, emit, err_console, print_json
from alphatrace.cli.governance import StateChanges
from alphatrace.demo.live import DemoData, LiveResult, run_live
from alphatrace.demo.replay import Run, Tick, fired_at, iso

KILL_COLUMNS = ["scope", "subject", "live_killed_at", "live_run_index", "live_pnl_after_usd",
                "batch_killed_at", "batch_pnl_after_usd", "live_rule", "live_runs_after"]
# What a narrow terminal keeps: who, when live, at which run, what it avoided, when batch.
KILL_PRIORITY = KILL_COLUMNS[1:7]


def minute(t: str) -> str:
    return t[:16].replace("T", " ")


def decision_line(rec: dict[str, Any], by_id: dict[str, Run]) -> str:
    """`market time  ACTION  subject (scope)  rule  at run #i run_id  state` for one record."""
    run = fired_at(rec, by_id)
    at = f"at run #{run.index} {run.run_id}" if run is not None else "at no run"
    rule = rec.get("rule") or "-"
    cascade = f" from {rec['cascade_from']}" if rec.get("cascade_from") else ""
    when = str(rec.get("as_of") or "")[:19].replace("T", " ")
    return (f"{when}  {str(rec['action']).upper():<12} {rec['subject']} ({rec['scope']})  "
            f"{rule}{cascade}  {at}  -> {rec['state']}")


def delivery_line(row: dict[str, Any]) -> str:
    """`  webhook: KILL subject, X s after its evidence was posted (Y s after the append),
    signature ok` for one kill the demo's receiver got."""
    def secs(v: Any) -> str:
        return "?" if v is None else f"{v:.2f} s"

    return (f"  webhook: {str(row['action']).upper()} {row['subject']}, "
            f"{secs(row['evidence_delay_s'])} after its evidence was posted "
            f"({secs(row['append_delay_s'])} after the append), signature ok")


def live(db: Path | None, *, speed: float, seed: int, runs_per_agent: int,
         data: Path | None, as_json: bool) -> None:
    by_id: dict[str, Run] = {}
    status = err_console.status("building the demo data (prices, simulated agents, reconcile)…")
    status.start()

    def ready(url: str, d: DemoData) -> None:
        by_id.update({r.run_id: r for r in d.runs})
        if d.items:
            status.update(f"replaying into {url}")
        if not as_json:
            console.print(
                f"[bold]live demo[/]: collector on {url}; replaying {len(d.items):,} bars, "
                f"funding rates and events from {iso(d.items[0].at_ms)[:10]} to "
                f"{iso(d.items[-1].at_ms)[:10]} at {speed:g} market day(s) per second",
                highlight=False)

    changes = StateChanges()

    def decided(rec: dict[str, Any]) -> None:
        if changes(rec) and not as_json:
            console.print(decision_line(rec, by_id), highlight=False, markup=False)

    def delivered(row: dict[str, Any]) -> None:
        # targets hear of changes only (notify.outbox.changes): no repeat reaches the receiver
        if not as_json:
            console.print(delivery_line(row), highlight=False, markup=False)

    def ticked(tick: Tick) -> None:
        status.update(f"market time {iso(tick.end_ms)[:16].replace('T', ' ')}")

    try:
        result = run_live(db, speed=speed, seed=seed, runs_per_agent=runs_per_agent,
                          data_dir=data, on_ready=ready, on_decision=decided, on_tick=ticked,
                          on_delivery=delivered)
    finally:
        status.stop()
    if as_json:
        print_json(result.to_dict())
        return
    if changes.repeats:
        console.print(f"[dim]{changes.repeats:,} more records: a rule firing again on new evidence "
                      "without changing the subject's state (`alphatrace audit show SUBJECT`)[/]",
                      highlight=False)
    if result.deliveries:
        console.print("[dim]webhook: a receiver in this process on 127.0.0.1, a notify target of "
                      "the collector's policy, checking each HMAC signature; \"evidence "
                      "posted\": when the replay sent the request carrying the data that made the "
                      "kill's newest run known (the record's as_of)[/]",
                      highlight=False)
    render_end(result)


def render_end(result: LiveResult) -> None:
    if not result.decisions:
        console.print("[yellow]the collector recorded no decisions[/]", highlight=False)
    pb = result.pnl_break
    console.print(f"planted: {pb.get('agent')} PnL breaks at run #{pb.get('run_index')} "
                  f"({str(pb.get('ts'))[:10]})", highlight=False)
    emit(result.kills, False, columns=KILL_COLUMNS, priority=KILL_PRIORITY,
         formats={"live_killed_at": minute, "batch_killed_at": minute},
         title=f"kills: live, against one evaluation as of the end ({result.end[:10]})")
    console.print("[dim]pnl_after_usd: what the subject's runs made after the kill (negative: a "
                  "loss the kill avoided); run_index: the newest run of the kill's window, "
                  "counted within its agent; batch: `gates evaluate --as-of END` once.[/]",
                  highlight=False)
