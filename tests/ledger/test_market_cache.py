"""A reconciler that keeps the market between passes (`ledger.market_cache`, the server's
pipeline) prepares exactly the market a full read gives — profiles, chosen bars, funding sums,
and so legs and ledger — whatever happened to the market tables in between: bars and funding
appended (by SQL or by `market import`), bars corrected by an import, rows deleted, series
added, checkpoints. Appends are read alone; anything else is read in full."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.ledger.market_cache import MarketCache
from alphatrace.ledger.reconcile import reconcile
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.ledger.helpers import add_bars, add_funding, at, import_bars, policy

TABLES = ("_rc_profile", "_rc_markets", "_rc_fprofile", "_rc_settle")


def market_pass(store: Store, cache: MarketCache) -> dict[str, Any]:
    """Reconcile with `cache`; what its market preparation left: the temp tables (rows and
    column types, read before reconcile drops them) and each market's bars."""
    got: dict[str, Any] = {}

    def say(msg: str) -> None:
        if msg == "selecting signals to price":  # the market is prepared by now
            for t in TABLES:
                got[t] = (store.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall(),
                          store.con.execute(f"DESCRIBE {t}").fetchall())

    reconcile(store, policy(), step=say, market=cache)
    snap = cache.snapshot
    assert snap is not None
    b = snap.bars
    got["bars"] = [(b.us[lo:hi].tolist(), b.open[lo:hi].tolist())
                   for lo, hi in zip(b.lo, b.hi, strict=True)]
    got["legs"] = store.con.execute("SELECT * FROM legs ORDER BY event_id").fetchall()
    return got


def _signals(n: int) -> list[dict[str, Any]]:
    return [{"type": "alpha", "event_id": f"a{n}-{i}", "run_id": f"r{n}-{i}", "agent": "A",
             "ts": at(i * 5, 7).isoformat() + "Z", "symbol": sym, "direction": "LONG",
             "horizon": 3600 * (1 + i % 3)}
            for i, sym in enumerate(["BTCUSDT", "ETHUSDT", "BTCUSDT", "SOLUSDT"])]


OPS = st.one_of(
    st.tuples(st.just("bars"), st.sampled_from(["BTCUSDT", "ETHUSDT"]), st.integers(1, 5)),
    st.tuples(st.just("import"), st.sampled_from(["BTCUSDT", "ETHUSDT"]), st.integers(1, 5)),
    st.tuples(st.just("correct"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.just(0)),
    st.tuples(st.just("funding"), st.integers(0, 60), st.booleans()),
    st.tuples(st.just("series"), st.sampled_from(["ETHUSDT:3600", "SOLUSDT:3600"]),
              st.integers(1, 3)),
    st.tuples(st.just("signals"), st.just(0), st.just(0)),
    st.tuples(st.just("checkpoint"), st.just(0), st.just(0)),
)


def _apply(s: Store, op: str, a: Any, b: Any, ends: dict[str, int]) -> None:
    iv = {"BTCUSDT": 3600, "ETHUSDT": 900}
    if op in ("bars", "import"):
        start = ends[a]
        opens = [200.0 + start + i / 4 for i in range(b)]
        if op == "bars":
            add_bars(s, a, opens, interval_s=iv[a], start=at(0, start * iv[a] / 60))
        else:
            import_bars(s, a, [(at(0, (start + i) * iv[a] / 60), o)
                               for i, o in enumerate(opens)], "1h" if a == "BTCUSDT" else "15m")
    elif op == "correct":  # a bar of history replaced by an import
        k = a % ends["BTCUSDT"]
        old = s.con.execute("SELECT open FROM bars WHERE symbol = 'BTCUSDT' AND "
                            "interval_s = 3600 AND ts = ?", [at(k)]).fetchall()
        if old:
            import_bars(s, "BTCUSDT", [(at(k), old[0][0] * 1.01)], "1h")
    elif op == "delete":
        s.con.execute("DELETE FROM bars WHERE symbol = 'BTCUSDT' AND ts = ?",
                      [at(a % ends["BTCUSDT"])])
    elif op == "funding":
        s.con.execute("INSERT OR IGNORE INTO funding VALUES ('BTCUSDT', ?, 0.0001, ?)",
                      [at(a), 101.5 + a if b else None])
    elif op == "series":
        sym, sec = a.split(":")
        if not s.con.execute("SELECT count(*) FROM bars WHERE symbol = ? AND interval_s = ?",
                             [sym, int(sec)]).fetchall()[0][0]:
            add_bars(s, sym, [80.0 + i for i in range(b)], interval_s=int(sec))
    elif op == "signals":
        ingest_events(s, _signals(s.con.execute("SELECT count(*) FROM alpha").fetchall()[0][0]))
    elif op == "checkpoint":
        s.con.execute("CHECKPOINT")


@settings(max_examples=30)
@given(st.lists(OPS, min_size=1, max_size=8))
def test_a_kept_market_equals_a_full_read_after_every_change(ops: list[tuple[Any, ...]]
                                                              ) -> None:
    """Stores `kept` (one cache for every pass) and `read` (a new cache each pass: a full
    read) get the same changes; each pass must prepare the same market."""
    with (tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "kept.duckdb") as kept,
          Store(Path(tmp) / "read.duckdb") as read):
            cache = MarketCache(min_room=2)  # small room: appends also outgrow it
            ends = {"BTCUSDT": 24, "ETHUSDT": 96}
            for s in (kept, read):
                add_bars(s, "BTCUSDT", [100.0 + i for i in range(24)])
                add_bars(s, "ETHUSDT", [50.0 + i / 8 for i in range(96)], interval_s=900)
                add_funding(s, "BTCUSDT", [(at(8), 0.0002, 101.0), (at(16), -0.0001, None)])
                ingest_events(s, _signals(0))
            assert market_pass(kept, cache) == market_pass(read, MarketCache())
            for op, a, b in ops:
                for s in (kept, read):
                    _apply(s, op, a, b, ends)
                if op in ("bars", "import"):
                    ends[a] += b
                assert market_pass(kept, cache) == market_pass(read, MarketCache()), (op, a, b)


