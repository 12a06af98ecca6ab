"""The governance area of the Python API: `Governance`, an object on a store whose methods
`alphatrace.Database` exposes (`db.gates`, `db.confidence`, `db.audit_verify`, `db.revive`, ...).

This is where governance touches the store: it resolves the policy and the as-of time, runs the
pure computations, and appends decisions to the log inside one transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from alphatrace.errors import GovernanceError, NotFoundError
from alphatrace.governance import (
    anchor,
    anchor_check,
    audit,
    backtest,
    confidence,
    journal,
    novelty,
    replay,
    upgrade,
)
from alphatrace.governance.canon import ts_text
from alphatrace.governance.gates import Decision, judge
from alphatrace.governance.lifecycle import State, SubjectKey
from alphatrace.governance.policy import GovernancePolicy, load_governance
from alphatrace.governance.reads import Reads, StoreReads
from alphatrace.governance.runs import data_as_of, parse_as_of
from alphatrace.policy import Policy
from alphatrace.store import Store
from alphatrace.store.connection import has_table
from alphatrace.utc import utc_result

PolicySource = str | Path | Policy | GovernancePolicy | None
AsOf = str | dt.datetime | None


class Gates:
    """`db.gates`: evaluate the promotion/kill gates now or as of a past time; backtest them.

    `reads`: where the ledger is read (default: the store's; `engines.spark` passes its
    own). The decision log, lifecycle and progress marks are always the store's."""

    def __init__(self, store: Store, reads: Reads | None = None) -> None:
        self.store = store
        self._reads = reads

    @property
    def reads(self) -> Reads:
        return self._reads if self._reads is not None else StoreReads(self.store.con)

    @utc_result
    def evaluate(self, policy: PolicySource = None, as_of: AsOf = None, *,
                 record: bool = True, catch_up: bool = True,
                 once: bool = False) -> list[dict[str, Any]]:
        """The records appended to the decision log: one per subject whose decision is news
        (see governance.novelty; re-evaluating unchanged data appends none). With
        `record=False`: every subject's decision, nothing written. `as_of` defaults to the
        newest knowledge time in the ledger. By default a catch-up, as `gates evaluate`: at
        every knowledge time since the progress mark up to `as_of` (see docs/governance.md,
        Catch-up); `once=True` (or `catch_up=False`): one evaluation at `as_of`."""
        doc = self._run(policy, as_of, record, catch_up and not once)
        return doc["records"] if record else [d for d, _, _ in doc["decisions"]]

    @utc_result
    def evaluation(self, policy: PolicySource = None, as_of: AsOf = None, *,
                   record: bool = True, catch_up: bool = True,
                   once: bool = False) -> dict[str, Any]:
        """Like `evaluate`, but about every subject evaluated: `{"as_of", "policy_hash",
        "recorded" (written, not a dry run), "evaluated", "changed", "decisions"}`, each
        decision with `changed` (news at its as-of), `not_recorded` (why news is not appended:
        its subject has a newer record, `journal.out_of_order`; else null) and the `seq` and
        `hash` of its record (null when not recorded)."""
        gp = load_governance(policy)
        doc = self._run(gp, as_of, record, catch_up and not once)
        recs = iter(doc["records"])
        decisions = []
        for d, news, why in doc["decisions"]:
            rec = next(recs) if news and why is None and record else {}
            decisions.append({**d, "changed": news, "not_recorded": why,
                              "seq": rec.get("seq"), "hash": rec.get("hash")})
        return {"as_of": doc["as_of"], "policy_hash": gp.hash, "recorded": record,
                "evaluated": len({(d["scope"], d["subject"]) for d in decisions}),
                "changed": sum(d["changed"] for d in decisions),
                "decisions": decisions}

    def _run(self, policy: PolicySource, as_of: AsOf, record: bool,
             catch_up: bool = False) -> dict[str, Any]:
        """A single evaluation at `as_of` (default: the newest knowledge time), or with
        `catch_up` every knowledge time after the progress marks up to it; a catch-up to a
        time at or before the progress mark (or a dry run at a given time) is a single
        evaluation at that time. The log's `decision_newest` is checked once for it
        (`journal.newest_checked`): only its own `journal.write` adds records meanwhile."""
        gp = load_governance(policy)
        con = self.store.con
        asked = parse_as_of(as_of)
        with journal.newest_checked(con):
            if not catch_up:
                return self._single(gp, asked or self.reads.as_of(), record)
            marks = replay.progress(con)
            if asked is not None and (not record or (marks and asked <= max(marks.values()))):
                return self._single(gp, asked, record)
            if asked is None:  # the newest knowledge time; the last catch-up's bounds its read
                asked = self.reads.as_of(max(marks.values()) if marks else None)
            return self._catch_up(gp, asked, marks, record)

    def _catch_up(self, gp: GovernancePolicy, target: dt.datetime | None,
                  marks: dict[SubjectKey, dt.datetime], record: bool) -> dict[str, Any]:
        con = self.store.con
        if target is None:
            return {"as_of": None, "records": [], "decisions": []}
        # read before the write transaction: a query that fails there would abort it
        reads = self.reads
        newest = journal.newest_times(con)
        p = reads.plan(gp, resume_marks(marks, newest), target, replay.seen(con))
        revived = replay.revived(newest, target)
        for t in revived:
            p.by_time.setdefault(t, [])
        p.by_time = dict(sorted(p.by_time.items()))
        first = min(p.by_time) if p.by_time else None

        def walked() -> list[tuple[Decision, bool]]:
            steps = replay.walk(con, gp, p, replay.start(con, first, newest=newest), target,
                                revived, reads)
            out: list[tuple[Decision, bool]] = []
            final: dict[SubjectKey, tuple[Decision, bool]] = {}
            for _, ds in steps:
                for d, news in ds:
                    if news:
                        out.append((d, news))
                    final[d.key] = (d, news)
            # subjects with no news: their decision at the last point they were judged
            out += [final[k] for k in sorted(final) if not final[k][1]]
            return out

        def advance(_: list[tuple[Decision, bool]], __: set[SubjectKey]) -> None:
            replay.save_progress(con, p.subjects, target)
            replay.save_seen(con, p.seen)

        return self._settle(gp, target, walked, record, advance)

    def _single(self, gp: GovernancePolicy, when: dt.datetime | None,
                record: bool) -> dict[str, Any]:
        con = self.store.con
        # read before the write transaction: a query that fails there would abort it
        reads = self.reads
        assessed = reads.assess(gp, when) if when is not None else []

        def decided() -> list[tuple[Decision, bool]]:
            last = journal.newest_records(con, when)
            pre = journal.states_of(last)
            ds = (judge(gp, when, pre, assessed, reads.members(when)) if when is not None
                  else [])
            return [(d, novelty.is_news(last.get(d.key), d.content())) for d in ds]

        def advance(decisions: list[tuple[Decision, bool]], held: set[SubjectKey]) -> None:
            if when is not None:  # a later catch-up starts after `when` for these subjects
                marks = replay.progress(con)
                replay.save_progress(con, {d.key for d, _ in decisions if d.key not in held
                                           and (d.key not in marks or marks[d.key] < when)},
                                     when)

        return self._settle(gp, when, decided, record, advance)

    def _settle(self, gp: GovernancePolicy, as_of: dt.datetime | None,
                decide: Callable[[], list[tuple[Decision, bool]]], record: bool,
                progress: Callable[[list[tuple[Decision, bool]], set[SubjectKey]], None]
                ) -> dict[str, Any]:
        """Decide; when recording, inside one transaction that also appends the news (which
        queues its notifications) and moves the progress marks, so a failure leaves none.
        News about a subject with a newer record is reported with why, not appended
        (`journal.held_back`: a past evaluation never replaces today's lifecycle); the other
        subjects are recorded as usual."""
        if not record:
            decisions = decide()
            why = self._held(decisions)
            records: list[dict[str, Any]] = []
        else:
            with self.store.transaction():
                upgrade.ensure_current(self.store)
                decisions = decide()
                why = self._held(decisions)
                records = journal.append(self.store, [d for (d, news), w in zip(
                    decisions, why, strict=True) if news and w is None],
                    gp.decision_body(), notify=gp.notify)
                progress(decisions, {d.key for (d, _), w in zip(decisions, why, strict=True)
                                     if w is not None})
        return {"as_of": ts_text(as_of), "records": records,
                "decisions": [(d.content(), news, w) for (d, news), w in
                              zip(decisions, why, strict=True)]}

    def _held(self, decisions: list[tuple[Decision, bool]]) -> list[str | None]:
        """Per decision: why its news is not appended (None: it is, or it is not news)."""
        news = [d for d, n in decisions if n]
        why = iter(journal.held_back(self.store.con, news))
        return [next(why) if n else None for _, n in decisions]

    @utc_result
    def backtest(self, policy: PolicySource = None) -> dict[str, Any]:
        """Replay the policy run by run over the whole history; see docs/governance.md."""
        return backtest.run(self.store.con, load_governance(policy), self.reads)


