"""The decision log: append-only records chained by SHA-256; the lifecycle is read from it.

Each record's hash (v2) covers its content, its seq, its created_at, its actor and the previous
record's hash, so editing, removing, renumbering or re-dating any record breaks the chain at a
place `audit verify` can name. Records written before migration 0009 carry hash_version NULL
(v1: seq and created_at not hashed) until the next write re-chains them (governance.upgrade).

The lifecycle is not stored apart from the chain: `lifecycle_states` reads each subject's state
from its newest record (the `lifecycle` view of migration 0009 does the same in SQL).

Records of a subject are appended in knowledge-time order (`out_of_order`, checked by `write`
for every writer): a record is stamped at or after its subject's newest record's as_of. So the
newest record by seq (the current lifecycle) is also the newest by (as_of, seq) (the lifecycle
as of any later time), and a past evaluation can never replace today's state.

The check reads each subject's newest record from `decision_newest` (migration 0027), which
`write` keeps beside the records it appends (`newest_rows`): a long log costs it nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from alphatrace.errors import GovernanceError
from alphatrace.governance.canon import GENESIS, canonical_json, sha256_hex, ts_text
from alphatrace.governance.gates import Decision
from alphatrace.governance.lifecycle import CHAIN_SCOPE, State, SubjectKey
from alphatrace.governance.policy import SCOPES
from alphatrace.notify import outbox
from alphatrace.notify.config import NotifySection
from alphatrace.sql import filters
from alphatrace.store import Store
from alphatrace.store.connection import has_table, one, registered, table_columns

HASH_VERSION = 2
HASHED_V1 = ("eval_id", "subject", "scope", "action", "rule", "fired", "blocked", "state",
             "cascade_from", "reason", "policy_hash", "as_of", "metrics", "run_ids", "prev_hash")
HASHED = (*HASHED_V1, "seq", "created_at", "actor", "hash_version")
JSON_FIELDS = ("fired", "metrics", "run_ids")
VIEW = "_alphatrace_new_decisions"
KEYS = "_alphatrace_newest_keys"
NEWEST = "decision_newest"  # each subject's newest record (migration 0027), kept by `write`

_SCHEMA = pa.schema([
    ("seq", pa.int64()), ("eval_id", pa.int64()), ("subject", pa.string()),
    ("scope", pa.string()), ("action", pa.string()), ("rule", pa.string()),
    ("fired", pa.string()), ("blocked", pa.bool_()), ("state", pa.string()),
    ("cascade_from", pa.string()), ("reason", pa.string()), ("policy_hash", pa.string()),
    ("as_of", pa.timestamp("us")), ("metrics", pa.string()), ("run_ids", pa.string()),
    ("prev_hash", pa.string()), ("hash", pa.string()), ("created_at", pa.timestamp("us")),
    ("actor", pa.string()), ("hash_version", pa.int32()),
])
_LATE_COLUMNS = ("actor", "hash_version")  # added by migration 0009


_SORTED = {1: sorted(HASHED_V1), 2: sorted(HASHED)}
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
    """canonical_json of the hashed fields of the record's hash_version (NULL: v1), assembled
    from pieces: equal to canonical_json({k: rec[k] for k in fields}) (sorted keys are
    compositional), but each nested value is serialised once and reused for storage."""
    parts = []
    for k in _SORTED[2 if rec.get("hash_version") == HASH_VERSION else 1]:
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


def _columns(con: duckdb.DuckDBPyConnection) -> set[str]:
    return set(table_columns(con, "decisions"))


def lifecycle_states(con: duckdb.DuckDBPyConnection,
                     as_of: dt.datetime | None = None) -> dict[SubjectKey, State]:
    """Each subject's state after its newest record (by seq, which the hash covers); with
    `as_of`, the lifecycle as it was at that time (`lifecycle.History`): of the records whose
    as_of is at or before it, the newest by (as_of, seq) (a decision counts from the knowledge
    time it was decided at, a revive from its time, even when written after later records)."""
    if not has_log(con):
        return {}
    scopes = ", ".join(f"'{sc}'" for sc in SCOPES)
    when = "" if as_of is None else " AND as_of <= ?"
    rows = con.execute(f"SELECT scope, subject, state FROM decisions WHERE rowid IN "
                       f"({_newest('decisions', f'scope IN ({scopes}){when}', as_of)})",
                       [] if as_of is None else [as_of]).fetchall()
    return {(str(sc), str(s)): st for sc, s, st in rows}


def _newest(source: str, where: str, as_of: dt.datetime | None) -> str:
    """The row ids of each subject's newest record of `source` (rows matching `where`, SQL
    text, empty for all): by seq, or, at an as-of, by (as_of, seq) (the lifecycle at that time,
    `lifecycle.History`). A grouped arg-max: one hash aggregate over the log, where ranking
    every record with a window sorted the whole log (3× the CPU at 82k records)."""
    key = "seq" if as_of is None else "(as_of, seq)"
    cond = f" WHERE {where}" if where else ""
    return f"SELECT max_by(rowid, {key}) FROM {source}{cond} GROUP BY scope, subject"


def read_records(con: duckdb.DuckDBPyConnection, subject: str | None = None,
                 scope: str | None = None, since_seq: int | None = None,
                 newest: bool = False, limit: int | None = None,
                 as_of: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Records ordered by seq, JSON fields parsed (left as text when they no longer parse).
    `newest`: only each subject's newest record (at `as_of`: by (as_of, seq)); `limit`: the first N; `as_of`: only records at
    or before it. On a store not yet migrated to 0009 (opened
    read-only), actor and hash_version are NULL."""
    if not has_log(con):
        return []
    where, params = filters(("subject = ?", subject), ("scope = ?", scope),
                            ("seq >= ?", since_seq), ("as_of <= ?", as_of))
    have = _columns(con)
    cols = [n if n in have or n not in _LATE_COLUMNS else f"NULL AS {n}" for n in _SCHEMA.names]
    sql = f"SELECT {', '.join(cols)} FROM decisions"
    cond = " AND ".join(where)
    if (newest and subject is None and scope is None and since_seq is None
            and _newest_at(con, as_of)):
        sql += f" WHERE seq IN (SELECT seq FROM {NEWEST})"
        params = []
    elif newest:  # found on the key columns; only the rows kept are read whole
        sql += f" WHERE rowid IN ({_newest('decisions', cond, as_of)})"
    elif where:
        sql += " WHERE " + cond
    sql += " ORDER BY seq, hash"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
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


