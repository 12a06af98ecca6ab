"""What a market file's name and column headers say: symbol, bar interval, canonical columns.

Raw exchange dumps often carry the symbol and interval only in the file name
(`binance_raw_BTCUSDT_1h_klines_2025_2026.csv`, `BTCUSDT-1h-2024-01.csv`), and the same column
comes as `openTime`, `open_time` or `ts` depending on who wrote the file, so both are read
here, once, by pure functions that tests can drive with generated names.
"""

from __future__ import annotations

import re
from pathlib import Path

# Quote assets that end a symbol: lets `btcusdt_1h.csv` (lower case) name its symbol too.
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "USD", "BTC", "ETH", "BNB", "EUR", "TRY")
# Upper-case words that appear in market file names but are not symbols.
STOPWORDS = frozenset(
    {"BINANCE", "BYBIT", "OKX", "PERP", "SPOT", "FUTURES", "KLINES", "KLINE", "FUNDING",
     "FUNDINGRATE", "TRADES", "TICKS", "BARS", "RAW", "MARK", "INDEX", "PREMIUM", "OHLCV", "UM",
     "CM", "DATA", "MARKET"}
)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_INTERVAL_TOKEN = re.compile(r"^(\d+)([smhdw]|[HDW])$")
_SYMBOL_TOKEN = re.compile(r"^[A-Z0-9]{5,20}$")
_QUOTED_TOKEN = re.compile(r"^[A-Za-z0-9]{2,16}(" + "|".join(QUOTES) + r")$", re.IGNORECASE)
_SPLIT = re.compile(r"[_\-.\s]+")


def _stem_tokens(path: str | Path) -> list[str]:
    name = Path(path).name
    for suffix in (".gz", ".zst", ".csv", ".tsv", ".txt", ".parquet", ".pq"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return [t for t in _SPLIT.split(name) if t]


def symbol_from_filename(path: str | Path) -> str | None:
    """The one symbol-looking token of the file name, upper-cased; None if none or several.

    A token counts when it is upper case letters/digits (5+ chars, not a stopword and not
    only digits) or ends with a known quote asset (`btcusdt`).
    """
    found: list[str] = []
    for tok in _stem_tokens(path):
        up = tok.upper()
        if up in STOPWORDS or up.isdigit() or _INTERVAL_TOKEN.match(tok):
            continue
        is_symbol = _SYMBOL_TOKEN.match(tok) or (_QUOTED_TOKEN.match(tok) and up not in QUOTES)
        if is_symbol and up not in found:
            found.append(up)
    return found[0] if len(found) == 1 else None


def interval_from_filename(path: str | Path) -> int | None:
    """Seconds of the one interval token (`1h`, `15m`, `1d`) in the file name, else None.

    `1M` (Binance's month) is not an interval here: months have no fixed length.
    """
    found = set()
    for tok in _stem_tokens(path):
        m = _INTERVAL_TOKEN.match(tok)
        if m:
            found.add(int(m.group(1)) * _UNIT_S[m.group(2).lower()])
    return found.pop() if len(found) == 1 else None


def interval_label(seconds: int | None) -> str | None:
    """900 -> "15m", 3600 -> "1h", 0 -> "tick": the largest unit that divides it."""
    if seconds is None:
        return None
    if seconds == 0:
        return "tick"
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def norm_column(name: str) -> str:
    """`openTime`, `open_time`, ` Open Time ` -> `opentime`: one key for every spelling."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


# Canonical column -> accepted spellings (after norm_column), in order of preference.
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "symbol": ("symbol",),
    "ts": ("ts", "timestamp", "opentime", "fundingtime", "calctime", "time", "datetime", "date"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume",),
    "price": ("price",),
    "funding_rate": ("fundingrate", "lastfundingrate"),
    "mark_price": ("markprice",),
}
KNOWN_COLUMNS = frozenset(n for names in COLUMN_NAMES.values() for n in names)

# Raw Binance files without a header line get these names, by position.
BINANCE_KLINE_COLUMNS = (
    "openTime", "open", "high", "low", "close", "volume", "closeTime", "quoteVolume", "trades",
    "takerBuyBase", "takerBuyQuote", "ignore",
)
BINANCE_FUNDING_COLUMNS = ("fundingTime", "fundingIntervalHours", "fundingRate")
