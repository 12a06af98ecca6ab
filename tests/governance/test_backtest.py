"""Gate backtest: hand-computed kill/promote points and avoided PnL, and a brute-force replay
(one gate evaluation per point in time, lifecycle carried) as an independent check."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.api import Database
from alphatrace.governance.gates import decide
from alphatrace.governance.lifecycle import State, SubjectKey
from alphatrace.governance.policy import load_governance
from alphatrace.utc import aware
from tests.policies import SEED
from tests.rows import T0, insert, reset, run, series


def by_subject(db: Database, policy: Any = SEED) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["scope"], r["subject"]): r for r in db.gates.backtest(policy)["subjects"]}


def test_kill_point_and_avoided_pnl_by_hand(db: Database) -> None:
    # last-5 sums: run 7 (index 6) is the first under −100: 10 − 30·4 = −110
    insert(db.con, series("A", [10.0] * 3 + [-30.0] * 5 + [5.0] * 3, strategy=None))
    a = by_subject(db)[("agent", "A")]
    assert (a["killed_run"], a["killed_at"], a["kill_rule"]) == ("A0006", aware(T0 + dt.timedelta(hours=6)),
                                                                 "kill_drawdown")
    assert a["runs_after_kill"] == 4
    assert a["pnl_after_kill_bps"] == -30.0 + 5.0 * 3
    assert a["pnl_after_kill_usd"] == -15.0 and a["avoided_usd"] == 15.0
    assert a["promoted_at"] is None and a["runs"] == 11


def test_promotion_point_by_hand(db: Database) -> None:
    # cumulative 10 bps a run: 16 runs = 160 > 150 is the first promotion
    insert(db.con, series("B", [10.0] * 25, strategy=None))
    b = by_subject(db)[("agent", "B")]
    assert (b["promoted_run"], b["promote_rule"]) == ("B0015", "promote_consistent")
    assert b["killed_at"] is None and b["avoided_usd"] == 0.0


def test_promotion_then_kill(db: Database) -> None:
    insert(db.con, series("A", [10.0] * 16 + [-25.0] * 5 + [1.0] * 2, strategy=None))
    a = by_subject(db)[("agent", "A")]
    assert a["promoted_run"] == "A0015"
    assert a["killed_run"] == "A0020"  # last 5 = −125
    assert a["pnl_after_kill_bps"] == 2.0 and a["avoided_usd"] == -2.0


def test_kill_wins_at_the_same_point(db: Database) -> None:
    # run 6 (+160) lifts the 6-run sum to 160.25 > 150 and drops the +400 out of the last 5,
    # making them −239.75 < −100: both rules fire at the same run, the kill wins
    insert(db.con, series("A", [400.0, -100.0, -100.0, -100.0, -99.75, 160.0, 1.0], strategy=None))
    a = by_subject(db)[("agent", "A")]
    assert a["killed_run"] == "A0005" and a["promoted_run"] is None
    assert a["pnl_after_kill_bps"] == 1.0


def test_cascade_points(db: Database) -> None:
    rows = (series("A", [-40.0] * 5, strategy="S")                    # hours 0..4
            + series("B", [2.0] * 10, strategy="S", start_hour=0.5)   # hours 0.5..9.5
            + series("C", [3.0] * 4, strategy="S", start_hour=10))    # joins after the kill
    insert(db.con, rows)
    out = by_subject(db)
    # S's first 5 runs (A0000 B0000 A0001 B0001 A0002) sum to −116: killed at A0002
    s = out[("strategy", "S")]
    assert (s["killed_run"], s["kill_rule"]) == ("A0002", "kill_drawdown")
    for name in ("A", "B"):  # both were in S before its kill: cascaded at S's kill point
        x = out[("agent", name)]
        assert (x["killed_run"], x["kill_rule"], x["cascade_from"]) == ("A0002", "cascade", "S")
    assert out[("agent", "A")]["pnl_after_kill_bps"] == -80.0   # A0003, A0004
    assert out[("agent", "B")]["runs_after_kill"] == 8          # B0002 .. B0009
    assert out[("agent", "B")]["pnl_after_kill_bps"] == 16.0
    # C is killed at its first run in S; that run happened, the 3 after it are avoided
    c = out[("agent", "C")]
    assert (c["killed_run"], c["runs_after_kill"], c["pnl_after_kill_bps"]) == ("C0000", 3, 9.0)
    summary = db.gates.backtest(SEED)["summary"]
    assert summary["cascaded"] == 3 and summary["killed"] == 4
    assert summary["agents_avoided_bps"] == 80.0 - 16.0 - 9.0


def test_time_window_backtest(db: Database, tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("gates:\n  window: {runs: null, duration: 3h}\n  min_runs: 3\n  rules:\n"
                 "    - {name: k, action: kill, when: 'rolling_pnl_bps < -100'}\n")
    # hours 0..5: −40 each; window (t−3h, t]: 3 runs = −120 at hour 2
    insert(db.con, series("A", [-40.0] * 6, strategy=None))
    a = by_subject(db, p)[("agent", "A")]
    assert a["killed_run"] == "A0002" and a["runs_after_kill"] == 3


# -------------------------------------------------- property: brute-force replay through time

@st.composite
def ledgers(draw: st.DrawFn) -> list[dict[str, Any]]:
    n = draw(st.integers(1, 28))
    hours = draw(st.lists(st.integers(0, 400), min_size=n, max_size=n, unique=True))
    good = draw(st.booleans())  # a winning history, so promotions (then kills) happen too
    values = [-25.0, 5.0, 45.0, 45.0, 60.0] if good else [-60.0, -25.0, -5.0, 5.0, 20.0, 45.0]
    rows = []
    for i, h in enumerate(sorted(hours)):
        a = draw(st.sampled_from(["A", "B", "C"]))
        s = draw(st.sampled_from(["S", "S", "T", None]))
        pnl = draw(st.one_of(st.none(), st.sampled_from(values)))
        lag = draw(st.sampled_from([0.0, 0.0, 0.5, 3.0, 30.0, 170.0]))  # PnL known later
        rows.append(run(f"r{i:03d}", a, pnl, hour=h, strategy=s, lag_h=lag,
                        errors=0 if good else draw(st.sampled_from([0, 0, 0, 1]))))
    return rows


def brute_force(db: Database) -> dict[SubjectKey, dict[str, Any]]:
    """Evaluate the gates (one single evaluation each) at every knowledge time in order,
    carrying the lifecycle."""
    gp = load_governance(SEED)
    times = [r[0] for r in db.con.execute(
        "SELECT DISTINCT known_ts FROM ledger WHERE known_ts IS NOT NULL ORDER BY 1").fetchall()]
    state: dict[SubjectKey, State] = {}
    seen: dict[SubjectKey, dict[str, Any]] = {}
    for t in times:
        for d in decide(db.con, gp, t, state):
            s = seen.setdefault(d.key, {"promoted_at": None, "killed_at": None, "rule": None})
            if d.action == "promote" and s["promoted_at"] is None and s["killed_at"] is None:
                s["promoted_at"] = t
            if d.action == "kill" and s["killed_at"] is None:
                s["killed_at"], s["rule"] = t, d.rule
            state[d.key] = d.state
    return seen


@pytest.fixture(scope="module")
def shared() -> Iterator[Database]:
    d = at.connect(":memory:")
    yield d
    d.close()


@pytest.mark.slow
@settings(max_examples=12)
@given(rows=ledgers())
def test_backtest_equals_brute_force_replay(shared: Database, rows: list[dict[str, Any]]) -> None:
    db = shared
    reset(db.con)
    insert(db.con, rows)
    want = brute_force(db)
    got = by_subject(db)
    with_runs = {(sc, r[sc]) for r in rows for sc in ("agent", "strategy")
                 if r[sc] is not None and r["realized_pnl_bps"] is not None}
    assert set(got) == with_runs
    for key, g in got.items():
        w = want[key]
        assert (g["promoted_at"], g["killed_at"], g["kill_rule"]) == aware((
            w["promoted_at"], w["killed_at"], w["rule"])), key  # the API's times are UTC-aware
        if g["killed_at"] is not None:
            after = [r["realized_pnl_bps"] for r in rows
                     if r[key[0]] == key[1] and r["realized_pnl_bps"] is not None
                     and aware(r["ts"]) > g["killed_at"]]
            assert g["runs_after_kill"] == len(after)
            assert g["pnl_after_kill_bps"] == pytest.approx(sum(after))


@pytest.mark.slow
@settings(max_examples=12)
@given(rows=ledgers())
def test_replay_through_evaluate_equals_the_backtest(shared: Database,
                                                      rows: list[dict[str, Any]]) -> None:
    """Catching up over the whole history on an empty log records, decision by decision, what
    the backtest reports: same knowledge time, subject, action, rule and run_ids."""
    db = shared
    reset(db.con)
    insert(db.con, rows)
    bt = db.gates.backtest(SEED)["decisions"]
    recs = db.gates.evaluate(SEED, catch_up=True)
    fields = ("as_of", "scope", "subject", "action", "rule", "cascade_from", "run_ids")
    assert [tuple(r[f] for f in fields) for r in recs] == [
        tuple(d[f] for f in fields) for d in bt]
