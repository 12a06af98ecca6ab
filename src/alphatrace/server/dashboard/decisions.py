"""The decisions document: the audit log, newest first, each record with the verdict of
`audit verify` (re-hashed and re-computed) on it."""

from __future__ import annotations

from typing import Any

import duckdb

from alphatrace.governance import journal
from alphatrace.server.dashboard.source import Pending, Source, jsonable

SHOWN = ("seq", "eval_id", "subject", "scope", "action", "rule", "fired", "blocked", "state",
         "cascade_from", "reason", "policy_hash", "as_of", "metrics", "hash", "prev_hash")
MAX_LIMIT = 1000


def decisions(src: Source, con: duckdb.DuckDBPyConnection, limit: int, offset: int) -> dict[str, Any]:
    version = src.version(con)
    status, verify = "ready", None
    try:
        verify = src.verify(version)
    except Pending:
        status = "computing"
    recs = src.cached(("decision-records", version),
                      lambda: journal.read_records(con) if src.has(con, "decisions") else [])
    by_seq: dict[int, list[dict[str, Any]]] = {}
    for p in (verify or {}).get("problems", []):
        if p["seq"] is not None:
            by_seq.setdefault(int(p["seq"]), []).append(p)
    present = {int(r["seq"]) for r in recs}
    page = list(reversed(recs))[offset:offset + limit]
    rows = []
    for r in page:
        probs = by_seq.get(int(r["seq"]), [])
        verdict = ("unverified" if verify is None
                   else ",".join(sorted({p["kind"] for p in probs})) if probs else "ok")
        run_ids = r.get("run_ids")
        rows.append({**{k: r.get(k) for k in SHOWN},
                     "runs": len(run_ids) if isinstance(run_ids, list) else None,
                     "run_ids": run_ids[:20] if isinstance(run_ids, list) else None,
                     "status": verdict, "problems": [p["detail"] for p in probs]})
    other = [p for p in (verify or {}).get("problems", [])
             if p["seq"] is None or int(p["seq"]) not in present]
    return jsonable({
        "status": status,
        "verify": None if verify is None else {k: verify[k] for k in ("ok", "records", "head")}
                                                | {"problems": len(verify["problems"])},
        "other_problems": other,
        "total": len(recs), "offset": offset, "limit": limit,
        "records": rows,
    })
