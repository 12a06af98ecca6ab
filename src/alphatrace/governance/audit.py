"""`audit verify`: is the decision log intact, and does every decision still follow from its
inputs?

Tampering and late data are told apart. A record whose content no longer matches its own hash
was edited; a link to a predecessor that no longer exists means a record was removed (a gap in
seq) or its hash rewritten (no gap); records whose chain order (followed through prev_hash)
differs from their seq order were reordered. A record that is intact but that the gates, re-run
on the store with the stored policy, the same as-of and the lifecycle the chain implies at that
point, would decide differently is reported as `inputs_changed`: the ledger changed after the
decision (late data, a re-reconcile, a new exclusion), not the log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from itertools import groupby
from typing import Any

import duckdb

from alphatrace.errors import PolicyError
from alphatrace.governance.canon import GENESIS
from alphatrace.governance.gates import decide
from alphatrace.governance.journal import head, read_records, record_hash, stored_policy
from alphatrace.governance.lifecycle import fold
from alphatrace.governance.policy import from_decision_body
from alphatrace.store.connection import has_table

Problem = dict[str, Any]
COMPARED = ("action", "rule", "fired", "blocked", "state", "cascade_from", "metrics", "run_ids")


def _problem(seq: int | None, kind: str, detail: str) -> Problem:
    return {"seq": seq, "kind": kind, "detail": detail}


def chain_order(recs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records in the order their prev_hash links say, segments (after a break) by seq."""
    by_hash = {r["hash"]: r for r in recs}
    succ: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        succ.setdefault(r["prev_hash"], []).append(r)
    starts = [r for r in recs if r["prev_hash"] == GENESIS or r["prev_hash"] not in by_hash]
    seen: set[int] = set()
    out: list[dict[str, Any]] = []

    def walk(r: dict[str, Any]) -> None:
        while r is not None and id(r) not in seen:
            seen.add(id(r))
            out.append(r)
            nxt = [s for s in succ.get(r["hash"], []) if id(s) not in seen]
            r = nxt[0] if nxt else None  # type: ignore[assignment]

    for r in starts:
        walk(r)
    for r in recs:  # anything left (a fork or a cycle): stored order
        walk(r)
    return out


def check_chain(recs: list[dict[str, Any]], head_mark: tuple[int, str] | None) -> list[Problem]:
    """Problems in the chain itself: edited, removed, reordered records."""
    problems: list[Problem] = []
    edited: set[int] = set()
    for r in recs:
        if record_hash(r) != r["hash"]:
            edited.add(id(r))
            problems.append(_problem(r["seq"], "edited",
                                     "content does not match its hash: changed after it was written"))
    by_hash = {r["hash"]: r for r in recs}
    for p, r in enumerate(recs):
        prev = recs[p - 1] if p else None
        expected = prev["hash"] if prev else GENESIS
        if r["prev_hash"] == expected or r["prev_hash"] in by_hash or r["prev_hash"] == GENESIS:
            continue
        if prev is None:
            problems.append(_problem(r["seq"] - 1 if r["seq"] > 1 else None, "removed",
                                     f"the records before seq {r['seq']} are missing"))
        elif r["seq"] > prev["seq"] + 1:
            missing = list(range(prev["seq"] + 1, r["seq"]))
            for s in missing:
                problems.append(_problem(s, "removed", f"record {s} is missing: seq {r['seq']} "
                                         f"links to a record that is no longer in the log"))
        elif id(prev) not in edited:
            edited.add(id(prev))
            problems.append(_problem(prev["seq"], "edited",
                                     f"its hash was rewritten: seq {r['seq']} links to a "
                                     "different predecessor"))
    order = chain_order(recs)
    pos = {id(r): i for i, r in enumerate(recs)}
    for i, r in enumerate(order):
        if pos[id(r)] != i:
            problems.append(_problem(r["seq"], "reordered",
                                     f"seq {r['seq']} is out of chain order: its prev_hash puts it "
                                     f"at position {i + 1}"))
    seqs = [r["seq"] for r in recs]
    for s, grp in groupby(seqs):
        if len(list(grp)) > 1:
            problems.append(_problem(s, "reordered", f"seq {s} appears more than once"))
    if head_mark is not None:
        hseq, hhash = head_mark
        last = order[-1] if order else None
        if hhash not in by_hash:
            top = max(seqs) if seqs else 0
            if hseq > top:
                for s in range(top + 1, hseq + 1):
                    problems.append(_problem(s, "removed", f"record {s} is missing: the log "
                                             f"head says it ends at seq {hseq}"))
            else:
                problems.append(_problem(hseq, "edited", "the log head no longer matches any "
                                         "record: the last record was replaced"))
        elif last is not None and last["hash"] != hhash:
            problems.append(_problem(last["seq"], "edited",
                                     f"records after seq {hseq} were added outside alphatrace"))
    return problems


