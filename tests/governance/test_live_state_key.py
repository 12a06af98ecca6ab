"""The server's sizing state (server/live_state.py) reads the ledger side again whenever the
runs that count change: an exclusion lifted and another applied between two rounds leaves the
number of excluded runs unchanged, and must still move the multiplier (a kill switch answering
from stale confidence otherwise). Expected multipliers are the default policy's factors by hand:
a run under −20 bps ×0.85, a positive one ×1."""

from __future__ import annotations

import pytest

from alphatrace.forensics import exclusions
from alphatrace.forensics.config import Condition, ExclusionRule
from alphatrace.governance.policy import load_governance
from alphatrace.server.live_state import LiveState
from alphatrace.store import Store
from tests.rows import insert, run


def exclude_errors(store: Store, n: int) -> None:
    """`exclusions apply` with one rule: the runs with `n` errors."""
    rule = ExclusionRule(name="x", reason="r",
                         when=[Condition(field="errors", op="==", value=n)])
    with store.transaction():
        exclusions.apply(store.con, [rule], "p")


def test_an_exclusion_swapped_for_another_moves_the_multiplier() -> None:
    with Store(":memory:") as store:
        insert(store.con, [run("A0", "A", -30.0, hour=0, errors=1),
                           run("A1", "A", 5.0, hour=1, errors=2)])
        exclude_errors(store, 1)  # A0 (−30) excluded: only +5 counts
        live = LiveState(load_governance())
        live.start(store)
        snap = live.current()
        assert snap is not None and snap.agent("A").multiplier == pytest.approx(1.0)
        exclude_errors(store, 2)  # A0 lifted, A1 excluded: one run excluded, as before
        assert store.con.execute("SELECT run_id FROM run_exclusions").fetchall() == [("A1",)]
        live.refresh(store)
        snap = live.current()
        assert snap is not None and snap.agent("A").multiplier == pytest.approx(0.85)
        assert live.refreshes == 2
