"""The catch-up's bounded read of the ledger (`replay.window_runs`) equals the unbounded read,
row for row, whatever the marks, late runs, runs with no knowledge time, exclusions, window and
subjects that changed runs entered or left (late subjects, some with no run left at all); with
or without each subject's recorded first knowledge time (`ledger_subjects.first_known`, any
lower bound of it), which takes a young subject's read to two statements, and to one when the
catch-up's changes name it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.governance import replay
from alphatrace.governance.policy import GovernancePolicy, load_governance
from alphatrace.governance.runs import ORDER, data_as_of, ledger_sql, needed_columns
from alphatrace.policy import Policy
from tests.rows import T0, insert, run

AGENTS = ["A", "B", "C"]
STRATEGIES = ["S", "T", None]


@st.composite
def histories(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(0, 40))
    rows = []
    for i in range(n):
        hour = draw(st.floats(0, 3000, allow_nan=False).map(lambda x: round(x, 1)))
        pnl = draw(st.one_of(st.none(), st.floats(-50, 50, allow_nan=False)))
        r = run(f"r{i:03d}", draw(st.sampled_from(AGENTS)), pnl, hour=hour,
                strategy=draw(st.sampled_from(STRATEGIES)),
                lag_h=draw(st.sampled_from([0.0, 0.0, 1.0, 8.0, 200.0])))
        if pnl is not None and draw(st.integers(0, 9)) == 0:
            r["known_ts"] = None  # written by something other than reconcile: counts at ts
        rows.append(r)
    subjects = [("agent", a) for a in AGENTS] + [("strategy", s) for s in STRATEGIES if s]
    marks = {k: T0 + dt.timedelta(hours=draw(st.integers(0, 3200)))
             for k in draw(st.lists(st.sampled_from([*subjects, ("agent", "Gone")]),
                                    unique=True))}
    excluded = draw(st.lists(st.sampled_from([r["run_id"] for r in rows]), unique=True,
                             max_size=3)) if rows else []
    changed = draw(st.lists(st.tuples(st.sampled_from([*subjects, ("agent", "Gone")]),
                                      st.integers(0, 3200)), unique_by=lambda c: c[0],
                            max_size=3))
    return {"rows": rows, "marks": marks, "excluded": excluded, "changed": changed,
            "runs": draw(st.integers(1, 6)),
            "duration": draw(st.sampled_from([None, "24h", "30d"])),
            "target": T0 + dt.timedelta(hours=draw(st.integers(0, 3400)))}


def policy(runs: int, duration: str | None) -> GovernancePolicy:
    window: dict[str, Any] = {"runs": runs}
    if duration is not None:
        window["duration"] = duration
    return load_governance(Policy({"gates": {"window": window, "min_runs": 1}}, "<test>"))


def counted(rows: list[dict[str, Any]]) -> dict[tuple[str, str], tuple[int, dt.datetime]]:
    """Each subject's counted runs (realized, with a ts; a run without known_ts counts at its
    ts): how many, and the earliest knowledge time, computed here from the rows themselves."""
    out: dict[tuple[str, str], tuple[int, dt.datetime]] = {}
    for r in rows:
        if r.get("realized_pnl_bps") is None or r.get("ts") is None:
            continue
        t = r.get("known_ts") or r["ts"]
        for key in (("agent", r.get("agent")), ("strategy", r.get("strategy"))):
            if key[1] is not None:
                k, first = out.get(key, (0, t))
                out[key] = (k + 1, min(first, t))
    return out


def record_subjects(con: Any, rows: list[dict[str, Any]], slack_h: dict[tuple[str, str], int],
                    extra: int = 0) -> None:
    """What reconcile leaves for the gates: its log row for this ledger, and every subject
    with its runs (plus `extra`: the count may be high, never low) and its first knowledge
    time less `slack_h` hours (a lower bound, as an incremental reconcile keeps it); a subject
    given -1 has no time recorded."""
    con.execute("INSERT INTO reconcile_log (seq, policy_hash, runs, n_telemetry, n_pnl) "
                "VALUES (1, 'h', ?, 0, 0)", [len(rows)])
    for key, (k, t) in counted(rows).items():
        slack = slack_h.get(key, 0)
        con.execute("INSERT INTO ledger_subjects (scope, subject, runs, first_known) "
                    "VALUES (?, ?, ?, ?)",
                    [*key, k + extra, None if slack < 0 else t - dt.timedelta(hours=slack)])


@settings(max_examples=150)
@given(histories(), st.dictionaries(st.sampled_from(
    [("agent", a) for a in AGENTS] + [("strategy", s) for s in STRATEGIES if s]),
    st.sampled_from([0, 0, 1, 500, -1])), st.sampled_from([None, 0, 0, 1, 4]))
def test_the_bounded_read_equals_the_unbounded_read(h: dict[str, Any],
                                                     slack_h: dict[tuple[str, str], int],
                                                     extra: int | None) -> None:
    with at.connect(":memory:") as db:
        insert(db.con, h["rows"])
        if extra is not None:
            record_subjects(db.con, h["rows"], slack_h, extra)
        for rid in h["excluded"]:
            db.con.execute("INSERT INTO run_exclusions VALUES (?, 'test', 'excluded', NULL)",
                           [rid])
        gp = policy(h["runs"], h["duration"])
        cols = needed_columns(db.con, gp.gate_metrics())
        changed = None if not h["changed"] else pa.table({
            "scope": [k[0] for k, _ in h["changed"]], "subject": [k[1] for k, _ in h["changed"]],
            "known_ts": pa.array([T0 + dt.timedelta(hours=t) for _, t in h["changed"]],
                                 pa.timestamp("us"))})
        fast = replay.window_runs(db.con, gp, cols, h["marks"], h["target"], changed=changed)
        plain = replay.window_runs(db.con, gp, cols, h["marks"], h["target"], bounded=False,
                                   changed=changed)
        assert fast.to_pylist() == plain.to_pylist()


@pytest.mark.parametrize("recorded", [True, False])
@pytest.mark.parametrize("old_runs", [0, 1, 3, 5, 6, 30])
def test_a_sparse_subject_is_read_from_far_back(old_runs: int, recorded: bool) -> None:
    # B's newest runs before its mark are a year older than the mark: the bound widens to them
    with at.connect(":memory:") as db:
        rows = [run(f"b{i}", "B", -1.0, hour=i, strategy=None) for i in range(old_runs)]
        rows += [run(f"a{i}", "A", 1.0, hour=9000 + i, strategy=None) for i in range(30)]
        rows.append(run("b-new", "B", 2.0, hour=9100, strategy=None))
        insert(db.con, rows)
        if recorded:
            record_subjects(db.con, rows, {})
        gp = policy(5, None)
        cols = needed_columns(db.con, gp.gate_metrics())
        marks = {("agent", "A"): T0 + dt.timedelta(hours=9050),
                 ("agent", "B"): T0 + dt.timedelta(hours=9050)}
        target = T0 + dt.timedelta(hours=9200)
        got = replay.window_runs(db.con, gp, cols, marks, target)
        b = [r for r, s in zip(got.column("run_id").to_pylist(),
                               got.column("subject").to_pylist(), strict=True) if s == "B"]
        old = [f"b{i}" for i in range(max(0, old_runs - 5), old_runs)]
        assert b == [*old, "b-new"]


class Counted:
    """A connection that counts the window reads made through it (the statements ordered as
    `window_runs` orders its result)."""

    def __init__(self, con: Any) -> None:
        self.con, self.reads = con, 0

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self.reads += str(sql).endswith(f"ORDER BY scope, subject, {ORDER}")
        return self.con.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)


@pytest.mark.parametrize("named", [False, True])
@pytest.mark.parametrize("recorded", [True, False])
def test_a_young_subject_in_an_old_ledger_is_read_in_one_or_two_statements(
        recorded: bool, named: bool) -> None:
    # A has a run an hour for a year; Y has 3 runs over 200 days and a window of 5: all its
    # history is needed.
    with at.connect(":memory:") as db:
        rows = [run(f"a{i}", "A", 1.0, hour=i, strategy=None) for i in range(24 * 365)]
        rows += [run(f"y{i}", "Y", -1.0, hour=24 * (164 + 100 * i) + 0.5, strategy=None)
                 for i in range(3)]
        insert(db.con, rows)
        if recorded:
            record_subjects(db.con, rows, {})
        gp = policy(5, None)
        cols = needed_columns(db.con, gp.gate_metrics())
        marks = {("agent", "A"): T0 + dt.timedelta(hours=24 * 364),
                 ("agent", "Y"): T0 + dt.timedelta(hours=24 * 364)}
        target = T0 + dt.timedelta(hours=24 * 365)
        # `named`: the catch-up's `changes` names Y (its newest run entered after the mark)
        changed = None if not named else pa.table({
            "scope": ["agent"], "subject": ["Y"],
            "known_ts": pa.array([T0 + dt.timedelta(hours=24 * 364 + 12)], pa.timestamp("us"))})
        counted = Counted(db.con)
        got = replay.window_runs(counted, gp, cols, marks, target,  # type: ignore[arg-type]
                                 changed=changed)
        plain = replay.window_runs(db.con, gp, cols, marks, target, bounded=False,
                                   changed=changed)
        assert got.to_pylist() == plain.to_pylist()
        y = [r for r, s in zip(got.column("run_id").to_pylist(),
                               got.column("subject").to_pylist(), strict=True) if s == "Y"]
        assert y == ["y0", "y1", "y2"]
        # from the mark less an hour, then from Y's first run (A: 4 h back holds its 5 runs);
        # without the record, the bound widens fourfold a read until it passes Y's first run
        # 200 days back (1 h, 4 h, ..., 4^6 h = 171 days: short, 4^7 h: the whole ledger);
        # named and recorded (its 3 runs fit the window of 5), the first read starts there
        assert counted.reads == (8 if not recorded else 1 if named else 2)


@settings(max_examples=150)
@given(histories(), st.one_of(st.none(), st.integers(-100, 3400)))
def test_the_newest_knowledge_time_does_not_depend_on_the_bound(h: dict[str, Any],
                                                                 hint_h: int | None) -> None:
    """`data_as_of` with any `at_least` (before, inside or after the ledger's times, or none)
    is the newest knowledge time computed here from the rows: `known_ts`, else `ts`."""
    with at.connect(":memory:") as db:
        insert(db.con, h["rows"])
        times = [r.get("known_ts") or r["ts"] for r in h["rows"]]
        hint = None if hint_h is None else T0 + dt.timedelta(hours=hint_h)
        assert data_as_of(db.con, hint) == (max(times) if times else None)


@settings(max_examples=150)
@given(histories(), st.one_of(st.none(), st.integers(-100, 3400)),
       st.lists(st.sampled_from(["agent", "strategy", "ts", "known_ts", "realized_pnl_bps",
                                 "net_usd", "errors", "no_such_column"]), max_size=5))
def test_the_ledger_read_with_named_columns_holds_the_rows_computed_here(
        h: dict[str, Any], since_h: int | None, columns: list[str]) -> None:
    """`ledger_sql` with `columns` gives, per run known at or after `since` (its `known_ts`,
    else its `ts`), those of the columns the ledger has, and known_ts coalesced with ts:
    computed here from the rows inserted."""
    since = None if since_h is None else T0 + dt.timedelta(hours=since_h)
    with at.connect(":memory:") as db:
        insert(db.con, h["rows"])
        got = db.con.sql(f"SELECT * FROM {ledger_sql(db.con, since, ['run_id', *columns])} "
                         "ORDER BY run_id").to_arrow_table().to_pylist()
    named = [c for c in dict.fromkeys(["run_id", *columns])
             if c not in ("known_ts", "no_such_column")]
    want = []
    for r in sorted(h["rows"], key=lambda r: r["run_id"]):
        known = r.get("known_ts") or r["ts"]
        if since is None or known >= since:
            want.append({**{c: r.get(c) for c in named}, "known_ts": known})
    assert got == want


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(["agent", "strategy"]), st.sampled_from("abc"),
                          st.integers(0, 5), st.integers(0, 3), st.booleans()),
                max_size=40),
       st.one_of(st.none(), st.integers(0, 4)))
def test_window_rows_cut_and_number_each_subject_as_windows_in_sql_do(
        rows: list[tuple[str, str, int, int, bool]], n: int | None) -> None:
    """`replay.window_rows` on the rows in read order keeps and numbers what DuckDB's windows
    did in `runs_sql` until 2026-12-07: the new rows and the newest `n` others of each subject
    (`row_number()` over (subject, _new) in descending order), then `row_number()` over each
    subject in (known_ts, ts, run_id) order. `_new` is drawn freely here, not as a mark
    would set it: the cut must not depend on new rows coming last."""
    import duckdb

    con = duckdb.connect()
    tbl = pa.table({
        "scope": pa.array([r[0] for r in rows], pa.string()),
        "subject": pa.array([r[1] for r in rows], pa.string()),
        "known_ts": pa.array([T0 + dt.timedelta(hours=r[2]) for r in rows], pa.timestamp("us")),
        "ts": pa.array([T0 + dt.timedelta(hours=r[3]) for r in rows], pa.timestamp("us")),
        "run_id": pa.array([f"r{i:02d}" for i in range(len(rows))], pa.string()),
        "_new": pa.array([r[4] for r in rows], pa.bool_())})
    con.register("t", tbl)
    read = con.sql(f"SELECT * FROM t ORDER BY scope, subject, {ORDER}").to_arrow_table()
    keep = "true" if n is None else f"_new OR _rk <= {n}"
    want = con.sql(f"""
SELECT * EXCLUDE (_rk), row_number() OVER (PARTITION BY scope, subject ORDER BY {ORDER}) AS _i
FROM (SELECT *, row_number() OVER (PARTITION BY scope, subject, _new
                                   ORDER BY known_ts DESC, ts DESC, run_id DESC) AS _rk FROM t)
WHERE {keep} ORDER BY scope, subject, _i""").to_arrow_table()
    got = replay.window_rows(read, n)
    assert got.column_names == want.column_names
    assert got.to_pylist() == want.to_pylist()
