"""A live pass after a round of telemetry alone (`ledger.telemetry_pass`): the ledger rows of
its runs are a projection of their telemetry, nothing is priced or resolved, and the ledger
equals a full rebuild (`reconcile(full=True)`, the batch CLI's) byte for byte — whatever mix
of telemetry-only rounds, late signals, late pnl, bars and aliases came before and after."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.ledger import known_runs, telemetry_pass
from alphatrace.ledger.build import LEDGER_COLUMNS, telemetry_only_sql
from alphatrace.ledger.known_runs import KnownRuns
from alphatrace.ledger.market_cache import MarketCache
from alphatrace.ledger.reconcile import reconcile
from alphatrace.store import Store
from tests.ledger.helpers import add_bars, at, policy, run_reconcile
from tests.ledger.test_incremental_ledger import alpha, ingest, pnl, snapshot

MODELS = [None, "m1", "m2"]


def tel(eid: str, run: str, spec: tuple[Any, ...]) -> dict[str, Any]:
    """A telemetry event: latency, cost, tokens, errors, model, its time (None: none), and
    whether it has start/end times (then the run's latency is its wall time when all have)."""
    latency, cost, tokens, errors, model, minute, timed = spec
    ev: dict[str, Any] = {"type": "telemetry", "event_id": eid, "run_id": run,
                          "agent": "A", "latency_ms": latency, "cost_usd": cost,
                          "tokens_in": tokens, "errors": errors}
    if model is not None:
        ev["model"] = model
    if minute is not None:
        ev["ts"] = at(0, minute).isoformat() + "Z"
        if timed:
            ev["start_ts"] = ev["ts"]
            ev["end_ts"] = (at(0, minute) + dt.timedelta(milliseconds=latency)).isoformat() + "Z"
    return ev


TEL = st.tuples(st.floats(0, 5_000, allow_nan=False).map(lambda x: round(x, 3)),
                st.sampled_from([0.0, 0.001, 0.0125, 0.3]), st.integers(0, 9_000),
                st.integers(0, 2), st.sampled_from(MODELS),
                st.one_of(st.none(), st.integers(0, 600)), st.booleans())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), TEL), min_size=1, max_size=12))