def resume_marks(marks: Mapping[SubjectKey, dt.datetime],
                 newest: Mapping[SubjectKey, journal.Newest]) -> dict[SubjectKey, dt.datetime]:
    """Where a catch-up resumes each subject: its progress mark, or its newest record's as_of
    when that is later (a revive stamped at a knowledge time the subject was not evaluated to,
    a cascade), so it judges no point before a record already in the log
    (`journal.out_of_order`). `newest`: `journal.newest_times` (every subject)."""
    out = dict(marks)
    for key, n in newest.items():
        if key not in out or out[key] < n.as_of:
            out[key] = n.as_of
    return out


def resolve_subject(store: Store, subject: str, scope: str | None) -> SubjectKey:
    """The (scope, subject) a user means; asks for --scope when a name is both."""
    con = store.con
    found: list[str] = []
    for sc in ("agent", "strategy"):
        if scope is not None and sc != scope:
            continue
        hit = (sc, subject) in journal.lifecycle_states(con)
        if not hit and has_table(con, "ledger"):
            hit = bool(con.execute(f"SELECT count(*) FROM ledger WHERE {sc} = ?",
                                   [subject]).fetchall()[0][0])
        if hit:
            found.append(sc)
    if not found:
        raise NotFoundError(f"no agent or strategy named {subject!r}"
                            + (f" in scope {scope}" if scope else ""))
    if len(found) > 1:
        raise GovernanceError(f"{subject!r} is both an agent and a strategy: pass --scope")
    return (found[0], subject)


