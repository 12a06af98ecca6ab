"""The forensics commands: --json documents, tables, one-line errors with exit codes."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.forensics import synthetic as syn
from alphatrace.store import Store
from tests.rows import T0, full_row, insert

runner = CliRunner()


def make_db(tmp_path: Path) -> Path:
    path = tmp_path / "f.duckdb"
    with Store(path) as s:
        d = syn.runs(2500, 8)
        s.con.register("_t", syn.ledger_table(d))
        s.con.execute("INSERT INTO ledger BY NAME SELECT * FROM _t")
        s.con.unregister("_t")
        insert(s.con, [full_row("lost", T0 + dt.timedelta(days=30), agent="Other", errors=2,
                                         gross_bps=-20.0, realized_pnl_bps=-30.0, cost_usd=0.4)])
    return path


def test_forensics_json_contract(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    r = runner.invoke(app, ["forensics", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)  # one JSON document, nothing else
    assert {"clusters", "changepoints", "findings"} <= set(doc)
    c = doc["clusters"][0]
    assert set(c) >= {"predicates", "sentence", "runs", "share", "mean_in_bps", "mean_out_bps",
                      "loss_share", "q", "run_ids"}
    assert c["predicates"][0]["text"].startswith(("latency_ms >", "tokens_in >"))


def test_forensics_options(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    r = runner.invoke(app, ["forensics", "--db", str(db), "--json", "--agent", "SynthAgent",
                            "--depth", "1", "--holdout", "0.3", "--since", "2024-01-01"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["runs"] == 2500 and doc["search"]["depth"] == 1
    assert all(len(c["predicates"]) == 1 for c in doc["clusters"])
    assert all("holdout" in c for c in doc["clusters"])


def test_forensics_table(tmp_path: Path) -> None:
    r = runner.invoke(app, ["forensics", "--db", str(make_db(tmp_path))])
    assert r.exit_code == 0, r.output
    assert "loss clusters" in r.output and "Losses cluster when" in r.output


def test_bad_option_is_one_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["forensics", "--db", str(make_db(tmp_path)), "--since", "yesterday-ish"])
    assert r.exit_code == 2
    assert "Traceback" not in r.output


def test_explain_json_and_table(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    r = runner.invoke(app, ["explain", "lost", "--db", str(db), "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["run_id"] == "lost"
    assert [c["cause"] for c in doc["causes"]] == ["wrong", "errored"]
    assert doc["because"].startswith("Run lost lost $30.40 net")
    assert doc["waterfall"][-1]["usd"] == doc["net_usd"]
    t = runner.invoke(app, ["explain", "lost", "--db", str(db)])
    assert t.exit_code == 0 and "because" in t.output and "waterfall" in t.output


def test_explain_unknown_run_exit_1(tmp_path: Path) -> None:
    r = runner.invoke(app, ["explain", "no-such-run", "--db", str(make_db(tmp_path))])
    assert r.exit_code == 1
    assert "unknown run 'no-such-run'" in r.output and "Traceback" not in r.output


def test_exclusions_apply_and_list(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    pol = tmp_path / "p.yaml"
    pol.write_text("forensics:\n  exclusions:\n    - {name: infra, reason: infra errors, "
                   "when: [{field: errors, op: '>', value: 0}, {field: pnl, op: '<', value: 0}]}\n")
    r = runner.invoke(app, ["exclusions", "apply", "--db", str(db), "--policy", str(pol), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    d = syn.runs(2500, 8)
    expected = int(((np.asarray(d["errors"]) > 0) & (np.asarray(d["y"]) < 0)).sum()) + 1  # + "lost"
    assert out["excluded"] == expected and out["rules"] == {"infra": expected}
    lst = json.loads(runner.invoke(app, ["exclusions", "list", "--db", str(db), "--json"]).stdout)
    assert len(lst) == expected and {r["rule"] for r in lst} == {"infra"}
    f = json.loads(runner.invoke(app, ["forensics", "--db", str(db), "--json"]).stdout)
    assert f["runs"] == 2501 - expected


def test_bad_policy_is_one_line_with_location(tmp_path: Path) -> None:
    pol = tmp_path / "p.yaml"
    pol.write_text("forensics:\n  clusters:\n    fdr_q: 2\n")
    r = runner.invoke(app, ["forensics", "--db", str(make_db(tmp_path)), "--policy", str(pol)])
    assert r.exit_code == 2 and "p.yaml:3" in r.output


def _runs(db: Path, *args: str) -> tuple[int, int]:
    """(forensics' run count, ledger's row count) for the same filter flags."""
    f = runner.invoke(app, ["forensics", "--db", str(db), "--json", *args])
    assert f.exit_code == 0, f.output
    led = runner.invoke(app, ["ledger", "--db", str(db), "--json", *args])
    assert led.exit_code == 0, led.output
    return json.loads(f.stdout)["runs"], len(json.loads(led.stdout))


def test_since_epoch_seconds_works_like_ledger(tmp_path: Path) -> None:
    """Synthetic runs are one a minute from 2024-01-01T00:00Z (epoch 1704067200); 1704127200 is
    run 1000's minute, so runs 1000-2499 and the run `lost` (2024-01-31) are at or after it."""
    db = make_db(tmp_path)
    assert _runs(db, "--since", "1704127200") == (1501, 1501)
    assert _runs(db, "--since", "1704127200000") == (1501, 1501)  # the same instant in ms


def test_since_span_back_from_now_works_like_ledger(tmp_path: Path) -> None:
    """The synthetic runs moved so that run 1000 is an hour younger than 7 days and run 999
    an hour older (a margin no slow machine eats up between the commands): `--since 7d` keeps
    runs 1000-2499 (`lost` stays in January 2024)."""
    db = make_db(tmp_path)
    start = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(days=7, minutes=1000)
    split = syn.T0 + dt.timedelta(minutes=1000)
    with Store(db) as s:
        s.con.execute("UPDATE ledger SET ts = ts + (?::TIMESTAMP - ?::TIMESTAMP) + CASE WHEN "
                      "ts >= ? THEN INTERVAL 1 HOUR ELSE -INTERVAL 1 HOUR END "
                      "WHERE run_id <> 'lost'", [start, syn.T0, split])
    assert _runs(db, "--since", "7d") == (1500, 1500)
    assert _runs(db, "--since", " 168 H ") == (1500, 1500)
