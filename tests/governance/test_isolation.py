"""One subject's failure never stops another subject's gate (issue #13 item 3): a subject whose
evaluation fails gets an `error` decision with the reason and keeps its lifecycle state; every
other subject is decided and recorded exactly as without it."""

from __future__ import annotations

from typing import Any

import duckdb
import pytest

import alphatrace as at
from alphatrace.api import Database
from alphatrace.governance import gates, journal
from tests.policies import SEED
from tests.rows import insert, series

from .chain import tamper

# A kills (last 5 runs sum to -150 < -100), B promotes (20 runs summing to 200 > 150), S is
# killed with A and cascades to nobody else; T promotes with B. By hand from docs/architecture.md §Governance.
GOOD = series("A", [-30.0] * 5, strategy="S") + series("B", [10.0] * 20, strategy="T")
# Two runs of 1e308 bps: every sum over them overflows to inf (a double's range ends at 1.8e308).
# Written straight into the ledger, as a store written before ingest's ranges holds them.
HUGE = series("BAD", [1e308] * 5, strategy="Z")

STABLE = ("subject", "scope", "action", "rule", "fired", "blocked", "state", "cascade_from",
          "metrics", "run_ids", "as_of", "policy_hash", "reason")


def content(recs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["scope"], r["subject"]): {k: r[k] for k in STABLE} for r in recs}


