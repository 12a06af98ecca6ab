"""`audit verify`: is the decision log intact, and does every decision still follow from its
inputs?

Tampering and late data are told apart. A record whose content no longer matches its own hash
was edited; a link to a predecessor that no longer exists means a record was removed (a gap in
seq) or its hash rewritten (no gap); records whose chain order (followed through prev_hash)
differs from their seq order, or whose hash matches only under another seq, were reordered.

Whoever can write the store can also recompute every hash. Two checks still see such a rewrite:
each decision must follow from its own recorded metrics under its stored policy (and each revive
from a killed state), which needs no data but the record; and heads recorded outside the store
(signed heads, a heads file, a head the user wrote down; see anchor_check) pin the chain up to
them. A record that is intact but that the gates, re-run on the store with the stored policy,
the same as-of and the lifecycle at that as-of implied by the records before it in the chain
(lifecycle.History: newest by as_of, then seq), would decide differently is
reported as `inputs_changed` (the ledger changed after the decision), unless an anchor shows the
chain was rewritten there: then it is `rewritten`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Iterator
from itertools import groupby
from typing import Any

import duckdb
import numpy as np

from alphatrace.errors import PolicyError
from alphatrace.governance import anchor_check, redecide
from alphatrace.governance.canon import GENESIS
from alphatrace.governance.gates import apply_rules
from alphatrace.governance.journal import (
    HASH_VERSION,
    NEWEST,
    head,
    newest_kept,
    read_records,
    record_hash,
    stored_policy,
)
from alphatrace.governance.lifecycle import (
    CHAIN_SCOPE,
    ERROR,
    History,
    State,
    SubjectKey,
    failed,
    fold,
    resolve,
)
from alphatrace.governance.novelty import is_news
from alphatrace.governance.policy import SCOPES, GovernancePolicy, from_decision_body
from alphatrace.governance.reads import Reads, StoreReads
from alphatrace.governance.verdicts import Problem
from alphatrace.governance.verdicts import problem as _problem
from alphatrace.store.connection import has_table

COMPARED = ("action", "rule", "fired", "blocked", "state", "cascade_from", "metrics", "run_ids")
GATE_ACTIONS = ("promote", "kill", "hold", "inconclusive")
EVALUATED = (*GATE_ACTIONS, ERROR)  # what an evaluation writes (revives are written apart)
RECHAIN = "rechain"


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


def _renumbered(recs: list[dict[str, Any]], order: list[dict[str, Any]],
                intact: set[int]) -> dict[int, int]:
    """id(record) → the seq it was written with, for v2 records whose hash matches only under
    that seq (one more than their chain predecessor's): their seq was changed, nothing else."""
    by_hash = {r["hash"]: r for r in recs}
    orig: dict[int, int] = {}
    out: dict[int, int] = {}
    for r in order:
        orig[id(r)] = r["seq"]
        if id(r) in intact or r.get("hash_version") != HASH_VERSION:
            continue
        pred = by_hash.get(r["prev_hash"])
        cand = 1 if r["prev_hash"] == GENESIS else (
            orig[id(pred)] + 1 if pred is not None and id(pred) in orig else None)
        if cand is not None and cand != r["seq"] and record_hash({**r, "seq": cand}) == r["hash"]:
            out[id(r)] = orig[id(r)] = cand
    return out


def intact_ids(recs: list[dict[str, Any]]) -> set[int]:
    """id() of every record whose hash matches its content."""
    return {id(r) for r in recs if record_hash(r) == r["hash"]}


def check_chain(recs: list[dict[str, Any]], head_mark: tuple[int, str] | None,
                intact: set[int] | None = None) -> list[Problem]:
    """Problems in the chain itself: edited, removed, reordered records. `intact`: the result
    of intact_ids(recs) when the caller has it."""
    problems: list[Problem] = []
    if intact is None:
        intact = intact_ids(recs)
    order = chain_order(recs)
    renumbered = _renumbered(recs, order, intact)
    edited: set[int] = set()
    for r in recs:
        if id(r) not in intact and id(r) not in renumbered:
            edited.add(id(r))
            problems.append(_problem(r["seq"], "edited",
                                     "content does not match its hash: changed after it was written"))
    seen_v2 = False
    for r in recs:
        if r.get("hash_version") == HASH_VERSION:
            seen_v2 = True
        elif seen_v2 and id(r) not in edited:
            problems.append(_problem(r["seq"], "rewritten", "a v1 record after v2 records: "
                                     "re-hashed under the old formula, which covers neither seq "
                                     "nor created_at"))
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
    pos = {id(r): i for i, r in enumerate(recs)}
    for i, r in enumerate(order):
        if pos[id(r)] != i:
            problems.append(_problem(r["seq"], "reordered",
                                     f"seq {r['seq']} is out of chain order: its prev_hash puts it "
                                     f"at position {i + 1}"
                                     + (f" (it was written as seq {renumbered[id(r)]})"
                                        if id(r) in renumbered else "")))
        elif id(r) in renumbered:
            problems.append(_problem(r["seq"], "reordered", f"its seq was changed: it was "
                                     f"written as seq {renumbered[id(r)]}"))
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


Lifecycle = dict[SubjectKey, State]


def evaluations(order: list[dict[str, Any]]
                ) -> Iterator[tuple[list[dict[str, Any]], Lifecycle, Lifecycle,
                                    dict[SubjectKey, Any]]]:
    """Each evaluation's records (one eval_id, chain order) with the lifecycle before and after
    it and each subject's newest record before it (what its novelty test compared with), all
    as they were at its as-of (lifecycle.History: the records before it in the chain, stamped
    at or before its as-of, in knowledge-time order), which is what the evaluation judged
    with."""
    history = History()
    for _, grp_iter in groupby(order, key=lambda r: r["eval_id"]):
        grp = list(grp_iter)
        when = next((r["as_of"] for r in grp if r["scope"] != CHAIN_SCOPE and r["as_of"]), None)
        pre, last = history.at(str(when)) if when is not None else ({}, {})
        post = {**pre, **fold(grp)}
        history.add(grp)
        yield grp, pre, post, last


def _redecider(reads: Reads, order: list[dict[str, Any]]) -> redecide.Redecide:
    """governance.redecide.chosen for this log: its evaluations per policy, its newest as-of."""
    counts: dict[str, int] = {}
    newest: dt.datetime | None = None
    for _, grp in groupby(order, key=lambda r: r["eval_id"]):
        gate = [r for r in grp if r["action"] in EVALUATED]
        t = _parse_ts(gate[0]["as_of"]) if gate else None
        if t is None:
            continue
        ph = str(gate[0]["policy_hash"])
        counts[ph] = counts.get(ph, 0) + 1
        newest = t if newest is None else max(newest, t)
    if newest is None:
        return redecide.decide_each(reads)
    return redecide.chosen(reads, newest, counts)


class Policies:
    """The stored policies of a log, each read, checked against its hash and loaded once (a log
    has few policies and many evaluations)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._bodies: dict[str, dict[str, Any] | None] = {}
        self._loaded: dict[str, GovernancePolicy | PolicyError] = {}

    def body(self, policy_hash: str) -> dict[str, Any] | None:
        """The stored body (None: not stored; `{"__tampered__": True}`: altered)."""
        if policy_hash not in self._bodies:
            self._bodies[policy_hash] = stored_policy(self.con, policy_hash)
        return self._bodies[policy_hash]

    def load(self, policy_hash: str, body: dict[str, Any]) -> GovernancePolicy:
        """The policy of an intact stored `body`; PolicyError when it no longer loads."""
        if policy_hash not in self._loaded:
            try:
                self._loaded[policy_hash] = from_decision_body(
                    body, f"<stored policy {policy_hash[:12]}>")
            except PolicyError as e:
                self._loaded[policy_hash] = e
        got = self._loaded[policy_hash]
        if isinstance(got, PolicyError):
            raise got
        return got


def recheck(con: duckdb.DuckDBPyConnection, order: list[dict[str, Any]],
            skip: set[int], removed: set[int],
            redecider: redecide.Redecide | None = None,
            policies: Policies | None = None) -> list[Problem]:
    """Re-decide every evaluation from the store and its stored policy; report differences,
    each naming the record's seq, its subject and the fields. A subject an evaluation would
    decide news about but whose newest record before it is later is not expected in it (the
    evaluation held it back: `journal.out_of_order`). `redecider`: how (default: the
    windows of one replay plan per policy, governance.redecide)."""
    if redecider is None:
        redecider = _redecider(StoreReads(con), order)
    policies = policies or Policies(con)
    problems: list[Problem] = []
    differs: set[int] = set()  # records named inputs_changed: later novelty follows from them
    newest: dict[SubjectKey, str] = {}  # each subject's newest record's as_of, in chain order
    done: list[dict[str, Any]] = []
    for grp, pre, _, last in evaluations(order):
        for r in done:
            if r["scope"] != CHAIN_SCOPE and r["as_of"] is not None:
                newest[(str(r["scope"]), str(r["subject"]))] = str(r["as_of"])
        done = grp
        gate = [r for r in grp if r["action"] in EVALUATED]
        if not gate:
            continue
        first = gate[0]
        body = policies.body(str(first["policy_hash"]))
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
            gp = policies.load(str(first["policy_hash"]), body)
        except PolicyError as e:
            problems.append(_problem(first["seq"], "inputs_changed",
                                     f"stored policy no longer loads: {e}"))
            continue
        as_of = _parse_ts(first["as_of"])
        fresh = ({} if as_of is None else
                 {d.key: d.content() for d in redecider(gp, as_of, pre)})
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
            fields = (*COMPARED, "reason") if ERROR in (r["action"], now["action"]) else COMPARED
            diffs = [_describe(f, r.get(f), now.get(f)) for f in fields if r.get(f) != now.get(f)]
            if diffs:
                differs.add(id(r))
                problems.append(_problem(r["seq"], "inputs_changed",
                                         f"{key[0]} {key[1]!r}: " + "; ".join(diffs)))
        seqs = [r["seq"] for r in grp]
        near_removal = any(min(seqs) - 1 <= s <= max(seqs) + 1 for s in removed)
        for key in sorted(set(fresh) - stored_keys):
            prior = last.get(key)
            since = prior["seq"] if prior is not None else 0
            if (near_removal or (prior is not None and id(prior) in skip | differs)
                    or any(since < s < min(seqs) for s in removed)):
                continue  # what the evaluation compared with is named already, or removed
            if not is_news(prior, fresh[key]):
                continue  # an unchanged decision is not recorded again
            if newest.get(key, "") > str(first["as_of"]):
                continue  # its subject has a newer record: not recorded (journal.out_of_order)
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


def check_newest(con: duckdb.DuckDBPyConnection) -> list[Problem]:
    """`decision_newest` (migration 0027) against the log: it must name each subject's newest
    record by seq, with its action and as_of, and no subject the log lacks. The gates' reads
    answer from it while its newest seq is the log's (`journal.newest_kept`): a table edited
    by hand would make them judge a subject from a wrong record. Otherwise they read the log
    (records written other than by `journal.write`, or the newest deleted, which `write`
    repairs): nothing is checked. One grouped query; each subject that differs is an `edited`
    problem at the log's newest record of it (the table's when the log has none)."""
    if not newest_kept(con):
        return []
    rows = con.execute(f"""