def _newest_at(con: duckdb.DuckDBPyConnection, as_of: dt.datetime | None) -> bool:
    """Whether each subject's newest record at `as_of` is the one `decision_newest` keeps,
    so the log need not be grouped (a pass's catch-up asks at its first point, usually after
    every record): the table is kept (`newest_kept`) and each record it holds has an as_of, at
    or before `as_of`. Then no subject has a record after `as_of`: a subject's records by seq
    have non-decreasing as_ofs (`out_of_order`, which `write` enforces), and those without an
    as_of are excluded from a newest-at-an-as-of and move nothing."""
    if as_of is None or not newest_kept(con):
        return False
    return bool(one(con, f"SELECT count(*) = 0 FROM {NEWEST} WHERE as_of IS NULL OR as_of > ?",
                    [as_of])[0])


def newest_records(con: duckdb.DuckDBPyConnection, as_of: dt.datetime | None = None
                   ) -> dict[SubjectKey, dict[str, Any]]:
    """Each subject's newest record (at or before `as_of`): what an evaluation at that time is
    compared with (novelty)."""
    return {(str(r["scope"]), str(r["subject"])): r
            for r in read_records(con, newest=True, as_of=as_of)}


def states_of(newest: Mapping[SubjectKey, dict[str, Any]]) -> dict[SubjectKey, State]:
    """`lifecycle_states` from `newest_records` at the same as_of (the state is the newest
    record's), when both are needed: the log is ranked once."""
    return {k: r["state"] for k, r in newest.items() if k[0] in SCOPES}


def newest_rows(con: duckdb.DuckDBPyConnection) -> str:
    """A query for (scope, subject, seq, action, as_of) of each subject's newest record by seq
    (every scope): `decision_newest` (migration 0027), which `write` keeps, so the read costs
    what the subjects are, not what the log is long. When the table is absent (a store opened
    read-only before 0027) or the log's newest seq is not the table's (records written other
    than by `write`), the log itself: a grouped max(seq), then those records."""
    if newest_kept(con):
        return f"SELECT scope, subject, seq, action, as_of FROM {NEWEST}"
    return ("SELECT scope, subject, seq, action, as_of FROM decisions WHERE seq IN "
            "(SELECT max(seq) FROM decisions GROUP BY scope, subject)")