def test_the_projection_is_the_ledger_row_of_a_telemetry_only_run(
        rows: list[tuple[int, tuple[Any, ...]]]) -> None:
    """`telemetry_only_sql` over a run's telemetry rows gives what `ledger_sql` (a full
    reconcile) gives for a run with no signal and no pnl, column for column."""
    with Store(":memory:") as s:
        ingest(s, [tel(f"t{i}", f"r{run}", spec) for i, (run, spec) in enumerate(rows)])
        run_reconcile(s, full=True)
        cols = ", ".join(LEDGER_COLUMNS)
        want = s.con.execute(f"SELECT {cols} FROM ledger ORDER BY run_id").fetchall()
        (ph,), = s.con.execute("SELECT DISTINCT policy_hash FROM ledger").fetchall()
        single = len({run for run, _ in rows}) == len(rows)
        for one_row in {False, single}:  # the text without the several-rows half too
            got = s.con.execute(f"SELECT {cols} FROM ({telemetry_only_sql(ph, 'telemetry', one_row)}) "
                                "ORDER BY run_id").fetchall()
            assert got == want


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What each `telemetry_pass.build` call answered (None: it left the round to the full
    pass)."""
    calls: list[Any] = []
    build = telemetry_pass.build

    def spy(*a: Any, **k: Any) -> Any:
        out = build(*a, **k)
        calls.append(out)
        return out

    monkeypatch.setattr(telemetry_pass, "build", spy)
    return calls


def _leg_rows(s: Store) -> list[Any]:
    return s.con.execute("SELECT rowid, * FROM legs ORDER BY rowid").fetchall()


def test_a_round_of_telemetry_alone_prices_nothing_and_equals_a_full_rebuild(
        taken: list[Any]) -> None:
    cache, known = MarketCache(min_room=2), KnownRuns()
    spec = (120.0, 0.01, 500, 0, "m1", 30, False)
    with Store(":memory:") as inc, Store(":memory:") as full:
        for s in (inc, full):
            add_bars(s, "BTCUSDT", [100.0 + i for i in range(6)])
            # r1 realized, r2 open (its exit bar is not there yet): a leg left not realized
            ingest(s, [alpha("a1", "r1", 0, horizon=3600), alpha("a2", "r2", 60, horizon=36_000),
                       pnl("p1", "r1", 12.0)])
        reconcile(inc, policy(), market=cache, runs=known)
        legs = _leg_rows(inc)
        for k, runs in enumerate((["t1", "t2"], ["t3", "t1"], ["t4"])):
            events = [tel(f"e{k}{i}", run, spec) for i, run in enumerate(runs)]
            for s in (inc, full):
                ingest(s, events)
            rep = reconcile(inc, policy(), market=cache, runs=known)
            run_reconcile(full, full=True)
            assert snapshot(inc) == snapshot(full)
            assert (rep.priced, rep.rebuilt) == (0, len(runs))
        # three rounds, each taken by the telemetry pass; the legs were not touched (the open
        # one was not priced again)
        assert [t[:2] for t in taken] == [(2, 2), (2, 1), (1, 1)]
        assert _leg_rows(inc) == legs
        # telemetry for a run with a signal: left to the full pass; then the open leg's exit
        # bar (the market moved: the full pass, which prices it)
        for change in ("telemetry", "bars"):
            for s in (inc, full):
                if change == "telemetry":
                    ingest(s, [tel("e9", "r1", spec)])
                else:
                    add_bars(s, "BTCUSDT", [200.0 + i for i in range(12)], start=at(6))
            reconcile(inc, policy(), market=cache, runs=known)
            run_reconcile(full, full=True)
            assert snapshot(inc) == snapshot(full)
        assert taken[3:] == [None]
        assert inc.con.execute("SELECT status FROM ledger WHERE run_id = 'r2'").fetchall() == [
            ("realized",)]
    assert known.reads == 1  # the ledger's runs read once, at the first pass that used them


def test_an_alias_added_beside_telemetry_is_not_missed(taken: list[Any]) -> None:
    """`symbol_aliases` is the store's: a pass that brought an alias and telemetry alone
    must resolve the signals again (the alias prices XBT's leg)."""
    cache, known = MarketCache(min_room=2), KnownRuns()
    with Store(":memory:") as inc, Store(":memory:") as full:
        for s in (inc, full):
            add_bars(s, "BTCUSDT", [100.0 + i for i in range(6)])
            ingest(s, [alpha("a1", "r1", 0, symbol="XBT", horizon=3600)])
        reconcile(inc, policy(), market=cache, runs=known)
        for s in (inc, full):
            s.con.execute("INSERT INTO symbol_aliases VALUES ('XBT', 'BTCUSDT')")
            ingest(s, [tel("e1", "t1", (1.0, 0.0, 1, 0, None, None, False))])
        reconcile(inc, policy(), market=cache, runs=known)
        run_reconcile(full, full=True)
        assert taken == []
        assert snapshot(inc) == snapshot(full)
        assert inc.con.execute("SELECT status FROM ledger WHERE run_id = 'r1'").fetchall() == [
            ("realized",)]


@st.composite
def rounds(draw: st.DrawFn) -> list[list[tuple[Any, ...]]]:
    """Rounds of: telemetry (new runs or runs already seen), late signals and late pnl for
    the same runs, bars, an alias."""
    run = st.integers(0, 6).map(lambda i: f"r{i}")
    act = st.one_of(
        st.tuples(st.just("tel"), run, TEL),
        st.tuples(st.just("tel"), run, TEL),
        st.tuples(st.just("tel"), run, TEL),
        st.tuples(st.just("alpha"), run, st.integers(0, 8 * 60),
                  st.sampled_from(["BTC", "XBT", "ETH"]), st.sampled_from(["LONG", "FLAT"]),
                  st.sampled_from([1800, 7200, 36_000])),
        st.tuples(st.just("pnl"), run, st.integers(-50, 50),
                  st.sampled_from([None, "BTC", "XBT"]), st.integers(0, 2)),
        st.tuples(st.just("bars"), st.integers(1, 6)),
        st.tuples(st.just("alias"), st.just(None)),
    )
    telemetry_round = st.lists(st.tuples(st.just("tel"), run, TEL), min_size=1, max_size=4)
    return draw(st.lists(st.one_of(telemetry_round, telemetry_round,
                                   st.lists(act, min_size=1, max_size=5)),
                         min_size=1, max_size=8))


@settings(max_examples=30, deadline=None)
@given(history=rounds())
def test_passes_over_telemetry_late_signals_and_pnl_equal_a_full_rebuild(
        history: list[list[tuple[Any, ...]]]) -> None:
    """Store `inc` reconciles after each round with one market cache (as the server's
    pipeline does), store `full` rebuilds everything; same ingests, same ledger and legs, and
    the same counts in the report, after every round."""
    cache, known = MarketCache(min_room=2), KnownRuns()
    n = 0
    with Store(":memory:") as inc, Store(":memory:") as full:
        stores = (inc, full)
        end = 8
        for s in stores:
            add_bars(s, "BTCUSDT", [100.0 + i for i in range(end)])
        for actions in history:
            events: list[dict[str, Any]] = []
            for kind, *a in actions:
                n += 1
                if kind == "tel":
                    events.append(tel(f"e{n}", a[0], a[1]))
                elif kind == "alpha":
                    events.append(alpha(f"e{n}", a[0], a[1], symbol=a[2], direction=a[3],
                                        horizon=a[4]))
                elif kind == "pnl":
                    events.append(pnl(f"e{n}", a[0], float(a[1]), symbol=a[2], revision=a[3]))
                elif kind == "bars":
                    for s in stores:
                        add_bars(s, "BTCUSDT", [300.0 + end + i for i in range(a[0])],
                                 start=at(end))
                    end += a[0]
                else:
                    for s in stores:
                        s.con.execute("INSERT OR IGNORE INTO symbol_aliases "
                                      "VALUES ('XBT', 'BTCUSDT')")
            if events:
                for s in stores:
                    ingest(s, events)
            got = reconcile(inc, policy(), market=cache, runs=known)
            want = run_reconcile(full, full=True)
            assert snapshot(inc) == snapshot(full), actions
            counts = ("legs", "realized", "open", "unpriced", "runs")
            assert ([getattr(got, c) for c in counts]
                    == [getattr(want, c) for c in counts]), actions


def test_a_held_runs_row_is_found_within_the_ts_span_the_set_keeps(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's rows of held runs are deleted within the span of `ts` the known-runs set
    keeps for them (`known_runs.ts_within`). A run's row moves in time: telemetry alone at
    05:00, then its signal at 01:00 (the row's ts becomes the signal's), then its exit bar.
    The third pass must find the row at 01:00: a set that kept only the first row's ts, or
    did not learn the rebuilt row's, would miss it and leave the run twice in the ledger."""
    bounds: list[str] = []
    within = known_runs.ts_within
    monkeypatch.setattr(known_runs, "ts_within",
                        lambda span: bounds.append(within(span)) or bounds[-1])
    cache, known = MarketCache(min_room=2), KnownRuns()
    spec = (120.0, 0.01, 500, 0, "m1", 300, False)
    with Store(":memory:") as inc, Store(":memory:") as full:
        _seed(inc, full, cache, known)
        rounds: list[list[dict[str, Any]] | None] = [
            [tel("e1", "x", spec)],                       # 05:00, telemetry alone
            [alpha("a2", "x", 60, horizon=6 * 3600)],     # 01:00, open: exit at 07:00
            None]                                         # bars through 11:00: realized
        for events in rounds:
            for s in (inc, full):
                if events is None:
                    add_bars(s, "BTCUSDT", [200.0 + i for i in range(6)], start=at(6))
                else:
                    ingest(s, events)
            reconcile(inc, policy(), market=cache, runs=known)
            run_reconcile(full, full=True)
            assert snapshot(inc) == snapshot(full)
        assert inc.con.execute("SELECT count(*), min(ts), any_value(status) FROM ledger "
                               "WHERE run_id = 'x'").fetchall() == [(1, at(0, 60), "realized")]
    # the second and third passes held x, each with a span
    assert [b for b in bounds if b != "true"] == [
        f"ts BETWEEN make_timestamp({_us(at(0, 300))}) AND make_timestamp({_us(at(0, 300))})",
        f"ts BETWEEN make_timestamp({_us(at(0, 60))}) AND make_timestamp({_us(at(0, 300))})"]


def test_a_held_telemetry_only_run_is_found_within_its_rows_ts_and_files(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose telemetry comes in two rounds is held by the second telemetry pass: its
    row is found and deleted within the `ts` span the known-runs set keeps, and its earlier
    telemetry read from a file no newer than its first (`telemetry_pass.build`'s `span`,
    `since`), not by reading the whole ledger and telemetry. Read here from the store: the
    row's ts and the file of its first telemetry."""
    calls: list[tuple[Any, Any]] = []
    build = telemetry_pass.build

    def spy(*a: Any, **k: Any) -> Any:
        calls.append((a[3:], k))
        return build(*a, **k)

    monkeypatch.setattr(telemetry_pass, "build", spy)
    cache, known = MarketCache(min_room=2), KnownRuns()
    first = (120.0, 0.01, 500, 0, "m1", 30, False)
    second = (80.0, 0.02, 300, 1, "m1", 45, False)
    with Store(":memory:") as inc, Store(":memory:") as full:
        _seed(inc, full, cache, known)
        for k, events in enumerate(([tel("e1", "t1", first)],
                                    [tel("e2", "t1", second), tel("e3", "t2", second)])):
            if k == 1:  # what the set must bound t1 by, read from the store
                (us, file1), = inc.con.execute(
                    "SELECT epoch_us(l.ts), (SELECT max(file_id) FROM telemetry "
                    "WHERE run_id = 't1') FROM ledger l WHERE run_id = 't1'").fetchall()
            for s in (inc, full):
                ingest(s, events)
            reconcile(inc, policy(), market=cache, runs=known)
            run_reconcile(full, full=True)
            assert snapshot(inc) == snapshot(full)
    assert len(calls) == 2 and calls[0][0] == (True, None, 0)  # t1 new: nothing to bound
    all_new, span, since = calls[1][0]
    assert (all_new, span) == (False, (us, us)) and 0 < since <= file1


def _seed(inc: Store, full: Store, cache: MarketCache, known: KnownRuns) -> None:
    """Six hourly bars and one realized run with a pnl event in both stores, `inc`
    reconciled with `cache` and `known`."""
    for s in (inc, full):
        add_bars(s, "BTCUSDT", [100.0 + i for i in range(6)])
        ingest(s, [alpha("a1", "r1", 0, horizon=3600), pnl("p1", "r1", 12.0)])
    reconcile(inc, policy(), market=cache, runs=known)


def _us(t: dt.datetime) -> int:
    return int((t - dt.datetime(1970, 1, 1)).total_seconds()) * 1_000_000


def test_a_full_rebuild_stores_the_ledger_in_ts_order() -> None:
    """What lets a held run's delete skip row groups (`reconcile._within`)."""
    with Store(":memory:") as s:
        add_bars(s, "BTCUSDT", [100.0 + i for i in range(6)])
        ingest(s, [alpha(f"a{i}", f"r{(7 * i) % 10}", (37 * i) % 240, horizon=3600)
                   for i in range(10)])
        run_reconcile(s, full=True)
        stored = [t for (t,) in s.con.execute("SELECT ts FROM ledger ORDER BY rowid").fetchall()]
        assert stored == sorted(stored) and len(set(stored)) > 5
