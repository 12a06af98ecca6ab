"""Incremental ledger: a reconcile rebuilds only the ledger rows of the runs that changed, and
the ledger it leaves equals a full rebuild byte for byte — events arriving through ingest in
random batches, interleaved with bars, aliases, removals and re-sent events."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.governance.replay import recorded_subjects
from alphatrace.ledger.known_runs import KnownRuns
from alphatrace.ledger.market_cache import MarketCache
from alphatrace.ledger.reconcile import reconcile
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.ledger.helpers import add_bars, add_funding, at, import_bars, policy, run_reconcile


def snapshot(store: Store) -> tuple[list[Any], list[Any]]:
    """Legs and ledger rows; a known_ts that is a file's arrival time (an external PnL without
    a ts) reads "arrival": two stores ingest the same files at different wall times."""
    # each fetched before the next query: `execute` returns the connection, whose result is
    # the last statement's (fetching both after the second compared no legs at all)
    legs = store.con.execute("SELECT * FROM legs ORDER BY event_id").fetchall()
    ledger = store.con.execute(
        "SELECT * REPLACE (CASE WHEN known_ts IN (SELECT ingested_at FROM ingested_files) "
        "THEN 'arrival' ELSE CAST(known_ts AS VARCHAR) END AS known_ts) "
        "FROM ledger ORDER BY run_id").fetchall()
    return legs, ledger


def alpha(eid: str, run: str, minute: int, *, symbol: str = "BTC", agent: str = "A",
          direction: str = "LONG", horizon: int | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "alpha", "event_id": eid, "run_id": run, "agent": agent,
                          "ts": at(0, minute).isoformat() + "Z", "symbol": symbol,
                          "direction": direction}
    if horizon is not None:
        ev["horizon"] = horizon
    return ev


def telemetry(eid: str, run: str, latency: float, *, agent: str = "A") -> dict[str, Any]:
    return {"type": "telemetry", "event_id": eid, "run_id": run, "agent": agent,
            "latency_ms": latency, "cost_usd": latency / 1000, "tokens_in": int(latency)}


def pnl(eid: str, run: str, bps: float, *, symbol: str | None = None,
        revision: int = 0) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "pnl", "event_id": eid, "run_id": run,
                          "realized_pnl_bps": bps, "revision": revision}
    if symbol is not None:
        ev["symbol"] = symbol
    return ev


def ingest(store: Store, events: list[dict[str, Any]]) -> None:
    _, results = ingest_events(store, events)
    assert all(r.status in ("accepted", "duplicate") for r in results), results


def test_a_new_event_rebuilds_only_its_run(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    ingest(store, [alpha(f"a{i}", f"r{i}", 60 * i, horizon=3600) for i in range(5)]
           + [telemetry(f"t{i}", f"r{i}", 10.0 * i) for i in range(5)])
    assert run_reconcile(store).rebuilt == 5
    ingest(store, [telemetry("t9", "r2", 7.0)])
    rep = run_reconcile(store)
    assert (rep.priced, rep.rebuilt, rep.runs) == (0, 1, 5)
    assert store.con.execute("SELECT n_telemetry, latency_ms FROM ledger WHERE run_id = 'r2'"
                             ).fetchall() == [(2, 27.0)]  # 20 + 7
    assert run_reconcile(store).rebuilt == 0  # nothing new: nothing rebuilt


def test_settlements_after_the_last_recorded_one_reprice_the_legs_exiting_at_or_after_them(
        ) -> None:
    """Funding that only gained settlements after the last one the ledger was priced with
    (04:00) moves only realized legs held across a new one (06:00): the pass reads the legs
    exiting at or after 06:00 (`reconcile._first_new_settlements`) and prices again exactly
    them, not those exiting between 04:00 and 06:00. A leg exiting at 06:00 itself is held
    across it, and every leg equals a full rebuild's."""
    cache, known = MarketCache(min_room=2), KnownRuns()
    signals = [alpha(f"a{m}_{h}", f"r{m}_{h}", m, horizon=h)
               for m in (30, 90, 150, 180, 210, 240, 270, 300) for h in (1800, 3600, 7200)]
    with Store(":memory:") as inc, Store(":memory:") as full:
        for s in (inc, full):
            add_bars(s, "BTCUSDT", [100.0 + i for i in range(24)])
            add_funding(s, "BTCUSDT", [(at(4), 0.001, None)])
            ingest(s, signals)
        reconcile(inc, policy(), market=cache, runs=known)
        run_reconcile(full, full=True)
        assert snapshot(inc) == snapshot(full)
        before = dict(inc.con.execute("SELECT event_id, funding_bps FROM legs").fetchall())
        for s in (inc, full):
            add_funding(s, "BTCUSDT", [(at(6), 0.002, None)])
        rep = reconcile(inc, policy(), market=cache, runs=known)
        run_reconcile(full, full=True)
        assert snapshot(inc) == snapshot(full)
        after = dict(inc.con.execute("SELECT event_id, funding_bps FROM legs").fetchall())
        (exiting_from, between), = inc.con.execute(
            "SELECT count(*) FILTER (exit_ts >= ?), count(*) FILTER (exit_ts > ? AND exit_ts < ?) "
            "FROM legs WHERE status = 'realized'", [at(6), at(4), at(6)]).fetchall()
        held_across = [e for e in after if after[e] != before[e]]
        assert rep.priced == exiting_from >= len(held_across) > 0 and between > 0
        # a leg exiting at 06:00 is held across it
        assert inc.con.execute(
            "SELECT count(*) FROM legs WHERE event_id IN (SELECT unnest(?)) AND exit_ts = ?",
            [held_across, at(6)]).fetchall()[0][0] > 0


