"""The market file formats of docs/architecture.md §Market: recognised from their columns, normalised in SQL.

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
from alphatrace.events.fields import PRICE, Range
from alphatrace.market.names import COLUMN_NAMES, norm_column
from alphatrace.market.sqlexpr import is_text_type, lit, number_sql, quote_ident, text_sql, ts_sql
from alphatrace.sql import range_checks, ts_range_checks

Kind = Literal["bars", "ticks", "funding"]
SEP = "\x1f"  # joins field and reason inside one error string
LINE = "__line"  # the source row's line (CSV) or row number (Parquet), 1-based

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
# The values each market column may take (timestamps: the event range, TS_MIN to TS_MAX),
# enforced by the same `alphatrace.sql` checks as event fields; docs/market.md lists them.
RANGES: dict[str, Range] = {
    "open": PRICE, "high": PRICE, "low": PRICE, "close": PRICE, "price": PRICE,
    "mark_price": PRICE,
    "volume": Range(0, 1e18),
    "funding_rate": Range(-1, 1),  # ±100 % per settlement
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
    fld: str, col: str, is_text: bool, value: str, *, required: bool, what: str
) -> list[tuple[str, str]]:
    """(failure condition, reason SQL) for one field, in order.

    `col` holds the source value as read; it is only turned into text for the reason, which
    CASE evaluates for failing rows alone. `what` is "ts" or the canonical column name.
    """
    text = col if is_text else f"CAST({col} AS VARCHAR)"
    got = f"' (got ' || {text} || ')'"
    absent = f"({col} IS NULL OR trim({col}) = '')" if is_text else f"({col} IS NULL)"
    out: list[tuple[str, str]] = []
    if required:
        out.append((absent, "'missing value'"))
    present = f"NOT {absent}"
    if what == "ts":
        out.append(
            (f"{present} AND {value} IS NULL",
             f"'cannot parse timestamp ' || {text} || "
             "' (use ISO 8601 or epoch seconds/milliseconds)'")
        )
        out += [(f"{present} AND {c}", r) for c, r in ts_range_checks(value, text)]
    else:
        out.append((f"{present} AND {value} IS NULL", f"'not a number' || {got}"))
        out.append((f"{present} AND NOT isfinite({value})", f"'must be finite' || {got}"))
        out += [(f"{present} AND {c}", r) for c, r in range_checks(value, RANGES[what], text)]
    return [(c, f"{lit(fld + SEP)} || {r}") for c, r in out]


def normalize_sql(
    fmt: Format, types: Mapping[str, str], source: str, default_symbol: str | None
) -> str:
    """One SELECT over `source` (columns: LINE and the source columns) giving the
    normalised row plus `err` ('field<SEP>reason' of its first problem, NULL when valid).

    Columns: line, symbol, ts, then open/high/low/close/volume (bars and ticks) or
    funding_rate/mark_price (funding), then err. Field names in reasons are the file's own
    column names, so the user can find them. Each value is parsed once, in an inner query
    (`s_x` the source value, `v_x` its typed value); the checks only compare those.
    """
    cols = dict(fmt.columns)
    inner = [f"{LINE} AS line"]
    checks: list[tuple[str, str]] = []

    if "symbol" in cols:
        src = cols["symbol"]
        inner.append(f"{text_sql(quote_ident(src), types[src])} AS s_symbol")
        symbol = "upper(trim(s_symbol))"
        checks.append(("s_symbol IS NULL OR trim(s_symbol) = ''",
                       f"{lit(src + SEP)} || 'missing value'"))
    elif default_symbol:
        symbol = lit(default_symbol.strip().upper())
    else:
        raise InputError("no symbol column; pass --symbol or put the symbol in the file name")

    def add(canonical: str, required: bool) -> bool:
        src = cols.get(canonical)
        if src is None:
            return False
        col, t = quote_ident(src), types[src]
        value = ts_sql(col, t) if canonical == "ts" else number_sql(col, t)
        if value is None:
            what = "a timestamp" if canonical == "ts" else "a number"
            raise InputError(f"column {src!r} has type {t}, which cannot hold {what}")
        inner.append(f"{col} AS s_{canonical}")
        inner.append(f"{value} AS v_{canonical}")
        checks.extend(_checks(src, f"s_{canonical}", is_text_type(t), f"v_{canonical}",
                              required=required, what=canonical))
        return True

    add("ts", True)
    if fmt.kind == "bars":
        for c in ("open", "high", "low", "close"):
            add(c, True)
        checks.append(
            ("v_high < v_low",
             f"{lit(cols['high'] + SEP)} || 'high (' || CAST(s_high AS VARCHAR) || "
             "') is below low (' || CAST(s_low AS VARCHAR) || ')'")
        )
    elif fmt.kind == "ticks":
        add("price", True)
    else:
        add("funding_rate", True)
    has_mark = fmt.kind == "funding" and add("mark_price", False)
    has_volume = fmt.kind != "funding" and add("volume", False)
    err = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r in checks) + " END"

    null = "CAST(NULL AS DOUBLE)"
    if fmt.kind == "funding":
        body = ("time_bucket(INTERVAL 1 HOUR, v_ts + INTERVAL 30 MINUTE) AS ts, "
                f"v_funding_rate AS funding_rate, {'v_mark_price' if has_mark else null} AS mark_price")
    else:
        o, h, lo, c = (("v_price",) * 4 if fmt.kind == "ticks"
                       else ("v_open", "v_high", "v_low", "v_close"))
        body = (f"v_ts AS ts, {o} AS open, {h} AS high, {lo} AS low, {c} AS close, "
                f"{'v_volume' if has_volume else null} AS volume")
    return (f"SELECT line, {symbol} AS symbol, {body}, {err} AS err "
            f"FROM (SELECT {', '.join(inner)} FROM {source})")


def interval_sql(valid: str) -> str:
    """(symbol, interval_s) per symbol: the median spacing of its distinct bar opens.

    quantile_disc picks an observed spacing, so a few gaps or a missing bar do not move it;
    interval_s is NULL for a symbol with a single bar (the caller falls back to the file name).
    """
    return f"""
SELECT symbol, CAST(quantile_disc(d, 0.5) AS INTEGER) AS interval_s
FROM (SELECT symbol, epoch(ts - lag(ts) OVER (PARTITION BY symbol ORDER BY ts)) AS d
      FROM (SELECT DISTINCT symbol, ts FROM {valid}))
GROUP BY symbol
"""
