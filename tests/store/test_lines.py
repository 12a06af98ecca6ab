"""Line splitting and the read-ahead thread: content, line numbers, batches, back-pressure, errors."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator

import pytest

from alphatrace.store import lines as lines_mod
from alphatrace.store.lines import iter_chunks, prefetch


def _split(data: bytes, chunk_bytes: int) -> list[tuple[int, str]]:
    out: list[tuple[int, str]] = []
    for ch in iter_chunks(io.BytesIO(data), chunk_bytes):
        out += list(zip(ch.table.column("line_no").to_pylist(), ch.table.column("line").to_pylist(),
                        strict=True))
    return out


@pytest.mark.parametrize("chunk_bytes", [1, 3, 7, 64, 1 << 20])
def test_chunks_reassemble_the_input_with_consecutive_line_numbers(chunk_bytes: int) -> None:
    # A line longer than a read, an empty line, CRLF, no newline at the end.
    data = b'{"a":1}\n\n' + b'{"long":"' + b"x" * 50 + b'"}\r\n{"b":2}\n   \n{"c":3}'
    expected = ['{"a":1}\n', "\n", '{"long":"' + "x" * 50 + '"}\r\n', '{"b":2}\n', "   \n", '{"c":3}']
    assert _split(data, chunk_bytes) == list(enumerate(expected, start=1))


def test_a_chunk_is_sliced_into_batches_for_duckdb_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lines_mod, "BATCH_LINES", 4)
    (ch,) = list(iter_chunks(io.BytesIO(b"".join(b"%d\n" % i for i in range(10)))))
    assert [b.num_rows for b in ch.table.to_batches()] == [4, 4, 2]
    assert ch.table.column("line").to_pylist() == [f"{i}\n" for i in range(10)]


def test_prefetch_keeps_order_and_runs_at_most_one_item_ahead() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(5):
            produced.append(i)
            yield i

    got = []
    for x in prefetch(items()):
        time.sleep(0.05)  # the producer has time to run ahead if it could
        got.append(x)
        # the caller holds item x; the producer may have started x + 1, never x + 2
        assert len(produced) <= x + 2
    assert got == [0, 1, 2, 3, 4]


def test_prefetch_raises_the_producers_error_in_the_caller() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise EOFError("truncated")

    it = prefetch(items())
    assert next(it) == 1
    with pytest.raises(EOFError, match="truncated"):
        next(it)


def test_prefetch_producer_stops_when_the_caller_stops() -> None:
    produced: list[int] = []

    def items() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    def readers() -> int:
        return sum(t.name == "alphatrace-ingest-read" for t in threading.enumerate())

    it = prefetch(items())
    assert next(it) == 0
    it.close()
    deadline = time.monotonic() + 5
    while readers() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert readers() == 0
    assert len(produced) <= 2
