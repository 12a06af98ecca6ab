"""`pricing.wide_legs_sql` over `locate` run on every classified signal (what reconcile runs on
Spark, with no join of the signals with their exits) gives the rows of the embedded engine's
`priced_legs_sql`, both run by DuckDB here: the two builders are one definition. The kernel's
Spark wrapper (`engines.spark.locate._with_exits`) is plain Arrow and numpy, run here on
batches of 3 signals, some with nothing to price. No JVM: the Spark parity suites check the
same rows on Spark."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from alphatrace.engines.spark.locate import EXIT_FIELDS, _with_exits
from alphatrace.ledger.policy import params_sql
from alphatrace.ledger.pricing import (
    PRICED_COLUMNS,
    Relations,
    classified_sql,
    priced_legs_sql,
    wide_legs_sql,
)
from alphatrace.ledger.reconcile import locate_exits, prepare_market
from alphatrace.market.symbols import resolution_sql
from alphatrace.store.connection import registered
from tests.ledger.helpers import policy
from tests.spark.test_ledger_parity import POLICY, _bits
from tests.spark.test_reconcile_parity import _edges


def _keyed(t: pa.Table) -> dict[str, dict[str, object]]:
    return {r["event_id"]: {k: _bits(v) for k, v in r.items()} for r in t.to_pylist()}


def test_wide_legs_equal_the_priced_legs(tmp_path: Path) -> None:
    cfg = policy(POLICY)
    s = _edges(tmp_path / "s.duckdb")
    con = s.con
    try:
        market = prepare_market(con, cfg)
        con.execute(f"CREATE TEMP TABLE _rc_params AS {params_sql(cfg.policy)}")
        con.execute("CREATE TEMP TABLE _rc_symmap AS "
                    + resolution_sql("(SELECT DISTINCT symbol FROM alpha)", cfg.aliases))
        rel = Relations(todo="alpha")
        cols = ", ".join(PRICED_COLUMNS)
        with registered(con, "_rc_exits", locate_exits(con, rel, market)) as exits:
            want = con.sql(f"SELECT {cols} FROM ("
                           f"{priced_legs_sql(rel, cfg.hash, cfg.bar_interval_s, exits)})"
                           ).to_arrow_table()
        signals = con.sql(classified_sql(rel, cfg.bar_interval_s)).to_arrow_table()
        schema = pa.schema([*signals.schema, *EXIT_FIELDS])
        ordered = signals.sort_by([("priceable", "ascending"), ("event_id", "ascending")])
        batches = [_with_exits(b, market, schema) for b in ordered.to_batches(max_chunksize=3)]
        assert any(not any(b.column("priceable").to_pylist()) for b in batches)
        with registered(con, "_rc_wide", pa.Table.from_batches(batches, schema)) as wide:
            got = con.sql(f"SELECT {cols} FROM ({wide_legs_sql(rel, cfg.hash, wide)})"
                          ).to_arrow_table()
    finally:
        s.close()
    statuses = set(want.column("status").to_pylist())
    assert statuses == {"realized", "open", "unpriced"}
    assert _keyed(got) == _keyed(want)
