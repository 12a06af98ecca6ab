"""What a file is, from its first bytes: JSON Lines (plain or gzip) or something ingest refuses.

`alphatrace ingest file.parquet` used to quarantine thousands of "not valid UTF-8" lines and
exit 0. Ingest reads JSON Lines only (a .gz of JSON Lines too, so gzip is looked *inside*); a
Parquet, CSV, Arrow, DuckDB, zip, zstd, bz2 or xz file, or any binary, is refused before a line
is read, and bars or funding are pointed at `alphatrace market import`. Pure functions over
bytes and column names; the caller reads the bytes.
"""

from __future__ import annotations

import csv
import io
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from alphatrace.errors import InputError

HEAD_BYTES = 64 * 1024  # enough for a gzip header and the first lines inside it

# (magic, offset, name) of the binary formats a user plausibly hands to ingest by mistake.
MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"PAR1", 0, "Parquet"),
    (b"ARROW1", 0, "Arrow IPC"),
    (b"DUCK", 8, "DuckDB database"),
    (b"SQLite format 3\x00", 0, "SQLite database"),
    (b"PK\x03\x04", 0, "zip (or xlsx)"),
    (b"\x28\xb5\x2f\xfd", 0, "zstd-compressed"),
    (b"BZh", 0, "bzip2-compressed"),
    (b"\xfd7zXZ\x00", 0, "xz-compressed"),
    (b"Obj\x01", 0, "Avro"),
    (b"ORC", 0, "ORC"),
)
GZIP = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"

# Column names (case-insensitive) that make a table market data rather than events.
BAR_COLUMNS = frozenset({"open", "high", "low", "close"})
MARKET_HINTS = frozenset({"price", "funding_rate", "fundingrate", "fundingtime", "mark_price",
                          "open_time", "close_time"})


@dataclass(frozen=True)
class Sniffed:
    """`kind`: "jsonl" (ingest it), "empty", "csv", "binary" or a MAGIC name; `gzip` when the
    bytes were gzip-compressed (`kind` is then what is inside); `columns`: a CSV's header (or
    None) for the market-data check."""

    kind: str
    gzip: bool = False
    columns: tuple[str, ...] | None = None

    @property
    def ingestible(self) -> bool:
        return self.kind in ("jsonl", "empty")


def gunzip_head(head: bytes) -> bytes:
    """As much of the decompressed start of a gzip stream as `head` holds (b"" when the
    compressed bytes are damaged: the ingest itself then reports the file as unreadable)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        return d.decompress(head, HEAD_BYTES)
    except zlib.error:
        return b""


def sniff(head: bytes) -> Sniffed:
    """What the file starting with `head` is."""
    if head.startswith(GZIP):
        inner = sniff(gunzip_head(head))
        return Sniffed(inner.kind, True, inner.columns)
    text = head.removeprefix(BOM).lstrip(b" \t\r\n")
    if not text:
        return Sniffed("empty")
    if text[:1] == b"{":
        return Sniffed("jsonl")
    for magic, offset, name in MAGIC:
        if head[offset:offset + len(magic)] == magic:
            return Sniffed(name)
    if b"\x00" in head or not _mostly_text(head):
        return Sniffed("binary")
    header = _csv_header(text)
    if header is not None:
        return Sniffed("csv", columns=header)
    # Neither an object nor a table: the ingest quarantines the lines with their reason.
    return Sniffed("jsonl")


def _mostly_text(head: bytes) -> bool:
    """UTF-8 (a cut multi-byte character at the end is fine) without control characters."""
    try:
        s = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 3:
            return False
        s = head[:e.start].decode("utf-8")
    bad = sum(1 for c in s if ord(c) < 32 and c not in "\t\r\n")
    return bad == 0


def _csv_header(text: bytes) -> tuple[str, ...] | None:
    """The first row of a comma, semicolon or tab separated table with at least two lines of
    the same width (at least 3 fields), else None."""
    lines = text.decode("utf-8", "replace").splitlines()[:5]
    if len(lines) < 2:
        return None
    for sep in (",", "\t", ";"):
        rows = list(csv.reader(io.StringIO("\n".join(lines[:-1] if len(lines) > 2 else lines)),
                               delimiter=sep))
        widths = {len(r) for r in rows if r}
        if len(widths) == 1 and min(widths) >= 3:
            return tuple(c.strip() for c in rows[0])
    return None


def looks_like_market(columns: Sequence[str] | None) -> bool:
    """Bars, ticks or funding: OHLC columns, a price or funding column, or a header-less
    table of numbers (a raw Binance kline CSV)."""
    if columns is None:
        return False
    names = {c.strip().lower() for c in columns}
    if names >= BAR_COLUMNS or names & MARKET_HINTS:
        return True
    return all(_number(c) for c in columns)


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def refusal(path: str, found: Sniffed, columns: Sequence[str] | None = None) -> str | None:
    """The one-line reason `path` is not ingested, with what to do instead; None when it is
    JSON Lines. `columns`: the table's column names when the caller could read them (e.g. a
    Parquet schema), else the CSV header sniffed from the bytes."""
    if found.ingestible:
        return None
    what = {"csv": "a CSV table", "binary": "a binary file"}.get(found.kind, f"a {found.kind} file")
    if found.gzip:
        what = f"gzip-compressed {what.removeprefix('a ')}"
    cols = columns if columns is not None else found.columns
    msg = f"{path}: {what}, not JSON Lines (ingest reads one JSON event per line, .gz too)"
    if looks_like_market(cols):
        return msg + ("; it looks like market data: decompress it, then `alphatrace market "
                      "import FILE`" if found.gzip else
                      f"; it looks like market data: `alphatrace market import {path}`")
    if found.kind in ("Parquet", "csv", "Arrow IPC"):
        return msg + "; export the events as JSON Lines (e.g. duckdb: COPY (SELECT * FROM " \
                     f"'{path}') TO 'events.jsonl' (FORMAT json))"
    return msg


def check_files(paths: Iterable[str]) -> None:
    """InputError for the first of `paths` that is not JSON Lines (`-`, stdin, is not
    checked). The I/O edge of this module: reads each file's first bytes, and a Parquet
    file's schema for the market-data hint."""
    for p in paths:
        if p == "-":
            continue
        with open(p, "rb") as fh:
            found = sniff(fh.read(HEAD_BYTES))
        columns = _parquet_columns(Path(p)) if found.kind == "Parquet" and not found.gzip else None
        msg = refusal(p, found, columns)
        if msg:
            raise InputError(msg)


def _parquet_columns(path: Path) -> list[str] | None:
    try:
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    except (OSError, ValueError):
        return None
