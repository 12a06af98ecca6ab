"""The decision log as its database administrator sees it: hashes computed by hand (json +
hashlib, not alphatrace's code), and the tampering an administrator can do with SQL alone."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import duckdb

TS = "%Y-%m-%dT%H:%M:%S.%fZ"
COLUMNS = ("seq", "eval_id", "subject", "scope", "action", "rule", "fired", "blocked", "state",
           "cascade_from", "reason", "policy_hash", "as_of", "metrics", "run_ids", "prev_hash",
           "hash", "created_at", "actor", "hash_version")


def rows(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM decisions ORDER BY seq")
    return [dict(zip(COLUMNS, r, strict=True)) for r in cur.fetchall()]


def hand_hash(row: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of every column but `hash` (docs/governance.md)."""
    body = {k: row[k] for k in COLUMNS if k != "hash"}
    for k in ("fired", "metrics", "run_ids"):
        body[k] = json.loads(body[k])
    for k in ("as_of", "created_at"):
        body[k] = None if body[k] is None else body[k].strftime(TS)
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def rehash(con: duckdb.DuckDBPyConnection) -> None:
    """What an administrator does after editing records: recompute every hash and link in seq
    order and move the head, so the chain is intact again."""
    prev = "0" * 64
    for r in rows(con):
        old = r["hash"]
        r["prev_hash"] = prev
        prev = hand_hash(r)
        con.execute("UPDATE decisions SET prev_hash = ?, hash = ? WHERE seq = ? AND hash = ?",
                    [r["prev_hash"], prev, r["seq"], old])
    con.execute("DELETE FROM decision_head")
    con.execute("INSERT INTO decision_head SELECT 1, max(seq), arg_max(hash, seq) FROM decisions")


def tamper(path: Path, *sql: str, recompute: bool = True) -> None:
    """Run SQL directly on the store file (no alphatrace code), then recompute the hashes."""
    con = duckdb.connect(str(path))
    try:
        for q in sql:
            con.execute(q)
        if recompute:
            rehash(con)
    finally:
        con.close()
