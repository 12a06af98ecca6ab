"""How a store file is opened: small row groups at every open, one instance per file in a
process, the file's lock released with the last `Store`, clear errors (store/connection.py)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from alphatrace.errors import StoreError
from alphatrace.store import Store
from alphatrace.store.connection import ROW_GROUP_ROWS


def row_group_sizes(store: Store, table: str) -> list[int]:
    """Rows per row group of `table` as DuckDB stored them (its first column's data segments,
    not their validity masks)."""
    rows = store.con.execute(
        "SELECT row_group_id, sum(count) FROM pragma_storage_info(?) WHERE column_path = '[0]' "
        "GROUP BY row_group_id ORDER BY row_group_id", [table]).fetchall()
    return [int(n) for _, n in rows]


def test_a_store_writes_row_groups_of_4096_rows_at_every_open(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as s:
        s.con.execute("CREATE TABLE probe AS SELECT i, 'run-' || i AS run_id FROM range(50000) r(i)")
        s.con.execute("CHECKPOINT")
        # 50,000 = 12 x 4,096 + 848; DuckDB's own row groups would hold all of it in one
        assert row_group_sizes(s, "probe") == [4096] * 12 + [848]
    with Store(path) as s:  # reopened: appended in small commits, as the collector's rounds are
        for k in range(25):
            s.con.execute("INSERT INTO probe SELECT i, 'run-' || i FROM range(?, ?) r(i)",
                          [50_000 + 2_000 * k, 52_000 + 2_000 * k])
        s.con.execute("CHECKPOINT")
        sizes = row_group_sizes(s, "probe")
        assert sum(sizes) == 100_000
        assert max(sizes) == ROW_GROUP_ROWS == 4_096


def test_stores_of_one_file_share_it_and_the_last_close_releases_it(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    first = Store(path)
    second = Store(path)  # DuckDB refuses a second instance on one file, even in one process
    reader = Store(path, read_only=True)  # a read-only open is served by the writing instance
    first.con.execute("CREATE TABLE probe (x INTEGER)")
    first.con.execute("INSERT INTO probe VALUES (1), (2)")
    assert second.con.execute("SELECT sum(x) FROM probe").fetchone() == (3,)
    first.close()
    second.con.execute("INSERT INTO probe VALUES (4)")
    assert reader.con.execute("SELECT sum(x) FROM probe").fetchone() == (7,)
    cur = reader.cursor()  # its own connection: the store is its default database, in UTC
    assert cur.execute("SELECT sum(x), current_setting('TimeZone') FROM probe").fetchone() == (7, "UTC")
    cur.close()
    second.close()
    probe = [sys.executable, "-c", textwrap.dedent(f"""
        import duckdb
        print(duckdb.connect({str(path)!r}).execute('SELECT sum(x) FROM probe').fetchone()[0])
    """)]
    # still held by `reader`: another process cannot open the file
    assert subprocess.run(probe, capture_output=True, text=True).returncode != 0
    reader.close()
    done = subprocess.run(probe, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "7")


def test_a_file_open_read_only_here_cannot_be_written_here(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    with Store(path, read_only=True), pytest.raises(StoreError, match="read-only in this process"):
        Store(path)
    Store(path).close()  # once closed, a writer opens it


def test_a_file_another_process_writes_gets_the_one_writer_message(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, duckdb
            con = duckdb.connect({str(path)!r})
            print('held', flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match="open for writing by another process"):
            Store(path)
    finally:
        holder.communicate("")
    Store(path).close()  # and the failed open left nothing behind in this process
