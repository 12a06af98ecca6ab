"""Exclusion rules (policy → run_exclusions), and the forensics API over a store: filters,
exclusions honoured, numeric attrs as features, holdout."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from alphatrace.errors import InputError, PolicyError
from alphatrace.forensics import synthetic as syn
from alphatrace.forensics.api import Forensics
from alphatrace.forensics.config import load
from alphatrace.store import Store
from tests.rows import T0, full_row, insert, insert_rows

POLICY = """
forensics:
  exclusions:
    - name: infra_errors
      reason: "errored run that lost money"
      when: [{field: errors, op: ">", value: 0}, {field: pnl, op: "<", value: 0}]
    - name: bad_model
      reason: "retired model"
      when: [{field: model, op: in, value: [old-1, old-2]}]
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(text)
    return p


def test_rules_flag_runs_first_rule_wins(store: Store, tmp_path: Path) -> None:
    insert(store.con, [
        full_row("a", T0, errors=1, realized_pnl_bps=-5.0, model="old-1"),  # both rules: first wins
        full_row("b", T0 + dt.timedelta(hours=1), errors=1, realized_pnl_bps=5.0),  # won: kept
        full_row("c", T0 + dt.timedelta(hours=2), errors=0, realized_pnl_bps=-5.0, model="old-2"),
        full_row("d", T0 + dt.timedelta(hours=3), errors=3, realized_pnl_bps=None, status="open"),
    ])
    db = Forensics(store)
    out = db.apply_exclusions(write(tmp_path, POLICY))
    assert out["excluded"] == 2 and out["rules"] == {"infra_errors": 1, "bad_model": 1}
    rows = {r["run_id"]: (r["rule"], r["reason"]) for r in db.exclusions()}
    assert rows == {"a": ("infra_errors", "errored run that lost money"), "c": ("bad_model", "retired model")}
    # re-applying with the default (no rules) clears them
    assert db.apply_exclusions()["excluded"] == 0


def test_explain_shows_the_exclusion(store: Store, tmp_path: Path) -> None:
    insert(store.con, [full_row("a", T0, errors=1, realized_pnl_bps=-5.0)])
    db = Forensics(store)
    db.apply_exclusions(write(tmp_path, POLICY))
    assert db.explain("a")["excluded"]["rule"] == "infra_errors"


@pytest.mark.parametrize(("rule", "line", "needle"), [
    ("{name: x, reason: r, when: [{field: nope, op: '>', value: 0}]}", 5, "unknown field 'nope'"),
    ("{name: x, reason: r, when: [{field: errors, op: '~', value: 0}]}", 5, "op"),
    ("{name: x, reason: r, when: [{field: errors, op: in, value: 3}]}", 5, "non-empty list"),
    ("{name: x, reason: r, when: [{field: model, op: '>', value: 3}]}", 5, "model compares with text"),
    ("{name: x, reason: r, when: []}", 5, "when"),
])
def test_bad_rules_fail_with_file_line(tmp_path: Path, rule: str, line: int, needle: str) -> None:
    text = f"forensics:\n  exclusions:\n    - {rule}\n"
    with pytest.raises(PolicyError) as e:
        load(str(write(tmp_path, text)))
    msg = str(e.value)
    assert needle in msg and "policy.yaml:3" in msg


def test_unknown_forensics_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"policy\.yaml:3"):
        load(str(write(tmp_path, "forensics:\n  clusters:\n    min_suport: 10\n")))


def test_default_policy_section_loads() -> None:
    cfg, pol = load(None)
    assert cfg.clusters.max_depth == 2 and cfg.clusters.fdr_q == 0.05
    assert cfg.exclusions == [] and pol.data["forensics"]["target"] == "realized_pnl_bps"


def _insert_synthetic(store: Store, n: int, seed: int, agent: str = "SynthAgent",
                      t0: dt.datetime = syn.T0) -> dict[str, object]:
    d = syn.runs(n, seed)
    d["ts"] = np.array([t0 + dt.timedelta(minutes=i) for i in range(n)], dtype=object)
    d["run_id"] = np.array([f"{agent}-{i:05d}" for i in range(n)], dtype=object)
    tbl = syn.ledger_table(d, agent=agent)
    store.con.register("_t", tbl)
    store.con.execute("INSERT INTO ledger BY NAME SELECT * FROM _t")
    store.con.unregister("_t")
    return d


def test_forensics_finds_the_planted_cluster_through_the_store(store: Store) -> None:
    d = _insert_synthetic(store, 3000, 2)
    out = Forensics(store).forensics()
    assert out["runs"] == 3000
    top = out["clusters"][0]
    assert {p["feature"] for p in top["predicates"]} == {"latency_ms", "tokens_in"}
    assert top["sentence"].startswith("Losses cluster when latency_ms > ")
    assert top["run_ids"] == sorted(top["run_ids"])
    inside = set(np.asarray(d["run_id"])[np.asarray(d["in_cluster"])].tolist())
    assert len(inside & set(top["run_ids"])) >= 0.7 * len(top["run_ids"])
    assert out["findings"][0] == top["sentence"]
    json.dumps(out, default=str)  # JSON-able


def test_exclusions_and_filters_change_the_population(store: Store, tmp_path: Path) -> None:
    _insert_synthetic(store, 600, 3, agent="X")
    _insert_synthetic(store, 400, 4, agent="Y", t0=dt.datetime(2024, 6, 1))
    db = Forensics(store)
    assert db.forensics()["runs"] == 1000
    assert db.forensics(agent="Y")["runs"] == 400
    assert db.forensics(since="2024-06-01")["runs"] == 400
    assert db.forensics(since=dt.date(2024, 6, 1))["runs"] == 400
    pol = write(tmp_path, "forensics:\n  exclusions:\n    - {name: y, reason: r, when: [{field: agent, op: '==', value: Y}]}\n")
    db.apply_exclusions(pol)
    assert db.forensics()["runs"] == 600
    with pytest.raises(InputError, match="--since"):
        db.forensics(since="last tuesday")
    with pytest.raises(InputError, match="--holdout"):
        db.forensics(holdout=1.5)


def test_numeric_attrs_become_features(store: Store) -> None:
    rng = np.random.default_rng(0)
    n = 1500
    rows, alpha = [], []
    for i in range(n):
        z = float(rng.normal())
        pnl = float(rng.normal(5, 20) - (80 if z > 1.3 else 0))
        rows.append(full_row(f"r{i:04d}", T0 + dt.timedelta(minutes=i), realized_pnl_bps=pnl))
        alpha.append({"event_id": f"e{i}", "run_id": f"r{i:04d}", "agent": "A", "ts": T0 + dt.timedelta(minutes=i),
                      "symbol": "BTC", "direction": "LONG", "attrs": json.dumps({"funding_z": z, "note": "x"})})
    insert(store.con, rows)
    insert_rows(store.con, "alpha", alpha)
    out = Forensics(store).forensics()
    assert "funding_z" in out["search"]["features"] and "note" not in out["search"]["features"]
    top = out["clusters"][0]["predicates"]
    assert [(p["feature"], p["op"]) for p in top] == [("funding_z", ">")]
    assert abs(float(top[0]["value"]) - 1.3) < 0.15


def test_holdout_reports_confirmation(store: Store) -> None:
    _insert_synthetic(store, 4000, 6)
    out = Forensics(store).forensics(holdout=0.3)
    assert out["holdout"]["discovery_runs"] == 2800 and out["holdout"]["holdout_runs"] == 1200
    assert out["clusters"][0]["holdout"]["confirmed"] is True