def alone(rows: list[dict[str, Any]], as_of: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The decisions on a store holding only `rows`: what the others must equal."""
    with at.connect(":memory:") as d:
        insert(d.con, rows)
        return content(d.gates.evaluate(SEED, catch_up=False, as_of=as_of))


AS_OF = "2024-01-01T19:00:00"  # after every run above (B's last is at hour 19)
LATER = "2024-01-02T03:00:00"  # after runs written at hours 25 and 26


def test_an_overflowing_subject_is_an_error_and_the_others_are_decided(db: Database) -> None:
    insert(db.con, GOOD + HUGE)
    got = content(db.gates.evaluate(SEED, catch_up=False, as_of=AS_OF))
    want = alone(GOOD, AS_OF)
    assert {k: v for k, v in got.items() if k[1] not in ("BAD", "Z")} == want
    assert {k: v["action"] for k, v in want.items()} == {
        ("agent", "A"): "kill", ("agent", "B"): "promote", ("strategy", "S"): "kill",
        ("strategy", "T"): "promote"}
    for key in (("agent", "BAD"), ("strategy", "Z")):
        bad = got[key]
        assert (bad["action"], bad["state"], bad["rule"], bad["fired"], bad["metrics"]) == (
            "error", "candidate", None, [], {})
        assert bad["reason"].startswith("ArithmeticError: metric ")
        assert bad["reason"].endswith("is inf (not finite)") and "Traceback" not in bad["reason"]
        assert bad["run_ids"] == [f"BAD{i:04d}" for i in range(5)]
    out = db.audit_verify()
    assert out["ok"], out["problems"]  # the error is re-derived from the same ledger


def test_an_error_keeps_a_killed_subject_killed(db: Database) -> None:
    insert(db.con, GOOD + series("BAD", [-30.0] * 5, strategy=None))
    first = content(db.gates.evaluate(SEED, catch_up=False, as_of=AS_OF))
    assert first[("agent", "BAD")]["state"] == "killed"
    insert(db.con, series("BAD", [1e308] * 2, strategy=None, start_hour=25, prefix="huge"))
    recs = db.gates.evaluate(SEED, catch_up=False, as_of=LATER)
    assert [(r["subject"], r["action"], r["state"]) for r in recs] == [
        ("BAD", "error", "killed")]  # nothing else changed: nothing else recorded
    assert journal.lifecycle_states(db.con)[("agent", "BAD")] == "killed"
    assert db.gates.evaluate(SEED, catch_up=False, as_of=LATER) == []  # the same error again is not re-recorded
    assert db.audit_verify()["ok"]


def test_a_cascade_still_kills_an_agent_whose_evaluation_failed(db: Database) -> None:
    # Z (BAD's strategy, only BAD's runs) is killed first; then BAD's sums overflow, so both
    # fail: Z stays killed (error), and BAD is killed by Z's cascade, which needs none of its
    # own metrics, its failure kept as the reason
    insert(db.con, GOOD + series("BAD", [-30.0] * 5, strategy="Z"))
    db.gates.evaluate(SEED, catch_up=False, as_of=AS_OF)
    insert(db.con, series("BAD", [1e308] * 2, strategy="Z", start_hour=25, prefix="huge"))
    recs = content(db.gates.evaluate(SEED, catch_up=False, as_of=LATER))
    assert set(recs) == {("agent", "BAD"), ("strategy", "Z")}
    z, bad = recs[("strategy", "Z")], recs[("agent", "BAD")]
    assert (z["action"], z["state"]) == ("error", "killed")
    assert (bad["action"], bad["rule"], bad["cascade_from"], bad["state"], bad["metrics"],
            bad["run_ids"]) == ("kill", "cascade", "Z", "killed", {}, [])
    assert bad["reason"] == z["reason"] and "is inf (not finite)" in bad["reason"]
    assert db.gates.evaluate(SEED, catch_up=False, as_of=LATER) == []
    assert db.audit_verify()["ok"]


def _fail_for(agent: str) -> Any:
    """metrics.compute that fails, with a real DuckDB error (which aborts the transaction it
    runs in), for any window holding a run of `agent`."""
    real = gates.metrics.compute

    def compute(con: duckdb.DuckDBPyConnection, sql: str, *a: Any, **kw: Any) -> Any:
        hit = con.execute(f"SELECT count(*) FROM ({sql}) WHERE agent = ?", [agent]).fetchall()
        if hit[0][0]:
            con.execute("SELECT 'not a number'::INTEGER")
        return real(con, sql, *a, **kw)

    return compute


def test_a_failing_metric_query_is_that_subjects_error(db: Database,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    insert(db.con, GOOD + series("BAD", [1.0] * 5, strategy="S"))
    want = alone(GOOD + series("BAD", [1.0] * 5, strategy="S"), AS_OF)
    monkeypatch.setattr(gates.metrics, "compute", _fail_for("BAD"))
    got = content(db.gates.evaluate(SEED, catch_up=False, as_of=AS_OF))
    # BAD's runs are in agent BAD and strategy S: both fail, A, B and T are as before
    assert {k: v for k, v in got.items() if k not in (("agent", "BAD"), ("strategy", "S"))} \
        == {k: v for k, v in want.items() if k not in (("agent", "BAD"), ("strategy", "S"))}
    for key in (("agent", "BAD"), ("strategy", "S")):
        assert got[key]["action"] == "error" and got[key]["state"] == "candidate"
        assert got[key]["reason"].startswith("ConversionException: Conversion Error: ")
    assert db.audit_verify()["ok"]  # the failure is still there: the replay agrees
    monkeypatch.undo()
    kinds = {p["kind"] for p in db.audit_verify()["problems"]}
    assert kinds == {"inputs_changed"}  # the subjects now evaluate: the records no longer follow


def test_a_rewritten_error_record_is_named(tmp_path: Any) -> None:
    path = tmp_path / "s.duckdb"
    with at.connect(path) as d:
        insert(d.con, GOOD + series("BAD", [-30.0] * 5, strategy=None))
        d.gates.evaluate(SEED, catch_up=False, as_of=AS_OF)  # BAD killed
        insert(d.con, series("BAD", [1e308] * 2, strategy=None, start_hour=25, prefix="huge"))
        recs = d.gates.evaluate(SEED, catch_up=False, as_of=LATER)
    seq = next(r["seq"] for r in recs if r["subject"] == "BAD")
    # the administrator turns the error into a way out of `killed`, hashes recomputed
    tamper(path, f"UPDATE decisions SET state = 'candidate' WHERE seq = {seq}")
    with at.connect(path, read_only=True) as d:
        got = [(p["seq"], p["kind"]) for p in d.audit_verify(recompute=False)["problems"]]
    assert got == [(seq, "rewritten")]


def test_the_backtest_never_acts_on_a_non_finite_point(db: Database) -> None:
    # BAD's sums are +inf from its first run: `promote_consistent` (rolling_pnl_bps > 150) would
    # fire on them; evaluate records an error instead, and the backtest acts on neither
    insert(db.con, GOOD + HUGE)
    got = {(r["scope"], r["subject"]): r for r in db.gates.backtest(SEED)["subjects"]}
    for key in (("agent", "BAD"), ("strategy", "Z")):
        assert (got[key]["promoted_at"], got[key]["killed_at"]) == (None, None)
    assert got[("agent", "A")]["kill_rule"] == "kill_drawdown"
    assert got[("agent", "B")]["promote_rule"] == "promote_consistent"
