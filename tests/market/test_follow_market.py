"""`serve --follow-market DIR`: files a price recorder drops are imported once each, across
restarts, never half-written (market/follow.py, the writer's follow pass, the CLI flag)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from alphatrace.market.follow import pickup_market
from alphatrace.server.writer import Writer
from alphatrace.store import Store
from tests.server.conftest import start_server

HEADER = "symbol,ts,open,high,low,close\n"


def bars_csv(*hours: int, close: float = 1.5) -> str:
    return "".join(f"BTCUSDT,2025-01-01T{h:02d}:00:00Z,1,2,0.5,{close}\n" for h in hours)


def write(path: Path, text: str, age_s: float = 60.0) -> None:
    """Write `text` and date the file `age_s` seconds back (a file the recorder finished)."""
    path.write_text(text)
    t = time.time() - age_s
    os.utime(path, (t, t))


def count(store: Store, table: str = "bars") -> int:
    return int(store.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def test_each_file_is_imported_once_even_after_a_restart(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    (rec / "day2").mkdir(parents=True)
    write(rec / "a_1h.csv", HEADER + bars_csv(0, 1, 2))
    write(rec / "day2" / "b_1h.csv", HEADER + bars_csv(3, 4))
    db = tmp_path / "f.duckdb"
    with Store(db) as store:
        r = pickup_market(store, [rec])
        assert (r.files, r.accepted, r.quarantined) == (2, 5, 0)
        assert count(store) == 5
        assert pickup_market(store, [rec]).files == 0  # nothing new
    with Store(db) as store:  # a restart: the record is in the store
        assert pickup_market(store, [rec]).files == 0
        # The recorder appends to a file: a new fingerprint, imported again; only the new
        # bar is new, the others are unchanged.
        write(rec / "a_1h.csv", HEADER + bars_csv(0, 1, 2, 5), age_s=30)
        r = pickup_market(store, [rec])
        assert (r.files, r.accepted, r.unchanged) == (1, 1, 3)
        assert count(store) == 6
        assert (rec / "a_1h.csv").exists()  # the recorder's files stay where they are


def test_a_file_being_written_is_not_read(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    write(rec / "BTCUSDT_1h.csv.open", HEADER + bars_csv(0, 1))  # renamed when complete
    write(rec / "BTCUSDT_1h.csv.tmp", HEADER + bars_csv(0, 1))
    fresh = rec / "BTCUSDT_15m.csv"  # written in place, changed a moment ago
    write(fresh, HEADER + "BTCUSDT,2025-01-01T00:00:00Z,1,2", age_s=0.0)
    with Store(tmp_path / "f.duckdb") as store:
        now = fresh.stat().st_mtime_ns + 200_000_000  # 0.2 s after its last change
        assert pickup_market(store, [rec], settle_s=1.0, now_ns=now).files == 0
        # Finished and renamed: taken, whole.
        write(fresh, HEADER + bars_csv(0, 1), age_s=0.0)
        os.rename(rec / "BTCUSDT_1h.csv.open", rec / "BTCUSDT_1h.csv")
        later = fresh.stat().st_mtime_ns + 2_000_000_000
        r = pickup_market(store, [rec], settle_s=1.0, now_ns=later)
        assert (r.files, r.quarantined) == (2, 0)
        assert count(store, "quarantine") == 0


def test_an_abandoned_open_file_is_adopted_in_place_after_ten_minutes(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    torn = rec / "ETHUSDT_1h.csv.open"  # its writer died mid-line
    write(torn, "ts,open,high,low,close\n2025-01-01T00:00:00Z,1,2,0.5,1.5\n"
                "2025-01-01T01:00:00Z,1,2,0.5,1.5\n2025-01-01T02:00:00Z,1,2", age_s=0.0)
    changed = torn.stat().st_mtime_ns
    with Store(tmp_path / "f.duckdb") as store:
        assert pickup_market(store, [rec], now_ns=changed + 599 * 10**9).files == 0
        r = pickup_market(store, [rec], now_ns=changed + 600 * 10**9)
        assert (r.files, r.adopted, r.accepted, r.quarantined) == (1, 1, 2, 1)
        # Symbol and interval from the name without `.open`; recorded under its own path.
        assert store.con.execute("SELECT DISTINCT symbol, interval_s FROM bars").fetchall() == [
            ("ETHUSDT", 3600)]
        assert store.con.execute("SELECT path, line FROM quarantine").fetchall() == [
            (str(torn), 4)]
        assert torn.exists()
        assert pickup_market(store, [rec], now_ns=changed + 900 * 10**9).files == 0


def test_an_unusable_file_is_quarantined_whole_once(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    write(rec / "notes.csv", "when,what\nmonday,rain\n")
    write(rec / "prices.parquet", "not parquet at all")
    write(rec / "ok_1h.csv", HEADER + bars_csv(0, 1) + "BTCUSDT,2025-01-01T02:00:00Z,1,2,0.5,x\n")
    with Store(tmp_path / "f.duckdb") as store:
        r = pickup_market(store, [rec])
        assert (r.files, r.failed, r.accepted, r.quarantined) == (1, 2, 2, 1)
        q = store.con.execute("SELECT path, line, field, reason FROM quarantine ORDER BY path")
        rows = q.fetchall()
        assert [(Path(p).name, ln, f) for p, ln, f, _ in rows] == [
            ("notes.csv", 0, None), ("ok_1h.csv", 4, "close"), ("prices.parquet", 0, None)]
        assert rows[0][3].startswith("line 1: no header with known columns")
        assert rows[2][3].startswith("not a readable Parquet file")
        pickup_market(store, [rec])
        assert count(store, "quarantine") == 3  # not retried until the file changes


def test_the_writer_imports_dropped_files_and_runs_the_hooks(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    w = Writer(tmp_path / "w.duckdb", market_dirs=[rec], follow_poll_s=0.05)
    seen: list[int] = []
    w.after_round(lambda store: seen.append(count(store)))
    w.start()
    try:
        write(rec / "x_1h.csv", HEADER + bars_csv(0, 1, 2))
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen[:1] == [3]
        assert w.stats.market["files"] == 1
    finally:
        w.stop()


def test_serve_follow_market(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    rec.mkdir()
    write(rec / "ETHUSDT_1h.csv", "ts,open,high,low,close\n2025-01-01T00:00:00Z,1,2,0.5,1.5\n")
    bad = subprocess.run([sys.executable, "-m", "alphatrace.cli.main", "serve", "--db",
                          str(tmp_path / "x.duckdb"), "--follow-market", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and "--follow-market" in bad.stderr and "not a folder" in bad.stderr
    srv = start_server(tmp_path, "--follow-market", str(rec))
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the CLI goes through the server holding the store
            got = subprocess.run([sys.executable, "-m", "alphatrace.cli.main", "market",
                                  "symbols", "--json", "--db", str(srv.db)],
                                 capture_output=True, text=True, timeout=120)
            if "ETHUSDT" in got.stdout:
                break
            time.sleep(0.2)
        assert [r["symbol"] for r in json.loads(got.stdout)] == ["ETHUSDT"], got.stderr
    finally:
        srv.stop()
