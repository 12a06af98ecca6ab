"""The one-time re-chaining of a decision log written before migration 0009.

v1 hashes do not cover seq or created_at. The first write after the upgrade (an evaluation, a
revive, a signature) re-hashes every record under v2, keeping its content, seq and created_at,
and appends a `rechain` record (scope `chain`) that says what it found: the v1 head it replaced,
how many records, and the problems `audit verify` saw in the v1 chain at that moment. Those
problems stay reported by every later audit, so re-chaining never launders earlier tampering.
"""

from __future__ import annotations

import getpass
from typing import Any

import pyarrow as pa

from alphatrace.errors import GovernanceError
from alphatrace.governance import audit, journal
from alphatrace.governance.canon import GENESIS, ts_text
from alphatrace.governance.lifecycle import CHAIN_SCOPE
from alphatrace.store import Store
from alphatrace.store.connection import registered

ACTION = "rechain"
_VIEW = "_alphatrace_rechain"


def operator() -> str:
    """Who is running this process: recorded as the actor of manual records."""
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def ensure_current(store: Store, actor: str | None = None) -> dict[str, Any] | None:
    """Re-chain v1 records under v2, inside the caller's transaction; returns the `rechain`
    record, or None when there was nothing to do."""
    con = store.con
    if not journal.legacy_count(con):
        return None
    recs = journal.read_records(con)
    if any(r["hash_version"] is not None for r in recs):
        raise GovernanceError("the decision log mixes v1 and v2 records, which alphatrace never "
                              "writes: run `alphatrace audit verify` before writing to it")
    found = audit.check_chain(recs, journal.head(con))
    legacy_head = recs[-1]["hash"]
    prev = GENESIS
    new_prev, new_hash = [], []
    for r in recs:
        r2 = {**r, "prev_hash": prev, "hash_version": journal.HASH_VERSION}
        prev = journal.record_hash(r2)
        new_prev.append(r2["prev_hash"])
        new_hash.append(prev)
    tbl = pa.table({"seq": [r["seq"] for r in recs], "old_hash": [r["hash"] for r in recs],
                    "prev_hash": new_prev, "hash": new_hash})
    with registered(con, _VIEW, tbl):
        con.execute(f"UPDATE decisions SET prev_hash = v.prev_hash, hash = v.hash, "
                    f"hash_version = {journal.HASH_VERSION} FROM {_VIEW} v "
                    f"WHERE decisions.seq = v.seq AND decisions.hash = v.old_hash")
    summary = (f"re-chained {len(recs)} v1 records under hash v{journal.HASH_VERSION} (seq, "
               f"created_at and actor now hashed); the v1 chain "
               + ("verified intact" if not found else f"had {len(found)} problem(s)"))
    when = journal.now()
    content: dict[str, Any] = {"subject": "decisions", "scope": CHAIN_SCOPE, "action": ACTION, "rule": None,
               "fired": [], "blocked": False, "state": f"v{journal.HASH_VERSION}",
               "cascade_from": None, "reason": summary, "policy_hash": None,
               "as_of": ts_text(when),
               "metrics": {"legacy_records": len(recs), "legacy_head": legacy_head,
                           "legacy_problems": found},
               "run_ids": []}
    return journal.write(store, [(content, when)], actor=actor or operator(), at=when)[0]
