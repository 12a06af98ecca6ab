"""Gate decisions at the boundaries of docs/architecture.md §Governance, cascades, revive, as-of, windows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from alphatrace.api import Database
from alphatrace.errors import GovernanceError, NotFoundError
from tests.policies import SEED, SEED_RULES
from tests.rows import T0, exclude, insert, run, series


def evaluate(db: Database, policy: Any = SEED, **kw: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["scope"], r["subject"]): r
            for r in db.gates.evaluate(policy, catch_up=False, **kw)}


def agent(db: Database, name: str = "A", **kw: Any) -> dict[str, Any]:
    return evaluate(db, **kw)[("agent", name)]


def policy(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "p.yaml"
    p.write_text(text)
    return p


# 20 runs whose sum is exactly `total` (multiples of 0.25: exact in binary)
def twenty(total: float) -> list[float]:
    return [total / 20] * 20


@pytest.mark.parametrize(("total", "action"), [(150.0, "hold"), (150.25, "promote"),
                                               (149.75, "hold")])
def test_promote_needs_more_than_150_bps(db: Database, total: float, action: str) -> None:
    insert(db.con, series("A", twenty(total), strategy=None))
    d = agent(db)
    assert d["metrics"]["rolling_pnl_bps"] == total
    assert d["action"] == action
    assert d["rule"] == ("promote_consistent" if action == "promote" else None)
    assert d["state"] == ("promoted" if action == "promote" else "candidate")


def test_rolling_sum_reads_only_the_last_20_runs(db: Database) -> None:
    # 5 old runs of +100 then 20 runs summing to exactly 150: the old runs are out of the window
    insert(db.con, series("A", [100.0] * 5 + twenty(150.0), strategy=None))
    d = agent(db)
    assert d["metrics"]["rolling_pnl_bps"] == 150.0 and d["action"] == "hold"
    assert d["run_ids"] == [f"A{i:04d}" for i in range(5, 25)]


@pytest.mark.parametrize(("with_errors", "action"), [(4, "hold"), (5, "kill")])
def test_error_rate_exactly_0_2_does_not_kill(db: Database, with_errors: int, action: str) -> None:
    rows = series("A", [1.0] * 20, strategy=None)
    for r in rows[:with_errors]:
        r["errors"] = 2
    insert(db.con, rows)
    d = agent(db)
    assert d["metrics"]["error_rate"] == with_errors / 20
    assert d["action"] == action


@pytest.mark.parametrize(("last5", "action"), [(-100.0, "hold"), (-100.25, "kill")])
def test_last_5_runs_exactly_minus_100_does_not_kill(db: Database, last5: float, action: str) -> None:
    insert(db.con, series("A", [-1000.0] + [last5 / 5] * 5, strategy=None))
    d = agent(db)
    assert d["metrics"]["last_5_runs_pnl"] == last5
    assert d["action"] == action


@pytest.mark.parametrize(("latency", "action"), [(700.0, "hold"), (699.0, "promote")])
def test_median_latency_exactly_700_blocks_promotion(db: Database, latency: float, action: str) -> None:
    insert(db.con, series("A", [10.0] * 20, strategy=None, latency_ms=latency))
    assert agent(db)["action"] == action


def test_an_error_blocks_promotion(db: Database) -> None:
    rows = series("A", [10.0] * 20, strategy=None)
    rows[3]["errors"] = 1
    insert(db.con, rows)
    d = agent(db)
    assert d["metrics"]["error_rate"] == 0.05 and d["action"] == "hold"


def test_missing_latency_blocks_promotion(db: Database) -> None:
    insert(db.con, series("A", [10.0] * 20, strategy=None, latency_ms=None))
    d = agent(db)
    assert d["metrics"]["median_latency_ms"] is None and d["action"] == "hold"


@pytest.mark.parametrize(("n", "action"), [(4, "inconclusive"), (5, "kill")])
def test_exactly_min_runs_is_conclusive(db: Database, n: int, action: str) -> None:
    insert(db.con, series("A", [-50.0] * n, strategy=None))
    d = agent(db)
    assert d["metrics"]["runs"] == n and d["action"] == action
    assert d["fired"] == (["kill_drawdown"] if action == "kill" else [])


def test_kill_wins_over_promote(db: Database) -> None:
    insert(db.con, series("A", [30.0] * 15 + [-21.0] * 5, strategy=None))
    d = agent(db)
    assert d["metrics"]["rolling_pnl_bps"] == 345.0 and d["metrics"]["last_5_runs_pnl"] == -105.0
    assert d["fired"] == ["kill_drawdown", "promote_consistent"]
    assert d["action"] == "kill" and d["rule"] == "kill_drawdown" and d["state"] == "killed"


def test_ties_in_time_are_broken_by_run_id(db: Database) -> None:
    same = T0 + dt.timedelta(hours=1)
    # 21 runs at the same time: the window keeps the 20 largest run ids, dropping "r00" (+1000)
    rows = [run(f"r{i:02d}", "A", 1000.0 if i == 0 else 7.5, ts=same, strategy=None)
            for i in range(21)]
    insert(db.con, list(reversed(rows)))
    d = agent(db)
    assert d["run_ids"] == [f"r{i:02d}" for i in range(1, 21)]
    assert d["metrics"]["rolling_pnl_bps"] == 150.0 and d["action"] == "hold"


def test_strategy_class_is_judged_on_all_its_runs(db: Database) -> None:
    # two agents, 10 runs each, interleaved in time: the strategy window holds all 20
    insert(db.con, series("A", [8.0] * 10, strategy="S") +
           series("B", [8.0] * 10, strategy="S", start_hour=0.5))
    out = evaluate(db)
    s = out[("strategy", "S")]
    assert s["metrics"]["rolling_pnl_bps"] == 160.0 and s["action"] == "promote"
    assert out[("agent", "A")]["action"] == "hold"  # 80 bps alone
    assert s["run_ids"][:3] == ["A0000", "B0000", "A0001"]


def test_a_killed_strategy_kills_its_agents(db: Database) -> None:
    rows = (series("A", [-30.0] * 5, strategy="S", start_hour=20)  # the newest S runs
            + series("B", [40.0] * 20, strategy="S")     # would be promoted
            + series("C", [1.0] * 2, strategy="S")       # inconclusive
            + series("D", [1.0] * 5, strategy="T"))      # another strategy: untouched
    insert(db.con, rows)
    out = evaluate(db)
    assert out[("strategy", "S")]["metrics"]["last_5_runs_pnl"] == -150.0
    assert out[("strategy", "S")]["action"] == "kill"
    assert out[("agent", "A")]["rule"] == "kill_drawdown"
    assert out[("agent", "A")]["cascade_from"] is None
    for name in ("B", "C"):
        d = out[("agent", name)]
        assert (d["action"], d["rule"], d["cascade_from"], d["state"]) == (
            "kill", "cascade", "S", "killed")
    assert out[("agent", "B")]["fired"] == ["promote_consistent"]  # its own verdict is kept
    assert out[("agent", "D")]["action"] == "hold"
    assert db.audit_show("B")[-1]["cascade_from"] == "S"


def test_strategy_kill_by_error_rate_cascades(db: Database) -> None:
    a = series("A", [5.0] * 10, strategy="S")
    b = series("B", [5.0] * 10, strategy="S", start_hour=0.5)
    for r in b[:5]:
        r["errors"] = 1
    insert(db.con, a + b)
    out = evaluate(db)
    assert out[("strategy", "S")]["metrics"]["error_rate"] == 0.25
    assert out[("strategy", "S")]["action"] == "kill"
    assert out[("agent", "B")]["rule"] == "kill_drawdown"  # 5/10 errors: its own kill
    assert out[("agent", "A")]["rule"] == "cascade"


def test_cascade_reaches_agents_without_realized_runs(db: Database) -> None:
    insert(db.con, series("A", [-30.0] * 5, strategy="S") + series("Z", [None], strategy="S"))
    z = evaluate(db)[("agent", "Z")]
    assert (z["action"], z["cascade_from"], z["metrics"], z["run_ids"]) == ("kill", "S", {}, [])


def test_kills_block_promotion_until_revive(db: Database, tmp_path: Path) -> None:
    insert(db.con, series("A", [-30.0] * 5, strategy=None))
    assert agent(db)["action"] == "kill"
    insert(db.con, series("A", [40.0] * 20, strategy=None, start_hour=10, prefix="B"))
    d = agent(db)
    assert d["fired"] == ["promote_consistent"]
    assert (d["action"], d["rule"], d["blocked"], d["state"]) == ("hold", "promote_consistent",
                                                                  True, "killed")
    rec = db.revive("A", "new prompt deployed")
    assert (rec["action"], rec["state"], rec["reason"]) == ("revive", "candidate",
                                                            "new prompt deployed")
    d = agent(db)
    assert (d["action"], d["state"], d["blocked"]) == ("promote", "promoted", False)


def test_revive_rules(db: Database) -> None:
    insert(db.con, series("A", [-30.0] * 5, strategy="S", start_hour=5)
           + series("B", [1.0] * 5, strategy="S"))
    with pytest.raises(GovernanceError, match="not killed"):
        db.revive("A", "why")  # never evaluated: candidate
    evaluate(db)
    with pytest.raises(GovernanceError, match="--reason"):
        db.revive("A", "  ")
    with pytest.raises(GovernanceError, match="killed strategy 'S'"):
        db.revive("B", "fixed")
    with pytest.raises(NotFoundError):
        db.revive("nobody", "x")
    db.revive("S", "new risk limits")
    db.revive("B", "fixed")
    states = {(r["scope"], r["subject"]): r["state"] for r in db.audit_show("B")}
    assert states[("agent", "B")] == "candidate"
    # same data, same policy: the gates kill again (revive is not an exemption)
    out = evaluate(db)
    assert out[("strategy", "S")]["action"] == "kill" and out[("agent", "B")]["rule"] == "cascade"


def test_a_name_that_is_both_agent_and_strategy_needs_a_scope(db: Database) -> None:
    insert(db.con, series("X", [-30.0] * 5, strategy="X"))
    evaluate(db)
    with pytest.raises(GovernanceError, match="--scope"):
        db.revive("X", "why")
    db.revive("X", "why", scope="strategy")
    assert db.audit_show("X", scope="strategy")[-1]["action"] == "revive"


def test_as_of_uses_only_runs_at_or_before_it(db: Database) -> None:
    insert(db.con, series("A", [-30.0] * 4 + [-30.0] + [10.0] * 20, strategy=None))
    # as of the 4th run (hour 3): 4 runs → inconclusive; as of hour 4 exactly: 5 runs → kill
    d = agent(db, as_of="2024-01-01T03:00:00", record=False)
    assert d["action"] == "inconclusive" and d["run_ids"][-1] == "A0003"
    d = agent(db, as_of="2024-01-01T04:00:00Z", record=False)
    assert d["action"] == "kill" and d["as_of"] == "2024-01-01T04:00:00.000000Z"
    d = agent(db, as_of="2024-01-01T06:00:00+02:00", record=False)  # = 04:00 UTC
    assert d["action"] == "kill"
    assert agent(db, record=False)["action"] == "promote"  # default: newest run (hour 24)


def test_default_as_of_is_the_newest_run(db: Database) -> None:
    insert(db.con, series("A", [1.0] * 5, strategy=None))
    assert agent(db)["as_of"] == "2024-01-01T04:00:00.000000Z"


def test_time_window(db: Database, tmp_path: Path) -> None:
    p = policy(tmp_path, "gates:\n  window: {runs: 20, duration: 10h}\n  min_runs: 1\n" + SEED_RULES)
    insert(db.con, series("A", [-100.0] * 5 + [1.0] * 10, strategy=None))
    # newest run at hour 14: window is (04:00, 14:00] → hours 5..14, the 10 runs of +1
    d = agent(db, policy=p)
    assert d["run_ids"] == [f"A{i:04d}" for i in range(5, 15)]
    assert d["action"] == "hold"
    d = agent(db, policy=p, as_of="2024-01-01T05:00:00", record=False)  # (−05:00, 05:00]: hours 0..5
    assert d["metrics"]["runs"] == 6 and d["action"] == "kill"


def test_excluded_runs_do_not_count(db: Database) -> None:
    insert(db.con, series("A", [-30.0] * 5, strategy=None))
    exclude(db.con, ["A0002"])
    d = agent(db)
    assert d["metrics"]["runs"] == 4 and "A0002" not in d["run_ids"]
    assert d["action"] == "inconclusive"


def test_rule_scope_and_custom_metrics(db: Database, tmp_path: Path) -> None:
    p = policy(tmp_path, """gates:
  min_runs: 3
  rules:
    - {name: strat_only, action: kill, when: "hit_rate < 0.5", scope: [strategy]}
    - {name: sharp, action: promote, when: "sharpe > 1 and max_drawdown_bps <= 10"}