class Governance:
    """Confidence, the gates (`gates`), the audit of the decision log, revive
    (docs/governance.md). `reads`: where the gates and the audit's re-computation read the
    ledger (default: the store's; `engines.spark` passes its own)."""

    def __init__(self, store: Store, reads: Reads | None = None) -> None:
        self.store = store
        self._reads = reads
        self.gates = Gates(store, reads)

    @utc_result
    def confidence(self, agent: str | None = None, history: bool = False,
                   policy: PolicySource = None, as_of: AsOf = None) -> pa.Table:
        """Per agent: multiplier, runs, last run, lowest multiplier, warning, lifecycle state.
        With `history=True`: every run's factor and the multiplier after it."""
        gp = load_governance(policy)
        when = parse_as_of(as_of)
        conf = confidence.compute(self.store.con, gp, agent, when)
        if agent is not None and len(conf.order) == 0 and not _has_agent(self.store, agent):
            raise NotFoundError(f"no agent named {agent!r}")
        if history:
            return conf.history()
        return with_states(conf.summary(gp.confidence.warn_below),
                           journal.lifecycle_states(self.store.con, when))

    @utc_result
    def audit_verify(self, recompute: bool = True,
                     anchors: anchor_check.Given | None = None) -> dict[str, Any]:
        """Re-hash the chain, check each decision against its own metrics and the chain against
        the heads signed or given in `anchors`, and (unless `recompute=False`) re-decide every
        evaluation from the store and its stored policy; names each problem (see
        docs/governance.md)."""
        return audit.verify(self.store.con, recompute=recompute, given=anchors,
                            reads=self._reads)

    def audit_sign(self, key: Path, heads_file: Path | None = None) -> dict[str, Any]:
        """Sign the decision log's head with the Ed25519 key file; append it to `heads_file`."""
        return anchor.sign_head(self.store, key, heads_file).to_json()

    @utc_result
    def audit_show(self, subject: str, scope: str | None = None) -> list[dict[str, Any]]:
        """Every record about a subject, oldest first."""
        sc, name = resolve_subject(self.store, subject, scope)
        return journal.read_records(self.store.con, name, sc)

    @utc_result
    def revive(self, subject: str, reason: str, scope: str | None = None,
               actor: str | None = None) -> dict[str, Any]:
        """Bring a killed subject back to candidate: the only way out of `killed`, recorded
        with who (`actor`, default: the OS user) and why."""
        if not reason or not reason.strip():
            raise GovernanceError("revive needs a --reason: it is recorded in the decision log")
        key = resolve_subject(self.store, subject, scope)
        con = self.store.con
        with self.store.transaction():
            upgrade.ensure_current(self.store)
            pre = journal.lifecycle_states(con)
            state: State = pre.get(key, "candidate")
            if state != "killed":
                raise GovernanceError(f"{key[0]} {key[1]!r} is {state}, not killed: nothing to revive")
            if key[0] == "agent":
                blocking = [s for (sc, s), st in pre.items() if sc == "strategy" and st == "killed"
                            and s in _strategies_of(self.store, key[1])]
                if blocking:
                    raise GovernanceError(
                        f"agent {key[1]!r} belongs to killed strategy {blocking[0]!r}: revive the "
                        "strategy first, or the next evaluation kills the agent again")
            now = journal.now()
            d = Decision(subject=key[1], scope=key[0], action="revive", rule=None, fired=(),
                         blocked=False, state="candidate", cascade_from=None, metrics={},
                         run_ids=[], as_of=revive_time(con, key), policy_hash=None,
                         reason=reason.strip())
            return journal.append(self.store, [d], None, actor=actor or upgrade.operator(),
                                  at=now)[0]


