"""The `reconcile:` policy section and the Python API (`Database.reconcile/ledger/agents`)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

import alphatrace as at_
from alphatrace.errors import InputError, PolicyError
from alphatrace.ledger import policy as rpolicy
from alphatrace.ledger.query import parse_since
from alphatrace.policy import load_policy, parse_policy_text
from tests.ledger.helpers import add_alpha, add_bars, at


@pytest.mark.parametrize(("text", "seconds"), [
    ("8h", 28_800.0), ("90m", 5_400.0), ("30s", 30.0), ("2d", 172_800.0), ("1w", 604_800.0),
    ("1.5h", 5_400.0), ("' 45 '", 45.0), ("4H", 14_400.0), ("7000", 7_000.0), ("0.5", 0.5),
])
def test_policy_durations(text: str, seconds: float) -> None:
    """The section reads `alphatrace.parse.parse_duration`'s grammar (tests/test_parse.py)."""
    pol = parse_policy_text(f"reconcile:\n  horizon: {text}\n  agents:\n    A: {{horizon: {text}}}\n",
                            "p.yaml")
    cfg = rpolicy.load(pol).policy
    assert cfg.horizon == seconds and cfg.agents["A"].horizon == seconds


@pytest.mark.parametrize("bad", ["''", "h", "8x", "-1h", "0", "-3", "true", "1e3h", "null"])
def test_bad_policy_durations(bad: str) -> None:
    with pytest.raises(PolicyError, match=r"^p\.yaml:2:3: reconcile\.horizon"):
        rpolicy.load(parse_policy_text(f"reconcile:\n  horizon: {bad}\n", "p.yaml"))


def test_shipped_default_is_design_section_4() -> None:
    cfg = rpolicy.load()
    p = cfg.policy
    assert (p.fee_bps, p.horizon, p.size_usd, p.include_funding, p.bar_interval, p.agents) == (
        5.0, 28_800.0, 10_000.0, True, None, {})
    assert cfg.hash == load_policy().section_hash("reconcile")


@pytest.mark.parametrize(("text", "where", "what"), [
    ("reconcile:\n  fee_bps: -1\n", "test.yaml:2:3", "reconcile.fee_bps"),
    ("reconcile:\n  size_usd: 0\n", "test.yaml:2:3", "greater than 0"),
    ("reconcile:\n  horizon: soon\n", "test.yaml:2:3", "'soon': not a duration"),
    ("reconcile:\n  include_funding: maybe\n", "test.yaml:2:3", "include_funding"),
    ("reconcile:\n  fees: 5\n", "test.yaml:2:3", "reconcile.fees"),
    ("reconcile:\n  agents:\n    X:\n      horizon: 2h\n      fee: 1\n", "test.yaml:5:7",
     "reconcile.agents.X.fee"),
    ("reconcile:\n  bar_interval: 90.5\n", "test.yaml:2:3", "whole number of seconds"),
])
def test_bad_policy_points_at_the_key(text: str, where: str, what: str) -> None:
    with pytest.raises(PolicyError) as e:
        rpolicy.load(parse_policy_text(text, "test.yaml"))
    assert str(e.value).startswith(where) and what in str(e.value)


def test_toml_policy_and_file_paths(tmp_path: Path) -> None:
    f = tmp_path / "p.toml"
    f.write_text('[reconcile]\nfee_bps = 2.5\n[reconcile.agents.Fast]\nhorizon = "15m"\n')
    cfg = rpolicy.load(f)
    assert cfg.policy.fee_bps == 2.5 and cfg.policy.agents["Fast"].horizon == 900.0
    with pytest.raises(PolicyError, match="no such policy file"):
        rpolicy.load(tmp_path / "missing.yaml")


def test_since_parsing() -> None:
    now = dt.datetime(2025, 3, 1, 12)
    assert parse_since("2025-01-31") == dt.datetime(2025, 1, 31)
    assert parse_since("2025-01-31T08:00:00+02:00") == dt.datetime(2025, 1, 31, 6)
    assert parse_since("7d", now=now) == dt.datetime(2025, 2, 22, 12)
    assert parse_since(1_700_000_000) == dt.datetime(2023, 11, 14, 22, 13, 20)
    assert parse_since(dt.date(2025, 1, 2)) == dt.datetime(2025, 1, 2)
    with pytest.raises(InputError):
        parse_since("yesterday")


def test_python_api_returns_arrow_pandas_polars(tmp_path: Path) -> None:
    with at_.connect(tmp_path / "api.duckdb") as db:
        add_bars(db.store, "BTCUSDT", [100.0 + i for i in range(30)])
        add_alpha(db.store, "r1", "BTC", "LONG", at(0, 30), agent="A")
        add_alpha(db.store, "r2", "BTC", "SHORT", at(1), agent="B")
        add_alpha(db.store, "r3", "BTC", "SHORT", at(29), agent="B")
        rep = db.reconcile()
        assert (rep.legs, rep.realized, rep.open, rep.unpriced) == (3, 2, 1, 0)
        assert rep.to_dict()["legs"] == 3
        res = db.ledger()
        assert len(res) == 3 and res.table.num_rows == 3
        assert list(res.to_pandas()["run_id"]) == ["r1", "r2", "r3"]
        assert res.to_polars()["run_id"].to_list() == ["r1", "r2", "r3"]
        assert [r["run_id"] for r in db.ledger(agent="B", status="realized").to_pylist()] == ["r2"]
        assert res.summary["open"] == 1
        assert [a["agent"] for a in db.agents()] == ["A", "B"]
        with pytest.raises(InputError):
            db.ledger(status="won")
        rep2 = db.reconcile(policy=parse_policy_text("reconcile: {fee_bps: 1}", "x.yaml"))
        assert rep2.full and rep2.policy_hash != rep.policy_hash
