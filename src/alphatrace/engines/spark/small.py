"""What a Spark ledger build or reconcile computes on the driver with DuckDB over the export's
tables (Parquet files by name, or a catalog's rows as Arrow; no pyspark here): the policy's per-agent values, the resolution of symbols, and the
market pricing searches.

All come from the embedded engine's own code, so each has one definition:
- `params` (`ledger.policy.params_sql`), `pnl_keys` (`ledger.build.pnl_keys_sql`) and the
  signals' `symmap` (`market.symbols.resolution_sql`): a few rows each (one per agent
  override, one per distinct symbol);
- the market (`ledger.reconcile.prepare_market`): the chosen bar series per symbol, the bars
  and funding settlements `locate` searches, and the settlements' running sums. `locate` needs
  the whole market in memory wherever it runs (Spark hands it to every task), so it is built
  once, here. Spark prices everything each time: no stored market state, nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from alphatrace.ledger.build import pnl_keys_sql
from alphatrace.ledger.policy import ReconcileConfig, params_sql
from alphatrace.ledger.reconcile import Market, prepare_market
from alphatrace.market.symbols import resolution_sql
from alphatrace.sql import lit

# Tables the driver reads, and their empty stand-in when the export has none.
_EMPTY = {
    "pnl": "SELECT CAST(NULL AS VARCHAR) AS symbol WHERE false",
    "bars": ("SELECT CAST(NULL AS VARCHAR) AS symbol, CAST(NULL AS INTEGER) AS interval_s, "
             "CAST(NULL AS TIMESTAMP) AS ts, CAST(NULL AS DOUBLE) AS open WHERE false"),
    "funding": ("SELECT CAST(NULL AS VARCHAR) AS symbol, CAST(NULL AS TIMESTAMP) AS ts, "
                "CAST(NULL AS DOUBLE) AS funding_rate, CAST(NULL AS DOUBLE) AS mark_price "
                "WHERE false"),
    "symbol_aliases": ("SELECT CAST(NULL AS VARCHAR) AS alias, CAST(NULL AS VARCHAR) AS symbol "
                       "WHERE false"),
}
# The market state an incremental reconcile compares against: none (everything is priced).
_NO_STATE = ("CREATE TABLE ledger_market_state (symbol VARCHAR, interval_s INTEGER, "
             "bars_last TIMESTAMP, funding_last TIMESTAMP)")


# What the driver reads for a table: Parquet files by name, the rows as Arrow, or None (absent)
# (`lake.Lake.driver_source`).
Reader = Callable[[str], "str | pa.Table | None"]


def create_views(con: duckdb.DuckDBPyConnection, read: Reader, names: list[str]) -> None:
    """A view per name of `_EMPTY` over what `read` gives for it (Parquet files, or Arrow
    rows), or over its empty stand-in when there is none."""
    for name in names:
        src = read(name)
        if isinstance(src, pa.Table):
            con.register(f"_src_{name}", src)
            body = f"SELECT * FROM _src_{name}"
        else:
            body = f"SELECT * FROM read_parquet({lit(src)})" if src is not None else _EMPTY[name]
        con.execute(f"CREATE VIEW {name} AS {body}")


@contextmanager
def _export(read: Reader) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection with the export's market, aliases and pnl as views."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        create_views(con, read, list(_EMPTY))
        yield con
    finally:
        con.close()


def small_relations(read: Reader, cfg: ReconcileConfig) -> dict[str, pa.Table]:
    """`params` and `pnl_keys` as Arrow tables, from the export `read` reads."""
    with _export(read) as con:
        return _small(con, cfg)


def _small(con: duckdb.DuckDBPyConnection, cfg: ReconcileConfig) -> dict[str, pa.Table]:
    keys = pnl_keys_sql(f"({resolution_sql('(SELECT DISTINCT symbol FROM pnl)', cfg.aliases)})")
    return {"params": con.sql(params_sql(cfg.policy)).to_arrow_table(),
            "pnl_keys": con.sql(keys).to_arrow_table()}


@dataclass(frozen=True)
class Pricing:
    """What pricing on Spark needs from the driver: the small relations (`params`,
    `pnl_keys`, `symmap`, `markets`, `settlements`) as Arrow, and the market `locate`
    searches."""

    relations: dict[str, pa.Table]
    market: Market


def pricing_relations(read: Reader, cfg: ReconcileConfig, symbols: pa.Table) -> Pricing:
    """`Pricing` for the export `read` reads; `symbols` (one column, `symbol`) are the
    distinct symbols of its signals."""
    with _export(read) as con:
        con.execute(_NO_STATE)
        market = prepare_market(con, cfg)
        con.register("_sp_symbols", symbols)
        out = _small(con, cfg) | {
            "symmap": con.sql(resolution_sql("(SELECT symbol FROM _sp_symbols)", cfg.aliases)
                              ).to_arrow_table(),
            "markets": con.sql("SELECT sid, symbol, interval_s, iv_us, bar_interval, first_us "
                               "FROM _rc_markets").to_arrow_table(),
            "settlements": con.sql("SELECT i, cum FROM _rc_settle").to_arrow_table(),
        }
        return Pricing(out, market)
