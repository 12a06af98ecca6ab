"""Why the default policy's gates are not the seed's: under catch-up (evaluation after every
run, the live loop's mode), the seed's `last_5_runs_pnl < -100` kills an agent on noise, while
the default kills only on evidence, and still kills a clear loser.

Runs are an hour apart from 2024-01-01 00:00 and known at their signal time (tests/rows.py), so
run k (1-based) is known at hour k - 1. Every expected number below is worked out by hand.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from tests.policies import SEED
from tests.rows import insert, reset, series

# +150/-150 alternating for 40 runs (sum 0), then a losing streak of 4 x -50 (-200).
NOISE = [150.0, -150.0] * 20 + [-50.0] * 4
# 45 runs losing 50 and 70 bps in turn: mean -60 over any even number of them, little spread.
LOSER = [-50.0, -70.0] * 22 + [-50.0]


@pytest.fixture
def fresh() -> Iterator[Any]:
    """A new in-memory store per call: each catch-up starts from an empty decision log."""
    opened: list[at.Database] = []

    def make(pnls: list[float]) -> at.Database:
        db = at.connect(":memory:")
        opened.append(db)
        insert(db.con, series("A", pnls, strategy=None))
        return db

    yield make
    for db in opened:
        db.close()


def kills(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["action"] == "kill"]


def test_the_seed_kills_noise_at_its_sixth_run(fresh: Any) -> None:
    first = kills(fresh(NOISE).gates.evaluate(SEED))[0]
    # runs 2..6: -150 + 150 - 150 + 150 - 150 = -150 < -100, on 6 runs summing to 0 (mean 0)
    assert first["as_of"] == "2024-01-01T05:00:00.000000Z"
    assert first["rule"] == "kill_drawdown" and first["state"] == "killed"
    assert first["metrics"]["runs"] == 6 and first["metrics"]["last_5_runs_pnl"] == -150.0
    assert first["metrics"]["rolling_pnl_bps"] == 0.0


def test_the_default_does_not_kill_the_same_noise(fresh: Any) -> None:
    db = fresh(NOISE)
    recs = db.gates.evaluate()
    # inconclusive under 40 runs; from run 40 on the window (all runs, <= 60) means 0,
    # -50/41, -100/42, -150/43, -200/44 bps: never below -40, so never a kill
    assert [(r["action"], r["metrics"]["runs"], r["as_of"]) for r in recs] == [
        ("inconclusive", 1, "2024-01-01T00:00:00.000000Z"),
        ("hold", 40, "2024-01-02T15:00:00.000000Z")]
    last = db.gates.evaluation(once=True, record=False)["decisions"]
    assert [(d["action"], d["state"], d["fired"]) for d in last] == [("hold", "candidate", [])]
    assert last[0]["metrics"]["runs"] == 44
    assert last[0]["metrics"]["mean_pnl_bps"] == pytest.approx(-200 / 44, rel=1e-11)


def test_the_default_kills_a_clear_loser_once_it_has_40_runs(fresh: Any) -> None:
    recs = fresh(LOSER).gates.evaluate()
    first = kills(recs)[0]
    # runs 1..40: 20 x -50 and 20 x -70, mean -60; sample sd sqrt(40 * 10^2 / 39)
    assert first["as_of"] == "2024-01-02T15:00:00.000000Z"  # run 40, the first with 40 runs
    assert (first["rule"], first["state"]) == ("kill_evidence", "killed")
    m = first["metrics"]
    assert m["runs"] == 40 and m["mean_pnl_bps"] == -60.0
    assert m["sharpe"] == pytest.approx(-60 / math.sqrt(4000 / 39), rel=1e-11)  # -5.92
    assert all(r["action"] == "inconclusive" for r in recs if r["metrics"]["runs"] < 40)


def test_the_seed_kills_the_same_loser_at_its_fifth_run(fresh: Any) -> None:
    first = kills(fresh(LOSER).gates.evaluate(SEED))[0]
    assert first["as_of"] == "2024-01-01T04:00:00.000000Z"
    assert first["metrics"]["last_5_runs_pnl"] == -50 * 3 - 70 * 2


@settings(max_examples=15)
@given(swing=st.integers(101, 1000), n=st.integers(6, 75))
def test_alternating_noise_is_killed_by_the_seed_and_never_by_the_default(
        shared: at.Database, swing: int, n: int) -> None:
    """+s, -s, +s, ... (s > 100 bps): every 5-run sum is +s or -s, so the seed kills at run 6
    (the first 5-run sum of -s); every window the default judges sums to 0 or +s, so its mean
    is never below -40 bps."""
    pnls = [float(swing if i % 2 == 0 else -swing) for i in range(n)]
    reset(shared.con)
    insert(shared.con, series("A", pnls, strategy=None))
    assert [r["metrics"]["runs"] for r in kills(shared.gates.evaluate(SEED))][:1] == [6]
    reset(shared.con)
    insert(shared.con, series("A", pnls, strategy=None))
    assert kills(shared.gates.evaluate()) == []