def test_runs_the_ledger_held_are_rebuilt_from_all_their_rows_with_the_set_of_its_runs(
        ) -> None:
    """The live pipeline's way (`known_runs`): a run the ledger already held — an open leg
    whose exit bar came, a telemetry-only run whose signal came, a late pnl revision — is
    rebuilt from every row it has, not only the new ones, beside runs new to the ledger; the
    set is read from the ledger once and kept after, and a run it added is read from the
    file it came in on."""
    cache, known = MarketCache(min_room=2), KnownRuns()
    steps: list[tuple[list[dict[str, Any]], int]] = [
        ([alpha("a1", "r1", 60 * 20, horizon=36_000), telemetry("t1", "r1", 5.0),
          telemetry("t2", "r2", 6.0), pnl("p3", "r3", 12.0)], 0),
        ([alpha("a4", "r4", 60, horizon=3600), telemetry("t4", "r4", 7.0)], 0),
        ([telemetry("t1b", "r1", 9.0), alpha("a2", "r2", 120, horizon=3600),
          pnl("p3b", "r3", -4.0, revision=1), alpha("a5", "r5", 180, horizon=3600),
          telemetry("t5", "r5", 3.0)], 0),
        ([alpha("a6", "r6", 240, horizon=3600)], 24),  # r1's exit bar (hour 30) arrives
        ([pnl("p1", "r1", 20.0), telemetry("t6", "r6", 1.0), pnl("p7", "r7", 3.0)], 0),
        # runs this caller added (r5 at the third step, r6 at the fourth): their rows are
        # read from the files they came in on, not before
        ([telemetry("t6b", "r6", 2.0), pnl("p5", "r5", 1.0)], 0),
    ]
    with Store(":memory:") as inc, Store(":memory:") as full:
        for s in (inc, full):
            add_bars(s, "BTCUSDT", [100.0 + i for i in range(24)])
        bars = 24
        for events, more in steps:
            for s in (inc, full):
                ingest(s, events)
                if more:
                    add_bars(s, "BTCUSDT", [100.0 + bars + i for i in range(more)],
                             start=at(0, bars * 60))
            bars += more
            reconcile(inc, policy(), market=cache, runs=known)
            run_reconcile(full, full=True)
            assert snapshot(inc) == snapshot(full)
        assert inc.con.execute("SELECT count(*), count(DISTINCT run_id) FROM ledger"
                               ).fetchall() == [(7, 7)]
        assert inc.con.execute("SELECT status, n_telemetry, n_pnl FROM ledger WHERE "
                               "run_id = 'r1'").fetchall() == [("realized", 2, 1)]
    assert known.reads == 1


