"""Request parsing in worker processes (server/offload.py): results and errors come back as a
thread would give them, and a worker that dies costs no request."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import pytest
from fastapi import HTTPException

from alphatrace.server.offload import Parsers, default_workers
from alphatrace.store import Store
from tests.server.conftest import start_server
from tests.server.test_metrics_endpoint import _otlp_body


def pid_and_square(x: int) -> tuple[int, int]:
    return os.getpid(), x * x


def refuse(status: int) -> None:
    raise HTTPException(status, f"refused with {status}", headers={"Retry-After": "1"})


def test_a_worker_runs_the_function_in_another_process() -> None:
    parsers = Parsers(1, preload=(__name__,))
    parsers.start()
    try:
        pid, sq = asyncio.run(parsers.run(pid_and_square, 12))
        assert sq == 144 and pid != os.getpid()
    finally:
        parsers.close()


def test_without_workers_it_runs_here() -> None:
    pid, sq = asyncio.run(Parsers(0).run(pid_and_square, 7))
    assert (pid, sq) == (os.getpid(), 49)


def test_an_http_error_raised_in_a_worker_reaches_the_route_whole() -> None:
    parsers = Parsers(1, preload=(__name__,))
    parsers.start()
    try:
        with pytest.raises(HTTPException) as e:
            asyncio.run(parsers.run(refuse, 415))
        assert (e.value.status_code, e.value.detail, e.value.headers) == (
            415, "refused with 415", {"Retry-After": "1"})
    finally:
        parsers.close()


def test_a_killed_worker_costs_no_request_and_the_pool_comes_back() -> None:
    parsers = Parsers(1, preload=(__name__,))
    parsers.start()
    try:
        async def scenario() -> list[tuple[int, int]]:
            first = await parsers.run(pid_and_square, 2)
            os.kill(first[0], signal.SIGKILL)
            after = []
            for x in (3, 4, 5):  # the one that meets the broken pool runs on a thread
                after.append(await parsers.run(pid_and_square, x))
            return [first, *after]

        first, *after = asyncio.run(scenario())
        assert [sq for _, sq in after] == [9, 16, 25]
        assert parsers.restarts == 1
        # after the restart, a new worker: neither this process nor the killed one
        assert after[-1][0] not in (os.getpid(), first[0])
    finally:
        parsers.close()


def _workers(pid: int) -> list[int]:
    """Live worker processes `pid` spawned (Linux /proc; not multiprocessing's resource
    tracker, a child too)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    cmd = f.read()
            except (OSError, ValueError):
                continue
            if parent == pid and b"spawn_main" in cmd:
                out.append(int(d))
    return out


def test_serve_maps_otlp_in_a_worker_and_survives_its_death(tmp_path: Path) -> None:
    """`alphatrace serve` starts a parsing worker; killed with SIGKILL, the next exports are
    answered 200 and stored all the same, and a new worker takes over."""
    srv = start_server(tmp_path, "--no-pipeline")
    try:
        workers = _workers(srv.proc.pid)
        assert len(workers) == default_workers()
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            def export(batch: int) -> None:
                res = c.post("/v1/traces", content=_otlp_body(8, batch * 8), headers={
                    **srv.auth("ingest"), "Content-Type": "application/x-protobuf"})
                assert res.status_code == 200 and res.content == b""

            export(0)
            for w in workers:
                os.kill(w, signal.SIGKILL)
            for b in range(1, 4):
                export(b)
            fresh = _workers(srv.proc.pid)
            assert fresh and not set(fresh) & set(workers)
        srv.stop()
        with Store(srv.db, read_only=True) as s:
            # 4 exports of 8 traces, a root and 3 children each
            assert s.con.execute("SELECT count(*), count(DISTINCT run_id) FROM telemetry"
                                 ).fetchall() == [(128, 32)]
    finally:
        srv.stop()


def test_workers_of_a_server_killed_outright_end_too(tmp_path: Path) -> None:
    """SIGKILL gives the server no chance to stop its workers: each notices it was orphaned
    and ends (within its parent check, once a second; the test waits up to a minute)."""
    srv = start_server(tmp_path, "--no-pipeline")
    workers = _workers(srv.proc.pid)
    assert workers
    srv.proc.kill()
    srv.proc.wait(30)
    deadline = time.monotonic() + 60
    while any(os.path.exists(f"/proc/{w}") and not _zombie(w) for w in workers):
        assert time.monotonic() < deadline, f"workers {workers} outlived their server"
        time.sleep(0.2)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
