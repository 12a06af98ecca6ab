"""Where `--tables` keeps the tables on Spark: a folder of Parquet, or a catalog namespace.

`--tables DIR` is a folder: `DIR/<table>.parquet`, a file (`alphatrace export`) or a folder of
part files (what Spark writes). `--tables catalog.schema` (two names joined by a dot, with no
path separator, and no such folder) names a namespace of the session's catalogs: table `t` is
read as `spark.table("catalog.schema.t")` and written with `saveAsTable` in the session's
default format. So a Delta or Iceberg catalog configured on the session works unchanged, with
its own snapshot rules (a table is read at its current version, never as loose data files).

The driver's DuckDB reads (the market for reconcile and explain, the policy's small
relations) get a folder's Parquet files by name, and a catalog table as Arrow through Spark
(of `pnl`, only its distinct symbols).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from alphatrace.errors import InputError

# The tables that grow with the runs of which the driver's DuckDB reads only the distinct values
# of some columns (`small._small`: pnl's symbols).
_DRIVER_COLUMNS = {"pnl": ("symbol",)}
_NAMESPACE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*")


def parquet_files(path: Path) -> str | None:
    """What DuckDB reads for one table of a folder: the file `alphatrace export` wrote, or the
    part files of a folder Spark wrote under the same name (a folder read as absent would
    leave the market empty and every leg unpriced, with no error); None when there is none."""
    if path.is_file():
        return str(path)
    if path.is_dir() and any(path.glob("*.parquet")):
        return str(path / "*.parquet")
    return None


@dataclass(frozen=True)
class Lake:
    """The tables of `--tables` (or `--out`): `folder` or `namespace`, exactly one set."""

    folder: Path | None = None
    namespace: str | None = None

    def __str__(self) -> str:
        return self.namespace if self.namespace is not None else str(self.folder)

    def name(self, table: str) -> str:
        """The table's catalog name (namespace form only)."""
        return f"{self.namespace}.{table}"

    def path(self, table: str) -> Path:
        assert self.folder is not None
        return self.folder / f"{table}.parquet"

    def exists(self, spark: Any, table: str) -> bool:
        if self.namespace is not None:
            return bool(spark.catalog.tableExists(self.name(table)))
        return self.path(table).exists()

    def read(self, spark: Any, table: str) -> Any | None:
        """The table as a DataFrame, or None when there is none."""
        if not self.exists(spark, table):
            return None
        if self.namespace is not None:
            return spark.table(self.name(table))
        return spark.read.parquet(str(self.path(table)))

    def require(self, spark: Any, table: str) -> Any:
        """The table as a DataFrame; a clear error naming it when there is none."""
        df = self.read(spark, table)
        if df is None:
            where = (f"no table {self.name(table)}" if self.namespace is not None
                     else f"{self.folder}: no {table}.parquet")
            raise InputError(f"{where} (write it with `alphatrace export --to parquet`, or "
                             "load that export's tables into the catalog)")
        return df

    def write(self, df: Any, table: str) -> None:
        """Replace the table with `df`'s rows (a catalog table keeps its name and format
        rules: `saveAsTable`, the session's default format for a new one)."""
        if self.namespace is not None:
            df.write.mode("overwrite").saveAsTable(self.name(table))
        else:
            df.write.mode("overwrite").parquet(str(self.path(table)))

    def driver_source(self, spark: Any, table: str) -> str | pa.Table | None:
        """What the driver's DuckDB reads for the table: Parquet files by name (a folder) or
        the rows as Arrow (a catalog table, read through Spark); None when there is none. Of
        `pnl`, one row per run, a catalog gives only the distinct symbols, all the driver
        reads of it (`small.py`)."""
        if self.namespace is None:
            return parquet_files(self.path(table))
        df = self.read(spark, table)  # instants stay UTC-flagged, as in the export's Parquet
        if df is not None and table in _DRIVER_COLUMNS:
            df = df.select(*_DRIVER_COLUMNS[table]).distinct()
        return None if df is None else df.toArrow()


def lake(tables: Path | str | Lake) -> Lake:
    """`--tables` (or `--out`) as a `Lake`: `catalog.schema` when it is two names joined by a
    dot and no such file or folder exists, else a folder."""
    if isinstance(tables, Lake):
        return tables
    text = str(tables)
    if _NAMESPACE.fullmatch(text) and not Path(text).exists():
        return Lake(namespace=text)
    return Lake(folder=Path(tables))