def test_an_open_leg_is_priced_when_its_exit_bar_arrives(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(5)])
    ingest(store, [alpha("a1", "r1", 3 * 60 + 30, horizon=7200),
                   alpha("a2", "r2", 0, horizon=3600)])  # realized at once
    run_reconcile(store)
    assert store.con.execute("SELECT status FROM ledger WHERE run_id = 'r1'").fetchall() == [
        ("open",)]
    add_bars(store, "BTCUSDT", [105.0, 106.0, 107.0], start=at(5))
    rep = run_reconcile(store)
    assert (rep.priced, rep.rebuilt) == (1, 1)
    # entry at the 04:00 bar (104), exit at 06:00 (106), 5 bps fees a side
    got = store.con.execute("SELECT status, paper_pnl_bps FROM ledger WHERE run_id = 'r1'"
                            ).fetchall()
    assert got[0][0] == "realized"
    assert got[0][1] == pytest.approx(((106 * (1 - 5e-4)) / (104 * (1 + 5e-4)) - 1) * 1e4)


def test_a_removed_event_rebuilds_everything(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    ingest(store, [alpha("a1", "r1", 0), telemetry("t1", "r1", 5.0),
                   telemetry("t2", "r2", 6.0)])
    run_reconcile(store)
    store.con.execute("DELETE FROM telemetry WHERE event_id = 't2'")
    rep = run_reconcile(store)
    assert (rep.rebuilt, rep.runs) == (1, 1)  # every run rebuilt: r2 is gone
    assert [r[0] for r in store.con.execute("SELECT run_id FROM ledger").fetchall()] == ["r1"]


def test_a_removed_signal_rebuilds_its_run(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    ingest(store, [alpha("a1", "r1", 0), alpha("a2", "r1", 60, symbol="ETHUSDT"),
                   alpha("a3", "r2", 0)])
    run_reconcile(store)
    store.con.execute("DELETE FROM alpha WHERE event_id = 'a2'")
    rep = run_reconcile(store)
    assert (rep.rebuilt, rep.legs) == (1, 2)
    assert store.con.execute("SELECT n_legs, symbols FROM ledger WHERE run_id = 'r1'"
                             ).fetchall() == [(1, "BTCUSDT")]


def test_a_new_alias_rebuilds_the_runs_whose_pnl_symbol_it_resolves(store: Store) -> None:
    add_bars(store, "BTCUSDT", [100.0 + i for i in range(48)])
    # r1: a BTC leg, and a pnl figure for "XBT", unresolved at first: weighted apart
    ingest(store, [alpha("a1", "r1", 0, horizon=3600), pnl("p1", "r1", 40.0, symbol="XBT"),
                   alpha("a2", "r2", 0, horizon=3600), pnl("p2", "r2", 10.0, symbol="BTC")])
    run_reconcile(store)
    store.con.execute("INSERT INTO symbol_aliases VALUES ('XBT', 'BTCUSDT')")
    rep = run_reconcile(store)
    assert rep.rebuilt == 1
    incremental = snapshot(store)
    run_reconcile(store, full=True)
    assert snapshot(store) == incremental


def test_another_ledger_definition_rebuilds_everything(store: Store) -> None:
    ingest(store, [telemetry("t1", "r1", 5.0), telemetry("t2", "r2", 6.0)])
    run_reconcile(store)
    store.con.execute("UPDATE ledger_build SET definition = 'older'")
    assert run_reconcile(store).rebuilt == 2


SYMBOLS = ["BTC", "ETHUSDT", "XBT", "SOL"]


@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, Any]]:
    # a few runs that events keep touching, and runs of one event, UUIDs in no order
    run = st.one_of(st.integers(0, 7).map(lambda i: f"r{i}"), st.uuids().map(str))
    event = st.one_of(
        st.tuples(st.just("alpha"), run, st.integers(-30, 30 * 60), st.sampled_from(SYMBOLS),
                  st.sampled_from(["LONG", "SHORT", "FLAT"]),
                  st.sampled_from([None, 1800, 7200, 36_000]), st.sampled_from(["A", "B"])),
        st.tuples(st.just("telemetry"), run, st.integers(0, 500)),
        st.tuples(st.just("pnl"), run, st.integers(-80, 80),
                  st.sampled_from([None, "BTC", "XBT", "ETH"]), st.integers(0, 3)),
    )
    op = st.one_of(
        st.tuples(st.just("batch"), st.lists(event, min_size=1, max_size=8)),
        st.tuples(st.just("bars"), st.tuples(st.sampled_from(["BTCUSDT", "ETHUSDT"]),
                                             st.integers(1, 12))),
        st.tuples(st.just("alias"), st.just(None)),
        st.tuples(st.just("remove"), st.integers(0, 10_000)),
        st.tuples(st.just("resend"), st.integers(0, 10_000)),
        st.tuples(st.just("edit"), st.integers(0, 30)),
        st.tuples(st.just("correct"), st.integers(0, 30)),
        st.tuples(st.just("import"), st.integers(1, 4)),
        st.tuples(st.just("funding"), st.integers(0, 40)),
        st.tuples(st.just("other"), st.lists(event, min_size=1, max_size=4)),
    )
    return draw(st.lists(op, min_size=1, max_size=7))