def _stores(tmp: Path) -> tuple[Store, MarketCache]:
    s = Store(tmp / "s.duckdb")
    add_bars(s, "BTCUSDT", [100.0 + i for i in range(24)])
    add_funding(s, "BTCUSDT", [(at(8), 0.0002, None)])
    ingest_events(s, _signals(0))
    cache = MarketCache()
    market_pass(s, cache)
    return s, cache


def test_appended_bars_and_funding_are_read_alone(tmp_path: Path) -> None:
    s, cache = _stores(tmp_path)
    with s:
        market_pass(s, cache)
        add_bars(s, "BTCUSDT", [130.0, 131.0], start=at(24))
        import_bars(s, "BTCUSDT", [(at(26), 132.0)], "1h")
        add_funding(s, "BTCUSDT", [(at(24), 0.0003, None)])
        got = market_pass(s, cache)
        assert list(cache.kinds) == ["full", "same", "delta"]
        assert got["bars"][1][0][-3:] == [int(at(h).timestamp()) * 10**6 for h in (24, 25, 26)]
        # the settlement at 24:00 has no mark: the open of the bar at 24:00 (130) is used
        assert [r[3] for r in got["_rc_settle"][0]] == [0.0002 * 108.0, 0.0003 * 130.0]


def test_a_corrected_or_deleted_bar_is_read_in_full(tmp_path: Path) -> None:
    s, cache = _stores(tmp_path)
    with s:
        report = import_bars(s, "BTCUSDT", [(at(8), 99.0)], "1h")
        assert report.updated == 1
        got = market_pass(s, cache)
        assert list(cache.kinds) == ["full", "full"]
        assert got["bars"][1][1][8] == 99.0
        assert [r[3] for r in got["_rc_settle"][0]] == [0.0002 * 99.0]
        s.con.execute("DELETE FROM bars WHERE ts = ?", [at(3)])
        add_bars(s, "BTCUSDT", [124.0], start=at(24))  # as many bars as before
        got = market_pass(s, cache)
        assert cache.kinds[-1] == "full"
        assert len(got["bars"][1][0]) == 24 and at(3).timestamp() * 1e6 not in got["bars"][1][0]


def test_a_failed_pass_drops_the_kept_market(tmp_path: Path, monkeypatch: Any) -> None:
    s, cache = _stores(tmp_path)
    with s:
        def fail(*_a: Any) -> None:
            raise RuntimeError("after the market was prepared")

        monkeypatch.setattr("alphatrace.ledger.reconcile._build_ledger", fail)
        add_bars(s, "BTCUSDT", [130.0], start=at(24))
        with pytest.raises(RuntimeError):
            market_pass(s, cache)
        assert cache.snapshot is None and cache.pending is None
        monkeypatch.undo()
        market_pass(s, cache)
        assert cache.kinds[-1] == "full"