WITH l AS (SELECT scope, subject, max(seq) AS seq FROM decisions GROUP BY scope, subject),
d AS (SELECT l.scope, l.subject, l.seq, min(d.action) AS action, min(d.as_of) AS as_of
      FROM l JOIN decisions d ON d.scope = l.scope AND d.subject = l.subject AND d.seq = l.seq
      GROUP BY ALL)
SELECT coalesce(d.scope, n.scope), coalesce(d.subject, n.subject), d.seq, d.action, d.as_of,
       n.seq, n.action, n.as_of
FROM d FULL JOIN {NEWEST} n ON n.scope = d.scope AND n.subject = d.subject
WHERE d.seq IS DISTINCT FROM n.seq OR d.action IS DISTINCT FROM n.action
   OR d.as_of IS DISTINCT FROM n.as_of
ORDER BY 1, 2""").fetchall()

    def said(seq: Any, action: Any, as_of: Any) -> str:
        return "nothing" if seq is None else f"seq {seq} ({action}, as_of {as_of})"

    return [_problem(lseq if lseq is not None else nseq, "edited",
                     f"decision_newest names {said(nseq, nact, nat)} as the newest record of "
                     f"{sc} {s!r}, but the log's newest is {said(lseq, lact, lat)}: the table or "
                     "the record was changed after the record was appended")
            for sc, s, lseq, lact, lat, nseq, nact, nat in rows]


def _loaded(policies: Policies, policy_hash: Any) -> GovernancePolicy | None:
    """The stored policy of a record, or None when it is missing, altered or does not load
    (recheck names those)."""
    body = policies.body(str(policy_hash)) if policy_hash is not None else None
    if body is None or body.get("__tampered__"):
        return None
    try:
        return policies.load(str(policy_hash), body)
    except PolicyError:
        return None


def _metric_env(gp: GovernancePolicy, recs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The rule inputs of `recs` from their own recorded metrics (null → NaN), or None when a
    record's metrics are not an object of numbers."""
    env: dict[str, Any] = {}
    for name in gp.gate_metrics():
        col = []
        for r in recs:
            m = r["metrics"]
            if not isinstance(m, dict):
                return None
            v = m.get(name, 0 if name == "runs" and not m else None)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                return None
            col.append(math.nan if v is None else float(v))
        env[name] = np.asarray(col, dtype=np.float64)
    return env


