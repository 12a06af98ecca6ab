"""The outbox: pending deliveries in the store, written in the transaction that appends the
decisions they announce, and every attempt at sending them.

Because the rows commit with the records (or not at all), a decision is never announced that
the log does not hold, and never left unannounced by a crash between commit and send: the
dispatcher finds the rows after any restart. The record hash is each delivery's idempotency
key; (target, record hash) is written once.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from alphatrace.governance.lifecycle import CHAIN_SCOPE
from alphatrace.notify import callbacks, payload
from alphatrace.notify.backoff import next_attempt
from alphatrace.notify.config import NotifySection
from alphatrace.sql import filters
from alphatrace.store import Store
from alphatrace.store.connection import has_table, one, registered

VIEW = "_alphatrace_new_deliveries"
STATUSES = ("pending", "delivered", "expired")

_SCHEMA = pa.schema([
    ("target", pa.string()), ("kind", pa.string()), ("url", pa.string()),
    ("url_env", pa.string()), ("secret_env", pa.string()), ("record_seq", pa.int64()),
    ("record_hash", pa.string()), ("payload", pa.string()), ("status", pa.string()),
    ("attempts", pa.int32()), ("created_at", pa.timestamp("us")),
    ("next_attempt_at", pa.timestamp("us")), ("expires_at", pa.timestamp("us")),
    ("retry_initial_s", pa.float64()), ("retry_max_s", pa.float64()),
])


def now() -> dt.datetime:
    """The wall clock, naive UTC (what TIMESTAMP keeps)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# ---------------------------------------------------------------- the section in force

def save_section(con: duckdb.DuckDBPyConnection, section: NotifySection, at: dt.datetime) -> None:
    text = json.dumps(section.model_dump(mode="json"), sort_keys=True)
    rows = con.execute("SELECT section FROM notify_config").fetchall()
    if rows and rows[0][0] == text:
        return
    con.execute("DELETE FROM notify_config")
    con.execute("INSERT INTO notify_config VALUES (?, ?)", [text, at])


def saved_section(con: duckdb.DuckDBPyConnection) -> NotifySection:
    """The section of the policy that last appended decisions (none yet: no targets)."""
    if not has_table(con, "notify_config"):
        return NotifySection()
    rows = con.execute("SELECT section FROM notify_config").fetchall()
    return NotifySection.model_validate(json.loads(rows[0][0]), strict=False) if rows \
        else NotifySection()


# ---------------------------------------------------------------- writing

def on_append(store: Store, records: Sequence[dict[str, Any]],
              section: NotifySection | None) -> int:
    """Inside the appending transaction: remember `section` (None: use the one saved), queue
    one delivery per record and matching target, and schedule the in-process listeners for
    the commit. Returns the deliveries queued."""
    con = store.con
    at = now()
    if section is not None:
        save_section(con, section, at)
    else:
        section = saved_section(con)
    n = enqueue(con, records, section, at)
    callbacks.appended(store, list(records))
    return n


def announces(prev: tuple[str, str] | None, action: str, state: str) -> bool:
    """Whether a record (`action`, lifecycle `state`) is news for a receiver, after its
    subject's previous record (action, state), None when it has none. A receiver hears of what
    changed: a subject becoming killed or promoted (not a kill rule firing again on a killed
    agent, nor a promotion blocked by a kill), a verdict that changes no state (hold,
    inconclusive) when it differs from the previous one, and every revive and error."""
    if action in ("revive", "error"):
        return True
    prev_action, prev_state = prev if prev is not None else (None, "candidate")
    if state != prev_state:
        return True
    return action not in ("kill", "promote") and action != prev_action


