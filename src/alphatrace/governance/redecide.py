"""What each recorded evaluation would decide on today's store: `audit verify`'s re-computation.

A recorded evaluation at time T is re-decided by `gates.judge` from every subject's window at T
and the lifecycle at T implied by the records before it in the chain (audit.evaluations supplies
that lifecycle, lifecycle.History, so one altered record is named alone instead of changing
every later decision of its subject).

The windows come from one replay plan per stored policy (governance/replay.py: every subject's
assessment at each of its points, in one metric pass; the computation the catch-up of `gates
evaluate` and the backtest walk over), not from one window query per evaluation. A subject's
window changes only at its points, so its window at T is the one of its last point at or before
T. Cascade targets come from the replay's `Membership` (agents with a run in a killed strategy
signalled by T), as `gates._cascade_targets` reads them at T.

The plan computes a window at every point of every subject: each run is read about
2 × window.runs times (one window per point of its agent and of its strategy), where one
evaluation's window query reads each run about once. So a policy with fewer evaluations than
that in the log (a few `--once` evaluations over a long history) is re-decided by `decide_each`,
`gates.decide` at each evaluation (what `audit verify` always did before); `chosen` picks per
policy. Both give the same decisions; tests/governance/test_audit_replay.py checks that on
random logs.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Mapping

from alphatrace.governance.gates import Assessment, Decision, judge
from alphatrace.governance.lifecycle import State, SubjectKey
from alphatrace.governance.policy import GovernancePolicy
from alphatrace.governance.reads import Reads

# (policy, as-of, lifecycle before) → every subject's decision, ordered (scope, subject)
Redecide = Callable[[GovernancePolicy, dt.datetime, Mapping[SubjectKey, State]], list[Decision]]


class Windows:
    """Every subject's assessments under one policy up to `target`, by the time they start."""

    def __init__(self, reads: Reads, gp: GovernancePolicy, target: dt.datetime) -> None:
        p = reads.plan(gp, {}, target)
        self.times: dict[SubjectKey, list[dt.datetime]] = {}
        self.assessed: dict[SubjectKey, list[Assessment]] = {}
        for t, batch in p.by_time.items():  # in time order
            for a in batch:
                self.times.setdefault(a.key, []).append(t)
                self.assessed.setdefault(a.key, []).append(a)
        self.members = reads.membership(target)

    def at(self, t: dt.datetime) -> list[Assessment]:
        """Each subject's assessment at `t` (its last point at or before it), ordered (scope,
        subject); subjects with no run known by `t` are absent."""
        out = []
        for key in sorted(self.times):
            i = bisect.bisect_right(self.times[key], t)
            if i:
                out.append(self.assessed[key][i - 1])
        return out

    def targets(self, t: dt.datetime) -> Callable[[list[str]], dict[str, str]]:
        def of(strategies: list[str]) -> dict[str, str]:
            hits = {a: self.members.target(a, strategies, t) for a in sorted(self.members.first)}
            return {a: s for a, s in hits.items() if s is not None}
        return of

    def decide(self, gp: GovernancePolicy, t: dt.datetime,
               pre: Mapping[SubjectKey, State]) -> list[Decision]:
        return judge(gp, t, pre, self.at(t), self.targets(t))


def planned(reads: Reads, target: dt.datetime) -> Redecide:
    """A re-decider reading windows from one replay plan per policy, up to `target` (the newest
    as-of to re-decide), each built on first use."""
    cache: dict[str, Windows] = {}

    def redecide(gp: GovernancePolicy, t: dt.datetime,
                 pre: Mapping[SubjectKey, State]) -> list[Decision]:
        if t > target:
            raise ValueError(f"as-of {t} is after the re-decider's target {target}")
        w = cache.get(gp.hash)
        if w is None:
            w = cache[gp.hash] = Windows(reads, gp, target)
        return w.decide(gp, t, pre)

    return redecide


PLAN_RUNS = 20  # the window a duration-only policy is costed as


def worth_planning(gp: GovernancePolicy) -> int:
    """From how many evaluations of `gp` one plan costs less than a query per evaluation."""
    return 2 * (gp.gates.window.runs or PLAN_RUNS)


def chosen(reads: Reads, target: dt.datetime, evaluations: Mapping[str, int]) -> Redecide:
    """Per policy: the plan when the log has `worth_planning` evaluations of it or more
    (`evaluations`: policy hash → count), else one query per evaluation."""
    plans, each = planned(reads, target), decide_each(reads)

    def redecide(gp: GovernancePolicy, t: dt.datetime,
                 pre: Mapping[SubjectKey, State]) -> list[Decision]:
        how = plans if evaluations.get(gp.hash, 0) >= worth_planning(gp) else each
        return how(gp, t, pre)

    return redecide


def decide_each(reads: Reads) -> Redecide:
    """The reference: one evaluation's windows (`gates.decide`: a window query) per
    evaluation."""
    return lambda gp, t, pre: judge(gp, t, pre, reads.assess(gp, t), reads.members(t))
