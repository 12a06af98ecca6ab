"""Which market symbol an event's symbol means (docs/architecture.md §Market).

Explicit aliases win: those passed in (the policy's `market.aliases`) over those stored in the
`symbol_aliases` table (`alphatrace market alias`). Otherwise a symbol that is itself an
imported market symbol maps to itself, and a bare base asset (`BTC`) maps to the one imported
symbol that starts with it (`BTCUSDT`) when exactly one does; with several candidates it is
`ambiguous`, with none `unknown`. Symbols are compared after normalisation (upper case, no
separators, no ccxt `:SETTLE` suffix), so `btc/usdt`, `BTC-USDT` and `BTC/USDT:USDT` are
`BTCUSDT`. Resolution is a relation, so reconciliation joins it instead of calling Python per
event.
"""

from __future__ import annotations

from collections.abc import Mapping

from alphatrace.sql import lit as _lit


def norm_sql(expr: str) -> str:
    """SQL: the comparison key of a symbol (`btc/usdt:usdt` -> `BTCUSDT`)."""
    return f"regexp_replace(upper(split_part(trim({expr}), ':', 1)), '[^A-Z0-9]', '', 'g')"


def norm_symbol(symbol: str) -> str:
    """Python twin of norm_sql, for messages and for validating aliases before storing them."""
    head = symbol.strip().split(":", 1)[0].upper()
    return "".join(c for c in head if c.isascii() and c.isalnum())


def _alias_relation(aliases: Mapping[str, str] | None) -> str:
    """(key, symbol, rank): policy aliases (rank 0) over stored ones (rank 1), one per key."""
    parts = [f"SELECT {norm_sql('alias')} AS key, upper(trim(symbol)) AS symbol, 1 AS rank "
             "FROM symbol_aliases"]
    if aliases:
        values = ", ".join(f"({_lit(a)}, {_lit(s)})" for a, s in sorted(aliases.items()))
        parts.append(
            f"SELECT {norm_sql('a')} AS key, upper(trim(s)) AS symbol, 0 AS rank "
            f"FROM (VALUES {values}) v(a, s)"
        )
    union = " UNION ALL ".join(parts)
    return (f"SELECT key, symbol FROM ({union}) WHERE key <> '' "
            "QUALIFY row_number() OVER (PARTITION BY key ORDER BY rank, symbol) = 1")


# Every market symbol: those of the bars and of the funding (a scan of both tables).
MARKET_SYMBOLS = "(SELECT DISTINCT symbol FROM bars UNION SELECT DISTINCT symbol FROM funding)"


def _ctes(source: str, aliases: Mapping[str, str] | None, markets: str = MARKET_SYMBOLS) -> str:
    return f"""
WITH wanted AS (SELECT DISTINCT symbol AS alias, {norm_sql('symbol')} AS key
                FROM {source} WHERE symbol IS NOT NULL),
     markets AS (SELECT symbol, {norm_sql('symbol')} AS key
                 FROM {markets}),
     aliases AS ({_alias_relation(aliases)}),
     exact AS (SELECT key, min(symbol) AS symbol FROM markets GROUP BY key),
     cand AS (
        SELECT w.alias, m.symbol FROM wanted w JOIN markets m
          ON w.key <> '' AND starts_with(m.key, w.key) AND m.key <> w.key
     ),
     ncand AS (SELECT alias, count(*) AS n, min(symbol) AS symbol,
                      list(symbol ORDER BY symbol) AS candidates
               FROM cand GROUP BY alias),
     resolved AS (
        SELECT w.alias,
               CASE WHEN a.symbol IS NOT NULL THEN a.symbol
                    WHEN e.symbol IS NOT NULL THEN e.symbol
                    WHEN n.n = 1 THEN n.symbol END AS symbol,
               CASE WHEN a.symbol IS NOT NULL THEN 'alias'
                    WHEN e.symbol IS NOT NULL THEN 'exact'
                    WHEN n.n = 1 THEN 'prefix'
                    WHEN n.n > 1 THEN 'ambiguous'
                    ELSE 'unknown' END AS status,
               coalesce(n.candidates, []) AS candidates
        FROM wanted w
        LEFT JOIN aliases a ON a.key = w.key
        LEFT JOIN exact e ON e.key = w.key AND w.key <> ''
        LEFT JOIN ncand n ON n.alias = w.alias
     )"""


def symbol_map_sql(
    source: str = "(SELECT DISTINCT symbol FROM alpha)",
    aliases: Mapping[str, str] | None = None,
) -> str:
    """SQL relation (alias, symbol, status) for every distinct symbol in `source`.

    status: `alias` (from config), `exact`, `prefix` (unique base-asset match), `ambiguous`,
    `unknown`; `symbol` is NULL unless the status resolves it. `alias` is the source value
    unchanged, so callers join on it. `aliases` (e.g. the policy's `market.aliases`) win over
    the stored ones.
    """
    return f"{_ctes(source, aliases)}\nSELECT alias, symbol, status FROM resolved"


def resolution_sql(source: str, aliases: Mapping[str, str] | None = None,
                   markets: str = MARKET_SYMBOLS) -> str:
    """symbol_map_sql plus `candidates`: the prefix matches (what made a symbol ambiguous).
    `markets`: a relation with the distinct market symbols in its `symbol` column, for a
    caller that already has them (reconcile's market profiles) and need not scan the bars."""
    return (f"{_ctes(source, aliases, markets)}\n"
            "SELECT alias, symbol, status, candidates FROM resolved")
