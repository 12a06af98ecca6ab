"""Spool pickup: ingest closed spool files exactly once, across restarts.

Only closed `*.jsonl` files are taken (writers rename `.jsonl.open` when done, atomically). Each
ingested file is recorded in `spool_files` by a fingerprint of (name, size, mtime) and then
renamed to `.jsonl.done`. A crash between the ingest commit and the record re-reads the file on
restart, which changes nothing: SDK events carry an event_id and every event is deduplicated by
it. A `.jsonl.open` file whose writer is gone (same host, pid no longer alive) or that has not
changed for `stale_s` is adopted: renamed to `.jsonl` and ingested (a torn last line lands in
quarantine with its reason).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alphatrace.errors import InputError
from alphatrace.sdk.spool import CLOSED_SUFFIX, DONE_SUFFIX, OPEN_SUFFIX, host_tag, parse_name
from alphatrace.store import Store
from alphatrace.store.connection import one
from alphatrace.store.ingest import ingest_paths

DEFAULT_STALE_S = 600.0


@dataclass
class FollowReport:
    files: int = 0
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    skipped: int = 0  # already ingested before (found again after a crash)
    adopted: int = 0  # abandoned .open files taken over

    def add(self, other: FollowReport) -> None:
        for k, v in asdict(other).items():
            setattr(self, k, getattr(self, k) + v)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fingerprint(name: str, size: int, mtime_ns: int) -> str:
    return hashlib.sha256(f"{name}\0{size}\0{mtime_ns}".encode()).hexdigest()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _abandoned(path: Path, now: float, stale_s: float, host: str) -> bool:
    info = parse_name(path.name)
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    if info is not None and info.host == host and info.pid != os.getpid() and not _pid_alive(info.pid):
        return True
    return now - mtime >= stale_s


def adopt_abandoned(dirs: Iterable[Path], stale_s: float = DEFAULT_STALE_S) -> int:
    """Rename `.jsonl.open` files whose writer is gone to `.jsonl`. Returns how many."""
    host = host_tag()
    now = time.time()
    n = 0
    for d in dirs:
        for p in sorted(d.rglob(f"*{OPEN_SUFFIX}")):
            if _abandoned(p, now, stale_s, host):
                try:
                    os.rename(p, p.with_name(p.name[: -len(OPEN_SUFFIX)] + CLOSED_SUFFIX))
                    n += 1
                except OSError:
                    continue
    return n


def closed_files(dirs: Iterable[Path]) -> list[Path]:
    """Closed spool files, in name order (deterministic across runs)."""
    out: list[Path] = []
    for d in dirs:
        out.extend(p for p in d.rglob(f"*{CLOSED_SUFFIX}") if p.is_file())
    return sorted(out, key=lambda p: (p.name, str(p)))


def _mark_done(p: Path) -> None:
    # In a read-only folder the rename fails: the spool_files record alone prevents a re-ingest.
    with contextlib.suppress(OSError):
        os.rename(p, p.with_name(p.name[: -len(CLOSED_SUFFIX)] + DONE_SUFFIX))


def pickup_once(store: Store, dirs: Iterable[str | os.PathLike[str]],
                stale_s: float = DEFAULT_STALE_S) -> FollowReport:
    """One pass: adopt abandoned files, ingest every closed file not ingested before."""
    paths = [Path(d) for d in dirs]
    for d in paths:
        if not d.is_dir():
            raise InputError(f"{d}: not a folder")
    report = FollowReport(adopted=adopt_abandoned(paths, stale_s))
    for p in closed_files(paths):
        try:
            st = p.stat()
        except FileNotFoundError:
            continue
        fp = fingerprint(p.name, st.st_size, st.st_mtime_ns)
        seen = one(store.con, "SELECT count(*) FROM spool_files WHERE fingerprint = ?", [fp])[0]
        if seen:
            report.skipped += 1
            _mark_done(p)
            continue
        r = ingest_paths(store, [str(p)])
        store.con.execute(
            "INSERT INTO spool_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, current_timestamp::TIMESTAMP)",
            [fp, p.name, str(p.parent), st.st_size, st.st_mtime_ns, r.accepted, r.duplicates,
             r.quarantined],
        )
        report.files += 1
        report.accepted += r.accepted
        report.duplicates += r.duplicates
        report.quarantined += r.quarantined
        _mark_done(p)
    return report


def follow(
    store: Store,
    dirs: Iterable[str | os.PathLike[str]],
    once: bool = False,
    poll_s: float = 1.0,
    stop: threading.Event | Callable[[], bool] | None = None,
    stale_s: float = DEFAULT_STALE_S,
    on_pass: Callable[[FollowReport], None] | None = None,
) -> FollowReport:
    """Tail spool folders: a pass every `poll_s` until `stop` (an Event or a callable) says so,
    or after one pass with `once`. Returns the totals."""
    dirs = list(dirs)
    total = FollowReport()

    def stopped() -> bool:
        if stop is None:
            return False
        return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())

    while True:
        r = pickup_once(store, dirs, stale_s)
        total.add(r)
        if on_pass is not None:
            on_pass(r)
        if once or stopped():
            return total
        deadline = time.monotonic() + poll_s
        while time.monotonic() < deadline:
            if stopped():
                return total
            time.sleep(min(0.05, poll_s))
