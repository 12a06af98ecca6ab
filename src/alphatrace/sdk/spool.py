"""Spool files: JSON Lines written by agent processes, picked up by `alphatrace ingest --follow`.

Why it is safe for many processes: each process writes only its own file,
`<host>-<pid>-<start_ms>-<n>.jsonl.open`, and renames it to `.jsonl` when it closes or rotates
it. A rename within one folder is atomic, so a reader that takes only `.jsonl` files never sees
a half-written one. The file is written with raw `os.write` (no userspace buffer), so a forked
child that inherits the descriptor has nothing buffered it could write twice; the rotation fsyncs
before renaming, so a closed file survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

OPEN_SUFFIX = ".jsonl.open"
CLOSED_SUFFIX = ".jsonl"
DONE_SUFFIX = ".jsonl.done"
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_AGE_S = 30.0

_NAME = re.compile(r"^(?P<host>.+)-(?P<pid>\d+)-(?P<ms>\d+)-(?P<n>\d+)\.jsonl(\.open|\.done)?$")


def host_tag() -> str:
    """This machine's name as it appears in spool file names."""
    return re.sub(r"[^A-Za-z0-9_.]", "_", socket.gethostname()) or "host"


@dataclass(frozen=True)
class SpoolName:
    host: str
    pid: int
    start_ms: int
    n: int


def parse_name(name: str) -> SpoolName | None:
    m = _NAME.match(name)
    if not m:
        return None
    return SpoolName(m["host"], int(m["pid"]), int(m["ms"]), int(m["n"]))


class SpoolWriter:
    """Appends lines to this process's current spool file; rotates by size and age."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age_s: float = DEFAULT_MAX_AGE_S,
    ) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._opened_at = 0.0
        self._n = 0
        self._start_ms = time.time_ns() // 1_000_000
        self._pid = os.getpid()
        self.closed_files: list[Path] = []

    @property
    def current(self) -> Path | None:
        return self._path

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        host = host_tag()
        while True:
            self._n += 1
            path = self.directory / f"{host}-{self._pid}-{self._start_ms}-{self._n:06d}{OPEN_SUFFIX}"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
            except FileExistsError:
                continue
            break
        self._fd, self._path, self._size, self._opened_at = fd, path, 0, time.monotonic()

    def write_lines(self, lines: list[str]) -> None:
        """Append lines (each without its newline), starting a new file whenever the next line
        would take the current one past max_bytes (a single longer line gets a file of its
        own). Raises OSError if the disk refuses."""
        if not lines:
            return
        with self._lock:
            start = 0
            while start < len(lines):
                if self._fd is None:
                    self._open()
                room = self.max_bytes - self._size
                parts: list[bytes] = []
                size = 0
                while start < len(lines):
                    b = (lines[start] + "\n").encode("utf-8")
                    if (parts and size + len(b) > room) or (not parts and self._size and len(b) > room):
                        break
                    parts.append(b)
                    size += len(b)
                    start += 1
                if parts:
                    self._write_all(b"".join(parts))
                    self._size += size
                if self._size >= self.max_bytes or start < len(lines):
                    self._close_locked()

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]

    def _close_locked(self) -> None:
        if self._fd is None or self._path is None:
            return
        fd, path = self._fd, self._path
        self._fd, self._path = None, None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        closed = path.with_name(path.name[: -len(OPEN_SUFFIX)] + CLOSED_SUFFIX)
        os.rename(path, closed)
        self.closed_files.append(closed)

    def rotate(self) -> None:
        """Close the current file (if any) so it can be picked up."""
        with self._lock:
            self._close_locked()

    def tick(self, now: float | None = None) -> None:
        """Close a file older than max_age_s, so a quiet agent's events are not held back."""
        if self._fd is None:
            return
        now = time.monotonic() if now is None else now
        if now - self._opened_at >= self.max_age_s:
            self.rotate()

    def abandon(self) -> None:
        """In a forked child: drop the parent's file without touching it."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        self._fd, self._path = None, None
        self._lock = threading.Lock()