def _describe(field: str, old: Any, new: Any) -> str:
    if field == "metrics" and isinstance(old, dict) and isinstance(new, dict):
        diffs = [f"{k} {old.get(k)} → {new.get(k)}" for k in sorted(set(old) | set(new))
                 if old.get(k) != new.get(k)]
        return "metrics: " + "; ".join(diffs)
    if field == "run_ids" and isinstance(old, list) and isinstance(new, list):
        added, gone = sorted(set(new) - set(old)), sorted(set(old) - set(new))
        parts = []
        if added:
            parts.append(f"+{len(added)} ({', '.join(added[:3])}{', …' if len(added) > 3 else ''})")
        if gone:
            parts.append(f"−{len(gone)} ({', '.join(gone[:3])}{', …' if len(gone) > 3 else ''})")
        return "run_ids: " + " ".join(parts or ["order changed"])
    return f"{field}: {old} → {new}"


def _parse_ts(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


def recheck(con: duckdb.DuckDBPyConnection, order: list[dict[str, Any]],
            skip: set[int], removed: set[int]) -> list[Problem]:
    """Re-decide every evaluation from the store and its stored policy; report differences."""
    problems: list[Problem] = []
    done: list[dict[str, Any]] = []
    for _, grp_iter in groupby(order, key=lambda r: r["eval_id"]):
        grp = list(grp_iter)
        pre = fold(done)
        done.extend(grp)
        gate = [r for r in grp if r["action"] != "revive"]
        if not gate:
            continue
        first = gate[0]
        body = stored_policy(con, first["policy_hash"])
        if body is None:
            problems.append(_problem(first["seq"], "removed",
                                     f"policy {str(first['policy_hash'])[:12]} of evaluation "
                                     f"{first['eval_id']} is not stored: cannot re-compute"))
            continue
        if body.get("__tampered__"):
            problems.append(_problem(first["seq"], "edited",
                                     f"stored policy {str(first['policy_hash'])[:12]} no longer "
                                     "matches its hash"))
            continue
        try:
            gp = from_decision_body(body, f"<stored policy {str(first['policy_hash'])[:12]}>")
        except PolicyError as e:
            problems.append(_problem(first["seq"], "inputs_changed",
                                     f"stored policy no longer loads: {e}"))
            continue
        as_of = _parse_ts(first["as_of"])
        fresh = {d.key: d.content() for d in decide(con, gp, as_of, pre)}
        stored_keys = set()
        for r in gate:
            key = (r["scope"], r["subject"])
            stored_keys.add(key)
            if id(r) in skip:
                continue
            now = fresh.get(key)
            if now is None:
                problems.append(_problem(r["seq"], "inputs_changed",
                                         f"{key[0]} {key[1]!r} has no eligible runs at this as-of "
                                         "any more"))
                continue
            diffs = [_describe(f, r.get(f), now.get(f)) for f in COMPARED if r.get(f) != now.get(f)]
            if diffs:
                problems.append(_problem(r["seq"], "inputs_changed", "; ".join(diffs)))
        seqs = [r["seq"] for r in grp]
        near_removal = any(min(seqs) - 1 <= s <= max(seqs) + 1 for s in removed)
        for key in sorted(set(fresh) - stored_keys):
            if near_removal:
                continue
            problems.append(_problem(gate[-1]["seq"], "inputs_changed",
                                     f"evaluation {first['eval_id']} would now also decide "
                                     f"{key[0]} {key[1]!r} ({fresh[key]['action']})"))
    return problems


def check_lifecycle(con: duckdb.DuckDBPyConnection, order: Iterable[dict[str, Any]]) -> list[Problem]:
    if not has_table(con, "lifecycle"):
        return []
    chain = fold(order)
    table = {(str(sc), str(s)): (str(st), int(q)) for sc, s, st, q in
             con.execute("SELECT scope, subject, state, since_seq FROM lifecycle").fetchall()}
    problems = []
    for key in sorted(set(chain) | set(table)):
        want = chain.get(key)
        got = table.get(key)
        if got is None or want != got[0]:
            problems.append(_problem(got[1] if got else None, "edited",
                                     f"lifecycle of {key[0]} {key[1]!r} is {got[0] if got else 'missing'}"
                                     f" but the log says {want or 'nothing'}"))
    return problems


def verify(con: duckdb.DuckDBPyConnection, recompute: bool = True) -> dict[str, Any]:
    recs = read_records(con)
    mark = head(con)
    problems = check_chain(recs, mark)
    order = chain_order(recs)
    if not problems:  # with a broken chain the implied lifecycle is itself unknown
        problems += check_lifecycle(con, order)
    if recompute:
        skip = {id(r) for r in recs if record_hash(r) != r["hash"]}
        removed = {int(p["seq"]) for p in problems if p["kind"] == "removed" and p["seq"] is not None}
        problems += recheck(con, order, skip, removed)
    problems.sort(key=lambda p: (p["seq"] is None, p["seq"] or 0, p["kind"], p["detail"]))
    return {"ok": not problems, "records": len(recs), "head": mark[1] if mark else None,
            "problems": problems}
