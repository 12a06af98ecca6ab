"""Decisions equal docs/architecture.md §Governance computed by hand, are the same when evaluated twice, and do not
depend on the order the runs were written in."""

from __future__ import annotations

import datetime as dt
import random
import statistics
from collections.abc import Iterator
from typing import Any
from unittest.mock import patch

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.governance import journal
from alphatrace.governance.gates import decide
from alphatrace.governance.policy import load_governance
from alphatrace.governance.runs import data_as_of
from tests.policies import SEED
from tests.rows import T0, insert, reset, run

AGENTS = ["A", "B", "C", "D"]
STRATEGIES = ["S", "T", None]


_ROW = st.tuples(
    st.sampled_from(AGENTS),
    st.integers(0, 9),                                                    # 0: off its home strategy
    st.sampled_from(STRATEGIES),
    st.one_of(st.none(), st.integers(-240, 240).map(lambda q: q / 4)),  # pnl, quarter bps
    st.integers(0, 12),                                                   # hour: many ties
    st.sampled_from([0, 0, 0, 0, 0, 0, 1, 3]),                            # errors
    st.sampled_from([100.0, 650.0, 699.0, 700.0, 900.0, None]),           # latency
    st.integers(0, 10**6),
)


@st.composite
def ledgers(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Random ledgers with many ties in time, unrealized runs, errors and missing latency."""
    home = draw(st.fixed_dictionaries({a: st.sampled_from(STRATEGIES) for a in AGENTS}))
    raw = draw(st.lists(_ROW, min_size=draw(st.sampled_from([0, 10, 30])), max_size=80))
    positive = draw(st.booleans())  # mostly winning ledgers, so promotions happen too
    rows = []
    for i, (a, off, other, pnl, hour, errors, latency, salt) in enumerate(raw):
        if positive:
            pnl = None if pnl is None else abs(pnl)
            errors = 0
        rows.append(run(f"r{salt:07d}-{i}", a, pnl, hour=hour,
                        strategy=home[a] if off else other, errors=errors, latency_ms=latency))
    return rows


def by_hand(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """§6 read literally, in plain Python, with no code from alphatrace.governance."""
    as_of = max(r["ts"] for r in rows)
    eligible = sorted((r for r in rows if r["realized_pnl_bps"] is not None),
                      key=lambda r: (r["ts"], r["run_id"]))
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for scope in ("agent", "strategy"):
        for subject in sorted({r[scope] for r in eligible if r[scope] is not None}):
            mine = [r for r in eligible if r[scope] == subject][-20:]
            pnl = [r["realized_pnl_bps"] for r in mine]
            lat = [r["latency_ms"] for r in mine if r["latency_ms"] is not None]
            m = {
                "runs": len(mine),
                "rolling_pnl_bps": sum(pnl),
                "last_5_runs_pnl": sum(pnl[-5:]),
                "error_rate": sum(1 for r in mine if (r["errors"] or 0) > 0) / len(mine),
                "median_latency_ms": statistics.median(lat) if lat else None,
            }
            kill = m["last_5_runs_pnl"] < -100 or m["error_rate"] > 0.2
            promote = (m["rolling_pnl_bps"] > 150 and m["error_rate"] == 0
                       and m["median_latency_ms"] is not None and m["median_latency_ms"] < 700)
            if m["runs"] < 5:
                action, rule = "inconclusive", None
            elif kill:
                action, rule = "kill", "kill_drawdown"
            elif promote:
                action, rule = "promote", "promote_consistent"
            else:
                action, rule = "hold", None
            out[(scope, subject)] = {"action": action, "rule": rule, "metrics": m,
                                     "run_ids": [r["run_id"] for r in mine], "cascade_from": None}
    killed = sorted(s for (sc, s), d in out.items() if sc == "strategy" and d["action"] == "kill")
    for a in sorted({r["agent"] for r in rows}):
        joined = sorted({r["strategy"] for r in rows if r["agent"] == a and r["strategy"] in killed
                         and r["ts"] <= as_of})
        if not joined:
            continue
        d = out.get(("agent", a))
        if d is None:
            out[("agent", a)] = {"action": "kill", "rule": "cascade", "metrics": {},
                                 "run_ids": [], "cascade_from": joined[0]}
        elif d["action"] != "kill":
            d.update(action="kill", rule="cascade", cascade_from=joined[0])
    return out


@pytest.fixture(scope="module")
def shared() -> Iterator[at.Database]:
    db = at.connect(":memory:")
    yield db
    db.close()


@settings(max_examples=60)
@given(rows=ledgers())
def test_decisions_equal_design_6_by_hand(shared: at.Database, rows: list[dict[str, Any]]) -> None:
    db = shared
    reset(db.con)
    insert(db.con, rows)
    gp = load_governance(SEED)
    got = {d.key: d for d in decide(db.con, gp, data_as_of(db.con), {})}
    want = by_hand(rows) if rows else {}
    assert sorted(got) == sorted(want)
    for key, w in want.items():
        g = got[key]
        assert (g.action, g.rule, g.cascade_from) == (w["action"], w["rule"], w["cascade_from"]), key
        assert g.run_ids == w["run_ids"], key
        # recorded metrics are rounded to 12 significant digits (1/3 → 0.333333333333)
        assert g.metrics == {k: v if not isinstance(v, float) else pytest.approx(v, rel=1e-11)
                             for k, v in w["metrics"].items()}, key


# created_at is the one time of writing in a record; it is hashed, so the clock is fixed here
# and every field, every hash included, must then be identical.
WRITTEN_AT = dt.datetime(2024, 6, 1, 12, 0, 0, 123456)


def _records(db: at.Database, rows: list[dict[str, Any]], as_of: str | None = None
             ) -> list[dict[str, Any]]:
    """Two evaluations on a fresh log (the store is reused, its tables emptied): the records
    of the first (the second, on the same data, records nothing)."""
    reset(db.con)
    insert(db.con, rows)
    with patch.object(journal, "now", lambda: WRITTEN_AT):
        recs = db.gates.evaluate(SEED, catch_up=False, as_of=as_of)
        assert db.gates.evaluate(SEED, catch_up=False, as_of=as_of) == []
    assert {r["created_at"] for r in recs} <= {"2024-06-01T12:00:00.123456Z"}
    return recs


@pytest.mark.slow
@settings(max_examples=40)
@given(rows=ledgers(), rnd=st.randoms(use_true_random=False))
def test_shuffled_insertion_gives_byte_identical_records(
        shared: at.Database, rows: list[dict[str, Any]], rnd: random.Random) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    a = _records(shared, rows)
    b = _records(shared, shuffled)
    assert a == b  # including every hash: the chain itself is reproducible


@pytest.mark.slow
@settings(max_examples=40)
@given(rows=ledgers(), hour=st.integers(0, 12))
def test_evaluating_twice_gives_identical_decisions(
        shared: at.Database, rows: list[dict[str, Any]], hour: int) -> None:
    as_of = (T0 + dt.timedelta(hours=hour)).isoformat()
    recs = _records(shared, rows, as_of)  # the second evaluation appended nothing
    # ... because it decides exactly what the first recorded, given the lifecycle that left
    again = shared.gates.evaluation(SEED, catch_up=False, as_of=as_of, record=False)
    hashed = ("seq", "eval_id", "prev_hash", "hash", "created_at", "actor", "hash_version")
    assert [{k: v for k, v in r.items() if k not in hashed} for r in recs] == [
        {k: v for k, v in d.items() if k not in ("changed", "not_recorded", "seq", "hash")}
        for d in again["decisions"]]
    assert again["changed"] == 0 and again["evaluated"] == len(recs)
    assert shared.audit_verify()["ok"]