""")
    insert(db.con, series("A", [-1.0, 5.0, 6.0, 7.0], strategy="S"))
    out = evaluate(db, policy=p)
    a = out[("agent", "A")]
    # hit rate 3/4; sharpe = mean 4.25 / sd(−1,5,6,7)=3.594 → 1.18; drawdown 1 bps
    assert a["metrics"]["hit_rate"] == 0.75
    assert a["metrics"]["sharpe"] == pytest.approx(4.25 / 3.593976442, rel=1e-9)
    assert a["metrics"]["max_drawdown_bps"] == 1.0
    assert a["action"] == "promote"
    insert(db.con, series("B", [-1.0] * 6, strategy="S", start_hour=0.5))
    out = evaluate(db, policy=p)
    assert out[("strategy", "S")]["action"] == "kill" and out[("agent", "B")]["rule"] == "cascade"
    assert "strat_only" not in out[("agent", "B")]["fired"]


def test_scope_agent_only(db: Database, tmp_path: Path) -> None:
    p = policy(tmp_path, "gates:\n  scope: [agent]\n")
    insert(db.con, series("A", [1.0] * 5, strategy="S"))
    assert set(evaluate(db, policy=p)) == {("agent", "A")}


def test_empty_ledger(db: Database) -> None:
    assert db.gates.evaluate(SEED, catch_up=False) == []
    assert db.audit_verify()["ok"] is True


def test_pure_time_window(db: Database, tmp_path: Path) -> None:
    p = policy(tmp_path, "gates:\n  window: {runs: null, duration: 3h}\n  min_runs: 1\n")
    insert(db.con, series("A", [-40.0] * 30, strategy="S"))
    out = evaluate(db, policy=p, record=False)
    # newest run at hour 29: (26:00, 29:00] holds hours 27, 28, 29
    for key in (("agent", "A"), ("strategy", "S")):
        assert out[key]["run_ids"] == ["A0027", "A0028", "A0029"]
        assert out[key]["metrics"]["runs"] == 3
