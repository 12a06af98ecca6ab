"""What market data the store holds (`market symbols`) and how names resolve (`market resolve`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from alphatrace.market.names import interval_label
from alphatrace.market.symbols import resolution_sql
from alphatrace.store import Store
from alphatrace.store.connection import registered

SYMBOLS_SQL = """
WITH b AS (SELECT symbol, interval_s, min(ts) AS first_bar, max(ts) AS last_bar, count(*) AS bars
           FROM bars GROUP BY symbol, interval_s),
     f AS (SELECT symbol, count(*) AS funding, min(ts) AS first_funding, max(ts) AS last_funding
           FROM funding GROUP BY symbol),
     a AS (SELECT upper(symbol) AS symbol, string_agg(alias, ',' ORDER BY alias) AS aliases
           FROM symbol_aliases GROUP BY upper(symbol))
SELECT s.symbol, b.interval_s, b.first_bar, b.last_bar, coalesce(b.bars, 0) AS bars,
       coalesce(f.funding, 0) AS funding, f.first_funding, f.last_funding, a.aliases
FROM (SELECT symbol FROM b UNION SELECT symbol FROM f) s
LEFT JOIN b USING (symbol) LEFT JOIN f USING (symbol) LEFT JOIN a USING (symbol)
ORDER BY s.symbol, b.interval_s NULLS FIRST
"""


def symbols(store: Store) -> list[dict[str, Any]]:
    """One row per (symbol, bar interval); funding counts are per symbol, so they repeat."""
    cur = store.con.execute(SYMBOLS_SQL)
    names = [d[0] for d in cur.description]
    out = []
    for row in cur.fetchall():
        rec = dict(zip(names, row, strict=True))
        rec["interval"] = interval_label(rec["interval_s"])
        rec["aliases"] = rec["aliases"].split(",") if rec["aliases"] else []
        out.append(rec)
    return out


def resolve(
    store: Store, wanted: Sequence[str], aliases: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """How each name resolves, in the order given (duplicates once)."""
    order = list(dict.fromkeys(wanted))
    if not order:
        return []
    with registered(store.con, "_mkt_wanted",
                    pa.table({"symbol": pa.array(order, pa.string())})) as wanted:
        rows = store.con.execute(resolution_sql(wanted, aliases)).fetchall()
    by_alias = {r[0]: r for r in rows}
    return [
        {"symbol": w, "resolved": by_alias[w][1], "status": by_alias[w][2],
         "candidates": list(by_alias[w][3])}
        for w in order
    ]
