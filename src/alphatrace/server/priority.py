"""The server's background threads yield the CPU to its event loop.

A meta-agent asks for a size before every signal (`GET /v1/agents/{agent}/sizing`), and that
answer is made on the event loop from state in memory. The collector's own work runs on
background threads: the writer's rounds, the live pipeline, the sizing state's ledger pass,
notification deliveries. On a small machine both want the same cores, and a sizing request that
arrives while they run waits for a CPU. Each of those threads therefore lowers its own CPU
priority by `BACKGROUND_NICE` when it starts (they are made by `background_thread`), so the
scheduler runs the event loop first when both are ready. They still take every cycle the loop
leaves.

Measured on 2 cores with the collector at 10,000 events/s beside 1,000 sizing requests/s
(bench/bench_sizing.py --split, bench/RESULTS.md, 2026-12-05): the sizing p99 went from
4.8–6.8 ms to 3.8–5.5 ms.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

log = logging.getLogger("alphatrace.server")

BACKGROUND_NICE = 5  # added to the process's nice value (Linux: each thread has its own)


def background_thread(target: Callable[[], None], name: str) -> threading.Thread:
    """A daemon thread (not started) that lowers its own priority (`_lower_priority`), then
    runs `target`."""

    def run() -> None:
        _lower_priority()
        target()

    return threading.Thread(target=run, name=name, daemon=True)


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority by `BACKGROUND_NICE` (at most to 19). Linux
    only: there a thread's id names it to `setpriority`; elsewhere that id would name a
    process, so nothing is done. A refusal is logged and changes nothing else."""
    if sys.platform != "linux":
        return
    tid = threading.get_native_id()
    try:
        os.setpriority(os.PRIO_PROCESS, tid,
                       min(19, os.getpriority(os.PRIO_PROCESS, tid) + BACKGROUND_NICE))
    except OSError:
        log.debug("could not lower the priority of thread %s", tid, exc_info=True)
