"""What a reconcile records for the next one (migration 0016): the event tables' sizes in its
`reconcile_log` row, the alpha symbols' resolution (`ledger_alpha_keys`) and the subjects with
realized runs (`ledger_subjects`). A store from before 0016 upgrades in place; its first
reconcile counts everything once, as before, and the ones after read only what is new."""

from __future__ import annotations

from pathlib import Path

from alphatrace.governance.replay import recorded_subjects
from alphatrace.ledger.reconcile import last_state
from alphatrace.store import Store
from alphatrace.store.connection import catalog_cached, has_table, table_columns
from tests.ledger.helpers import add_bars, at, run_reconcile
from tests.ledger.test_incremental_ledger import alpha, ingest, pnl, snapshot, telemetry

LEDGER = "SELECT * FROM ledger ORDER BY run_id"


def _events() -> list[dict[str, object]]:
    return [alpha("a1", "r1", 0, horizon=3600), telemetry("t1", "r1", 5.0),
            alpha("a2", "r2", 30, agent="B", horizon=3600), pnl("p2", "r2", -12.0),
            alpha("a3", "r3", 47 * 60, horizon=7200)]  # open: its exit bar is not there yet


def test_a_reconcile_records_what_the_next_one_reads(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    ingest(store, _events())
    run_reconcile(store)
    state = last_state(store.con)
    assert state is not None and state.current
    assert (state.legs, state.runs, state.n_telemetry, state.n_pnl) == (3, 3, 1, 1)
    assert store.con.execute("SELECT alias, symbol FROM ledger_alpha_keys").fetchall() == [
        ("BTC", "BTCUSDT")]
    # r3 is open: A has a realized run (r1), B too (r2)
    assert set(recorded_subjects(store.con) or ()) == {("agent", "A"), ("agent", "B")}


def test_rows_written_other_than_by_reconcile_make_the_record_stale(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    ingest(store, _events())
    run_reconcile(store)
    store.con.execute("INSERT INTO ledger (run_id, agent, realized_pnl_bps) VALUES ('x', 'C', 1)")
    state = last_state(store.con)
    assert state is not None and not state.current
    assert recorded_subjects(store.con) is None  # gates read the ledger itself
    rep = run_reconcile(store)   # counts and compares everything: the stray row is dropped
    assert (rep.runs, rep.rebuilt) == (3, 3)
    assert set(recorded_subjects(store.con) or ()) == {("agent", "A"), ("agent", "B")}


def test_a_round_of_events_alone_reads_no_leg_waiting_for_the_market(store: Store) -> None:
    """a3 waits for its exit bar: rounds that bring no market data leave it alone, and the
    bars that bring its exit price it."""
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    ingest(store, _events())
    run_reconcile(store)
    ingest(store, [alpha("a4", "r4", 46 * 60, horizon=7200)])
    rep = run_reconcile(store)
    assert (rep.priced, rep.open) == (1, 2)  # a4 alone; a3 still open, not priced again
    store.con.execute("CHECKPOINT")
    add_bars(store, "BTCUSDT", [148.0, 149.0, 150.0], start=at(48))  # both exit bars
    rep = run_reconcile(store)
    assert (rep.priced, rep.realized, rep.open) == (2, 4, 0)
    incremental = snapshot(store)
    run_reconcile(store, full=True)
    assert snapshot(store) == incremental


def _pre_0016_store(path: Path) -> None:
    """A reconciled store as it was before 0016: its tables, columns and record gone."""
    with Store(path) as s:
        add_bars(s, "BTCUSDT", [100.0 + i for i in range(48)])
        ingest(s, _events())
        run_reconcile(s)
        for column in ("n_telemetry", "n_pnl"):
            s.con.execute(f"ALTER TABLE reconcile_log DROP COLUMN {column}")
        s.con.execute("DROP TABLE ledger_alpha_keys")
        s.con.execute("DROP TABLE ledger_subjects")
        s.con.execute("DELETE FROM schema_migrations WHERE version IN (16, 29)")  # 0029: its column


def test_a_store_from_before_0016_upgrades_and_reconciles(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _pre_0016_store(path)
    with Store(path) as s:  # opened for writing: migrated, subjects found in the ledger
        assert s.con.execute("SELECT scope, subject FROM ledger_subjects ORDER BY ALL"
                             ).fetchall() == [("agent", "A"), ("agent", "B")]
        state = last_state(s.con)
        assert state is not None and state.n_telemetry is None and not state.current
        assert recorded_subjects(s.con) is None
        add_bars(s, "BTCUSDT", [148.0, 149.0, 150.0], start=at(48))  # r3's exit bar
        ingest(s, [telemetry("t9", "r2", 7.0)])
        rep = run_reconcile(s)  # the first one counts everything, once
        assert (rep.priced, rep.rebuilt, rep.realized, rep.open) == (1, 2, 3, 0)
        state = last_state(s.con)
        assert state is not None and state.current
        ingest(s, [alpha("a4", "r4", 49 * 60, agent="C", horizon=3600)])
        assert run_reconcile(s).rebuilt == 1  # the next ones read what is new
        assert set(recorded_subjects(s.con) or ()) == {("agent", "A"), ("agent", "B"), ("agent", "C")}
        incremental = snapshot(s)
        run_reconcile(s, full=True)
        assert snapshot(s) == incremental


def test_the_catalog_is_read_once_inside_a_cached_block(store: Store) -> None:
    con = store.con
    with catalog_cached(con):
        assert has_table(con, "ledger") and "run_id" in table_columns(con, "ledger")
        con.execute("CREATE TABLE made_inside (x INTEGER)")
        assert not has_table(con, "made_inside")  # the block's read: no table is made in one
    assert has_table(con, "made_inside") and table_columns(con, "made_inside") == ["x"]
    assert table_columns(con, "absent") == []
