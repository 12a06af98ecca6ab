"""Market values outside their documented ranges are quarantined with line and field, the rest
of the file kept (issue #13 item 4: market import enforces ranges like event ingest)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from alphatrace.market.importer import import_files
from alphatrace.store import Store


def test_bar_values_out_of_range(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "BTCUSDT_1h.csv"
    f.write_text(
        "symbol,ts,open,high,low,close,volume\n"
        "BTCUSDT,2024-01-01T00:00:00Z,100,110,90,105,1\n"
        "BTCUSDT,2024-01-01T01:00:00Z,1e13,1e13,90,105,1\n"  # open beyond 1e12
        "BTCUSDT,2024-01-01T02:00:00Z,100,110,90,105,1e19\n"  # volume beyond 1e18
        "BTCUSDT,2300-01-01T03:00:00Z,100,110,90,105,1\n"  # past the timestamp range
        "BTCUSDT,2024-01-01T04:00:00Z,1e12,1e12,1e12,1e12,1e18\n",  # every maximum: kept
        encoding="utf-8",
    )
    r = import_files(store, [f])
    got = store.con.execute("SELECT line, field, reason FROM quarantine ORDER BY line").fetchall()
    assert got == [
        (3, "open", "out of range: must be <= 1e12 (got 1e13)"),
        (4, "volume", "out of range: must be <= 1e18 (got 1e19)"),
        (5, "ts", "out of range: must be from 1970-01-01 to before 2250-01-01 "
                  "(got 2300-01-01T03:00:00Z)"),
    ]
    assert r.bars == 2
    assert store.con.execute("SELECT ts FROM bars ORDER BY ts").fetchall() == [
        (dt.datetime(2024, 1, 1, 0),), (dt.datetime(2024, 1, 1, 4),)]


def test_funding_rate_beyond_one_hundred_percent(store: Store, tmp_path: Path) -> None:
    f = tmp_path / "BTCUSDT_funding.csv"
    f.write_text(
        "symbol,ts,funding_rate\n"
        "BTCUSDT,2024-01-01T00:00:00Z,0.0001\n"
        "BTCUSDT,2024-01-01T08:00:00Z,-1.5\n"
        "BTCUSDT,2024-01-01T16:00:00Z,-1\n",
        encoding="utf-8",
    )
    r = import_files(store, [f])
    assert store.con.execute("SELECT line, field, reason FROM quarantine").fetchall() == [
        (3, "funding_rate", "must be >= -1 (got -1.5)")]
    assert r.funding == 2
