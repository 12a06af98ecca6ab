"""Split JSON Lines input into Arrow chunks of (line_no, line) without a Python loop per line.

The chunk's bytes become the Arrow string buffer as-is and the newline positions (numpy) become
its offsets, so a chunk costs its read and two vectorised passes (newlines, ASCII check). Each
line keeps its trailing newline (JSON parsers ignore trailing whitespace). Lines that are not valid UTF-8 are set to
null and reported separately, so one bad byte never costs the rest of the chunk.
"""

from __future__ import annotations

import gzip
import io
import queue
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, TypeVar

import numpy as np
import pyarrow as pa

# A chunk is alive about three times over (its bytes, the next one read ahead, its staged rows)
# beside what DuckDB allocates to validate it: 32 MB rather than 64 MB lowered the peak RSS of a
# 3M-event ingest by about 0.2 GB, for ~2% more CPU (bench/RESULTS.md, 2026-12-03).
CHUNK_BYTES = 32 * 1024 * 1024
BATCH_LINES = 16384  # zero-copy slices of a chunk
SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json", ".json.gz")
T = TypeVar("T")
_DONE = object()  # end of a prefetched stream


@dataclass
class Chunk:
    table: pa.Table  # line_no: int64, line: large_string (null where not UTF-8)
    bad_utf8: list[tuple[int, bytes]] = field(default_factory=list)
    nbytes: int = 0


def _is_utf8(arr: np.ndarray) -> bool:
    """Pure ASCII (the common case) is one vectorised reduction; anything else is decoded."""
    if not len(arr) or int(arr.max()) < 0x80:
        return True
    try:
        str(arr.data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _to_table(data: np.ndarray, nl: np.ndarray, first_line_no: int) -> Chunk:
    """`data` (uint8, not copied: it becomes the Arrow string buffer), `nl` its newline positions."""
    starts = np.empty(len(nl) + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = nl + 1
    if starts[-1] == len(data):
        starts = starts[:-1]
    n = len(starts)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[:n] = starts
    offsets[n] = len(data)
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))
    bad: list[tuple[int, bytes]] = []
    if not _is_utf8(data):
        # Rare path: find the offending lines, null them, keep the rest.
        buf = data.tobytes()
        py: list[str | None] = []
        for i in range(n):
            raw = buf[offsets[i] : offsets[i + 1]]
            try:
                py.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                py.append(None)
                bad.append((first_line_no + i, raw))
        lines = pa.array(py, type=pa.large_string())
    line_no = pa.array(np.arange(first_line_no, first_line_no + n, dtype=np.int64))
    table = pa.table({"line_no": line_no, "line": lines})
    # DuckDB hands out an Arrow table to its threads a batch at a time: one batch, one thread.
    table = pa.Table.from_batches(table.to_batches(max_chunksize=BATCH_LINES), table.schema)
    return Chunk(table, bad, len(data))


def _fill(stream: BinaryIO, view: memoryview) -> int:
    """Read until `view` is full or the stream ends; returns the bytes read."""
    got = 0
    while got < len(view):
        n = stream.readinto(view[got:])  # type: ignore[attr-defined]  # not in typing.BinaryIO
        if not n:
            break
        got += n
    return got


_BOM = np.frombuffer(b"\xef\xbb\xbf", dtype=np.uint8)


def _blank_bom(head: np.ndarray) -> None:
    """A UTF-8 byte order mark (common from Windows tools) opening the input becomes three
    spaces: JSON allows the whitespace, and byte counts and line numbers stay as they were."""
    if len(head) >= 3 and np.array_equal(head[:3], _BOM):
        head[:3] = 32


def iter_chunks(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Generator[Chunk, None, None]:
    """Chunks that end on a newline; the last may end without one.

    Each chunk is read straight into its own fresh buffer (the table keeps it), so the bytes
    are copied once, by the read; only the partial last line moves to the next buffer.
    """
    carry = np.empty(0, dtype=np.uint8)
    line_no = 1
    first = True
    while True:
        buf = np.empty(len(carry) + chunk_bytes, dtype=np.uint8)
        buf[: len(carry)] = carry
        got = _fill(stream, buf.data[len(carry) :])
        if not got:
            break
        if first:
            _blank_bom(buf[:got])
            first = False
        data = buf[: len(carry) + got]
        nl = np.flatnonzero(data == 10)
        if not len(nl):
            carry = data
            continue
        cut = int(nl[-1]) + 1
        carry = data[cut:].copy()
        chunk = _to_table(data[:cut], nl, line_no)
        line_no += chunk.table.num_rows
        yield chunk
    if len(carry):
        yield _to_table(carry, np.flatnonzero(carry == 10), line_no)


def prefetch(items: Iterator[T]) -> Generator[T, None, None]:
    """The same items, the next one produced in a background thread while the caller works.

    Reading and splitting a chunk (file I/O, decompression, numpy) release the GIL, as does
    DuckDB while it validates and inserts the previous chunk, so the two overlap on two cores.
    The producer starts an item only once the caller has taken the previous one: two items
    alive at most. An exception of the producer is raised in the caller. If the caller stops
    early the producer stops before its next item; it is not waited for (it may be blocked on
    a pipe).
    """
    box: queue.Queue[tuple[bool, object]] = queue.Queue(maxsize=1)
    taken = threading.Semaphore(0)
    stop = threading.Event()

    def handed(ok: bool, x: object) -> bool:
        """Put an item and wait until the caller takes it; False once the caller is gone."""
        box.put((ok, x))  # never blocks: the box is empty whenever the producer runs
        while not stop.is_set():
            if taken.acquire(timeout=0.05):
                return True
        return False

    def produce() -> None:
        try:
            for it in items:
                if not handed(True, it):
                    return
            handed(True, _DONE)
        except BaseException as e:  # handed to the caller, who raises it
            handed(False, e)

    threading.Thread(target=produce, name="alphatrace-ingest-read", daemon=True).start()
    try:
        while True:
            ok, x = box.get()
            taken.release()
            if not ok:
                raise x  # type: ignore[misc]
            if x is _DONE:
                break
            yield x  # type: ignore[misc]
    finally:
        stop.set()


def open_input(path: Path) -> BinaryIO:
    """A binary stream of the file's JSON Lines, decompressing .gz transparently."""
    if path.suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def from_bytes(data: bytes) -> BinaryIO:
    return io.BytesIO(data)


def expand_paths(paths: list[str]) -> list[str]:
    """Files as given, folders expanded (recursively, sorted) to their JSON Lines files.

    `-` (stdin) passes through. A missing path is an InputError, raised by the caller.
    """
    out: list[str] = []
    for p in paths:
        if p == "-":
            out.append(p)
            continue
        path = Path(p)
        if path.is_dir():
            found = sorted(
                str(f) for f in path.rglob("*") if f.is_file() and f.name.endswith(SUFFIXES)
            )
            out.extend(found)
        else:
            out.append(p)
    return out
