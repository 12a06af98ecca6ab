"""The catch-up prunes the `ledger_changes` it read (ledger/changes.py `prune`): every reader
reads only the changes after `gate_seen`, which never moves back, so what is at or below it
is deleted, but one row of the newest change (the seq counter and the server's sizing key
read it). Pruning changes no decision: the same history on a store that never prunes
records the same decisions, and numbers its changes the same."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.api import Database
from alphatrace.ledger import changes
from tests.governance.test_runs_leaving import BASE, KILL, LATER, caught_up, ingest
from tests.policies import SEED


def table(db: Database) -> list[tuple[Any, ...]]:
    return db.con.execute("SELECT seq, run_id FROM ledger_changes ORDER BY seq, run_id"
                          ).fetchall()


def seen(db: Database) -> int:
    return int(db.con.execute("SELECT max(seq) FROM gate_seen").fetchall()[0][0])


def exclude_winners(db: Database, tmp: Path) -> None:
    """Exclude the runs over 50 bps (A4, once ingested)."""
    pol = tmp / "exclude.yaml"
    pol.write_text("forensics:\n  exclusions:\n    - {name: outlier, reason: too good, "
                   "when: [{field: pnl, op: '>', value: 50}]}\n")
    db.apply_exclusions(pol)


def lift(db: Database, tmp: Path) -> None:
    pol = tmp / "none.yaml"
    pol.write_text("forensics:\n  exclusions: []\n")
    assert db.apply_exclusions(pol)["excluded"] == 0


def test_a_catch_up_prunes_what_it_read_and_keeps_the_newest_seq(tmp_path: Path) -> None:
    with at.connect(tmp_path / "s.duckdb") as db:
        ingest(db, BASE)  # reconcile 1: the ten runs added
        assert len(table(db)) == 10
        caught_up(db)
        assert seen(db) == 1 and table(db) == [(1, "B3")]  # one row of the newest change
        exclude_winners(db, tmp_path)  # change 2: A4 excluded
        assert table(db) == [(1, "B3"), (2, "A4")]
        assert caught_up(db) == [KILL]  # found after the prune: A judged at its mark
        assert seen(db) == 2 and table(db) == [(2, "A4")]
        lift(db, tmp_path)  # A4 counts again: change 3, after every one pruned
        assert table(db) == [(2, "A4"), (3, "A4")]
        db.reconcile(SEED)  # nothing changed: reconcile 4 records no row
        assert db.con.execute("SELECT max(seq) FROM reconcile_log").fetchall() == [(4,)]
        caught_up(db)
        assert seen(db) == 3 and table(db) == [(3, "A4")]


def history(tmp: Path, name: str, steps: list[tuple[str, int, int]]) -> tuple[list[Any], ...]:
    """Each step: ingest events[a:b] (or toggle the exclusion), reconcile, catch up. The
    decisions of each catch-up, and every change's (seq, run_id) as recorded."""
    out: list[Any] = []
    recorded: set[tuple[Any, ...]] = set()
    with at.connect(tmp / f"{name}.duckdb") as db:
        excluded = False
        for kind, a, b in steps:
            if kind == "toggle":
                (lift if excluded else exclude_winners)(db, tmp)
                excluded = not excluded
            else:
                ingest(db, (BASE + LATER)[a:b])
            recorded |= set(table(db))
            out.append(caught_up(db))
    return out, sorted(recorded)


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(cuts=st.lists(st.integers(1, len(BASE) + len(LATER) - 1), max_size=5, unique=True),
       toggles=st.lists(st.integers(0, 6), max_size=3))
def test_pruning_changes_no_decision(tmp_path_factory: pytest.TempPathFactory, cuts: list[int],
                                     toggles: list[int]) -> None:
    """Random batchings with A4's exclusion applied and lifted between them: the pruned store
    and one that never prunes record the same decisions and number the same changes."""
    tmp = tmp_path_factory.mktemp("pruned")
    bounds = sorted({0, *cuts, len(BASE) + len(LATER)})
    steps: list[tuple[str, int, int]] = []
    for i, (a, b) in enumerate(pairwise(bounds)):
        steps += [("toggle", 0, 0)] * toggles.count(i) + [("ingest", a, b)]
    steps += [("toggle", 0, 0)] * sum(t >= len(bounds) - 1 for t in toggles)
    pruned = history(tmp, "pruned", steps)
    with mock.patch.object(changes, "prune", lambda con, seen: None):
        kept = history(tmp, "kept", steps)
    assert pruned == kept
