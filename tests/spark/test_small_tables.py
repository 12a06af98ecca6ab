"""The driver's DuckDB reads of `--tables` (engines/spark/small.py) take a table Spark wrote as
a folder of part files, and a catalog table's rows as Arrow (`lake.Lake.driver_source`), the
same as the file `alphatrace export` wrote. No JVM: the driver side is plain DuckDB."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from alphatrace.engines.spark.lake import lake, parquet_files
from alphatrace.engines.spark.small import Reader, pricing_relations
from alphatrace.ledger import policy as rpolicy
from alphatrace.store import Store
from alphatrace.store.export import export_parquet
from tests.rows import insert_bars

T0 = dt.datetime(2024, 1, 1)


def _as_spark_folder(file: Path) -> None:
    """Rewrite `file` as Spark does: a folder of that name, part files, `_SUCCESS`, a .crc."""
    table = pq.read_table(file)
    file.unlink()
    file.mkdir()
    half = table.num_rows // 2
    pq.write_table(table.slice(0, half), file / "part-00000-x.snappy.parquet")
    pq.write_table(table.slice(half), file / "part-00001-x.snappy.parquet")
    (file / "_SUCCESS").write_text("")
    (file / ".part-00000-x.snappy.parquet.crc").write_text("not parquet")


def test_market_read_from_spark_part_files_equals_the_exported_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    insert_bars(store.con, "BTC", T0, [100.0, 101.0, 99.5, 102.0, 103.5, 101.25])
    insert_bars(store.con, "ETH", T0, [10.0, 10.5, 9.75, 11.0])
    export_parquet(store.con, tmp_path / "file_lake")
    shutil.copytree(tmp_path / "file_lake", tmp_path / "folder_lake")
    _as_spark_folder(tmp_path / "folder_lake" / "bars.parquet")
    cfg = rpolicy.load(None)
    symbols = pa.table({"symbol": ["BTC", "ETH"]})
    by_file = pricing_relations(_folder(tmp_path / "file_lake"), cfg, symbols)
    by_folder = pricing_relations(_folder(tmp_path / "folder_lake"), cfg, symbols)
    by_arrow = pricing_relations(_arrow(tmp_path / "file_lake"), cfg, symbols)
    for got in (by_folder, by_arrow):
        markets = got.relations["markets"]
        assert sorted(markets.column("symbol").to_pylist()) == ["BTC", "ETH"]  # not empty
        for name in by_file.relations:  # relations, not ordered results: row sets
            assert got.relations[name].schema == by_file.relations[name].schema, name
            assert _rows(got.relations[name]) == _rows(by_file.relations[name]), name


def _folder(path: Path) -> Reader:
    return lambda t: lake(path).driver_source(None, t)


def _arrow(path: Path) -> Reader:
    """What a catalog table gives the driver: its rows as Arrow, instants UTC-flagged."""
    def read(t: str) -> pa.Table | None:
        f = path / f"{t}.parquet"
        return pq.read_table(f) if f.exists() else None
    return read


def _rows(t: pa.Table) -> list[str]:
    return sorted(repr(r) for r in t.to_pylist())


def test_a_table_is_a_file_a_folder_of_parts_or_absent(tmp_path: Path) -> None:
    (tmp_path / "a.parquet").write_bytes(b"")
    (tmp_path / "b.parquet").mkdir()
    (tmp_path / "b.parquet" / "part-0.parquet").write_bytes(b"")
    (tmp_path / "c.parquet").mkdir()  # a folder with no part file
    assert parquet_files(tmp_path / "a.parquet") == str(tmp_path / "a.parquet")
    assert parquet_files(tmp_path / "b.parquet") == str(tmp_path / "b.parquet" / "*.parquet")
    assert parquet_files(tmp_path / "c.parquet") is None
    assert parquet_files(tmp_path / "d.parquet") is None
