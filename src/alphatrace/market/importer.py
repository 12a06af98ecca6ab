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
from alphatrace.market import merge
from alphatrace.market.formats import interval_sql, normalize_sql
from alphatrace.market.names import interval_from_filename, symbol_from_filename
from alphatrace.market.readers import Layout, expand_paths, inspect, load, raw_sql
from alphatrace.store import Store
from alphatrace.store.connection import one

Progress = Callable[[int], None]  # called with bytes consumed since the last call
PROBLEMS_KEPT = 50  # bad rows listed on the report itself; all of them are in quarantine

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
        """docs/architecture.md §CLI `{"bars","funding","symbols"}` plus the other counts."""
        return {
            "bars": self.bars, "funding": self.funding, "symbols": self.symbols,
            "updated": self.updated, "unchanged": self.unchanged,
            "quarantined": self.quarantined, "files": self.files,
        }


@dataclass(frozen=True)
class Planned:
    layout: Layout
    symbol: str | None  # for rows of a file without a symbol column
    # What quarantine and market_files call the file (default: its path). The collector's
    # market routes read uploads from a temporary file and name them after the request.
    source: str | None = None

    @property
    def name(self) -> str:
        return self.source or self.layout.path


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
    with store.transaction() as con:
        file_id = int(one(con, "SELECT nextval('file_id_seq')")[0])
        loaded = load(con, lay, "_mkt_src", "_mkt_rej")
        con.execute("CREATE OR REPLACE TEMP TABLE _mkt_norm AS "
                    + normalize_sql(lay.fmt, lay.types, "_mkt_src", item.symbol))
        intervals = None
        if table == "bars":
            _intervals(con, lay.path, lay.fmt.kind)
            intervals = "_mkt_iv"
        con.execute("CREATE OR REPLACE TEMP TABLE _mkt_ranked AS "
                    + merge.ranked_sql(table, "_mkt_norm", intervals))
        con.execute("CREATE OR REPLACE TEMP TABLE _mkt_bad AS " + merge.bad_rows_sql(
            table, "_mkt_rej", "_mkt_norm", "_mkt_ranked", raw_sql(lay, "_mkt_src")))
        repeats = int(one(con, merge.repeats_sql(table, "_mkt_ranked"))[0])
        con.execute("CREATE OR REPLACE TEMP TABLE _mkt_stage AS "
                    + merge.stage_sql(table, "_mkt_ranked"))
        for sql in merge.write_sql(table, "_mkt_stage"):
            con.execute(sql)
        new, changed, same = (int(x) for x in one(
            con,
            "SELECT count(*) FILTER (WHERE status = 'new'), "
            "count(*) FILTER (WHERE status = 'changed'), "
            "count(*) FILTER (WHERE status = 'same') FROM _mkt_stage",
        ))
        # A bad row already recorded for this file (same line, same text) is not recorded twice.
        con.execute(
            """INSERT INTO quarantine (file_id, path, line, kind, field, reason, raw)
               SELECT ?, ?, b.line, ?, b.field, b.reason, b.raw FROM _mkt_bad b
               WHERE NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.path = ? AND q.line = b.line
                                 AND q.raw IS NOT DISTINCT FROM b.raw)
               ORDER BY b.line""",
            [file_id, item.name, table, item.name],
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
            [file_id, item.name, lay.fmt.name, loaded.rows + loaded.rejected, new, changed,
             same + repeats, nbad, loaded.lines_exact, ",".join(symbols)],
        )
        for t in _TEMP:
            con.execute(f"DROP TABLE IF EXISTS {t}")
    return MarketImportReport(
        bars=new if table == "bars" else 0,
        funding=new if table == "funding" else 0,
        symbols=symbols, updated=changed, unchanged=same + repeats, quarantined=nbad, files=1,
        problems=[{"path": item.name, "line": ln, "field": f, "reason": r} for ln, f, r in bad],
    )


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
