"""`serve --follow-market DIR`: market files a price recorder drops, imported once each.

The rules are the spool's (sdk/follow.py), for files that are not ours to rename:
- only names `market import` reads are taken (`.csv`, `.csv.gz`, `.parquet`, ...), so a file
  written as `BTCUSDT_1h.csv.open` (or `.tmp`, `.part`) and renamed when complete is never seen
  half-written; a file written in place is taken only once it has not changed for `settle_s`;
- a `NAME.open` file unchanged for `stale_s` (10 minutes, as in the spool) was abandoned by its
  writer: it is adopted, imported as NAME would be (a torn last line lands in quarantine), but
  left in place under its name;
- each file taken is recorded in `spool_files` by the fingerprint of (name, size, mtime), the
  table spool pickup uses, so a restart does not import it again. A file rewritten later (a
  recorder appending the day's bars) has a new fingerprint and is imported again, which the
  importer makes harmless: rows already stored with the same values count `unchanged`;
- the files are left where they are (the recorder owns them) and imported in name order, one
  transaction each, through `market import`'s importer: bad rows are quarantined with their
  reason. A file the importer cannot read at all (unknown columns, no symbol, not Parquet) is
  quarantined as a whole, line 0 with the error, and recorded, so it is not retried until it
  changes.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import duckdb

from alphatrace.errors import InputError
from alphatrace.market.importer import MarketImportReport, import_files, import_planned, plan
from alphatrace.market.readers import MARKET_SUFFIXES
from alphatrace.sdk.follow import DEFAULT_STALE_S, fingerprint
from alphatrace.store import Store
from alphatrace.store.ingest import insert_quarantine

log = logging.getLogger("alphatrace.server")
DEFAULT_SETTLE_S = 1.0
OPEN = ".open"  # a file still being written: NAME.open, renamed to NAME when complete


@dataclass
class MarketFollowReport:
    files: int = 0  # files imported in this pass
    failed: int = 0  # files the importer refused (quarantined whole)
    adopted: int = 0  # abandoned NAME.open files imported
    accepted: int = 0  # new + updated bars and funding rows
    unchanged: int = 0
    quarantined: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    path: Path
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.path.name, self.size, self.mtime_ns)

    @property
    def adopted(self) -> bool:
        return self.path.name.lower().endswith(OPEN)


def quiet_for(p: Path, now_ns: int) -> tuple[float, int, int] | None:
    """(seconds since the file last changed, size, mtime_ns); None if it is gone."""
    try:
        st = p.stat()
    except FileNotFoundError:  # renamed or removed meanwhile
        return None
    return (now_ns - st.st_mtime_ns) / 1e9, st.st_size, st.st_mtime_ns


def candidates(dirs: Iterable[Path], now_ns: int, settle_s: float,
               stale_s: float = DEFAULT_STALE_S) -> list[Candidate]:
    """Market files under `dirs` unchanged for `settle_s`, and abandoned `.open` ones
    unchanged for `stale_s`, in name order (then path)."""
    out = []
    for d in dirs:
        for p in d.rglob("*"):
            low = p.name.lower()
            if low.endswith(MARKET_SUFFIXES):
                wait = settle_s
            elif low.endswith(OPEN) and low[: -len(OPEN)].endswith(MARKET_SUFFIXES):
                wait = stale_s
            else:
                continue
            q = quiet_for(p, now_ns)
            if q is not None and p.is_file() and q[0] >= wait:
                out.append(Candidate(p, q[1], q[2]))
    return sorted(out, key=lambda c: (c.path.name, str(c.path)))


def import_candidate(store: Store, c: Candidate) -> MarketImportReport:
    """`market import` of the file; an adopted NAME.open is read through a link named NAME
    (the importer knows a file's type by its name) and recorded under its own path."""
    if not c.adopted:
        return import_files(store, [c.path])
    with tempfile.TemporaryDirectory(prefix="alphatrace-adopt-") as tmp:
        link = Path(tmp) / c.path.name[: -len(OPEN)]
        os.symlink(c.path.resolve(), link)
        try:
            items = plan(store.con, [str(link)], None)
        except InputError as e:
            raise InputError(str(e).replace(str(link), str(c.path))) from None
        return import_planned(store, [replace(it, source=str(c.path)) for it in items])


def _record(store: Store, c: Candidate, accepted: int, unchanged: int, bad: int) -> None:
    store.con.execute(
        "INSERT OR IGNORE INTO spool_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
        "current_timestamp::TIMESTAMP)",
        [c.fingerprint, c.path.name, str(c.path.parent), c.size, c.mtime_ns, accepted, unchanged,
         bad],
    )


def pickup_market(store: Store, dirs: Iterable[Path], settle_s: float = DEFAULT_SETTLE_S,
                  now_ns: int | None = None, stale_s: float = DEFAULT_STALE_S
                  ) -> MarketFollowReport:
    """One pass: import every settled (or abandoned) market file not imported before."""
    found = candidates(list(dirs), time.time_ns() if now_ns is None else now_ns, settle_s,
                       stale_s)
    report = MarketFollowReport()
    if not found:
        return report
    seen = {str(r[0]) for r in store.con.execute(
        "SELECT fingerprint FROM spool_files WHERE fingerprint IN (SELECT unnest(?))",
        [[c.fingerprint for c in found]]).fetchall()}
    for c in found:
        if c.fingerprint in seen:
            continue
        try:
            r = import_candidate(store, c)
        except (InputError, duckdb.Error) as e:  # the file's content: retrying cannot help
            log.warning("market file not imported: %s", e)
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            reason = first.removeprefix(f"{c.path}: ")  # the path is the row's own column
            with store.transaction() as con:
                insert_quarantine(con, [(None, str(c.path), 0, None, None, reason, "")])
            _record(store, c, 0, 0, 0)
            report.failed += 1
            continue
        accepted = r.bars + r.funding + r.updated
        _record(store, c, accepted, r.unchanged, r.quarantined)
        report.files += 1
        report.adopted += c.adopted
        report.accepted += accepted
        report.unchanged += r.unchanged
        report.quarantined += r.quarantined
    return report