def changes(con: duckdb.DuckDBPyConnection, records: Sequence[dict[str, Any]]
            ) -> list[dict[str, Any]]:
    """The records `announces` keeps, each judged after its subject's previous record (in the
    log, or earlier in `records`). A rule that fires again on new evidence is news for the log
    (`governance.novelty.is_news`) but not for a receiver: a channel that heard "kill A" once
    must not hear it again with every run A's history brings, nor each time the rule stops
    and starts firing while A stays killed."""
    recs = [r for r in records if r.get("scope") != CHAIN_SCOPE]
    if not recs:
        return []
    first = min(int(r["seq"]) for r in recs)
    keys = sorted({(str(r["scope"]), str(r["subject"])) for r in recs})
    last: dict[tuple[str, str], tuple[str, str]] = {
        (str(sc), str(su)): (str(a), str(st)) for sc, su, a, st in con.execute(
            "SELECT scope, subject, arg_max(action, seq), arg_max(state, seq) FROM decisions "
            "WHERE seq < ? AND (scope, subject) IN (SELECT (unnest(?::VARCHAR[]), "
            "unnest(?::VARCHAR[]))) GROUP BY scope, subject",
            [first, [k[0] for k in keys], [k[1] for k in keys]]).fetchall()}
    out = []
    for r in sorted(recs, key=lambda r: int(r["seq"])):
        key, now_ = (str(r["scope"]), str(r["subject"])), (str(r["action"]), str(r["state"]))
        if announces(last.get(key), *now_):
            out.append(r)
        last[key] = now_
    return out


def enqueue(con: duckdb.DuckDBPyConnection, records: Sequence[dict[str, Any]],
            section: NotifySection, at: dt.datetime) -> int:
    """One pending delivery per matching target of each record `changes` keeps."""
    rows: list[dict[str, Any]] = []
    horizon = dt.timedelta(seconds=section.retry.horizon_s)
    for rec in (changes(con, records) if section.targets else []):
        for t in section.targets:
            if not t.wants(str(rec.get("action")), str(rec.get("subject"))):
                continue
            rows.append({"target": t.name, "kind": t.kind, "url": t.url, "url_env": t.url_env,
                         "secret_env": t.secret_env, "record_seq": rec["seq"],
                         "record_hash": rec["hash"],
                         "payload": payload.body(t.kind, rec, section.dashboard_url),
                         "status": "pending", "attempts": 0, "created_at": at,
                         "next_attempt_at": at, "expires_at": at + horizon,
                         "retry_initial_s": section.retry.initial_s,
                         "retry_max_s": section.retry.max_s})
    if not rows:
        return 0
    tbl = pa.Table.from_pylist(rows, schema=_SCHEMA)
    with registered(con, VIEW, tbl):
        con.execute(f"INSERT INTO notify_deliveries BY NAME SELECT * FROM {VIEW} v WHERE NOT "
                    "EXISTS (SELECT 1 FROM notify_deliveries d WHERE d.target = v.target AND "
                    "d.record_hash = v.record_hash)")
    return len(rows)


# ---------------------------------------------------------------- the dispatcher's side

@dataclass(frozen=True)
class Delivery:
    id: int
    target: str
    kind: str
    url: str | None
    url_env: str | None
    secret_env: str | None
    record_seq: int
    record_hash: str
    payload: str
    attempts: int
    expires_at: dt.datetime
    retry_initial_s: float
    retry_max_s: float


@dataclass(frozen=True)
class Attempt:
    """What one send came to: a status code (None: no response) and an error text."""

    status_code: int | None
    error: str | None
    duration_ms: float
    at: dt.datetime

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


_FIELDS = ("id", "target", "kind", "url", "url_env", "secret_env", "record_seq", "record_hash",
           "payload", "attempts", "expires_at", "retry_initial_s", "retry_max_s")


def due(con: duckdb.DuckDBPyConnection, at: dt.datetime, limit: int = 500) -> list[Delivery]:
    """Pending deliveries whose time has come, oldest first."""
    rows = con.execute(f"SELECT {', '.join(_FIELDS)} FROM notify_deliveries WHERE status = "
                       "'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?",
                       [at, limit]).fetchall()
    return [Delivery(*r) for r in rows]


def next_due(con: duckdb.DuckDBPyConnection) -> dt.datetime | None:
    """When the earliest pending delivery is due (None: nothing pending)."""
    value = one(con, "SELECT min(next_attempt_at) FROM notify_deliveries "
                     "WHERE status = 'pending'")[0]
    return value if isinstance(value, dt.datetime) else None


