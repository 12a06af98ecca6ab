"""Every decision alphatrace writes follows from its own recorded metrics (no false alarm), and
any other action in its place does not (every rewrite of an action is seen without an anchor).
Random ledgers from test_determinism; several evaluations with late runs between them, so kills,
cascades, blocked promotions and revives all occur."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.governance import audit, journal
from tests.policies import SEED
from tests.rows import insert, reset

from .test_determinism import ledgers

ACTIONS = ("promote", "kill", "hold", "inconclusive")


@pytest.fixture(scope="module")
def shared() -> Iterator[at.Database]:
    db = at.connect(":memory:")
    yield db
    db.close()


def _log(db: at.Database, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    reset(db.con)
    half = len(rows) // 2
    insert(db.con, rows[:half])
    db.gates.evaluate(SEED, catch_up=False)
    for (scope, subject), state in sorted(journal.lifecycle_states(db.con).items()):
        if state == "killed" and scope == "strategy":
            db.revive(subject, "test", scope=scope, actor="t")
            break
    insert(db.con, rows[half:])
    db.gates.evaluate(SEED, catch_up=False)
    return journal.read_records(db.con)


@pytest.mark.slow
@settings(max_examples=40)
@given(rows=ledgers())
def test_written_decisions_are_consistent(shared: at.Database, rows: list[dict[str, Any]]) -> None:
    recs = _log(shared, rows)
    assert audit.check_consistency(shared.con, audit.chain_order(recs), set()) == []


@pytest.mark.slow
@settings(max_examples=40)
@given(rows=ledgers(), pick=st.integers(0, 10**6), action=st.sampled_from(ACTIONS))
def test_any_other_action_is_a_rewrite(shared: at.Database, rows: list[dict[str, Any]],
                                       pick: int, action: str) -> None:
    recs = _log(shared, rows)
    gate = [r for r in recs if r["action"] in ACTIONS and r["action"] != action]
    if not gate:
        return
    victim = gate[pick % len(gate)]
    victim["action"] = action  # its state (what later records build on) left as it was
    got = audit.check_consistency(shared.con, audit.chain_order(recs), set())
    assert [(p["seq"], p["kind"]) for p in got] == [(victim["seq"], "rewritten")]
