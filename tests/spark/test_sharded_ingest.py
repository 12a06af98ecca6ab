"""`alphatrace ingest --engine spark`: files validated in executors, deduplicated across files on
Spark, equal to `alphatrace ingest` of the same files into an empty store: the same accepted
rows (file and line included), the same duplicates, the same quarantine, the same counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from typer.testing import CliRunner

from alphatrace.cli.app import app
from alphatrace.engines.spark.ingest import ingest_sharded
from alphatrace.store import Store
from alphatrace.store.export import export_parquet
from alphatrace.store.ingest import ingest_paths

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`

TABLES = ("telemetry", "alpha", "pnl", "quarantine", "ingested_files")


def _run(i: int, agent: str = "A", pnl: float = 1.5) -> list[dict[str, Any]]:
    ts = f"2025-01-0{1 + i % 9}T0{i % 10}:00:00Z"
    return [
        {"type": "alpha", "run_id": f"r{i}", "agent": agent, "ts": ts, "symbol": "BTCUSDT",
         "direction": "LONG" if i % 2 else "SHORT", "score_final": 0.5, "regime": "TREND"},
        {"type": "telemetry", "run_id": f"r{i}", "agent": agent, "ts": ts, "latency_ms": 100 + i,
         "tokens_in": 10, "tokens_out": 5, "cost_usd": 0.01, "errors": 0},
        {"type": "pnl", "run_id": f"r{i}", "realized_pnl_bps": pnl + i, "ts": ts},
    ]


def _lines(events: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(e) for e in events]


def _files(tmp: Path) -> list[str]:
    """Three files: duplicates within a file and across files (by content and by event_id),
    bare seed shapes, and bad lines of several kinds."""
    f1 = _lines([e for i in range(6) for e in _run(i)])
    f1 += [json.dumps({"type": "pnl", "event_id": "shared-id", "run_id": "r0",
                       "realized_pnl_bps": 7.0, "ts": "2025-01-01T00:00:00Z"})]
    f1 += [f1[0]]  # the same line again in its file
    f2 = f1[3:9]  # lines of f1 again: duplicates across files
    f2 += _lines([{k: v for k, v in e.items() if k != "type"} for e in _run(20, "B")])  # bare
    f2 += ['{"type": "alpha", "run_id": "r30"', '{"type": "telemetry", "run_id": "r31", '
           '"agent": "B", "latency_ms": "slow"}']
    f3 = [json.dumps({"type": "pnl", "event_id": "shared-id", "run_id": "r0",
                      "realized_pnl_bps": -99.0, "ts": "2025-01-01T00:00:00Z"})]  # same id
    f3 += _lines([e for i in range(40, 44) for e in _run(i, "C", -3.0)])
    f3 += ["not json", "", '{"type": "pnl", "run_id": "r9", "realized_pnl_bps": 1e400}']
    f3 += f2[-4:-2]  # bare lines of f2 again
    paths = []
    for n, lines in enumerate((f1, f2, f3), 1):
        p = tmp / f"events{n}.jsonl"
        p.write_text("\n".join(lines) + "\n")
        paths.append(str(p))
    return paths


def _rows(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[tuple[Any, ...]]:
    src = str(path / f"{table}.parquet")
    if path.joinpath(f"{table}.parquet").is_dir():
        src += "/*.parquet"
    drop = " EXCLUDE (ingested_at)" if table == "ingested_files" else ""
    return sorted(con.execute(f"SELECT *{drop} FROM read_parquet('{src}')").fetchall(),
                  key=repr)


@pytest.mark.parametrize("partitions", [1, 7])
def test_equals_the_embedded_ingest_of_the_same_files(spark: Any, tmp_path: Path,
                                                      partitions: int) -> None:
    files = _files(tmp_path)
    with Store(tmp_path / "embedded.duckdb") as store:
        embedded = ingest_paths(store, files)
        export_parquet(store.con, tmp_path / "embedded", list(TABLES))
    spark.conf.set("spark.sql.shuffle.partitions", str(partitions))
    try:
        sharded = ingest_sharded(files, tmp_path / "spark")
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", "2")

    # by hand: f1 has 18 run events + shared-id + one repeated line (a duplicate); f2 repeats 6
    # of f1's lines, adds 3 bare events and 2 bad lines; f3's shared-id and its 2 bare lines
    # are duplicates, it adds 12 events and 3 bad lines (the blank line is skipped)
    assert (embedded.accepted, embedded.duplicates, embedded.quarantined) == (34, 10, 4)
    assert sharded.to_dict() == embedded.to_dict()
    con = duckdb.connect()
    for table in TABLES:
        want = _rows(con, tmp_path / "embedded", table)
        assert want, table
        assert _rows(con, tmp_path / "spark", table) == want, table
    kept = con.execute(f"SELECT realized_pnl_bps, file_id FROM read_parquet("
                       f"'{tmp_path}/spark/pnl.parquet/*.parquet') WHERE event_id = 'shared-id'"
                       ).fetchall()
    assert kept == [(7.0, 1)]  # the earliest (file, line) wins


def test_the_cli_prints_the_ingest_document(spark: Any, tmp_path: Path) -> None:
    files = _files(tmp_path)
    out = tmp_path / "lake"
    r = CliRunner().invoke(app, ["ingest", *files, "--engine", "spark", "--tables", str(out),
                                 "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout) == {"accepted": 34, "duplicates": 10, "quarantined": 4,
                                    "files": 3}
    assert not (out / "_shards").exists()
    bad = CliRunner().invoke(app, ["ingest", *files, "--engine", "spark"])
    assert bad.exit_code != 0 and "--tables" in bad.output
