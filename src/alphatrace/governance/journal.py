"""The decision log: append-only records chained by SHA-256, plus the lifecycle they imply.

Each record's hash covers its content and the previous record's hash, so editing, removing or
reordering any record breaks the chain at a place `audit verify` can name. The lifecycle table
is a cache of the chain (the state in each subject's last record) for fast reads; the audit
checks it against the chain.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from alphatrace.governance.canon import GENESIS, canonical_json, sha256_hex, ts_text
from alphatrace.governance.gates import Decision
from alphatrace.governance.lifecycle import State, SubjectKey
from alphatrace.store import Store
from alphatrace.store.connection import has_table, one, registered

HASHED = ("eval_id", "subject", "scope", "action", "rule", "fired", "blocked", "state",
          "cascade_from", "reason", "policy_hash", "as_of", "metrics", "run_ids", "prev_hash")
JSON_FIELDS = ("fired", "metrics", "run_ids")
VIEW = "_alphatrace_new_decisions"

_SCHEMA = pa.schema([
    ("seq", pa.int64()), ("eval_id", pa.int64()), ("subject", pa.string()),
    ("scope", pa.string()), ("action", pa.string()), ("rule", pa.string()),
    ("fired", pa.string()), ("blocked", pa.bool_()), ("state", pa.string()),
    ("cascade_from", pa.string()), ("reason", pa.string()), ("policy_hash", pa.string()),
    ("as_of", pa.timestamp("us")), ("metrics", pa.string()), ("run_ids", pa.string()),
    ("prev_hash", pa.string()), ("hash", pa.string()), ("created_at", pa.timestamp("us")),
])


_SORTED = sorted(HASHED)
_KEYS = {k: json.dumps(k) + ":" for k in HASHED}


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int):
        return str(v)
    return canonical_json(v)


def record_text(rec: dict[str, Any], nested: dict[str, str] | None = None) -> str:
    """canonical_json of the hashed fields, assembled from pieces: equal to
    canonical_json({k: rec[k] for k in HASHED}) (sorted keys are compositional), but each
    nested value is serialised once and reused for storage."""
    parts = []
    for k in _SORTED:
        if k in JSON_FIELDS:
            text = nested[k] if nested is not None else canonical_json(rec.get(k))
        else:
            text = _scalar(rec.get(k))
        parts.append(_KEYS[k] + text)
    return "{" + ",".join(parts) + "}"


def record_hash(rec: dict[str, Any], nested: dict[str, str] | None = None) -> str:
    return sha256_hex(record_text(rec, nested))


def has_log(con: duckdb.DuckDBPyConnection) -> bool:
    return has_table(con, "decisions")


def lifecycle_states(con: duckdb.DuckDBPyConnection) -> dict[SubjectKey, State]:
    if not has_table(con, "lifecycle"):
        return {}
    rows = con.execute("SELECT scope, subject, state FROM lifecycle").fetchall()
    return {(str(sc), str(s)): st for sc, s, st in rows}


def read_records(con: duckdb.DuckDBPyConnection, subject: str | None = None,
                 scope: str | None = None) -> list[dict[str, Any]]:
    """Records ordered by seq, JSON fields parsed (left as text when they no longer parse)."""
    if not has_log(con):
        return []
    where, params = [], []
    if subject is not None:
        where.append("subject = ?")
        params.append(subject)
    if scope is not None:
        where.append("scope = ?")
        params.append(scope)
    sql = ("SELECT seq, eval_id, subject, scope, action, rule, fired, blocked, state, "
           "cascade_from, reason, policy_hash, as_of, metrics, run_ids, prev_hash, hash, "
           "created_at FROM decisions")
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY seq, hash"
    out = []
    for row in con.execute(sql, params).fetchall():
        rec = dict(zip(_SCHEMA.names, row, strict=True))
        for f in JSON_FIELDS:
            with contextlib.suppress(TypeError, ValueError):
                rec[f] = json.loads(rec[f])
        rec["as_of"] = ts_text(rec["as_of"])
        rec["created_at"] = ts_text(rec["created_at"])
        out.append(rec)
    return out


def _last(con: duckdb.DuckDBPyConnection) -> tuple[int, str, int]:
    seq, h, ev = one(con, "SELECT coalesce(max(seq), 0), coalesce(arg_max(hash, seq), ?), "
                          "coalesce(max(eval_id), 0) FROM decisions", [GENESIS])
    return int(seq), str(h), int(ev)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def append(store: Store, decisions: Sequence[Decision], pre_state: dict[SubjectKey, State],
           policy_body: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Append one evaluation's decisions (or one revive) to the chain, inside the caller's
    transaction; returns the records as stored."""
    con = store.con
    seq, prev, eval_id = _last(con)
    eval_id += 1
    now = _now()
    now_text = ts_text(now)
    recs: list[dict[str, Any]] = []
    cols: dict[str, list[Any]] = {n: [] for n in _SCHEMA.names}
    as_of_text: dict[Any, str | None] = {}
    for d in decisions:
        nested = {"fired": canonical_json(list(d.fired)), "metrics": canonical_json(d.metrics),
                  "run_ids": canonical_json(d.run_ids)}
        if d.as_of not in as_of_text:
            as_of_text[d.as_of] = ts_text(d.as_of)
        seq += 1
        rec = {"seq": seq, "eval_id": eval_id, "subject": d.subject, "scope": d.scope,
               "action": d.action, "rule": d.rule, "fired": list(d.fired), "blocked": d.blocked,
               "state": d.state, "cascade_from": d.cascade_from, "reason": d.reason,
               "policy_hash": d.policy_hash, "as_of": as_of_text[d.as_of], "metrics": d.metrics,
               "run_ids": d.run_ids, "prev_hash": prev}
        rec["hash"] = prev = record_hash(rec, nested)
        rec["created_at"] = now_text
        recs.append(rec)
        for n in _SCHEMA.names:
            v = nested[n] if n in JSON_FIELDS else rec[n]
            if n == "as_of":
                v = d.as_of
            elif n == "created_at":
                v = now
            cols[n].append(v)
    if not recs:
        return recs
    with registered(con, VIEW, pa.table(cols, schema=_SCHEMA)):
        con.execute(f"INSERT INTO decisions SELECT * FROM {VIEW}")
    changed = [(r["scope"], r["subject"], r["state"], r["seq"]) for r in recs
               if pre_state.get((r["scope"], r["subject"])) != r["state"]]
    if changed:
        lc = pa.table({"scope": [c[0] for c in changed], "subject": [c[1] for c in changed],
                       "state": [c[2] for c in changed], "since_seq": [c[3] for c in changed]})
        with registered(con, VIEW, lc):
            con.execute(f"DELETE FROM lifecycle WHERE (scope, subject) IN "
                        f"(SELECT (scope, subject) FROM {VIEW})")
            con.execute(f"INSERT INTO lifecycle SELECT scope, subject, state, since_seq FROM {VIEW}")
    if policy_body is not None:
        body = canonical_json(policy_body)
        con.execute("INSERT INTO governance_policies SELECT ?, ? WHERE NOT EXISTS "
                    "(SELECT 1 FROM governance_policies WHERE policy_hash = ?)",
                    [sha256_hex(body), body, sha256_hex(body)])
    con.execute("DELETE FROM decision_head")
    con.execute("INSERT INTO decision_head VALUES (1, ?, ?)", [recs[-1]["seq"], recs[-1]["hash"]])
    return recs


def stored_policy(con: duckdb.DuckDBPyConnection, policy_hash: str) -> dict[str, Any] | None:
    if not has_table(con, "governance_policies"):
        return None
    rows = con.execute("SELECT body FROM governance_policies WHERE policy_hash = ?",
                       [policy_hash]).fetchall()
    if not rows:
        return None
    body = str(rows[0][0])
    if sha256_hex(body) != policy_hash:
        return {"__tampered__": True}
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def head(con: duckdb.DuckDBPyConnection) -> tuple[int, str] | None:
    if not has_table(con, "decision_head"):
        return None
    rows = con.execute("SELECT seq, hash FROM decision_head").fetchall()
    return (int(rows[0][0]), str(rows[0][1])) if rows else None
