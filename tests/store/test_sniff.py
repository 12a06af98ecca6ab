"""Ingest input sniffing: JSON Lines (plain or gzip) passes; Parquet, CSV, gzip of CSV and
binaries are refused with a hint, market data pointed at `alphatrace market import`."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.errors import InputError
from alphatrace.store.sniff import HEAD_BYTES, check_files, looks_like_market, refusal, sniff

runner = CliRunner()
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
objects = st.dictionaries(st.text(max_size=10), json_scalars, max_size=5)


@given(st.lists(objects, min_size=1, max_size=30), st.booleans(), st.sampled_from(["", "\ufeff", "\n "]))
def test_json_lines_plain_or_gzip_are_ingestible(rows: list[dict[str, object]], gz: bool, lead: str) -> None:
    data = (lead + "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n").encode()
    if gz:
        data = gzip.compress(data)
    found = sniff(data[:HEAD_BYTES])
    assert found.ingestible and found.kind == "jsonl" and found.gzip == gz
    assert refusal("f", found) is None


def test_formats_by_hand() -> None:
    assert sniff(b"").kind == "empty" and sniff(b"").ingestible
    assert sniff(b"PAR1\x15\x04").kind == "Parquet"
    assert sniff(b"\x00" * 8 + b"DUCK").kind == "DuckDB database"
    assert sniff(b"PK\x03\x04rest").kind == "zip (or xlsx)"
    assert sniff(b"\x89PNG\r\n\x1a\n\x00").kind == "binary"
    csv = sniff(b"symbol,ts,open,high,low,close\nBTC,1,2,3,1,2\nBTC,2,2,3,1,2\n")
    assert csv.kind == "csv" and csv.columns == ("symbol", "ts", "open", "high", "low", "close")
    gz = sniff(gzip.compress(b"a,b,c\n1,2,3\n4,5,6\n"))
    assert gz.kind == "csv" and gz.gzip and gz.columns == ("a", "b", "c")
    # not objects, not a table: JSON Lines whose lines the ingest quarantines with a reason
    assert sniff(b"not json\nat all\n").kind == "jsonl"


def test_market_columns() -> None:
    assert looks_like_market(["symbol", "ts", "open", "high", "low", "close"])
    assert looks_like_market(["symbol", "ts", "funding_rate"])
    assert looks_like_market(["fundingTime", "fundingIntervalHours", "fundingRate"])
    assert looks_like_market(["1735689600000", "93548.80", "94449.20"])  # header-less klines
    assert not looks_like_market(["run_id", "agent", "latency_ms"])
    assert not looks_like_market(None)


def test_refusals_name_the_file_and_what_to_do() -> None:
    bars = refusal("b.parquet", sniff(b"PAR1"), ["symbol", "ts", "open", "high", "low", "close"])
    assert bars is not None and bars.startswith("b.parquet: a Parquet file, not JSON Lines")
    assert "`alphatrace market import b.parquet`" in bars
    events = refusal("e.csv", sniff(b"run_id,agent,latency_ms\nr1,A,5\nr2,A,6\n"))
    assert events is not None and "market import" not in events and "FORMAT json" in events


def _parquet_bars(path: Path) -> Path:
    pq.write_table(pa.table({"symbol": ["BTCUSDT"] * 3, "ts": [1, 2, 3], "open": [1.0] * 3,
                             "high": [2.0] * 3, "low": [0.5] * 3, "close": [1.5] * 3}), path)
    return path


def test_ingest_refuses_parquet_and_creates_nothing(tmp_path: Path) -> None:
    f = _parquet_bars(tmp_path / "bars.parquet")
    db = tmp_path / "s.duckdb"
    out = runner.invoke(app, ["ingest", str(f), "--db", str(db)])
    assert out.exit_code == 2, out.output
    assert out.output.strip().splitlines() == [
        f"error: {f}: a Parquet file, not JSON Lines (ingest reads one JSON event per line, .gz "
        f"too); it looks like market data: `alphatrace market import {f}`"]
    assert not db.exists()
    with pytest.raises(InputError, match="market import"):
        check_files([str(f)])


def test_python_api_ingest_refuses_too(tmp_path: Path) -> None:
    import alphatrace as at

    f = tmp_path / "events.csv"
    f.write_text("run_id,agent,latency_ms\nr1,A,5\nr2,A,6\n")
    with at.connect(tmp_path / "s.duckdb") as db, pytest.raises(InputError, match="a CSV table"):
        db.ingest(f)


def test_gzip_json_lines_still_ingest(tmp_path: Path) -> None:
    f = tmp_path / "e.jsonl.gz"
    f.write_bytes(gzip.compress(b'{"run_id": "r1", "agent": "A", "latency_ms": 5}\n'))
    out = runner.invoke(app, ["ingest", str(f), "--db", str(tmp_path / "s.duckdb"), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["accepted"] == 1
