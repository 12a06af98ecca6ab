"""What every benchmark script shares: the machine line of its RESULTS.md section, appending
that section, and a collector to load (`alphatrace serve` on a fresh store).

Scripts run as `python bench/bench_x.py`, so this module is imported as `common`.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def reference_loop_ms() -> float:
    """CPU ms of a fixed pure-Python loop (5M additions), best of three: the speed of the
    machine at that moment. Machines of the same name differ (the SDK's cached size() took
    1.5–1.7 µs on one and 4.2 µs on another, 2026-12-05), and one machine drifts by a fifth
    within an hour, so a section's absolute times are read against this."""
    best = float("inf")
    for _ in range(3):
        c = time.process_time()
        s = 0
        for i in range(5_000_000):
            s += i
        best = min(best, time.process_time() - c)
    return best * 1000.0


def machine(*packages: str) -> str:
    """'2 CPUs (model), 23.5 GiB RAM, Linux 6.x; Python 3.11.7, duckdb 2.0.1, …; load average
    before the run a b c; reference loop N ms' (`reference_loop_ms`). Call it before the run:
    the load average is then the machine's (others' work slows every number), not the
    benchmark's own."""
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = []
    for p in packages:
        try:
            versions.append(f"{p} {version(p)}")
        except PackageNotFoundError:
            versions.append(f"{p} (not installed)")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPUs ({_cpu()}), {ram:.1f} GiB RAM, {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}"
            + "".join(f", {v}" for v in versions) + f"; load average before the run {load}"
            + f"; reference loop {reference_loop_ms():.0f} ms")


def record(section: str, path: Path = RESULTS) -> None:
    """Append one section in a single write, after re-reading the file (other scripts append
    theirs to the same file)."""
    existing = path.read_text("utf-8") if path.exists() else "# Benchmark results\n"
    path.write_text(existing.rstrip("\n") + "\n\n" + section.strip("\n") + "\n", "utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[k]


@contextmanager
def collector(tmp: Path, *extra: str, prepare: Callable[[Any], None] | None = None
              ) -> Iterator[tuple[str, str, Path]]:
    """`alphatrace serve` on a fresh store in `tmp` on a free loopback port, answering
    /healthz: (its URL, a key of scope ingest, the store's path). `prepare(store)` runs on the
    store before the server opens it (more keys, data). Stopped with SIGTERM (a clean stop)
    when the block ends; its output goes to tmp/server.log."""
    from alphatrace.server.keys import create_key
    from alphatrace.store import Store

    db = tmp / "collector.duckdb"
    with Store(db) as s:
        key = create_key(s, "bench", "ingest")["key"]
        if prepare is not None:
            prepare(s)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    exe = [sys.executable, "-m", "alphatrace.cli.main", "serve", "--db", str(db),
           "--port", str(port), "--log-level", "warning", *extra]
    with open(tmp / "server.log", "wb") as log:
        server = subprocess.Popen(exe, stdout=log, stderr=subprocess.STDOUT)
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url, key, db
    finally:
        server.terminate()
        server.wait(60)


def server_pid(db: Path) -> int:
    """The pid of the `alphatrace serve` process on `db` (Linux /proc)."""
    needle = str(db).encode()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if b"serve" in cmd and needle in cmd:
                return int(d.name)
    raise RuntimeError(f"no server process found for {db}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds so far of process `pid` and of its live descendants (a server
    that does work in child processes is charged for it), all threads (Linux /proc)."""
    import os

    parents: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                parents[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parents.items() if pp == p and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    total = 0
    for p in tree:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
