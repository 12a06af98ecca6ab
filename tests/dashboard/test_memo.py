"""The memo: one computation per key however many threads ask, queued work taken over."""

from __future__ import annotations

import threading
import time

import pytest

from alphatrace.server.dashboard.memo import Memo, Pending


def test_one_computation_per_key_across_threads() -> None:
    memo = Memo()
    calls: list[int] = []
    gate = threading.Event()

    def slow() -> int:
        calls.append(1)
        gate.wait(5)
        return 42

    out: list[int] = []
    threads = [threading.Thread(target=lambda: out.append(memo.get(("k", 1), slow))) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    gate.set()
    for t in threads:
        t.join(5)
    assert out == [42] * 8 and calls == [1]


def test_errors_are_kept_and_raised_to_every_caller() -> None:
    memo = Memo()

    def boom() -> int:
        raise ValueError("bad data")

    for _ in range(2):
        with pytest.raises(ValueError, match="bad data"):
            memo.get(("k",), boom)


def test_background_waits_at_most_its_budget() -> None:
    memo = Memo()
    gate = threading.Event()
    with pytest.raises(Pending):
        memo.background(("slow",), lambda: gate.wait(5), 0.05)
    gate.set()
    assert memo.background(("slow",), lambda: False, None) is True  # the first job's result
    memo.shutdown()


def test_a_queued_job_is_taken_over_not_waited_for() -> None:
    memo = Memo()
    gate = threading.Event()
    with pytest.raises(Pending):
        memo.background(("busy",), lambda: gate.wait(5), 0.0)  # occupies the one worker
    with pytest.raises(Pending):
        memo.background(("page",), lambda: "from the worker", 0.0)  # queued behind it
    t = time.perf_counter()
    assert memo.get(("page",), lambda: "inline") == "inline"
    assert time.perf_counter() - t < 1.0
    gate.set()
    time.sleep(0.1)
    assert memo.get(("page",), lambda: "again") == "inline"  # the worker did not overwrite it
    memo.shutdown()


def test_each_kind_has_its_own_bound() -> None:
    memo = Memo({"heavy": 1}, default_limit=2)
    memo.get(("heavy", 1), lambda: "h1")
    for i in range(5):
        memo.get(("page", i), lambda i=i: i)
    assert memo.get(("heavy", 1), lambda: "recomputed") == "h1"  # pages never evict it
    memo.get(("heavy", 2), lambda: "h2")
    assert memo.get(("heavy", 1), lambda: "recomputed") == "recomputed"
    assert memo.get(("page", 0), lambda: "new") == "new" and memo.get(("page", 4), lambda: "x") == 4