def check_consistency(con: duckdb.DuckDBPyConnection, order: list[dict[str, Any]],
                      skip: set[int], policies: Policies | None = None) -> list[Problem]:
    """Records that alphatrace could not have written, found from the chain alone: a gate
    decision whose action, rule, fired rules, block or state does not follow from its own
    recorded metrics under its stored policy and the lifecycle before it (`rewritten`); a revive
    of a subject that was not killed, an unknown action or scope (`forged`). Records in `skip`
    (ids of records already named as edited) are not judged again."""
    policies = policies or Policies(con)
    problems: list[Problem] = []
    for grp, pre, post, _ in evaluations(order):
        killed = {s for (sc, s), st in post.items() if sc == "strategy" and st == "killed"}
        gate = [r for r in grp if r["action"] in GATE_ACTIONS and r["scope"] in SCOPES]
        errors = [r for r in grp if r["action"] == ERROR and r["scope"] in SCOPES]
        problems += _failed_problems(errors, pre, skip)
        gate_ids = {id(r) for r in gate + errors}
        for r in grp:
            if id(r) in gate_ids or id(r) in skip:
                continue
            key = (r["scope"], r["subject"])
            if r["scope"] == CHAIN_SCOPE and r["action"] == RECHAIN:
                continue
            if r["action"] == "revive" and r["scope"] in SCOPES:
                was = pre.get(key, "candidate")
                if was != "killed" or r["state"] != "candidate" or not (r["reason"] or "").strip():
                    problems.append(_problem(r["seq"], "forged", f"revive of {key[0]} {key[1]!r} "
                                             f"(it was {was}, the record leaves it {r['state']}, "
                                             f"reason {r['reason']!r}): alphatrace revives only "
                                             "a killed subject, to candidate, with a reason"))
                continue
            problems.append(_problem(r["seq"], "forged", f"action {r['action']!r} in scope "
                                     f"{r['scope']!r} is not one alphatrace writes"))
        if not gate:
            continue
        gp = _loaded(policies, gate[0]["policy_hash"])
        if gp is None:
            continue
        env = _metric_env(gp, gate)
        if env is None:
            problems += [_problem(r["seq"], "rewritten", "its metrics are not a JSON object of "
                                  "numbers") for r in gate]
            continue
        hits = apply_rules(gp, env, [r["scope"] for r in gate], len(gate))
        for i, r in enumerate(gate):
            if id(r) in skip:
                continue
            cascade = r["cascade_from"]
            if cascade is not None and (r["scope"] != "agent" or cascade not in killed):
                problems.append(_problem(r["seq"], "rewritten", f"cascade_from {cascade!r} is not "
                                         "a strategy killed at that point"))
                continue
            o = resolve(pre.get((r["scope"], r["subject"]), "candidate"),
                        conclusive=bool(hits.conclusive[i]), kill_rule=hits.kill[i],
                        promote_rule=hits.promote[i], cascade_from=cascade)
            want = {"action": o.action, "rule": o.rule, "fired": list(hits.fired[i]),
                    "blocked": o.blocked, "state": o.state}
            diffs = [f"{f} {r[f]!r}" for f in want if r[f] != want[f]]
            if diffs:
                problems.append(_problem(
                    r["seq"], "rewritten",
                    f"{', '.join(diffs)} does not follow from its own recorded metrics under "
                    f"policy {str(r['policy_hash'])[:12]}, which give "
                    + ", ".join(f"{f} {want[f]!r}" for f in want if r[f] != want[f])))
    return problems