def _event(n: int, spec: tuple[Any, ...]) -> dict[str, Any]:
    kind, run_id, *rest = spec
    if kind == "alpha":
        minute, symbol, direction, horizon, agent = rest
        return alpha(f"e{n}", run_id, minute, symbol=symbol, agent=agent, direction=direction,
                     horizon=horizon)
    if kind == "telemetry":
        return telemetry(f"e{n}", run_id, float(rest[0]))
    bps, symbol, revision = rest
    return pnl(f"e{n}", run_id, float(bps), symbol=symbol, revision=revision)


@pytest.mark.slow
@settings(max_examples=25)
@given(history=histories())
def test_incremental_ledger_equals_a_full_rebuild_after_every_batch(
        history: list[tuple[str, Any]]) -> None:
    """Store `inc` reconciles incrementally, with one market cache and one set of the
    ledger's runs for all its reconciles (as the server's pipeline does), store `full`
    rebuilds everything; both receive the same ingests (same file ids) and changes, and must
    hold the same legs and ledger. `other`: events reconciled into `inc` by another caller
    (the batch CLI) before its own reconcile, which must notice."""
    cache = MarketCache(min_room=2)
    known = KnownRuns()
    with Store(":memory:") as inc, Store(":memory:") as full:
        stores = (inc, full)
        ends = {"BTCUSDT": 24, "ETHUSDT": 24 * 4}
        for s in stores:
            add_bars(s, "BTCUSDT", [100.0 + i for i in range(ends["BTCUSDT"])])
            add_bars(s, "ETHUSDT", [50.0 + i / 8 for i in range(ends["ETHUSDT"])],
                     interval_s=900)
        sent: list[dict[str, Any]] = []
        for op, arg in history:
            if op == "batch":
                events = [_event(len(sent) + i, spec) for i, spec in enumerate(arg)]
                sent += events
                for s in stores:
                    ingest(s, events)
            elif op == "bars":
                symbol, n = arg
                iv = 3600 if symbol == "BTCUSDT" else 900
                for s in stores:
                    add_bars(s, symbol, [300.0 + ends[symbol] + i for i in range(n)],
                             interval_s=iv, start=at(0, ends[symbol] * iv / 60))
                ends[symbol] += n
            elif op == "alias":
                for s in stores:
                    s.con.execute("INSERT OR IGNORE INTO symbol_aliases VALUES ('XBT', 'BTCUSDT')")
            elif op == "remove" and sent:
                eid = sent[arg % len(sent)]["event_id"]
                for s in stores:
                    for table in ("alpha", "telemetry", "pnl"):
                        s.con.execute(f"DELETE FROM {table} WHERE event_id = ?", [eid])
            elif op == "resend" and sent:
                for s in stores:
                    ingest(s, [sent[arg % len(sent)]])
            elif op == "edit":  # history changed: the legs of that market are re-priced
                for s in stores:
                    s.con.execute("UPDATE bars SET open = open * 1.01 WHERE ts = ?",
                                  [at(arg)])
                cache.drop()  # raw SQL in place: not what the cache sees (market_cache.py)
            elif op == "correct":  # a bar corrected by `market import`: the cache sees it
                k = arg % ends["BTCUSDT"]
                for s in stores:
                    (o,), = s.con.execute("SELECT open FROM bars WHERE symbol = 'BTCUSDT' AND "
                                          "ts = ?", [at(k)]).fetchall()
                    import_bars(s, "BTCUSDT", [(at(k), o * 0.98)], "1h")
            elif op == "import":  # bars appended by `market import`
                n = ends["BTCUSDT"]
                for s in stores:
                    import_bars(s, "BTCUSDT", [(at(n + i), 400.0 + i) for i in range(arg)], "1h")
                ends["BTCUSDT"] += arg
            elif op == "funding":  # a settlement inside or after the legs' holding windows
                for s in stores:
                    s.con.execute("INSERT OR REPLACE INTO funding VALUES ('BTCUSDT', ?, 0.001, "
                                  "NULL)", [at(arg)])
            elif op == "other":
                events = [_event(len(sent) + i, spec) for i, spec in enumerate(arg)]
                sent += events
                for s in stores:
                    ingest(s, events)
                reconcile(inc, policy())
            got = reconcile(inc, policy(), market=cache, runs=known)
            want = run_reconcile(full, full=True)
            assert snapshot(inc) == snapshot(full), (op, arg)
            # the set of the ledger's runs holds every one of them (more are allowed)
            ledger_h = inc.con.execute("SELECT hash(run_id) AS h FROM ledger").fetchnumpy()["h"]
            assert known.seq is None or known.find(ledger_h)[0].all(), (op, arg)
            # what the next reconcile compares with: the symbol keys an incremental reconcile
            # writes (only those that changed, or none) equal those resolved from scratch
            for keys in ("ledger_alpha_keys", "ledger_pnl_keys"):
                assert _rows(inc, keys) == _rows(full, keys), (op, arg, keys)
            counts = ("legs", "realized", "open", "unpriced", "runs")
            assert ([getattr(got, c) for c in counts]
                    == [getattr(want, c) for c in counts]), (op, arg)
            # as recorded for the next pass, which may count on from them (`LegTally`)
            assert logged_counts(inc) == table_counts(inc), (op, arg)
            # the subjects gates read instead of a DISTINCT over the ledger: every subject with
            # a realized run (more are allowed: subjects whose runs are no longer realized)
            recorded = recorded_subjects(inc.con)
            assert recorded is not None and recorded.keys() >= realized_subjects(inc), (op, arg)
            # each with its counted runs, exactly, and a lower bound of their first knowledge
            # time (exact after a full rebuild), as the gates' window read trusts them
            for store, exact in ((inc, False), (full, True)):
                want_runs = counted_runs(store)  # its own: an arrival time is the store's
                got_runs = recorded_subjects(store.con)
                assert got_runs is not None
                for key, rec in got_runs.items():
                    assert rec is not None
                    n, first = want_runs.get(key, (0, None))
                    assert rec.runs == n, (op, arg, key)
                    if first is not None:
                        assert rec.first_known is not None, (op, arg, key)
                        assert (rec.first_known == first if exact
                                else rec.first_known <= first), (op, arg, key)


