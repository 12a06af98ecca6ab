"""`alphatrace.connect("http://...", key=...)` answers every method of the allow-list as the
local Database does (issue #14 item 5): one demo store copied twice, one copy served by a real
`alphatrace serve` on loopback, the other opened here; each method's remote result equals the
local one, and each write done on both leaves both stores answering the same."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import alphatrace as at
from alphatrace.api import Database
from alphatrace.client.database import RemoteDatabase
from alphatrace.client.http import RemoteError
from alphatrace.demo import shipped
from alphatrace.demo.pipeline import run_demo
from alphatrace.errors import AlphatraceError, InputError, NotFoundError, PolicyError
from alphatrace.governance import signing
from alphatrace.governance.anchor_check import Given
from alphatrace.server.call_routes import METHODS
from tests.server.conftest import Server, start_server

# Fields of a decision record that are the time of writing (and the hashes over it).
WRITTEN_AT = {"created_at", "hash", "prev_hash", "eval_id"}


@dataclass
class Pair:
    remote: RemoteDatabase
    local: Database
    server: Server
    events: Path  # the demo's JSONL files

    def agent(self) -> str:
        return str(self.local.agents()[0]["agent"])


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("remote_api")
    run_demo(root / "demo.duckdb", runs_per_agent=40, events_dir=root / "events")
    (root / "served").mkdir()
    (root / "here").mkdir()
    shutil.copy(root / "demo.duckdb", root / "served" / "collector.duckdb")
    shutil.copy(root / "demo.duckdb", root / "here" / "local.duckdb")
    # --no-pipeline: the remote copy must change only by the calls compared here
    srv = start_server(root / "served", "--no-pipeline")
    local = at.connect(root / "here" / "local.duckdb")
    try:
        yield Pair(at.connect(srv.url, key=srv.keys["admin"]), local, srv, root / "events")
    finally:
        local.close()
        srv.stop()


def same(remote: Any, local: Any) -> None:
    """Equal results, tables compared with their types (UTC-aware times included)."""
    if isinstance(local, pa.Table):
        assert isinstance(remote, pa.Table)
        assert remote.schema == local.schema
        assert remote.equals(local)
    else:
        assert type(remote) is type(local)
        assert remote == local


def records(rs: list[dict[str, Any]], *also: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in WRITTEN_AT | set(also)} for r in rs]


def test_connect_to_an_address_is_a_remote_database(pair: Pair, monkeypatch: pytest.MonkeyPatch
                                                     ) -> None:
    assert isinstance(pair.remote, RemoteDatabase)
    monkeypatch.setenv("ALPHATRACE_URL", pair.server.url)
    monkeypatch.setenv("ALPHATRACE_API_KEY", pair.server.keys["read"])
    from_env = at.connect()
    assert isinstance(from_env, RemoteDatabase) and from_env.url == pair.server.url
    same(from_env.agents(), pair.local.agents())
    with pytest.raises(InputError, match="key="):
        at.connect("local.duckdb", key="k")


def test_the_ledger_is_the_same_arrow_table_with_its_summary(pair: Pair) -> None:
    got, want = pair.remote.ledger(), pair.local.ledger()
    assert len(want) > 0 and got.summary == want.summary
    same(got.table, want.table)
    assert got.table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    agent = pair.agent()
    since = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    got, want = (db.ledger(agent=agent, since=since, status="realized")
                 for db in (pair.remote, pair.local))
    assert got.summary == want.summary
    same(got.table, want.table)


def test_every_read_method_answers_what_the_local_store_answers(pair: Pair) -> None:
    agent = pair.agent()
    run_id = str(pair.local.ledger(agent=agent).table.column("run_id")[0].as_py())
    as_of = "2025-09-01T00:00:00Z"
    calls: dict[str, Any] = {
        "agents": lambda db: db.agents(),
        "aliases": lambda db: db.aliases(),
        "symbols": lambda db: db.symbols(),
        "resolve": lambda db: db.resolve("BTCUSDT", "ETH", "NOPE"),
        "explain": lambda db: db.explain(run_id),
        "forensics": lambda db: db.forensics(agent=agent),
        "exclusions": lambda db: db.exclusions(),
        "confidence": lambda db: (db.confidence(), db.confidence(agent, history=True),
                                  db.confidence(as_of=as_of)),
        "audit_verify": lambda db: db.audit_verify(),
        "audit_show": lambda db: db.audit_show(agent),
        "gates.backtest": lambda db: db.gates.backtest(),
        "gates.evaluate": lambda db: db.gates.evaluate(record=False),
        "gates.evaluation": lambda db: db.gates.evaluation(as_of=as_of, record=False),
    }
    for fn in calls.values():
        got, want = fn(pair.remote), fn(pair.local)
        for g, w in zip(got, want, strict=True) if isinstance(want, tuple) else [(got, want)]:
            same(g, w)
    assert set(calls) | {"ledger"} == READS_TESTED


# The allow-list, each method compared with the local answer by a test of this module: the
# reads above (and the ledger's own test), the writes in the tests below.
READS_TESTED = {"ledger", "agents", "aliases", "symbols", "resolve", "explain", "forensics",
                "exclusions", "confidence", "audit_verify", "audit_show", "gates.backtest",
                "gates.evaluate", "gates.evaluation"}
WRITES_TESTED = {"ingest", "import_market", "alias", "reconcile", "apply_exclusions",
                 "gates.evaluate", "gates.evaluation", "revive", "audit_sign"}


def test_every_method_of_the_allow_list_is_tested() -> None:
    assert set(METHODS) == READS_TESTED | WRITES_TESTED
    assert {n for n, m in METHODS.items() if not m.write} <= READS_TESTED


def test_datetimes_come_back_utc_aware(pair: Pair) -> None:
    rows = pair.remote.symbols()
    firsts = [v for r in rows for v in r.values() if isinstance(v, dt.datetime)]
    assert firsts and all(v.tzinfo is dt.UTC for v in firsts)


def test_typed_errors_are_raised_again_as_the_same_class(pair: Pair, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    for fn in (lambda db: db.explain("no-such-run"), lambda db: db.ledger(status="bogus"),
               lambda db: db.revive(pair.agent(), reason=" "),
               lambda db: db.confidence(agent="Nobody")):
        with pytest.raises(AlphatraceError) as want:
            fn(pair.local)
        with pytest.raises(AlphatraceError) as got:
            fn(pair.remote)
        assert type(got.value) is type(want.value) and str(got.value) == str(want.value)
    with pytest.raises(NotFoundError):
        pair.remote.explain("no-such-run")
    # A policy error names the file as the caller gave it, with line and column.
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("confidence:\n  decay: [1\n")
    with pytest.raises(PolicyError) as want_p:
        pair.local.confidence(policy="bad.yaml")
    with pytest.raises(PolicyError) as got_p:
        pair.remote.confidence(policy="bad.yaml")
    assert str(got_p.value) == str(want_p.value)
    assert (got_p.value.path, got_p.value.line) == (want_p.value.path, want_p.value.line)


def test_a_policy_file_or_object_is_sent(pair: Pair, tmp_path: Path) -> None:
    from alphatrace.policy import load_policy

    text = "confidence:\n  warn_below: 0.9\n"
    (tmp_path / "p.yaml").write_text(text)
    want = pair.local.confidence(policy=tmp_path / "p.yaml")
    same(pair.remote.confidence(policy=tmp_path / "p.yaml"), want)
    same(pair.remote.confidence(policy=load_policy(tmp_path / "p.yaml")), want)


def test_writes_leave_both_stores_the_same(pair: Pair, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    r, loc = pair.remote, pair.local
    # ingest: a relative file (recorded under the same name), a bad line quarantined on both
    monkeypatch.chdir(tmp_path)
    Path("more.jsonl").write_text("\n".join([
        json.dumps({"type": "telemetry", "run_id": "rm1", "agent": "Remote", "latency_ms": 5,
                    "ts": "2025-10-01T00:00:00Z"}),
        "{not json",
    ]) + "\n")
    same(r.ingest("more.jsonl"), loc.ingest("more.jsonl"))
    monkeypatch.chdir(pair.events.parent)  # a folder: every file in it, named as given
    same(r.ingest(pair.events.name), loc.ingest(pair.events.name))
    monkeypatch.chdir(tmp_path)
    # market data: the shipped files again (unchanged), the symbol read from the file name
    files = sorted(shipped.data_dir().glob("*_1h.parquet"))
    same(r.import_market(*files), loc.import_market(*files))
    same(r.alias("XBT", "BTCUSDT"), loc.alias("XBT", "BTCUSDT"))
    same(r.aliases(), loc.aliases())
    same(r.reconcile(), loc.reconcile())
    same(r.reconcile(full=True), loc.reconcile(full=True))
    same(r.apply_exclusions(), loc.apply_exclusions())
    same(r.ledger().table, loc.ledger().table)
    assert records(r.gates.evaluate()) == records(loc.gates.evaluate())
    got_e, want_e = r.gates.evaluation(once=True), loc.gates.evaluation(once=True)
    assert (got_e["evaluated"], got_e["changed"]) == (want_e["evaluated"], want_e["changed"])
    killed = sorted((d["scope"] != "strategy", d["subject"], d["scope"])
                    for d in want_e["decisions"] if d["state"] == "killed")
    assert killed  # the demo kills
    _, subject, scope = killed[0]  # a strategy first: its agents cannot come back before it
    kw = {"reason": "remote test", "actor": "tester", "scope": scope}
    # a revive happens now: its as_of is the time of writing too
    assert records([r.revive(subject, **kw)], "as_of") == records([loc.revive(subject, **kw)],
                                                                  "as_of")
    same(r.audit_show(pair.agent()) and records(r.audit_show(pair.agent())),
         loc.audit_show(pair.agent()) and records(loc.audit_show(pair.agent())))
    same(r.audit_verify(recompute=False)["ok"], loc.audit_verify(recompute=False)["ok"])


def test_audit_sign_uses_the_key_here_and_appends_to_the_heads_file_here(
        pair: Pair, tmp_path: Path) -> None:
    key, pub = tmp_path / "signing.pem", tmp_path / "signing.pub"
    signing.generate(key, pub)
    heads = tmp_path / "heads.jsonl"
    signed = pair.remote.audit_sign(key, heads)
    assert heads.exists() and signed["hash"] in heads.read_text()
    # the local answer: the same head position and key (the hashes differ by the times the
    # two stores' records were written; the signature by the time of signing)
    here = pair.local.audit_sign(key, tmp_path / "local-heads.jsonl")
    assert set(signed) == set(here)
    assert (signed["seq"], signed["key_id"]) == (here["seq"], here["key_id"])
    again = pair.remote.audit_sign(key, heads)  # the same head: nothing new
    assert again["hash"] == signed["hash"] and heads.read_text().count(signed["hash"]) == 1
    given = Given(pubkey=signing.load_public(pub), heads_path=heads)
    report = pair.remote.audit_verify(recompute=False, anchors=given)
    assert report["ok"], report


def test_scopes_keys_and_an_unreachable_server_are_clear_errors(pair: Pair) -> None:
    reader = RemoteDatabase(pair.server.url, pair.server.keys["read"])
    same(reader.agents(), pair.local.agents())
    same(reader.gates.evaluate(record=False), pair.local.gates.evaluate(record=False))
    with pytest.raises(RemoteError, match=r"403.*Database.ingest needs a key with scope ingest"):
        reader.ingest(pair.events)
    with pytest.raises(RemoteError, match="scope admin"):
        reader.gates.evaluate()
    ingester = RemoteDatabase(pair.server.url, pair.server.keys["ingest"])
    with pytest.raises(RemoteError, match="scope read"):
        ingester.agents()
    with pytest.raises(RemoteError, match="401"):
        RemoteDatabase(pair.server.url, "not-a-key").agents()
    with pytest.raises(RemoteError, match="needs an API key"):
        RemoteDatabase(pair.server.url, "").agents()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(RemoteError, match=f"cannot reach the alphatrace server at http://127.0.0.1:{port}"):
        RemoteDatabase(f"http://127.0.0.1:{port}", "k").agents()
    with pytest.raises(InputError, match="callback"):
        pair.remote.forensics(progress=lambda a, b: None)


def test_only_the_allow_list_runs(pair: Pair) -> None:
    from alphatrace.client import http

    for method in ("close", "store", "_population", "__init__", "gates.__init__"):
        with pytest.raises(RemoteError, match=r"400.*no method"):
            http.post(pair.server.url, "/v1/call", pair.server.keys["admin"],
                      {"method": method, "args": [], "kwargs": {}})
    with pytest.raises(RemoteError, match=r"400.*not a relative path"):
        http.post(pair.server.url, "/v1/call", pair.server.keys["admin"],
                  {"method": "ingest", "args": [{"$file": "/etc/passwd"}], "kwargs": {}})