def _failed_problems(errors: list[dict[str, Any]], pre: Lifecycle,
                     skip: set[int]) -> list[Problem]:
    """An `error` record decides nothing: it must name its failure and leave the state, with no
    rule, fired rule, block or cascade."""
    out = []
    for r in errors:
        if id(r) in skip:
            continue
        o = failed(pre.get((r["scope"], r["subject"]), "candidate"))
        want: dict[str, Any] = {"rule": o.rule, "fired": [], "blocked": o.blocked, "state": o.state,
                "cascade_from": o.cascade_from}
        diffs = [f"{f} {r[f]!r}" for f in want if r[f] != want[f]]
        if not (r["reason"] or "").strip():
            diffs.append("no reason")
        if diffs:
            out.append(_problem(r["seq"], "rewritten", f"error of {r['scope']} "
                                f"{r['subject']!r}: {', '.join(diffs)}; a failed evaluation "
                                "records its reason and leaves the state "
                                f"{o.state!r}, with no rule"))
    return out


def recorded_problems(recs: Iterable[dict[str, Any]]) -> list[Problem]:
    """The problems a `rechain` record says the v1 chain had when it was re-chained: still
    problems (re-chaining must not launder earlier tampering)."""
    out = []
    for r in recs:
        if r["scope"] != CHAIN_SCOPE or r["action"] != RECHAIN or not isinstance(r["metrics"], dict):
            continue
        for p in r["metrics"].get("legacy_problems") or []:
            out.append(_problem(p.get("seq"), p.get("kind", "edited"),
                                f"found in the v1 chain when it was re-chained (seq {r['seq']}): "
                                f"{p.get('detail')}"))
    return out


