"""The collector's background threads run below the event loop's CPU priority
(server/priority.py), read back from the kernel's own account of each thread."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

from alphatrace.server.priority import BACKGROUND_NICE
from alphatrace.server.writer import Writer

pytestmark = pytest.mark.skipif(sys.platform != "linux",
                                reason="a thread's own nice value is Linux's")


def nice_of(tid: int) -> int:
    """Field 19 of /proc/self/task/TID/stat (after the command, which may hold spaces)."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2:].split()[16])


def test_the_writer_and_after_round_threads_run_below_the_callers_priority(
        tmp_path: Path) -> None:
    base = nice_of(threading.get_native_id())
    if base + BACKGROUND_NICE > 19:
        pytest.skip(f"this process already runs at nice {base}")
    w = Writer(tmp_path / "db.duckdb")
    w.start()
    try:
        want = {"alphatrace-writer", "alphatrace-after-round"}
        tids = {t.name: t.native_id for t in threading.enumerate() if t.name in want}
        assert set(tids) == want
        deadline = time.monotonic() + 30
        seen: dict[str, int] = {}
        while time.monotonic() < deadline:
            seen = {name: nice_of(tid) for name, tid in tids.items() if tid is not None}
            if seen == dict.fromkeys(want, base + BACKGROUND_NICE):
                break
            time.sleep(0.01)
        assert seen == dict.fromkeys(want, base + BACKGROUND_NICE)
        assert nice_of(threading.get_native_id()) == base  # the caller's own is unchanged
    finally:
        w.stop()
