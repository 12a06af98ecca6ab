"""Split JSON Lines input into Arrow chunks of (line_no, line) without a Python loop per line.

The chunk's bytes become the Arrow string buffer as-is and the newline positions (numpy) become
its offsets, so a 64 MiB chunk costs two vectorised passes. Each line keeps its trailing
newline (JSON parsers ignore trailing whitespace). Lines that are not valid UTF-8 are set to
null and reported separately, so one bad byte never costs the rest of the chunk.
"""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

CHUNK_BYTES = 64 * 1024 * 1024
SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz", ".json", ".json.gz")


@dataclass
class Chunk:
    table: pa.Table  # line_no: int64, line: large_string (null where not UTF-8)
    bad_utf8: list[tuple[int, bytes]] = field(default_factory=list)
    nbytes: int = 0


def _is_utf8(arr: np.ndarray, buf: bytes) -> bool:
    """Pure ASCII (the common case) is checked with one vectorised pass; else decode."""
    if not (arr >= 0x80).any():
        return True
    try:
        buf.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _to_table(buf: bytes, first_line_no: int) -> Chunk:
    arr = np.frombuffer(buf, dtype=np.uint8)
    nl = np.flatnonzero(arr == 10)
    starts = np.empty(len(nl) + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = nl + 1
    if starts[-1] == len(buf):
        starts = starts[:-1]
    n = len(starts)
    offsets = np.empty(n + 1, dtype=np.int64)
    offsets[:n] = starts
    offsets[n] = len(buf)
    lines = pa.LargeStringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(buf))
    bad: list[tuple[int, bytes]] = []
    if not _is_utf8(arr, buf):
        # Rare path: find the offending lines, null them, keep the rest.
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
    return Chunk(pa.table({"line_no": line_no, "line": lines}), bad, len(buf))


def iter_chunks(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Chunks that end on a newline; the last may end without one."""
    carry = b""
    line_no = 1
    while True:
        block = stream.read(chunk_bytes)
        if not block:
            break
        data = carry + block if carry else block
        cut = data.rfind(b"\n")
        if cut < 0:
            carry = data
            continue
        head, carry = data[: cut + 1], data[cut + 1 :]
        chunk = _to_table(head, line_no)
        line_no += chunk.table.num_rows
        yield chunk
    if carry:
        yield _to_table(carry, line_no)


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
