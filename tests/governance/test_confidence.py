"""Confidence multipliers, checked against hand arithmetic and a plain sequential reference."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.api import Database
from alphatrace.errors import GovernanceError, InputError, NotFoundError
from alphatrace.governance import confidence
from alphatrace.governance.policy import load_governance
from alphatrace.governance.sizing import size
from alphatrace.policy import Policy
from tests.policies import SEED
from tests.rows import T0, exclude, insert, reset, run, series


def hist(db: Database, agent: str | None = None, policy: Path | None = None) -> list[dict[str, Any]]:
    return db.confidence(agent=agent, history=True, policy=policy).to_pylist()


def test_seed_factors_at_their_boundaries(db: Database) -> None:
    insert(db.con, series("A", [-20.5, -20.0, -0.25, 0.0, 12.0]))
    h = hist(db, "A")
    assert [r["factor"] for r in h] == [0.85, 0.95, 0.95, 1.0, 1.0]
    want = [0.85, 0.85 * 0.95, 0.85 * 0.95 * 0.95, 0.85 * 0.95 * 0.95, 0.85 * 0.95 * 0.95]
    assert [r["multiplier_after"] for r in h] == pytest.approx(want, rel=1e-14)
    assert [r["run_id"] for r in h] == ["A0000", "A0001", "A0002", "A0003", "A0004"]


def test_summary_per_agent(db: Database) -> None:
    insert(db.con, series("A", [-30, -30, 5]) + series("B", [1, 2]))
    rows = {r["agent"]: r for r in db.confidence().to_pylist()}
    assert rows["A"]["multiplier"] == pytest.approx(0.7225, rel=1e-14)
    assert rows["A"]["runs"] == 3 and rows["B"]["runs"] == 2
    assert rows["B"]["multiplier"] == 1.0
    assert rows["A"]["last_ts"] == (T0 + dt.timedelta(hours=2)).replace(tzinfo=dt.UTC)
    assert rows["A"]["min_multiplier"] == pytest.approx(0.7225)
    assert rows["A"]["state"] == "candidate"


def test_warning_under_warn_below(db: Database) -> None:
    # 0.85^4 = 0.522 (no warning), 0.85^5 = 0.4437 (warning at the default 0.5)
    insert(db.con, series("A", [-30] * 4) + series("B", [-30] * 5))
    rows = {r["agent"]: r for r in db.confidence().to_pylist()}
    assert rows["A"]["warning"] is False and rows["B"]["warning"] is True


def test_ties_in_time_are_ordered_by_run_id(db: Database) -> None:
    same = T0 + dt.timedelta(hours=5)
    insert(db.con, [run("r2", "A", 3.0, ts=same), run("r1", "A", -30.0, ts=same),
                    run("r0", "A", -5.0, ts=T0)])
    h = hist(db, "A")
    assert [r["run_id"] for r in h] == ["r0", "r1", "r2"]
    assert [r["factor"] for r in h] == [0.95, 0.85, 1.0]


def test_only_eligible_realized_runs_count(db: Database) -> None:
    rows = series("A", [-30, None, -30, -30])
    rows.append(run("notime", "A", -30.0, ts=None))
    rows[-1]["ts"] = None
    insert(db.con, rows)
    exclude(db.con, ["A0002"])
    h = hist(db, "A")
    assert [r["run_id"] for r in h] == ["A0000", "A0003"]
    assert h[-1]["multiplier_after"] == pytest.approx(0.85**2)


def test_excluded_runs_count_when_the_policy_says_so(db: Database, tmp_path: Path) -> None:
    insert(db.con, series("A", [-30, -30]))
    exclude(db.con, ["A0001"])
    p = tmp_path / "p.yaml"
    p.write_text("eligibility: {exclude_flagged: false}\n")
    assert len(hist(db, "A", p)) == 2
    assert len(hist(db, "A")) == 1


def test_as_of_cuts_history(db: Database) -> None:
    insert(db.con, series("A", [-30, -30, -30]))
    rows = db.confidence(as_of="2024-01-01T01:00:00").to_pylist()
    assert rows[0]["runs"] == 2 and rows[0]["multiplier"] == pytest.approx(0.85**2)


def test_recovery_and_floor_by_hand(db: Database, tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("confidence:\n  recovery: 1.1\n  floor: 0.8\n")
    insert(db.con, series("A", [-30, -30, 10, 10, 10, -5, -30, -30, -30]))
    h = hist(db, "A", p)
    # 0.85, 0.7225→floor 0.8, ×1.1=0.88, 0.968, 1.0648→cap 1, 0.95, 0.8075, 0.686→0.8, 0.8
    want = [0.85, 0.8, 0.88, 0.968, 1.0, 0.95, 0.8075, 0.8, 0.8]
    assert [r["multiplier_after"] for r in h] == pytest.approx(want, rel=1e-12)
    assert [r["factor"] for r in h] == [0.85, 0.85, 1.1, 1.1, 1.1, 0.95, 0.85, 0.85, 0.85]


def test_a_zero_pnl_run_is_not_a_win_for_recovery(db: Database, tmp_path: Path) -> None:
    p = tmp_path / "p.yaml"
    p.write_text("confidence:\n  recovery: 1.5\n")
    insert(db.con, series("A", [-30, 0, 0.25]))
    h = hist(db, "A", p)
    assert [r["factor"] for r in h] == [0.85, 1.0, 1.5]
    assert h[-1]["multiplier_after"] == 1.0


def test_unknown_agent(db: Database) -> None:
    insert(db.con, series("A", [1]))
    with pytest.raises(NotFoundError):
        db.confidence(agent="nobody")


# ------------------------------------------------------------- property: sequential reference

def reference(pnls: list[float], recovery: float | None, floor: float | None) -> list[float]:
    """docs/architecture.md §Governance read literally: a running product, one run at a time."""
    m, out = 1.0, []
    for p in pnls:
        if p < -20:
            f = 0.85
        elif p < 0:
            f = 0.95
        elif recovery is not None and p > 0:
            f = recovery
        else:
            f = 1.0
        m *= f
        if recovery is not None:
            m = min(m, 1.0)
        if floor is not None:
            m = max(m, floor)
        out.append(m)
    return out


pnl_values = st.sampled_from([-40.0, -20.25, -20.0, -19.75, -1.0, 0.0, 0.25, 7.0, 30.0])


@pytest.fixture(scope="module")
def shared() -> Iterator[Database]:
    d = at.connect(":memory:")
    yield d
    d.close()


@settings(max_examples=60)
@given(
    agents=st.dictionaries(st.sampled_from(["A", "B", "C", "D"]),
                           st.lists(pnl_values, min_size=1, max_size=40), min_size=1),
    recovery=st.one_of(st.none(), st.sampled_from([1.01, 1.05, 1.2])),
    floor=st.one_of(st.none(), st.sampled_from([0.3, 0.5, 0.9])),
)
def test_matches_the_sequential_definition(shared: Database, agents: dict[str, list[float]],
                                           recovery: float | None, floor: float | None) -> None:
    reset(shared.con)
    rows = []
    for a, pnls in agents.items():
        rows += series(a, pnls)
    insert(shared.con, rows)
    gp = load_governance(Policy({"confidence": {"recovery": recovery, "floor": floor}}, "<test>"))
    h = confidence.history(shared.con, gp)
    got: dict[str, list[float]] = {}
    for r in h.to_pylist():
        got.setdefault(r["agent"], []).append(r["multiplier_after"])
    assert sorted(got) == sorted(agents)
    every = confidence.compute(shared.con, gp)
    for a, pnls in agents.items():
        want = reference(pnls, recovery, floor)
        assert got[a] == pytest.approx(want, rel=1e-12)
        # The dashboard's slice of the all-agent result is the one-agent computation, exactly.
        assert every.agent_history(a).equals(confidence.compute(shared.con, gp, a).history())
    assert every.agent_history("nobody").num_rows == 0


# ----------------------------------------------------------------------------- sizing

def test_size_is_base_times_abs_score_times_multiplier(db: Database) -> None:
    insert(db.con, series("A", [-30, -10]))
    assert size("A", 10_000, -1.5, db=db) == pytest.approx(10_000 * 1.5 * 0.85 * 0.95)
    assert size("A", 10_000, 0.5, db=db.store) == pytest.approx(10_000 * 0.5 * 0.85 * 0.95)
    assert size("new-agent", 100, 2.0, db=db) == 200.0


def test_size_refuses_killed_agents(db: Database) -> None:
    insert(db.con, series("A", [-30] * 5))
    db.gates.evaluate(SEED, catch_up=False)
    with pytest.raises(GovernanceError, match="killed"):
        at.size("A", 10_000, 1.0, db=db)


def test_size_reads_a_store_file(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with at.connect(path) as d:
        insert(d.con, series("A", [-30]))
    assert size("A", 100, 1.0, db=path) == pytest.approx(85.0)


@pytest.mark.parametrize(("base", "score"), [(-1, 1.0), (math.nan, 1.0), (1, math.inf), (True, 1)])
def test_size_rejects_bad_numbers(db: Database, base: float, score: float) -> None:
    with pytest.raises(InputError):
        size("A", base, score, db=db)
