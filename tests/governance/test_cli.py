"""The governance commands: --json documents, tables, exit codes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import alphatrace as at
from alphatrace.cli.main import app
from tests.policies import SEED_FLAG
from tests.rows import insert, series

runner = CliRunner()


@pytest.fixture
def dbfile(tmp_path: Path) -> Path:
    path = tmp_path / "g.duckdb"
    with at.connect(path) as db:
        insert(db.con, series("A", [-30.0] * 5, strategy="S", start_hour=20)
               + series("B", [10.0] * 20, strategy="S"))
    return path


def call(*args: str) -> tuple[int, str, str]:
    r = runner.invoke(app, list(args))
    # rich wraps long error lines at the terminal width: undo that for matching
    return r.exit_code, r.stdout, " ".join(r.stderr.split())


def test_gates_evaluate_json(dbfile: Path) -> None:
    code, out, _ = call("gates", "evaluate", *SEED_FLAG, "--once", "--db", str(dbfile), "--json")
    assert code == 0
    doc = json.loads(out)
    assert (doc["recorded"], doc["evaluated"], doc["changed"]) == (True, 3, 3)
    assert [(d["scope"], d["subject"], d["action"], d["rule"], d["seq"])
            for d in doc["decisions"]] == [
        ("agent", "A", "kill", "kill_drawdown", 1), ("agent", "B", "kill", "cascade", 2),
        ("strategy", "S", "kill", "kill_drawdown", 3)]
    assert {"subject", "scope", "action", "rule", "metrics", "run_ids", "seq", "hash",
            "as_of", "policy_hash", "changed"} <= set(doc["decisions"][0])
    assert doc["decisions"][0]["metrics"]["last_5_runs_pnl"] == -150.0
    # the same data again: every subject evaluated, none recorded
    code, out, _ = call("gates", "evaluate", *SEED_FLAG, "--once", "--db", str(dbfile), "--json")
    doc = json.loads(out)
    assert (code, doc["evaluated"], doc["changed"]) == (0, 3, 0)
    assert [(d["subject"], d["action"], d["changed"], d["seq"]) for d in doc["decisions"]] == [
        ("A", "kill", False, None), ("B", "kill", False, None), ("S", "kill", False, None)]
    code, out, _ = call("gates", "evaluate", *SEED_FLAG, "--once", "--db", str(dbfile))
    assert code == 0 and "no change (3 subjects evaluated, as of 2024-01-02" in out
    with at.connect(dbfile, read_only=True) as db:
        assert db.con.execute("SELECT count(*) FROM decisions").fetchall()[0][0] == 3


def test_gates_evaluate_table_and_dry_run(dbfile: Path) -> None:
    code, out, _ = call("gates", "evaluate", *SEED_FLAG, "--once", "--db", str(dbfile), "--dry-run")
    assert code == 0 and "gate decisions (dry run)" in out and "kill: 3" in out
    with at.connect(dbfile, read_only=True) as db:
        assert db.con.execute("SELECT count(*) FROM decisions").fetchall()[0][0] == 0


def test_confidence_json(dbfile: Path) -> None:
    code, out, err = call("confidence", "--db", str(dbfile), "--json")
    assert code == 0
    rows = {r["agent"]: r for r in json.loads(out)}
    assert rows["A"]["multiplier"] == pytest.approx(0.85**5) and rows["A"]["runs"] == 5
    assert rows["B"]["multiplier"] == 1.0
    assert "under warn_below" in err  # 0.44 < 0.5, on stderr so --json stays clean
    code, out, _ = call("confidence", "--db", str(dbfile), "--agent", "A", "--history", "--json")
    hist = json.loads(out)
    assert [h["factor"] for h in hist] == [0.85] * 5


def test_audit_cycle(dbfile: Path) -> None:
    call("gates", "evaluate", *SEED_FLAG, "--once", "--db", str(dbfile))
    code, out, _ = call("audit", "verify", "--db", str(dbfile), "--json")
    assert code == 0 and json.loads(out)["ok"] is True and json.loads(out)["records"] == 3
    code, out, _ = call("revive", "S", "--reason", "new limits", "--db", str(dbfile), "--json")
    assert code == 0 and json.loads(out)["action"] == "revive"
    code, out, _ = call("audit", "show", "S", "--db", str(dbfile), "--json")
    assert [r["action"] for r in json.loads(out)] == ["kill", "revive"]
    with at.connect(dbfile) as db:
        db.con.execute("UPDATE decisions SET action = 'hold' WHERE seq = 1")
    code, out, _ = call("audit", "verify", "--db", str(dbfile), "--json")
    assert code == 1
    assert json.loads(out)["problems"] == [
        {"seq": 1, "kind": "edited",
         "detail": "content does not match its hash: changed after it was written"}]
    code, out, _ = call("audit", "verify", "--db", str(dbfile))
    assert code == 1 and "edited" in out


def test_revive_errors_are_one_line(dbfile: Path) -> None:
    code, out, err = call("revive", "B", "--reason", "x", "--db", str(dbfile))
    assert code == 2 and out == ""
    assert err.strip().startswith("error:") and "not killed" in err and "Traceback" not in err


def test_backtest_json(dbfile: Path) -> None:
    code, out, _ = call("gates", "backtest", *SEED_FLAG, "--db", str(dbfile), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["killed"] == 3
    assert {s["subject"] for s in doc["subjects"]} == {"A", "B", "S"}


def test_policy_check(tmp_path: Path) -> None:
    good = Path(at.__file__).parent / "policies" / "default.yaml"
    code, out, _ = call("policy", "check", str(good), "--json")
    assert code == 0 and json.loads(out)["ok"] is True
    bad = tmp_path / "bad.yaml"
    bad.write_text('gates:\n  rules:\n    - {name: k, action: kill, when: "eror_rate > 0.2"}\n')
    code, out, err = call("policy", "check", str(bad))
    assert code == 2 and out == ""
    assert f"{bad}:3:38:" in err and "did you mean 'error_rate'?" in err


def test_missing_store_is_one_line(tmp_path: Path) -> None:
    code, _, err = call("confidence", "--db", str(tmp_path / "none.duckdb"))
    assert code == 2 and "no alphatrace store" in err


def test_bad_as_of(dbfile: Path) -> None:
    code, _, err = call("gates", "evaluate", "--once", "--db", str(dbfile), "--as-of", "yesterday")
    assert code == 2 and "--as-of 'yesterday': not a time" in err


def test_keygen_sign_and_verify_against_anchors(dbfile: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    key, heads = tmp_path / "k.pem", tmp_path / "heads.jsonl"
    code, out, _ = call("audit", "keygen", str(key), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["private_key"] == str(key) and doc["public_key"] == f"{key}.pub"
    assert (key.stat().st_mode & 0o777) == 0o600 and len(doc["key_id"]) == 16
    code, _, err = call("audit", "keygen", str(key))
    assert code == 2 and "already exists" in err
    # with the key configured, evaluate and revive sign the head and export it
    monkeypatch.setenv("ALPHATRACE_SIGNING_KEY", str(key))
    monkeypatch.setenv("ALPHATRACE_HEADS_FILE", str(heads))
    code, out, _ = call("gates", "evaluate", *SEED_FLAG, "--once", "--db", str(dbfile), "--json")
    assert code == 0 and len(json.loads(out)["decisions"]) == 3
    code, out, _ = call("revive", "S", "--reason", "new limits", "--by", "dana", "--db",
                        str(dbfile), "--json")
    assert code == 0 and json.loads(out)["actor"] == "dana"
    assert [json.loads(x)["seq"] for x in heads.read_text().splitlines()] == [3, 4]
    code, out, _ = call("audit", "sign", "--db", str(dbfile), "--json")  # already signed
    assert code == 0 and json.loads(out)["seq"] == 4 and len(heads.read_text().splitlines()) == 2
    monkeypatch.delenv("ALPHATRACE_HEADS_FILE")
    code, out, _ = call("audit", "verify", "--db", str(dbfile), "--json", "--pubkey", f"{key}.pub",
                        "--heads", str(heads), "--expect-seq", "4")
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["anchored_to_seq"] == 4
    code, out, _ = call("audit", "verify", "--db", str(dbfile), "--expect-seq", "9")
    assert code == 1 and "truncated" in out
    code, _, err = call("audit", "verify", "--db", str(dbfile), "--expect-head", "abc")
    assert code == 2 and "not a 64-hex-digit SHA-256 hash" in err
    code, out, _ = call("audit", "show", "S", "--db", str(dbfile), "--json")
    assert [(r["action"], r["actor"]) for r in json.loads(out)] == [("kill", None),
                                                                    ("revive", "dana")]


def test_sign_without_a_key_is_one_line(dbfile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPHATRACE_SIGNING_KEY", raising=False)
    code, out, err = call("audit", "sign", "--db", str(dbfile))
    assert code == 2 and out == "" and "no signing key" in err


def test_gates_evaluate_catches_up_by_default(dbfile: Path) -> None:
    # B's 20 runs (+10, hours 0..19) then A's five −30 (hours 20..24), all in S. S's last 5:
    # hour 23 = 10 − 4·30 = −110 < −100: S is killed at 23:00 and cascades to A and B then;
    # A's own five runs kill it at 24:00 (−150)
    code, out, _ = call("gates", "evaluate", *SEED_FLAG, "--db", str(dbfile), "--json")
    assert code == 0
    doc = json.loads(out)
    first_kill: dict[tuple[str, str], tuple[str, str]] = {}
    for d in doc["decisions"]:
        if d["action"] == "kill":
            first_kill.setdefault((d["scope"], d["subject"]), (d["as_of"][:19], d["rule"]))
    assert first_kill == {("strategy", "S"): ("2024-01-01T23:00:00", "kill_drawdown"),
                          ("agent", "A"): ("2024-01-01T23:00:00", "cascade"),
                          ("agent", "B"): ("2024-01-01T23:00:00", "cascade")}
    assert [d["as_of"][:19] for d in doc["decisions"]
            if d["subject"] == "A" and d["rule"] == "kill_drawdown"] == ["2024-01-02T00:00:00"]
    code, out, _ = call("gates", "evaluate", *SEED_FLAG, "--db", str(dbfile))
    assert code == 0 and "no change (0 subjects evaluated" in out
