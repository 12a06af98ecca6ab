"""Which market symbol an event's symbol means (DESIGN.md §3).

Explicit aliases (config: the `symbol_aliases` table) win. Otherwise a symbol that is itself an
imported market symbol maps to itself, and a bare base asset (`BTC`) maps to the one imported
symbol that starts with it (`BTCUSDT`) when exactly one does; with several candidates it is
`ambiguous`, with none `unknown`. Resolution is a relation, so reconciliation joins it instead
of calling Python per event.
"""

from __future__ import annotations


def symbol_map_sql(source: str = "(SELECT DISTINCT symbol FROM alpha)") -> str:
    """SQL relation (alias, symbol, status) for every distinct symbol in `source`.

    status: `alias` (from config), `exact`, `prefix` (unique base-asset match), `ambiguous`,
    `unknown`; `symbol` is NULL unless the status resolves it.
    """
    return f"""
WITH wanted AS (SELECT DISTINCT symbol AS alias FROM {source} WHERE symbol IS NOT NULL),
     markets AS (SELECT DISTINCT symbol FROM bars UNION SELECT DISTINCT symbol FROM funding),
     cand AS (
        SELECT w.alias, m.symbol FROM wanted w JOIN markets m
          ON upper(m.symbol) LIKE upper(w.alias) || '%' AND upper(m.symbol) <> upper(w.alias)
     ),
     ncand AS (SELECT alias, count(*) AS n, min(symbol) AS symbol FROM cand GROUP BY alias)
SELECT w.alias,
       CASE WHEN a.symbol IS NOT NULL THEN a.symbol
            WHEN e.symbol IS NOT NULL THEN e.symbol
            WHEN n.n = 1 THEN n.symbol END AS symbol,
       CASE WHEN a.symbol IS NOT NULL THEN 'alias'
            WHEN e.symbol IS NOT NULL THEN 'exact'
            WHEN n.n = 1 THEN 'prefix'
            WHEN n.n > 1 THEN 'ambiguous'
            ELSE 'unknown' END AS status
FROM wanted w
LEFT JOIN symbol_aliases a ON upper(a.alias) = upper(w.alias)
LEFT JOIN markets e ON upper(e.symbol) = upper(w.alias)
LEFT JOIN ncand n ON n.alias = w.alias
"""
