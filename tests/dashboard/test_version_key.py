"""The dashboard's data version (`Source.version`) moves with every change of the exclusions,
not only with their number: one exclusion lifted and another applied keeps the count."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from alphatrace.server.dashboard.source import Source
from alphatrace.store import Store


def test_swapping_one_exclusion_for_another_moves_the_version(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        con = store.con
        src = Source(connect=lambda: nullcontext(con))
        con.execute("INSERT INTO run_exclusions VALUES ('r1', 'manual', 'bad fill', NULL)")
        before = src.version(con)
        con.execute("DELETE FROM run_exclusions")
        con.execute("INSERT INTO run_exclusions VALUES ('r2', 'manual', 'bad fill', NULL)")
        assert con.execute("SELECT count(*) FROM run_exclusions").fetchall() == [(1,)]
        assert src.version(con) != before
