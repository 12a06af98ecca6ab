"""A store reconciled before migration 0008 (no `bar_interval` on legs and ledger) upgrades in
place: opened, it gains the columns; its first reconcile fills them and its ledger then
equals a from-scratch rebuild."""

from __future__ import annotations

from pathlib import Path

from alphatrace.ledger.api import agent_summary, ledger_rows
from alphatrace.store import Store
from tests.ledger.helpers import add_alpha, add_bars, add_telemetry, at, run_reconcile

LEDGER = "SELECT * EXCLUDE (policy_hash) FROM ledger ORDER BY run_id"
LEGS = "SELECT * FROM legs ORDER BY event_id"


def _pre_0008_store(path: Path) -> None:
    """A reconciled store as it was before 0008: the columns and the migration record gone."""
    with Store(path) as s:
        add_bars(s, "BTCUSDT", [100.0 + i for i in range(48)])
        add_bars(s, "BTCUSDT", [100.0 + i / 4 + 0.01 for i in range(48 * 4)], interval_s=900)
        add_alpha(s, "r1", "BTCUSDT", "LONG", at(0, 20))
        add_alpha(s, "r2", "BTCUSDT", "SHORT", at(2, 5), horizon_s=3600)
        add_alpha(s, "r3", "BTCUSDT", "FLAT", at(3))
        add_alpha(s, "r4", "BTCUSDT", "LONG", at(47, 50))              # open
        add_telemetry(s, "r1", cost_usd=0.5)
        run_reconcile(s)
        s.con.execute("ALTER TABLE legs DROP COLUMN bar_interval")
        s.con.execute("ALTER TABLE ledger DROP COLUMN bar_interval")
        s.con.execute("DELETE FROM schema_migrations WHERE version = 8")


def test_a_store_from_before_0008_upgrades_and_reconciles(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _pre_0008_store(path)
    with Store(path, read_only=True) as ro:   # read-only readers work before the upgrade
        assert "bar_interval" not in ledger_rows(ro.con).table.column_names
        assert [a["runs"] for a in agent_summary(ro.con)] == [4]
    with Store(path) as s:                     # opened for writing: migrated
        assert s.con.execute("SELECT count(*) FROM legs WHERE bar_interval IS NULL"
                             ).fetchall() == [(4,)]
        rep = run_reconcile(s)
        # the non-FLAT legs priced before 0008 (realized r1, r2 and open r4) are re-priced
        # once; the FLAT leg keeps its row (it has no bar interval)
        assert (rep.priced, rep.full) == (3, False)
        got = s.con.execute("SELECT run_id, bar_interval FROM ledger ORDER BY run_id").fetchall()
        assert got == [("r1", "15m"), ("r2", "15m"), ("r3", None), ("r4", "15m")]
        incremental = (s.con.sql(LEDGER).fetchall(), s.con.sql(LEGS).fetchall())
        assert run_reconcile(s).priced == 0     # nothing new: no leg, as on any store
        run_reconcile(s, full=True)
        assert (s.con.sql(LEDGER).fetchall(), s.con.sql(LEGS).fetchall()) == incremental