def record(con: duckdb.DuckDBPyConnection, d: Delivery, a: Attempt,
           rng: random.Random | None = None) -> tuple[str, dt.datetime | None]:
    """Store one attempt in a short transaction of its own; returns the delivery's status
    and, when pending, its next try: delivered (2xx), pending (retry at the backoff time) or
    expired (horizon passed)."""
    attempts = d.attempts + 1
    if a.ok:
        status, nxt, delivered = "delivered", None, a.at
    else:
        nxt = next_attempt(a.at, attempts, d.retry_initial_s, d.retry_max_s, d.expires_at, rng)
        status, delivered = ("pending" if nxt is not None else "expired"), None
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("UPDATE notify_deliveries SET attempts = ?, status = ?, last_status = ?, "
                    "last_error = ?, delivered_at = ?, next_attempt_at = coalesce(?, "
                    "next_attempt_at) WHERE id = ?",
                    [attempts, status, a.status_code, a.error, delivered, nxt, d.id])
        con.execute("INSERT INTO notify_attempts VALUES (?, ?, ?, ?, ?, ?)",
                    [d.id, attempts, a.at, a.status_code, a.error, a.duration_ms])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return status, nxt


# ---------------------------------------------------------------- reading

def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Deliveries by status (every status present, 0 when none)."""
    out = dict.fromkeys(STATUSES, 0)
    if has_table(con, "notify_deliveries"):
        for status, n in con.execute("SELECT status, count(*) FROM notify_deliveries "
                                     "GROUP BY status").fetchall():
            out[str(status)] = int(n)
    return out


# What one attempt came to, for /metrics: a 2xx answer, another status, or no answer at all
# (refused, timed out, or never sent because a variable the target names is not set).
OUTCOMES = ("delivered", "http_error", "no_response")
_OUTCOME_SQL = ("CASE WHEN a.status_code BETWEEN 200 AND 299 THEN 'delivered' "
                "WHEN a.status_code IS NOT NULL THEN 'http_error' ELSE 'no_response' END")


def attempts_by_target(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    """Every attempt recorded so far, per (target, outcome of OUTCOMES); only pairs that
    occurred. Rows are never deleted, so each count only grows (a Prometheus counter)."""
    if not (has_table(con, "notify_attempts") and has_table(con, "notify_deliveries")):
        return {}
    rows = con.execute(f"SELECT d.target, {_OUTCOME_SQL} AS outcome, count(*) "
                       "FROM notify_attempts a JOIN notify_deliveries d ON d.id = a.delivery_id "
                       "GROUP BY ALL ORDER BY ALL").fetchall()
    return {(str(t), str(o)): int(n) for t, o, n in rows}


def finished_by_target(con: duckdb.DuckDBPyConnection) -> dict[tuple[str, str], int]:
    """Deliveries that reached an end, per (target, status): `delivered` or `expired` (the
    retry horizon passed). A delivery ends once, so each count only grows."""
    if not has_table(con, "notify_deliveries"):
        return {}
    rows = con.execute("SELECT target, status, count(*) FROM notify_deliveries "
                       "WHERE status <> 'pending' GROUP BY ALL ORDER BY ALL").fetchall()
    return {(str(t), str(s)): int(n) for t, s, n in rows}


def log(con: duckdb.DuckDBPyConnection, *, target: str | None = None,
        status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest deliveries first, each with its attempts' status codes and errors."""
    if not has_table(con, "notify_deliveries"):
        return []
    where, params = filters(("d.target = ?", target), ("d.status = ?", status))
    where = ["true", *where]
    sql = ("SELECT d.id, d.target, d.kind, d.record_seq, d.record_hash, d.status, d.attempts, "
           "d.created_at, d.next_attempt_at, d.expires_at, d.last_status, d.last_error, "
           "d.delivered_at, r.action, r.subject, "
           "(SELECT list(a.status_code ORDER BY a.attempt) FROM notify_attempts a "
           " WHERE a.delivery_id = d.id) "
           "FROM notify_deliveries d LEFT JOIN decisions r ON r.seq = d.record_seq "
           f"WHERE {' AND '.join(where)} ORDER BY d.id DESC LIMIT ?")
    names = ("id", "target", "kind", "record_seq", "record_hash", "status", "attempts",
             "created_at", "next_attempt_at", "expires_at", "last_status", "last_error",
             "delivered_at", "action", "subject", "status_codes")
    out = []
    for row in con.execute(sql, [*params, limit]).fetchall():
        doc = dict(zip(names, row, strict=True))
        doc["status_codes"] = list(doc["status_codes"] or [])
        if doc["status"] != "pending":
            doc["next_attempt_at"] = None
        out.append(doc)
    return out