def table_counts(store: Store) -> tuple[int, ...]:
    """Legs, realized, open and unpriced, and ledger rows, counted in the tables."""
    row = store.con.execute(
        "SELECT count(*), count(*) FILTER (status = 'realized'), count(*) FILTER (status = "
        "'open'), count(*) FILTER (status = 'unpriced'), (SELECT count(*) FROM ledger) "
        "FROM legs").fetchall()[0]
    return tuple(int(x) for x in row)


def logged_counts(store: Store) -> tuple[int, ...]:
    """The same as the last `reconcile_log` row records them."""
    row = store.con.execute("SELECT legs, realized, open, unpriced, runs FROM reconcile_log "
                            "ORDER BY seq DESC LIMIT 1").fetchall()[0]
    return tuple(int(x) for x in row)


def _rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    return store.con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()


def counted_runs(store: Store) -> dict[tuple[str, str], tuple[int, Any]]:
    """Each subject's runs governance may count (realized, with a ts), read row by row from
    the ledger here: how many, and the earliest knowledge time (known_ts, else ts)."""
    out: dict[tuple[str, str], tuple[int, Any]] = {}
    for agent, strategy, ts, known in store.con.execute(
            "SELECT agent, strategy, ts, known_ts FROM ledger "
            "WHERE realized_pnl_bps IS NOT NULL AND ts IS NOT NULL").fetchall():
        t = known if known is not None else ts
        for key in (("agent", agent), ("strategy", strategy)):
            if key[1] is not None:
                n, first = out.get(key, (0, t))
                out[key] = (n + 1, min(first, t))
    return out


def realized_subjects(store: Store) -> set[tuple[str, str]]:
    return {(sc, s) for sc, s in store.con.execute(
        "SELECT 'agent', agent FROM ledger WHERE realized_pnl_bps IS NOT NULL "
        "AND agent IS NOT NULL UNION "
        "SELECT 'strategy', strategy FROM ledger WHERE realized_pnl_bps IS NOT NULL "
        "AND strategy IS NOT NULL").fetchall()}
