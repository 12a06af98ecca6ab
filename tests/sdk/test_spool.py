"""Spool files: rotation, atomic close, many writer processes, pickup exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.sdk.follow import closed_files, follow, pickup_once
from alphatrace.sdk.spool import SpoolWriter, host_tag, parse_name
from alphatrace.store import Store
from alphatrace.store.connection import one

REPO = Path(__file__).resolve().parents[2]


def lines_in(files: list[Path]) -> list[str]:
    return [ln for f in files for ln in f.read_text().splitlines()]


def test_rotation_by_size_keeps_every_line_in_order(tmp_path: Path) -> None:
    w = SpoolWriter(tmp_path, max_bytes=1000)
    sent = [json.dumps({"i": i, "pad": "x" * 40}) for i in range(100)]  # ~60 bytes each
    for i in range(0, 100, 7):
        w.write_lines(sent[i : i + 7])
    assert w.current is not None and w.current.name.endswith(".jsonl.open")
    w.rotate()
    files = closed_files([tmp_path])
    assert len(files) == len(w.closed_files) >= 5
    assert lines_in(files) == sent  # names sort in writing order
    for f in files[:-1]:
        assert 1000 - 70 < f.stat().st_size <= 1000  # the next line would not have fitted
    info = parse_name(files[0].name)
    assert info is not None and info.pid == os.getpid() and info.host == host_tag() and info.n == 1
    assert not list(tmp_path.glob("*.open"))


def test_rotation_by_age(tmp_path: Path) -> None:
    w = SpoolWriter(tmp_path, max_age_s=5)
    w.write_lines(["{}"])
    opened = w.current
    w.tick(time.monotonic() + 1)
    assert w.current == opened and not closed_files([tmp_path])
    w.tick(time.monotonic() + 6)
    assert w.current is None and len(closed_files([tmp_path])) == 1


def run_agents(tmp: Path, specs: list[tuple[str, int]], *extra: str) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-m", "tests.sdk.agent_proc", agent, str(n),
                          "--spool", str(tmp), *extra], cwd=REPO)
        for agent, n in specs
    ]
    for p in procs:
        assert p.wait(120) == 0


@pytest.mark.slow
def test_many_processes_one_folder_exactly_once(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    specs = [(f"P{i}", 150) for i in range(4)]
    # Small files force rotations while other processes write beside them.
    run_agents(spool, specs, "--max-bytes", "20000")
    files = closed_files([spool])
    assert len(files) > 4 and not list(spool.glob("*.open"))
    with Store(tmp_path / "db.duckdb") as store:
        r = pickup_once(store, [spool])
        assert (r.files, r.accepted, r.duplicates, r.quarantined) == (len(files), 4 * 150 * 3, 0, 0)
        per_agent = dict(store.con.execute(
            "SELECT agent, count(*) FROM (SELECT agent FROM telemetry UNION ALL "
            "SELECT agent FROM alpha) GROUP BY agent").fetchall())
        assert per_agent == {f"P{i}": 450 for i in range(4)}
        assert one(store.con, "SELECT count(*) FROM spool_files")[0] == len(files)
        # Every file marked; a second pass finds nothing.
        assert not closed_files([spool]) and len(list(spool.glob("*.jsonl.done"))) == len(files)
        again = pickup_once(store, [spool])
        assert (again.files, again.accepted) == (0, 0)


def test_restart_after_crash_never_double_counts(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    run_agents(spool, [("A", 20)])
    (f,) = closed_files([spool])
    st = f.stat()
    with Store(tmp_path / "db.duckdb") as store:
        assert pickup_once(store, [spool]).accepted == 60
        done = f.with_name(f.name[: -len(".jsonl")] + ".jsonl.done")
        # Crash before the rename: the file is back under its name, same size and mtime.
        os.rename(done, f)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
        r = pickup_once(store, [spool])
        assert (r.files, r.skipped, r.accepted) == (0, 1, 0)
        # Crash before the record (file touched since): read again, every event a duplicate.
        os.rename(done, f)
        os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
        r = pickup_once(store, [spool])
        assert (r.files, r.accepted, r.duplicates) == (1, 0, 60)
        assert one(store.con, "SELECT count(*) FROM telemetry")[0] == 40


def test_abandoned_open_files_are_adopted(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    line = json.dumps({"type": "alpha", "run_id": "r1", "agent": "A", "symbol": "BTC",
                       "direction": "LONG", "event_id": "r1:1"})
    torn = f"{host_tag()}-{dead.pid}-1-000001.jsonl.open"
    (spool / torn).write_text(line + '\n{"type": "alp')  # the writer died mid-line
    alive = f"{host_tag()}-{os.getpid()}-1-000001.jsonl.open"
    (spool / alive).write_text(line + "\n")
    foreign = spool / "otherhost-1-1-000001.jsonl.open"
    foreign.write_text(line.replace("r1", "r2") + "\n")
    with Store(":memory:") as store:
        r = pickup_once(store, [spool])
        assert (r.adopted, r.files, r.accepted, r.quarantined) == (1, 1, 1, 1)
        assert (spool / alive).exists() and foreign.exists()  # live writer / not stale yet
        old = time.time() - 3600
        os.utime(foreign, (old, old))
        r = pickup_once(store, [spool])
        assert (r.adopted, r.accepted) == (1, 1)


def test_follow_loop_stops_and_picks_up_late_files(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    w = SpoolWriter(spool)
    w.write_lines([json.dumps({"type": "telemetry", "run_id": "x", "agent": "A", "event_id": "x:1"})])
    t0 = time.monotonic()
    passes: list[int] = []

    def stop() -> bool:
        if len(passes) == 2:
            w.rotate()  # closed between passes: the next pass takes it
        return len(passes) >= 4

    with Store(":memory:") as store:
        total = follow(store, [spool], poll_s=0.05, stop=stop, on_pass=lambda r: passes.append(r.files))
    assert passes[:2] == [0, 0] and sum(passes) == 1 and total.accepted == 1
    assert time.monotonic() - t0 < 5


def test_follow_cli_once_json(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    run_agents(spool, [("Cli", 5)])
    db = str(tmp_path / "db.duckdb")
    res = CliRunner().invoke(app, ["follow", str(spool), "--once", "--json", "--db", db])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"files": 1, "accepted": 15, "duplicates": 0,
                                      "quarantined": 0, "skipped": 0, "adopted": 0}
    res = CliRunner().invoke(app, ["follow", str(spool), "--max-seconds", "0.3", "--poll", "0.1",
                                   "--json", "--db", db])
    assert res.exit_code == 0 and json.loads(res.stdout)["files"] == 0
    bad = CliRunner().invoke(app, ["follow", str(tmp_path / "nope"), "--once", "--db", db])
    assert bad.exit_code == 2 and "not a folder" in " ".join(bad.output.split())


@pytest.mark.parametrize("flush", [True, False])
def test_exit_and_fork_deliver_everything(tmp_path: Path, flush: bool) -> None:
    """A forked child writes its own files; the atexit hook flushes without an explicit flush."""
    spool = tmp_path / "spool"
    run_agents(spool, [("F", 10)], "--fork", *([] if flush else ["--no-flush"]))
    files = closed_files([spool])
    pids = {parse_name(f.name).pid for f in files}  # type: ignore[union-attr]
    assert len(pids) == 2 and not list(spool.glob("*.open"))
    events = [json.loads(x) for x in lines_in(files)]
    assert len({e["event_id"] for e in events}) == len(events)
    by_agent: dict[str, int] = {}
    for e in events:
        by_agent[e["agent"]] = by_agent.get(e["agent"], 0) + 1
    assert by_agent == {"F": 2 + 30, "F-child": 30}
