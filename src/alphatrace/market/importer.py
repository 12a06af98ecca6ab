"""`alphatrace market import`: market files into `bars` and `funding`, one transaction a file.

Every file is inspected before anything is written, so an unusable file (unknown format,
missing column, no symbol) stops the batch with a clear error and nothing half-imported.
Within a file, bad rows go to quarantine (file, line, field, reason) and the good rows are
kept. Re-importing is idempotent: a key already stored with the same values changes nothing
and is counted `unchanged`; with different values it is replaced and counted `updated`
(empty volume / mark price never erase a stored one). `bars` and `funding` count new keys only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from alphatrace.errors import InputError
from alphatrace.market.formats import SEP, interval_sql, normalize_sql
from alphatrace.market.names import interval_from_filename, symbol_from_filename
from alphatrace.market.readers import Layout, expand_paths, inspect, load, raw_sql
from alphatrace.store import Store
from alphatrace.store.connection import one

Progress = Callable[[int], None]  # called with bytes consumed since the last call
PROBLEMS_KEPT = 50  # bad rows listed on the report itself; all of them are in quarantine

_VALUES = {
    "bars": ("open", "high", "low", "close", "volume"),
    "funding": ("funding_rate", "mark_price"),
}
_KEYS = {"bars": ("symbol", "interval_s", "ts"), "funding": ("symbol", "ts")}
_KEEP_OLD = {"volume", "mark_price"}  # an empty new value keeps the stored one
_TEMP = ("_mkt_src", "_mkt_rej", "_mkt_norm", "_mkt_iv", "_mkt_ranked", "_mkt_bad", "_mkt_stage")


@dataclass
class MarketImportReport:
    bars: int = 0
    funding: int = 0
    symbols: list[str] = field(default_factory=list)
    updated: int = 0
    unchanged: int = 0
    quarantined: int = 0
    files: int = 0
    problems: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: MarketImportReport) -> None:
        self.bars += other.bars
        self.funding += other.funding
        self.symbols = sorted(set(self.symbols) | set(other.symbols))
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.quarantined += other.quarantined
        self.files += other.files
        room = PROBLEMS_KEPT - len(self.problems)
        self.problems += other.problems[: max(room, 0)]

    def to_dict(self) -> dict[str, Any]:
        """DESIGN.md §7 `{"bars","funding","symbols"}` plus the other counts."""
        return {
            "bars": self.bars, "funding": self.funding, "symbols": self.symbols,
            "updated": self.updated, "unchanged": self.unchanged,
            "quarantined": self.quarantined, "files": self.files,
        }


@dataclass(frozen=True)
class Planned:
    layout: Layout
    symbol: str | None  # for rows of a file without a symbol column


def clean_symbol(symbol: str | None) -> str | None:
    if symbol is None:
        return None
    s = symbol.strip().upper()
    if not s or any(c.isspace() for c in s):
        raise InputError(f"--symbol {symbol!r} is not a market symbol (e.g. BTCUSDT)")
    return s


def plan(con: duckdb.DuckDBPyConnection, paths: Iterable[str], symbol: str | None) -> list[Planned]:
    """Inspect every file first: all-or-nothing on anything that would stop an import."""
    sym = clean_symbol(symbol)
    files = expand_paths(list(paths))
    if not files:
        raise InputError("no market files found in " + ", ".join(paths))
    out = []
    for p in files:
        layout = inspect(con, p)
        default = sym or symbol_from_filename(p)
        if "symbol" not in layout.fmt.columns and default is None:
            raise InputError(
                f"{p}: no symbol column and no symbol in the file name; pass --symbol"
            )
        try:
            normalize_sql(layout.fmt, layout.types, "_x", default)
        except InputError as e:
            raise InputError(f"{p}: {e}") from None
        out.append(Planned(layout, default))
    return out


def _intervals(con: duckdb.DuckDBPyConnection, path: str, kind: str) -> None:
    """_mkt_iv(symbol, interval_s) for every symbol with valid rows in the file."""
    if kind == "ticks":
        con.execute(
            "CREATE TEMP TABLE _mkt_iv AS SELECT DISTINCT symbol, 0 AS interval_s "
            "FROM _mkt_norm WHERE err IS NULL"
        )
        return
    con.execute(
        f"CREATE TEMP TABLE _mkt_iv AS {interval_sql('(SELECT * FROM _mkt_norm WHERE err IS NULL)')}"
    )
    lonely = [r[0] for r in con.execute(
        "SELECT symbol FROM _mkt_iv WHERE interval_s IS NULL ORDER BY symbol").fetchall()]
    for sym in lonely:
        guess = interval_from_filename(path)
        if guess is None:
            known = con.execute(
                "SELECT DISTINCT interval_s FROM bars WHERE symbol = ? AND interval_s > 0", [sym]
            ).fetchall()
            guess = int(known[0][0]) if len(known) == 1 else None
        if guess is None:
            raise InputError(
                f"{path}: cannot infer the bar interval of {sym} from a single bar; "
                f"put it in the file name (e.g. {sym}_1h.csv)"
            )
        con.execute("UPDATE _mkt_iv SET interval_s = ? WHERE symbol = ?", [guess, sym])


def _import_one(store: Store, item: Planned) -> MarketImportReport:
    lay = item.layout
    table = lay.fmt.table_kind
    keys, values = _KEYS[table], _VALUES[table]
    rep = MarketImportReport(files=1)
    with store.transaction() as con:
        file_id = int(one(con, "SELECT nextval('file_id_seq')")[0])
        loaded = load(con, lay, "_mkt_src", "_mkt_rej")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _mkt_norm AS "
            + normalize_sql(lay.fmt, lay.types, "_mkt_src", item.symbol)
        )
        if table == "bars":
            _intervals(con, lay.path, lay.fmt.kind)
            iv_col = "i.interval_s"
            iv_join = "JOIN _mkt_iv i USING (symbol)"
        else:
            iv_col, iv_join = "NULL AS interval_s", ""
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _mkt_ranked AS
                SELECT n.line, n.symbol, {iv_col}, n.ts, {', '.join('n.' + v for v in values)},
                       row_number() OVER (PARTITION BY n.symbol, n.ts ORDER BY n.line DESC) AS rn
                FROM _mkt_norm n {iv_join} WHERE n.err IS NULL"""
        )
        same_vals = " AND ".join(f"l.{v} IS NOT DISTINCT FROM w.{v}" for v in values)
        key_join = " AND ".join(f"w.{k} = l.{k}" for k in ("symbol", "ts"))
        # Bad rows: unsplittable CSV lines, invalid values, and in-file conflicts (the later
        # line wins). Identical repeats are not bad: they count as unchanged.
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _mkt_bad AS
                SELECT line, field, reason, raw FROM _mkt_rej
                UNION ALL
                SELECT b.line, b.field, b.reason, r.raw FROM (
                    SELECT line, split_part(err, '{SEP}', 1) AS field,
                           split_part(err, '{SEP}', 2) AS reason
                    FROM _mkt_norm WHERE err IS NOT NULL
                    UNION ALL
                    SELECT l.line, 'ts', 'same symbol and ts as line ' || w.line ||
                           ' with different values (the later line is kept)'
                    FROM _mkt_ranked l JOIN _mkt_ranked w ON {key_join} AND w.rn = 1
                    WHERE l.rn > 1 AND NOT ({same_vals})
                ) b LEFT JOIN ({raw_sql(lay, '_mkt_src')}) r USING (line)"""
        )
        repeats = int(one(
            con,
            f"""SELECT count(*) FROM _mkt_ranked l JOIN _mkt_ranked w ON {key_join} AND w.rn = 1
                WHERE l.rn > 1 AND {same_vals}""",
        )[0])
        merged = ", ".join(
            f"coalesce(w.{v}, t.{v}) AS {v}" if v in _KEEP_OLD else f"w.{v}" for v in values
        )
        unchanged = " AND ".join(
            f"t.{v} IS NOT DISTINCT FROM {'coalesce(w.' + v + ', t.' + v + ')' if v in _KEEP_OLD else 'w.' + v}"
            for v in values
        )
        on = " AND ".join(f"t.{k} = w.{k}" for k in keys)
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE _mkt_stage AS
                SELECT {', '.join('w.' + k for k in keys)}, {merged},
                       CASE WHEN t.ts IS NULL THEN 'new' WHEN {unchanged} THEN 'same'
                            ELSE 'changed' END AS status
                FROM (SELECT * FROM _mkt_ranked WHERE rn = 1) w LEFT JOIN {table} t ON {on}"""
        )
        cols = ", ".join((*keys, *values))
        con.execute(
            f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _mkt_stage WHERE status = 'new' "
            f"ORDER BY {', '.join(keys)}"
        )
        on_s = " AND ".join(f"{table}.{k} = s.{k}" for k in keys)
        con.execute(
            f"UPDATE {table} SET {', '.join(f'{v} = s.{v}' for v in values)} FROM _mkt_stage s "
            f"WHERE {on_s} AND s.status = 'changed'"
        )
        new, changed, same = one(
            con,
            "SELECT count(*) FILTER (WHERE status = 'new'), count(*) FILTER (WHERE status = 'changed'), "
            "count(*) FILTER (WHERE status = 'same') FROM _mkt_stage",
        )
        con.execute(
            """INSERT INTO quarantine (file_id, path, line, kind, field, reason, raw)
               SELECT ?, ?, b.line, ?, b.field, b.reason, b.raw FROM _mkt_bad b
               WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.path = ? AND q.line = b.line
                                 AND q.raw IS NOT DISTINCT FROM b.raw)
               ORDER BY b.line""",
            [file_id, lay.path, table, lay.path],
        )
        bad = con.execute(
            f"SELECT line, field, reason FROM _mkt_bad ORDER BY line LIMIT {PROBLEMS_KEPT}"
        ).fetchall()
        nbad = int(one(con, "SELECT count(*) FROM _mkt_bad")[0])
        symbols = [r[0] for r in con.execute(
            "SELECT DISTINCT symbol FROM _mkt_stage ORDER BY symbol").fetchall()]
        con.execute(
            "INSERT INTO market_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "current_timestamp::TIMESTAMP)",
            [file_id, lay.path, lay.fmt.name, loaded.rows + loaded.rejected, new, changed,
             same + repeats, nbad, loaded.lines_exact, ",".join(symbols)],
        )
        for t in _TEMP:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    setattr(rep, table, int(new))
    rep.updated, rep.unchanged, rep.quarantined = int(changed), int(same) + repeats, nbad
    rep.symbols = symbols
    rep.problems = [
        {"path": lay.path, "line": ln, "field": f, "reason": r} for ln, f, r in bad
    ]
    return rep


def input_size(items: Iterable[Planned]) -> int:
    return sum(Path(i.layout.path).stat().st_size for i in items)


def import_planned(
    store: Store, items: list[Planned], progress: Progress | None = None
) -> MarketImportReport:
    total = MarketImportReport()
    for item in items:
        total.add(_import_one(store, item))
        if progress:
            progress(Path(item.layout.path).stat().st_size)
    return total


def import_files(
    store: Store,
    paths: Iterable[str | Path],
    symbol: str | None = None,
    progress: Progress | None = None,
) -> MarketImportReport:
    """Import market files or folders; see the module docstring for the counting rules."""
    items = plan(store.con, [str(p) for p in paths], symbol)
    return import_planned(store, items, progress)
