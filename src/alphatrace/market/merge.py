"""The relational steps from normalised rows to the store's `bars`/`funding` (pure SQL text).

Within a file, rows with the same (symbol, ts) collapse to the last line: identical repeats
count as unchanged, different ones are reported as conflicts. Against the store, each kept row
is `new`, `same` or `changed`; an empty volume or mark price keeps the stored value, so a file
that lacks them never erases them.
"""

from __future__ import annotations

from typing import Literal

from alphatrace.market.formats import SEP

Table = Literal["bars", "funding"]

VALUES: dict[Table, tuple[str, ...]] = {
    "bars": ("open", "high", "low", "close", "volume"),
    "funding": ("funding_rate", "mark_price"),
}
KEYS: dict[Table, tuple[str, ...]] = {"bars": ("symbol", "interval_s", "ts"), "funding": ("symbol", "ts")}
KEEP_OLD = frozenset({"volume", "mark_price"})  # an empty new value keeps the stored one


def ranked_sql(table: Table, norm: str, intervals: str | None) -> str:
    """Valid rows with interval_s and rn (1 = the last line of its symbol and ts)."""
    vals = ", ".join(f"n.{v}" for v in VALUES[table])
    if intervals is None:
        iv, join = "CAST(NULL AS INTEGER) AS interval_s", ""
    else:
        iv, join = "i.interval_s", f"JOIN {intervals} i USING (symbol)"
    return f"""
SELECT n.line, n.symbol, {iv}, n.ts, {vals},
       row_number() OVER (PARTITION BY n.symbol, n.ts ORDER BY n.line DESC) AS rn
FROM {norm} n {join} WHERE n.err IS NULL"""


def _losers(table: Table, ranked: str, same: bool) -> str:
    """Lines beaten by a later line of the same symbol and ts (with the winner's line)."""
    eq = " AND ".join(f"l.{v} IS NOT DISTINCT FROM w.{v}" for v in VALUES[table])
    cond = eq if same else f"NOT ({eq})"
    return (f"SELECT l.line, w.line AS kept FROM {ranked} l JOIN {ranked} w "
            f"ON w.symbol = l.symbol AND w.ts = l.ts AND w.rn = 1 WHERE l.rn > 1 AND {cond}")


def repeats_sql(table: Table, ranked: str) -> str:
    """Count of lines that repeat a later line exactly."""
    return f"SELECT count(*) FROM ({_losers(table, ranked, same=True)})"


def bad_rows_sql(table: Table, rejects: str, norm: str, ranked: str, raw: str) -> str:
    """(line, field, reason, raw): unsplittable lines, invalid values, in-file conflicts."""
    return f"""
SELECT line, field, reason, raw FROM {rejects}
UNION ALL
SELECT b.line, b.field, b.reason, r.raw FROM (
    SELECT line, split_part(err, '{SEP}', 1) AS field, split_part(err, '{SEP}', 2) AS reason
    FROM {norm} WHERE err IS NOT NULL
    UNION ALL
    SELECT line, 'ts', 'same symbol and ts as line ' || kept ||
           ' with different values (the later line is kept)'
    FROM ({_losers(table, ranked, same=False)})
) b LEFT JOIN ({raw}) r USING (line)"""


def stage_sql(table: Table, ranked: str) -> str:
    """Kept rows merged with the store, each with status new | same | changed."""
    keys, values = KEYS[table], VALUES[table]

    def merged(v: str) -> str:
        return f"coalesce(w.{v}, t.{v})" if v in KEEP_OLD else f"w.{v}"

    unchanged = " AND ".join(f"t.{v} IS NOT DISTINCT FROM {merged(v)}" for v in values)
    on = " AND ".join(f"t.{k} = w.{k}" for k in keys)
    return f"""
SELECT {', '.join('w.' + k for k in keys)}, {', '.join(f'{merged(v)} AS {v}' for v in values)},
       CASE WHEN t.ts IS NULL THEN 'new' WHEN {unchanged} THEN 'same' ELSE 'changed' END AS status
FROM (SELECT * FROM {ranked} WHERE rn = 1) w LEFT JOIN {table} t ON {on}"""


def write_sql(table: Table, stage: str) -> list[str]:
    """INSERT the new keys, UPDATE the changed ones."""
    keys, values = KEYS[table], VALUES[table]
    cols = ", ".join((*keys, *values))
    on = " AND ".join(f"{table}.{k} = s.{k}" for k in keys)
    return [
        f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage} WHERE status = 'new' "
        f"ORDER BY {', '.join(keys)}",
        f"UPDATE {table} SET {', '.join(f'{v} = s.{v}' for v in values)} FROM {stage} s "
        f"WHERE {on} AND s.status = 'changed'",
    ]
