"""`locate.exits` through Spark's `mapInArrow` (`engines.spark.locate`), run over every
classified signal, finds for the priceable ones the same entry and exit bars, prices and
settlements as the embedded engine's call over the narrow signals, and leaves the others'
NULL, whatever the partitions: bar holes, ties in time, funding on and off, open legs, a
horizon beyond the data, FLAT and unpriceable signals."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from alphatrace.engines.spark.locate import EXIT_FIELDS, exits_in_partitions
from alphatrace.ledger import locate
from alphatrace.ledger.policy import params_sql
from alphatrace.ledger.pricing import Relations, classified_sql, narrow_sql
from alphatrace.ledger.reconcile import prepare_market
from alphatrace.market.symbols import resolution_sql
from tests.ledger.helpers import policy
from tests.spark.test_ledger_parity import POLICY, _edge_store

pytestmark = pytest.mark.slow  # a JVM start; see `make test-fast`


def _key(v: Any) -> Any:
    if v is None or v is np.ma.masked:
        return None
    if isinstance(v, (float, np.floating)):
        return struct.pack("<d", float(v))
    return int(v) if isinstance(v, (np.integer, np.bool_, bool, int)) else v


def test_mapinarrow_exits_equal_the_embedded_call(tmp_path: Path, spark: Any) -> None:
    cfg = policy(POLICY)
    s = _edge_store(tmp_path / "s.duckdb")
    con = s.con
    market = prepare_market(con, cfg)
    con.execute(f"CREATE TEMP TABLE _rc_params AS {params_sql(cfg.policy)}")
    con.execute("CREATE TEMP TABLE _rc_symmap AS "
                + resolution_sql("(SELECT DISTINCT symbol FROM alpha)", cfg.aliases))
    rel = Relations(todo="alpha")
    signals = con.sql(classified_sql(rel, cfg.bar_interval_s)).to_arrow_table()
    want_cols = locate.exits(con.sql(narrow_sql(rel)).fetchnumpy(), market.bars, market.opens,
                             market.settlements)
    names = EXIT_FIELDS.names
    priced = {want_cols["event_id"][i]: [_key(want_cols[n][i]) for n in names]
              for i in range(len(want_cols["event_id"]))}
    assert any(v[names.index("exit_us")] is None for v in priced.values())  # an open leg
    assert any(v[names.index("entry_settle")] is not None for v in priced.values())
    all_ids = signals.column("event_id").to_pylist()
    assert len(all_ids) > len(priced)  # FLAT, unknown symbols, before the data, no ts
    want = {e: priced.get(e, [None] * len(names)) for e in all_ids}
    s.close()
    for parts in (1, 3):
        df = spark.createDataFrame(signals).repartition(parts)
        rows = exits_in_partitions(df, market).collect()
        got = {r["event_id"]: [_key(r[n]) for n in names] for r in rows}
        assert got == want
