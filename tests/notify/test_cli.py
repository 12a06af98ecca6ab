"""`alphatrace notify log | send | test`, and `policy check` on the notify section."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import alphatrace as at
from alphatrace.cli.main import app
from tests.notify.receiver import Receiver, free_port
from tests.notify.test_dispatch import verified
from tests.notify.util import hook, losers, policy_text

runner = CliRunner()


def call(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    return r.exit_code, r.stdout, " ".join(r.stderr.split())


@pytest.fixture
def setup(tmp_path: Path, receiver: Receiver, secret: str) -> tuple[Path, Path]:
    db = tmp_path / "n.duckdb"
    with at.connect(db) as d:
        losers(d.store, ["A"])
    pol = tmp_path / "p.yaml"
    pol.write_text(policy_text([hook(receiver.url)]))
    return db, pol


def test_evaluate_then_send_then_log(setup: tuple[Path, Path], receiver: Receiver,
                                     secret: str) -> None:
    db, pol = setup
    code, _, err = call("gates", "evaluate", "--db", str(db), "--policy", str(pol), "--json", "--once")
    assert code == 0, err
    code, out, _ = call("notify", "log", "--db", str(db), "--json")
    doc = json.loads(out)
    assert doc["counts"] == {"pending": 2, "delivered": 0, "expired": 0}
    code, out, err = call("notify", "send", "--db", str(db), "--json")
    assert code == 0, err
    assert json.loads(out) == {"attempted": 2, "delivered": 2, "failed": 0, "expired": 0,
                               "errors": {}, "pending": 0}
    assert len(receiver.accepted()) == 2
    assert all(verified(secret, r.headers, r.body) for r in receiver.accepted())
    code, out, _ = call("notify", "log", "--db", str(db), "--json")
    rows = json.loads(out)["deliveries"]
    assert [(r["subject"], r["status"], r["status_codes"]) for r in rows] == [
        ("S", "delivered", [200]), ("A", "delivered", [200])]
    code, out, _ = call("notify", "log", "--db", str(db))
    assert code == 0 and "delivered" in out and "0 pending, 2 delivered" in out


def test_send_to_a_dead_receiver_exits_1_and_keeps_it_pending(tmp_path: Path, secret: str) -> None:
    db = tmp_path / "n.duckdb"
    with at.connect(db) as d:
        losers(d.store, ["A"])
    pol = tmp_path / "p.yaml"
    pol.write_text(policy_text([hook(Receiver(free_port()).url)]))
    assert call("gates", "evaluate", "--db", str(db), "--policy", str(pol), "--once")[0] == 0
    code, out, _ = call("notify", "send", "--db", str(db), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["failed"] == 1 and doc["pending"] == 2
    assert "ConnectError" in doc["errors"]["ops"]
    code, out, _ = call("notify", "log", "--db", str(db), "--status", "pending", "--json")
    assert {r["attempts"] for r in json.loads(out)["deliveries"]} == {0, 1}


def test_notify_test_sends_a_signed_sample(setup: tuple[Path, Path], receiver: Receiver,
                                           secret: str) -> None:
    db, pol = setup
    code, out, err = call("notify", "test", "ops", "--policy", str(pol), "--json")
    assert code == 0, err
    assert json.loads(out)["status_code"] == 200
    (req,) = receiver.accepted()
    assert verified(secret, req.headers, req.body)
    body = json.loads(req.body)
    assert body["type"] == "test" and body["record"]["subject"] == "alphatrace-test"
    # without --policy: the targets of the policy that last appended to the store
    code, _, err = call("notify", "test", "ops", "--db", str(db))
    assert code == 1 and "no notify target named 'ops'" in err
    call("gates", "evaluate", "--db", str(db), "--policy", str(pol), "--once")
    code, out, err = call("notify", "test", "ops", "--db", str(db))
    assert code == 0 and "ok" in out, err
    code, _, err = call("notify", "test", "opz", "--policy", str(pol))
    assert code == 1 and "did you mean 'ops'?" in err


def test_notify_test_reports_a_failure(tmp_path: Path, secret: str) -> None:
    rcv = Receiver(free_port(), mode="fail").up()
    try:
        pol = tmp_path / "p.yaml"
        pol.write_text(policy_text([hook(rcv.url)]))
        code, out, _ = call("notify", "test", "ops", "--policy", str(pol))
    finally:
        rcv.down()
    assert code == 1 and "HTTP 503" in out


def test_policy_check_reports_notify_errors(tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text(policy_text([{"name": "ops", "url": "https://x.example/h"}]))
    code, _, err = call("policy", "check", str(pol))
    assert code == 2 and "a webhook needs secret_env" in err and "p.yaml:" in err
    pol.write_text(policy_text([hook("https://x.example/h")]))
    code, out, _ = call("policy", "check", str(pol), "--json")
    assert code == 0 and json.loads(out)["sections"]["notify"] == "ok"