def with_states(summary: pa.Table, states: dict[SubjectKey, State]) -> pa.Table:
    """A confidence summary with each agent's lifecycle state (`candidate` when the log has
    none), whichever engine computed it."""
    return summary.append_column("state", pa.array(
        [states.get(("agent", a), "candidate") for a in summary.column("agent").to_pylist()],
        pa.string()))


def revive_time(con: duckdb.DuckDBPyConnection, key: SubjectKey) -> dt.datetime:
    """A revive's as_of: the time the data stands at (the newest knowledge time), or the
    subject's newest record's as_of when that is later, so that it counts after the kill it
    lifts and from the next knowledge time on; the wall clock when the store has neither.
    When it was written is its created_at."""
    newest = journal.newest_records(con).get(key)
    times = [t for t in (data_as_of(con), parse_as_of(newest["as_of"]) if newest else None)
             if t is not None]
    return max(times) if times else journal.now()


def _has_agent(store: Store, agent: str) -> bool:
    return bool(store.con.execute("SELECT count(*) FROM ledger WHERE agent = ?",
                                  [agent]).fetchall()[0][0])


def _strategies_of(store: Store, agent: str) -> set[str]:
    rows = store.con.execute("SELECT DISTINCT strategy FROM ledger WHERE agent = ? "
                             "AND strategy IS NOT NULL", [agent]).fetchall()
    return {str(r[0]) for r in rows}
