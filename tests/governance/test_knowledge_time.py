"""Knowledge time: a run counts toward gates and confidence from when its PnL became known
(ledger.known_ts), and `--as-of T` reads the lifecycle as it was at T. Numbers by hand."""

from __future__ import annotations

from alphatrace.api import Database
from alphatrace.governance import journal
from tests.policies import SEED
from tests.rows import h, insert, run, series


def test_a_run_is_out_of_the_window_until_its_pnl_is_known(db: Database) -> None:
    # four -30 runs known at once, then a fifth whose PnL is known a week after its signal
    rows = series("A", [-30.0] * 4, strategy=None)
    rows.append(run("A9", "A", -30.0, hour=4, strategy=None, known=h(4 + 168)))
    insert(db.con, rows)
    at_signal = db.gates.evaluate(SEED, catch_up=False, as_of=h(4), record=False)
    assert [(d["action"], d["metrics"]["runs"]) for d in at_signal] == [("inconclusive", 4)]
    known = db.gates.evaluate(SEED, catch_up=False, as_of=h(172), record=False)
    assert [(d["action"], d["rule"], d["metrics"]["runs"], d["metrics"]["last_5_runs_pnl"])
            for d in known] == [("kill", "kill_drawdown", 5, -150.0)]


def test_windows_hold_the_newest_known_runs(db: Database, tmp_path: object) -> None:
    # B0 is signalled first but known last: it is the newest run of the window
    insert(db.con, [run("B0", "A", -500.0, hour=0, strategy=None, known=h(10)),
                    *series("A", [1.0] * 5, strategy=None, start_hour=1, prefix="B1-")])
    d = db.gates.evaluate(SEED, catch_up=False, record=False)[0]
    assert d["run_ids"] == ["B1-0000", "B1-0001", "B1-0002", "B1-0003", "B1-0004", "B0"]
    assert d["metrics"]["last_5_runs_pnl"] == 4.0 - 500.0


def test_confidence_moves_when_the_pnl_is_known(db: Database) -> None:
    insert(db.con, [run("r1", "A", -30.0, hour=0, known=h(5)),
                    run("r2", "A", 10.0, hour=1, known=h(2))])
    hist = db.confidence(agent="A", history=True).to_pylist()
    assert [r["run_id"] for r in hist] == ["r2", "r1"]
    assert [r["multiplier_after"] for r in hist] == [1.0, 0.85]
    early = db.confidence(as_of=h(3)).to_pylist()
    assert [(r["agent"], r["runs"], r["multiplier"]) for r in early] == [("A", 1, 1.0)]


def test_lifecycle_as_of_a_time_reads_only_records_up_to_it(db: Database) -> None:
    insert(db.con, series("A", [-30.0] * 5, strategy="S")
           + series("B", [1.0] * 5, strategy="S", start_hour=100))
    db.gates.evaluate(SEED, catch_up=False)
    states = journal.lifecycle_states(db.con)
    assert states[("agent", "A")] == "killed"
    assert journal.lifecycle_states(db.con, h(3)) == {}
    # the strategy is killed when its fifth run is known (hour 4): B, signalled at hour 100,
    # is cascade-killed then; an as-of before that sees neither
    early = {(d["scope"], d["subject"]): d["state"]
             for d in db.gates.evaluate(SEED, catch_up=False, as_of=h(3), record=False)}
    assert early == {("agent", "A"): "candidate", ("strategy", "S"): "candidate"}