def verify(con: duckdb.DuckDBPyConnection, recompute: bool = True,
           given: anchor_check.Given | None = None, reads: Reads | None = None
           ) -> dict[str, Any]:
    """Every check, problems sorted by seq. `given`: the anchors to check against (the heads
    signed in the store are always used; with a public key their signatures are checked).
    `reads`: where the re-computation reads the ledger (default: `con`'s); the log is always
    `con`'s."""
    recs = read_records(con)
    mark = head(con)
    intact = intact_ids(recs)
    problems = check_chain(recs, mark, intact)
    order = chain_order(recs)
    if not problems:  # with a broken chain the implied lifecycle is itself unknown
        problems += check_lifecycle(con, order)
        problems += check_newest(con)  # ... and a table from the log before it differs
    problems += recorded_problems(recs)
    broken = {id(r) for r in recs} - intact
    policies = Policies(con)
    own = check_consistency(con, order, broken, policies)
    problems += own
    anchors, anchor_problems = anchor_check.collect(con, given or anchor_check.Given())
    departed, rewritten, covered = anchor_check.compare(recs, anchors)
    problems += anchor_problems + departed
    if recompute:
        flagged = {int(p["seq"]) for p in own}
        skip = broken | {id(r) for r in recs if r["seq"] in flagged}
        removed = {int(p["seq"]) for p in problems
                   if p["kind"] in ("removed", "truncated") and p["seq"] is not None}
        redecider = _redecider(reads or StoreReads(con), order)
        for p in recheck(con, order, skip, removed, redecider, policies):
            if p["kind"] == "inputs_changed" and p["seq"] in rewritten:
                p = _problem(p["seq"], "rewritten", f"the chain no longer reaches "
                             f"{rewritten[p['seq']]}, and this record no longer follows from "
                             f"its inputs: {p['detail']}")
            problems.append(p)
    problems.sort(key=lambda p: (p["seq"] is None, p["seq"] or 0, p["kind"], p["detail"]))
    legacy = sum(1 for r in recs if r.get("hash_version") != HASH_VERSION)
    return {"ok": not problems, "records": len(recs), "head": mark[1] if mark else None,
            "legacy_records": legacy, "anchors": len(anchors), "anchored_to_seq": covered,
            "problems": problems}
