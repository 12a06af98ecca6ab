"""The market file formats of DESIGN.md §3: recognised from their columns, normalised in SQL.

Every format ends in one of two row shapes, so everything after this module (dedupe, interval
inference, merge into the store) is written once:
- bars: symbol, ts, open, high, low, close, volume (ticks: open=high=low=close=price, and the
  importer gives them interval_s = 0);
- funding: symbol, ts (rounded to the nearest hour: raw Binance settlement times carry a few
  ms of jitter), funding_rate, mark_price.

Validation is part of the same query: each row gets the first failing field and a reason, so a
bad row is reported with its line while the good rows of the file are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from alphatrace.errors import InputError
from alphatrace.market.names import COLUMN_NAMES, norm_column
from alphatrace.market.sqlexpr import lit, number_sql, quote_ident, text_sql, ts_sql

Kind = Literal["bars", "ticks", "funding"]
SEP = "\x1f"  # joins field and reason inside one error string
LINE = "__line"  # the source row's line (CSV) or row number (Parquet), 1-based
RAW = "__raw"  # the source row as text, for quarantine

REQUIRED: dict[Kind, tuple[str, ...]] = {
    "bars": ("ts", "open", "high", "low", "close"),
    "ticks": ("ts", "price"),
    "funding": ("ts", "funding_rate"),
}
OPTIONAL: dict[Kind, tuple[str, ...]] = {
    "bars": ("symbol", "volume"),
    "ticks": ("symbol", "volume"),
    "funding": ("symbol", "mark_price"),
}
SHAPES = (
    "bars (symbol, ts, open, high, low, close[, volume]), ticks (symbol, ts, price), "
    "funding (symbol, ts, funding_rate[, mark_price]), raw Binance klines (openTime, open, ...) "
    "or raw Binance funding (fundingTime, fundingIntervalHours, fundingRate)"
)


@dataclass(frozen=True)
class Format:
    """A recognised file layout: what its rows become and which source column is which."""

    kind: Kind
    name: str  # bars | ticks | funding | binance_klines | binance_funding
    columns: Mapping[str, str]  # canonical name -> source column name

    @property
    def table_kind(self) -> Literal["bars", "funding"]:
        """The store table (and quarantine kind) its rows go to."""
        return "funding" if self.kind == "funding" else "bars"


def _find(names: Sequence[str], canonical: str) -> str | None:
    by_norm: dict[str, str] = {}
    for n in names:
        by_norm.setdefault(norm_column(n), n)
    for spelling in COLUMN_NAMES[canonical]:
        if spelling in by_norm:
            return by_norm[spelling]
    return None


def detect_format(names: Sequence[str], where: str = "<file>") -> Format:
    """The format of a source with these column names; InputError naming what is missing.

    Funding wins when a funding-rate column is present, bars when `open` is, ticks when only a
    `price` is; the name says whether it is a raw Binance layout (for provenance only).
    """
    found = {c: n for c in COLUMN_NAMES if (n := _find(names, c)) is not None}
    normed = {norm_column(n) for n in names}
    if "funding_rate" in found and "open" in found:
        raise InputError(f"{where}: has both bar and funding columns; split it into two files")
    kind: Kind
    if "funding_rate" in found:
        kind = "funding"
        name = "binance_funding" if normed & {"fundingtime", "calctime"} else "funding"
    elif "open" in found:
        kind = "bars"
        name = "binance_klines" if "opentime" in normed else "bars"
    elif "price" in found:
        kind = "ticks"
        name = "ticks"
    else:
        raise InputError(
            f"{where}: cannot tell the format from its columns ({', '.join(names) or 'none'}); "
            f"expected {SHAPES}"
        )
    missing = [c for c in REQUIRED[kind] if c not in found]
    if missing:
        raise InputError(
            f"{where}: line 1: missing required column {missing[0]!r} for {kind} "
            f"(need {', '.join(('symbol', *REQUIRED[kind]))})"
        )
    keep = (*REQUIRED[kind], *OPTIONAL[kind])
    return Format(kind, name, {c: found[c] for c in keep if c in found})


def _checks(
    fld: str, text: str, value: str, *, required: bool, rule: str, what: str
) -> list[tuple[str, str]]:
    """(failure condition, reason SQL) for one field, in order."""
    got = f"' (got ' || {text} || ')'"
    out: list[tuple[str, str]] = []
    if required:
        out.append((f"{text} IS NULL OR trim({text}) = ''", "'missing value'"))
    present = f"{text} IS NOT NULL AND trim({text}) <> ''"
    if what == "ts":
        out.append(
            (f"{present} AND {value} IS NULL",
             f"'cannot parse timestamp ' || {text} || "
             "' (use ISO 8601 or epoch seconds/milliseconds)'")
        )
    else:
        out.append((f"{present} AND {value} IS NULL", f"'not a number' || {got}"))
        out.append((f"{present} AND NOT isfinite({value})", f"'must be finite' || {got}"))
        if rule == "positive":
            out.append((f"{present} AND {value} <= 0", f"'must be > 0' || {got}"))
        elif rule == "nonneg":
            out.append((f"{present} AND {value} < 0", f"'must be >= 0' || {got}"))
    return [(c, f"{lit(fld + SEP)} || {r}") for c, r in out]


def normalize_sql(
    fmt: Format, types: Mapping[str, str], source: str, default_symbol: str | None
) -> str:
    """One SELECT over `source` (columns: LINE, RAW, and the source columns) giving the
    normalised row plus `err` ('field<SEP>reason' of its first problem, NULL when valid).

    Columns: line, raw, symbol, ts, then open/high/low/close/volume (bars and ticks) or
    funding_rate/mark_price (funding), then err. Field names in reasons are the file's own
    column names, so the user can find them.
    """
    cols = dict(fmt.columns)
    fields: list[tuple[str, str, str, bool, str]] = []  # (canonical, text, value, required, rule)

    def add(canonical: str, rule: str, required: bool) -> None:
        src = cols.get(canonical)
        if src is None:
            return
        col = quote_ident(src)
        t = types[src]
        if canonical == "ts":
            value = ts_sql(col, t)
            if value is None:
                raise InputError(f"column {src!r} has type {t}, which cannot hold a timestamp")
        else:
            value = number_sql(col, t)
            if value is None:
                raise InputError(f"column {src!r} has type {t}, which cannot hold a number")
        fields.append((canonical, text_sql(col, t), value, required, rule))

    if "symbol" in cols:
        sym_text = text_sql(quote_ident(cols["symbol"]), types[cols["symbol"]])
        symbol = f"upper(trim({sym_text}))"
        sym_check = [(f"{sym_text} IS NULL OR trim({sym_text}) = ''",
                      f"{lit(cols['symbol'] + SEP)} || 'missing value'")]
    elif default_symbol:
        symbol, sym_check = lit(default_symbol.strip().upper()), []
    else:
        raise InputError("no symbol column; pass --symbol or put the symbol in the file name")

    add("ts", "any", True)
    if fmt.kind == "bars":
        for c in ("open", "high", "low", "close"):
            add(c, "positive", True)
    elif fmt.kind == "ticks":
        add("price", "positive", True)
    else:
        add("funding_rate", "any", True)
        add("mark_price", "positive", False)
    add("volume", "nonneg", False)

    checks = list(sym_check)
    for canonical, text, value, required, rule in fields:
        what = "ts" if canonical == "ts" else "number"
        checks += _checks(cols[canonical], text, value, required=required, rule=rule, what=what)
    vals = {canonical: value for canonical, _, value, _, _ in fields}
    texts = {canonical: text for canonical, text, _, _, _ in fields}
    if fmt.kind == "bars":
        checks.append(
            (f"{vals['high']} < {vals['low']}",
             f"{lit(cols['high'] + SEP)} || 'high (' || {texts['high']} || ') is below low (' "
             f"|| {texts['low']} || ')'")
        )
    err = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in checks) + " END"

    if fmt.kind == "funding":
        ts = f"time_bucket(INTERVAL 1 HOUR, {vals['ts']} + INTERVAL 30 MINUTE)"
        body = (f"{ts} AS ts, {vals['funding_rate']} AS funding_rate, "
                f"{vals.get('mark_price', 'CAST(NULL AS DOUBLE)')} AS mark_price")
    else:
        if fmt.kind == "ticks":
            p = vals["price"]
            ohlc = [p, p, p, p]
        else:
            ohlc = [vals[c] for c in ("open", "high", "low", "close")]
        body = (f"{vals['ts']} AS ts, {ohlc[0]} AS open, {ohlc[1]} AS high, {ohlc[2]} AS low, "
                f"{ohlc[3]} AS close, {vals.get('volume', 'CAST(NULL AS DOUBLE)')} AS volume")
    return (f"SELECT {LINE} AS line, {RAW} AS raw, {symbol} AS symbol, {body}, {err} AS err "
            f"FROM {source}")


def interval_sql(valid: str) -> str:
    """(symbol, interval_s, spacings) per symbol: the median spacing of its distinct bar opens.

    quantile_disc picks an observed spacing, so a few gaps or a missing bar do not move it;
    interval_s is NULL for a symbol with a single bar (the caller falls back to the file name).
    """
    return f"""
SELECT symbol, CAST(quantile_disc(d, 0.5) AS INTEGER) AS interval_s, count(d) AS spacings
FROM (SELECT symbol, epoch(ts - lag(ts) OVER (PARTITION BY symbol ORDER BY ts)) AS d
      FROM (SELECT DISTINCT symbol, ts FROM {valid}))
GROUP BY symbol
"""
