"""The small relations a Spark ledger build needs, computed on the driver with DuckDB over the
exported Parquet (no pyspark here): the policy's per-agent values and the pnl symbols' keys.

Both are a few rows (one per agent override, one per distinct pnl symbol), and both come from
the embedded engine's own SQL (`ledger.policy.params_sql`, `ledger.build.pnl_keys_sql`), so
symbol resolution has one definition.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from alphatrace.ledger.build import pnl_keys_sql
from alphatrace.ledger.policy import ReconcileConfig, params_sql
from alphatrace.market.symbols import resolution_sql
from alphatrace.sql import lit

# Tables symbol resolution reads, and their empty stand-in when the export has none.
_EMPTY = {
    "pnl": "SELECT CAST(NULL AS VARCHAR) AS symbol WHERE false",
    "bars": "SELECT CAST(NULL AS VARCHAR) AS symbol WHERE false",
    "funding": "SELECT CAST(NULL AS VARCHAR) AS symbol WHERE false",
    "symbol_aliases": ("SELECT CAST(NULL AS VARCHAR) AS alias, CAST(NULL AS VARCHAR) AS symbol "
                       "WHERE false"),
}


def small_relations(tables: Path, cfg: ReconcileConfig) -> dict[str, pa.Table]:
    """`params` and `pnl_keys` as Arrow tables, from the export in `tables`."""
    con = duckdb.connect()
    try:
        for name, empty in _EMPTY.items():
            f = tables / f"{name}.parquet"
            body = f"SELECT * FROM read_parquet({lit(str(f))})" if f.is_file() else empty
            con.execute(f"CREATE VIEW {name} AS {body}")
        keys = pnl_keys_sql(
            f"({resolution_sql('(SELECT DISTINCT symbol FROM pnl)', cfg.aliases)})")
        return {"params": con.sql(params_sql(cfg.policy)).to_arrow_table(),
                "pnl_keys": con.sql(keys).to_arrow_table()}
    finally:
        con.close()
