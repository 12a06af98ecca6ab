"""What a remote command or call writes reaches the writer's after-round hooks (the live
pipeline), as events sent over HTTP do; a read takes no round."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from alphatrace.server.app import create_app
from alphatrace.server.keys import create_key
from alphatrace.store import Store

EVENT = json.dumps({"type": "telemetry", "run_id": "h1", "agent": "Hooked", "latency_ms": 5})


def _parts(call: dict[str, Any], files: dict[str, bytes]) -> list[tuple[str, Any]]:
    return [("call", (None, json.dumps(call), "application/json"))] + [
        ("file", (name, data, "application/octet-stream")) for name, data in files.items()]


def test_remote_writes_run_the_after_round_hooks_and_reads_do_not(tmp_path: Path) -> None:
    db = tmp_path / "hooks.duckdb"
    with Store(db) as store:
        key = create_key(store, "k", "admin")["key"]
    app = create_app(db, warn_without_keys=False)
    writer = app.state.writer
    log: list[tuple[int, int]] = []  # per hook run: (rounds it covers, telemetry rows seen)
    writer.after_round(lambda s: log.append((writer.after_rounds.covering().count, int(
        s.con.execute("SELECT count(*) FROM telemetry").fetchall()[0][0]))))

    def rounds_after(post: Any) -> tuple[int, int]:
        """The writer rounds `post` caused plus one (a `sync()` after it, whose hook run
        covers them too), and the telemetry count the last hook run saw. The hooks run on
        their own thread, so `sync()` is what orders them with `post`."""
        writer.sync().result(timeout=60)  # every earlier round's hooks have run
        log.clear()
        post()
        writer.sync().result(timeout=60)
        return sum(n for n, _ in log), log[-1][1]

    auth = {"Authorization": f"Bearer {key}"}
    with TestClient(app) as c:
        def cli(argv: list[str], files: dict[str, bytes]) -> None:
            r = c.post("/v1/cli", headers=auth, files=_parts({"argv": argv}, files))
            assert r.status_code == 200 and r.json()["exit_code"] == 0, r.text

        assert rounds_after(lambda: cli(["agents", "--json"], {})) == (1, 0)  # no round
        # the command writes on its own connection; the route's `sync()` is its round
        assert rounds_after(lambda: cli(["ingest", "e.jsonl", "--json"],
                                        {"e.jsonl": EVENT.encode() + b"\n"})) == (2, 1)

        def call() -> None:
            r = c.post("/v1/call", headers=auth, files=_parts(
                {"method": "ingest", "args": [{"$file": "f.jsonl"}], "kwargs": {}},
                {"f.jsonl": EVENT.replace("h1", "h2").encode() + b"\n"}))
            assert r.status_code == 200, r.text

        assert rounds_after(call) == (2, 2)  # its round on the writer thread
