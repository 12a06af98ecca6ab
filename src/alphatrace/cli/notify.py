"""`alphatrace notify log | send | test`: the outbox of decision notifications.

`send` is for stores without a server (the server's dispatcher sends by itself); `test` sends
a signed sample to one target so a receiver can be checked before a real kill needs it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from alphatrace.cli import names
from alphatrace.cli.common import (
    DbOption,
    JsonOption,
    PolicyOption,
    console,
    emit,
    handle_errors,
    open_store,
    print_json,
)
from alphatrace.errors import InputError, NotFoundError

notify_app = typer.Typer(help="Notifications of decisions: webhooks and Slack "
                              "(docs/governance.md §Notifications).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")


@notify_app.command("log")
@handle_errors
def notify_log(
    target: Annotated[str | None, typer.Option("--target", help="Only this target.")] = None,
    status: Annotated[str | None, typer.Option(
        "--status", help="Only pending, delivered or expired deliveries.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="Newest N deliveries.")] = 100,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Each delivery, newest first: its decision, status, attempts, the status codes they
    got and the last error."""
    from alphatrace.notify import outbox

    if status is not None and status not in outbox.STATUSES:
        raise InputError(f"--status {status!r}: one of {', '.join(outbox.STATUSES)}")
    names.require_store(db)
    with open_store(db, read_only=True) as store:
        rows = outbox.log(store.con, target=target, status=status, limit=limit)
        counts = outbox.counts(store.con)
    if as_json:
        print_json({"counts": counts, "deliveries": rows})
        return
    for r in rows:
        r["codes"] = " ".join("-" if c is None else str(c) for c in r["status_codes"])
    emit(rows, False, title="notification deliveries", columns=[
        "id", "target", "action", "subject", "record_seq", "status", "attempts", "codes",
        "last_error", "created_at", "delivered_at", "next_attempt_at"],
        priority=["id", "target", "action", "subject", "status", "attempts", "codes",
                  "last_error"])
    console.print(f"[dim]{counts['pending']} pending, {counts['delivered']} delivered, "
                  f"{counts['expired']} expired[/]", highlight=False)


@notify_app.command("send")
@handle_errors
def notify_send(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Deliver what is pending and due, once (for stores without a server: `alphatrace
    serve` delivers by itself). Exit 1 when a delivery failed (it stays pending, retried by
    the next `send` after its backoff) or expired."""
    from alphatrace.notify import delivery, outbox
    from alphatrace.notify.dispatcher import PassReport, deliver_pending

    names.require_store(db)
    total = PassReport()
    blocked: dict[str, Any] = {}
    with open_store(db) as store, delivery.client() as http:
        while True:
            r = deliver_pending(store.con, http, store.path, blocked=blocked)
            if not r.attempted:
                break
            total.attempted += r.attempted
            total.delivered += r.delivered
            total.failed += r.failed
            total.expired += r.expired
            total.targets.update(r.targets)
        pending = outbox.counts(store.con)["pending"]
    doc = {**total.to_dict(), "pending": pending}
    if as_json:
        print_json(doc)
    else:
        console.print(f"delivered {total.delivered}, failed {total.failed} (retried later), "
                      f"expired {total.expired}; {pending} pending", highlight=False)
        for name, err in sorted(total.targets.items()):
            console.print(f"  [red]{name}[/]: {err}", highlight=False, markup=True)
    if total.failed or total.expired:
        raise typer.Exit(1)


@notify_app.command("test")
@handle_errors
def notify_test(
    target: Annotated[str, typer.Argument(help="The target's name in the policy.")],
    policy: PolicyOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send a signed sample decision (action kill, subject alphatrace-test, seq 0) to TARGET
    of --policy (default: the targets of the policy that last appended decisions to the
    store). Exit 1 unless the receiver answers 2xx."""
    from alphatrace.notify import delivery, payload
    from alphatrace.notify.config import NotifySection
    from alphatrace.notify.outbox import Delivery, now, saved_section

    section: NotifySection
    if policy is not None:
        from alphatrace.governance.policy import load_governance

        section = load_governance(policy).notify
        where = str(policy)
    else:
        names.require_store(db)
        with open_store(db, read_only=True) as store:
            section = saved_section(store.con)
        where = "the store (the policy that last appended decisions)"
    t = section.find(target)
    if t is None:
        err = names.not_found("notify target", target, [x.name for x in section.targets])
        raise NotFoundError(f"{err} (targets of {where})")
    stamp = now()
    d = Delivery(id=0, target=t.name, kind=t.kind, url=t.url, url_env=t.url_env,
                 secret_env=t.secret_env, record_seq=0,
                 record_hash=f"test-{stamp:%Y%m%dT%H%M%S%f}",
                 payload=payload.body(t.kind, payload.sample_record(), section.dashboard_url,
                                      test=True),
                 attempts=0, expires_at=stamp, retry_initial_s=1.0, retry_max_s=1.0)
    with delivery.client() as http:
        a = delivery.send(http, d)
    doc = {"target": t.name, "kind": t.kind, "ok": a.ok, "status_code": a.status_code,
           "error": a.error, "duration_ms": round(a.duration_ms, 1)}
    if as_json:
        print_json(doc)
    elif a.ok:
        console.print(f"[green]ok[/]: {t.name} answered {a.status_code} "
                      f"in {a.duration_ms:.0f} ms", highlight=False)
    else:
        console.print(f"[red]failed[/]: {t.name}: {a.error}", highlight=False)
    if not a.ok:
        raise typer.Exit(1)