def newest_kept(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether `decision_newest` is read for the log: it exists and its newest seq is the
    log's (every record since it was filled was appended by `write`, as far as seqs tell).
    Inside `newest_checked`, read once for the block."""
    known = _KEPT.get(id(con))
    if known is not None:
        return known
    kept = has_table(con, NEWEST) and bool(one(
        con, f"SELECT (SELECT max(seq) FROM decisions) IS NOT DISTINCT FROM "
             f"(SELECT max(seq) FROM {NEWEST})")[0])
    if id(con) in _KEPT:
        _KEPT[id(con)] = kept
    return kept


# Connections (by id) inside a `newest_checked` block, with `newest_kept`'s answer once read.
_KEPT: dict[int, bool | None] = {}


@contextlib.contextmanager
def newest_checked(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """For the block, `newest_kept` on `con` is read once (an evaluation asked it three times,
    ~1.3 ms each at 1M runs). Only for a block in which nothing but `write` adds records to
    the log (one evaluation, which holds the store's writer): `write` keeps `decision_newest`
    (or rebuilds it), so the answer holds after it, and is true once it has written. Nested
    blocks share the outer answer."""
    key = id(con)
    if key in _KEPT:
        yield
        return
    _KEPT[key] = None
    try:
        yield
    finally:
        _KEPT.pop(key, None)


def _one_per_subject(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows (scope, subject, ...) in seq order, the last per subject kept: a log whose seqs
    are not unique (changed other than by `write`) still gives one record per subject."""
    out: dict[tuple[str, str], tuple[Any, ...]] = {}
    for r in rows:
        out[(str(r[0]), str(r[1]))] = r
    return list(out.values())


@dataclass(frozen=True)
class Newest:
    """A subject's newest record (by seq): the earliest as_of a record may be appended at."""

    seq: int
    action: str
    as_of: dt.datetime


def newest_times(con: duckdb.DuckDBPyConnection, keys: Iterable[SubjectKey] | None = None
                 ) -> dict[SubjectKey, Newest]:
    """Each subject's newest record by seq (of `keys`, default every subject), from
    `newest_rows`."""
    if not has_log(con):
        return {}
    wanted = None if keys is None else set(keys)
    if wanted is not None and not wanted:
        return {}
    scopes = ", ".join(f"'{sc}'" for sc in SCOPES)
    sql = (f"SELECT scope, subject, seq, action, as_of FROM ({newest_rows(con)}) n "
           f"WHERE scope IN ({scopes}) AND as_of IS NOT NULL")
    if wanted is None:
        rows = con.execute(f"{sql} ORDER BY seq").fetchall()
    else:  # only those rows: a write's check reads what it appends, not every subject
        ks = sorted(wanted)
        with registered(con, KEYS, pa.table({"scope": [k[0] for k in ks],
                                             "subject": [k[1] for k in ks]})):
            rows = con.execute(f"{sql} AND (scope, subject) IN (SELECT (scope, subject) "
                               f"FROM {KEYS}) ORDER BY seq").fetchall()
    return {(str(sc), str(s)): Newest(int(q), str(a), at)
            for sc, s, q, a, at in _one_per_subject(rows)}


def out_of_order(newest: Mapping[SubjectKey, Newest],
                 items: Sequence[tuple[SubjectKey, dt.datetime | None]]) -> list[str | None]:
    """The rule every record obeys: a record about a subject is appended only at an as_of at
    or after its newest record's (`newest`, then the items before it). Per item, None when it
    may be appended, else why not. Records about the chain itself, or without an as_of, are
    no subject's lifecycle and always may."""
    floor: dict[SubjectKey, tuple[dt.datetime, str]] = {
        k: (n.as_of, f"{n.action} at seq {n.seq}") for k, n in newest.items()}
    out: list[str | None] = []
    for key, as_of in items:
        before = floor.get(key)
        if key[0] == CHAIN_SCOPE or as_of is None:
            out.append(None)
        elif before is not None and as_of < before[0]:
            out.append(f"{key[0]} {key[1]} has a newer record ({before[1]}, as of "
                       f"{ts_text(before[0])}): a record as of {ts_text(as_of)} would replace "
                       "its current state with an older one")
        else:
            floor[key] = (as_of, "this evaluation")
            out.append(None)
    return out


def held_back(con: duckdb.DuckDBPyConnection, decisions: Sequence[Decision]) -> list[str | None]:
    """`out_of_order` for decisions about to be appended in this order, against the log."""
    items = [(d.key, d.as_of) for d in decisions]
    return out_of_order(newest_times(con, [k for k, _ in items]), items)


def legacy_count(con: duckdb.DuckDBPyConnection) -> int:
    """Records still hashed under v1 (written before migration 0009, not yet re-chained)."""
    if not has_log(con):
        return 0
    if "hash_version" not in _columns(con):
        return int(one(con, "SELECT count(*) FROM decisions")[0])
    return int(one(con, "SELECT count(*) FROM decisions WHERE hash_version IS NULL")[0])


def _last(con: duckdb.DuckDBPyConnection) -> tuple[int, str, int]:
    """The head the next record chains to (the newest seq and its hash, GENESIS when the log
    is empty) and the newest eval_id: the hash found by its seq (the log is in seq order, so
    the read skips the row groups before it), not by an arg_max over every hash."""
    seq, ev = one(con, "SELECT coalesce(max(seq), 0), coalesce(max(eval_id), 0) FROM decisions")
    h = one(con, "SELECT coalesce(min(hash), ?) FROM decisions WHERE seq = ?", [GENESIS, seq])[0]
    return int(seq), str(h), int(ev)


def now() -> dt.datetime:
    """The wall clock, naive UTC at microsecond precision (what TIMESTAMP keeps)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def append(store: Store, decisions: Sequence[Decision], policy_body: dict[str, Any] | None, *,
           actor: str | None = None, at: dt.datetime | None = None,
           notify: NotifySection | None = None) -> list[dict[str, Any]]:
    """Append one evaluation's decisions (or one revive) to the chain, inside the caller's
    transaction; returns the records as stored. `actor` is who (revives: the operator);
    `at` is created_at (default: the wall clock), the only field that is a time of writing.
    The same transaction queues their notifications: to `notify`'s targets, or (None) to
    those of the policy that last appended (notify.outbox). No decision: nothing is read or
    written (that policy has not appended)."""
    con = store.con
    if not decisions:
        return []
    if legacy_count(con):
        raise GovernanceError("the decision log still has v1 records: re-chain them first "
                              "(alphatrace.governance.upgrade.ensure_current)")
    when = at if at is not None else now()
    items = [(d.content(), d.as_of) for d in decisions]
    recs = write(store, items, actor=actor, at=when)
    if recs and policy_body is not None:
        body = canonical_json(policy_body)
        con.execute("INSERT INTO governance_policies SELECT ?, ? WHERE NOT EXISTS "
                    "(SELECT 1 FROM governance_policies WHERE policy_hash = ?)",
                    [sha256_hex(body), body, sha256_hex(body)])
    outbox.on_append(store, recs, notify)
    return recs


def write(store: Store, items: Sequence[tuple[dict[str, Any], dt.datetime | None]], *,
          actor: str | None, at: dt.datetime) -> list[dict[str, Any]]:
    """Chain and insert records given as (content, as_of): content is Decision.content()'s
    shape; one eval_id per evaluation time (a catch-up evaluates at several knowledge times,
    each its own evaluation; consecutive items with the same as_of share one); the head moves
    to the last one. Refuses (GovernanceError, nothing written) items that break
    `out_of_order`: every writer's records pass here."""
    con = store.con
    keyed = [((str(c["scope"]), str(c["subject"])), as_of) for c, as_of in items]
    why = out_of_order(newest_times(con, [k for k, _ in keyed if k[0] != CHAIN_SCOPE]), keyed)
    bad = next((w for w in why if w is not None), None)
    if bad is not None:
        raise GovernanceError(f"not appended: {bad}")
    seq, prev, eval_id = _last(con)
    now_text = ts_text(at)
    recs: list[dict[str, Any]] = []
    cols: dict[str, list[Any]] = {n: [] for n in _SCHEMA.names}
    when: object = object()
    for content, as_of in items:
        if as_of != when or not recs:
            eval_id += 1
            when = as_of
        nested = {k: canonical_json(content[k]) for k in JSON_FIELDS}
        seq += 1
        rec = {"seq": seq, "eval_id": eval_id, **content, "prev_hash": prev,
               "created_at": now_text, "actor": actor, "hash_version": HASH_VERSION}
        rec["hash"] = prev = record_hash(rec, nested)
        recs.append(rec)
        for k in JSON_FIELDS:
            cols[k].append(nested[k])
    for n in _SCHEMA.names:
        if n not in JSON_FIELDS:
            cols[n] = [r[n] for r in recs]
    cols["as_of"] = [as_of for _, as_of in items]
    cols["created_at"] = [at] * len(recs)
    if not recs:
        return recs
    # `decision_newest` took every record so far (its newest seq is the log's, `newest_kept`):
    # the new ones update it; else (records written by other means) it is rebuilt from the log,
    # so the append cannot make a table that misses them look current.
    kept = newest_kept(con) if has_table(con, NEWEST) else None
    with registered(con, VIEW, pa.table(cols, schema=_SCHEMA)):
        con.execute(f"INSERT INTO decisions BY NAME SELECT * FROM {VIEW}")
        if kept is not None:
            source = VIEW if kept else "decisions"
            if not kept:
                con.execute(f"DELETE FROM {NEWEST}")
            con.execute(f"INSERT OR REPLACE INTO {NEWEST} SELECT scope, subject, seq, action, "
                        f"as_of FROM {source} QUALIFY row_number() OVER "
                        "(PARTITION BY scope, subject ORDER BY seq DESC) = 1")
    if kept is not None and id(con) in _KEPT:  # `newest_checked`: the table is the log's now
        _KEPT[id(con)] = True
    set_head(con, recs[-1]["seq"], recs[-1]["hash"])
    return recs


def set_head(con: duckdb.DuckDBPyConnection, seq: int, hash_: str) -> None:
    con.execute("DELETE FROM decision_head")
    con.execute("INSERT INTO decision_head VALUES (1, ?, ?)", [seq, hash_])


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
