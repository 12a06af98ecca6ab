"""A pass that keeps its market between passes (the live pipeline's `MarketCache`) reuses the
stored pnl keys when nothing they depend on changed (reconcile `_pnl_keys_hold`: no new pnl
event spells a symbol no stored key has, the same aliases and market symbols as the last
reconcile), and resolves them again when something did; it reads no leg for staleness when
its market is the last reconcile's and no alias moved (`moved(market_same=True)`,
`_todo_from_new_files(stale=False)`); it resolves no signal symbol when no signal is new and
its market is the last reconcile's (`_alpha_keys_hold`), and takes the last pass's resolution
when every new signal's symbol is keyed and the market symbols and aliases are the last
reconcile's (`_symmap_held`). Either way its ledger is the full rebuild's."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.ledger.market_cache import MarketCache
from alphatrace.ledger.reconcile import reconcile
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from tests.ledger.helpers import add_bars, at, policy

SYMBOLS = ["BTC", "SOL", "XBT", "ETH", None]


def _event(op: tuple[Any, ...], n: int) -> dict[str, Any] | None:
    kind = op[0]
    if kind == "alpha":
        return {"type": "alpha", "run_id": f"r{op[2]}", "agent": "A", "symbol": op[1] or "BTC",
                "direction": "LONG", "ts": at(46 + n % 3, 7).isoformat() + "Z",
                "horizon": 3600}  # some wait for bars yet to come
    if kind == "pnl":
        ev = {"type": "pnl", "run_id": f"r{op[2]}", "realized_pnl_bps": op[3],
              "ts": at(20, n).isoformat() + "Z"}
        return ev if op[1] is None else {**ev, "symbol": op[1]}
    if kind == "telemetry":
        return {"type": "telemetry", "run_id": f"r{op[1]}", "agent": "A", "latency_ms": 5.0}
    return None


def _apply(s: Store, op: tuple[Any, ...], n: int) -> None:
    ev = _event(op, n)
    if ev is not None:
        ingest_events(s, [ev])
    elif op[0] == "market" and not s.con.execute(
            "SELECT count(*) FROM bars WHERE symbol = ?", [op[1]]).fetchall()[0][0]:
        add_bars(s, op[1], [20.0 + i for i in range(48)])
    elif op[0] == "alias":
        s.con.execute("INSERT OR IGNORE INTO symbol_aliases VALUES ('XBT', 'BTCUSDT')")
    elif op[0] == "bars":
        have = s.con.execute("SELECT count(*) FROM bars WHERE symbol = 'BTCUSDT'").fetchall()
        add_bars(s, "BTCUSDT", [300.0], start=at(have[0][0]))


def _state(s: Store) -> tuple[list[Any], list[Any]]:
    return (s.con.execute("SELECT * FROM ledger ORDER BY run_id").fetchall(),
            s.con.execute("SELECT * FROM ledger_pnl_keys ORDER BY alias").fetchall())


KEPT = "_rc_symmap (kept)"


def _kept_pass(s: Store, cache: MarketCache) -> set[str]:
    """Reconcile with `cache`; which of `_rc_pnlkeys` (pnl symbols resolved), `_rc_stale`
    (legs read for staleness) and `_rc_symmap` (signal symbols resolved) the pass made (none:
    a pass of telemetry alone); `KEPT` for a `_rc_symmap` made from the last pass's."""
    made: set[str] = set()
    before = cache.snapshot.symmap if cache.snapshot is not None else None

    def say(msg: str) -> None:
        if msg == "building the ledger":
            made.update(str(t) for (t,) in s.con.execute(
                "SELECT table_name FROM duckdb_tables() WHERE table_name IN "
                "('_rc_pnlkeys', '_rc_stale', '_rc_symmap')").fetchall())

    reconcile(s, policy(), step=say, market=cache)
    after = cache.snapshot.symmap if cache.snapshot is not None else None
    if "_rc_symmap" in made and before is not None and after is before:
        made = (made - {"_rc_symmap"}) | {KEPT}
    return made


OPS = st.one_of(
    st.tuples(st.just("alpha"), st.sampled_from(SYMBOLS), st.integers(0, 5)),
    st.tuples(st.just("pnl"), st.sampled_from(SYMBOLS), st.integers(0, 5),
              st.sampled_from([-30.0, 12.5])),
    st.tuples(st.just("telemetry"), st.integers(0, 5)),
    st.tuples(st.just("market"), st.sampled_from(["SOLUSDT", "SOLUSDC", "ETHUSDT"])),
    st.tuples(st.just("alias")),
    st.tuples(st.just("bars")),
)


def _stores(tmp: str) -> tuple[Store, Store]:
    kept, ref = Store(Path(tmp) / "kept.duckdb"), Store(Path(tmp) / "ref.duckdb")
    for s in (kept, ref):
        add_bars(s, "BTCUSDT", [100.0 + i for i in range(48)])
        ingest_events(s, [{"type": "pnl", "run_id": "r0", "realized_pnl_bps": 1.0,
                           "symbol": "SOL", "ts": at(20).isoformat() + "Z"},
                          _event(("alpha", "BTC", 0), 0)])
    return kept, ref


@settings(max_examples=40)
@given(st.lists(OPS, min_size=1, max_size=8))
def test_a_kept_pass_equals_a_full_rebuild_after_every_change(ops: list[tuple[Any, ...]]
                                                              ) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kept, ref = _stores(tmp)
        with kept, ref:
            cache = MarketCache()
            _kept_pass(kept, cache)
            for n, op in enumerate(ops):
                for s in (kept, ref):
                    _apply(s, op, n)
                _kept_pass(kept, cache)
                reconcile(ref, policy(), full=True)
                assert _state(kept) == _state(ref), op


def test_stored_pnl_keys_are_reused_only_while_what_they_depend_on_holds() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        kept, ref = _stores(tmp)
        with kept, ref:
            cache = MarketCache()
            assert "_rc_pnlkeys" in _kept_pass(kept, cache)  # the first pass resolves
            p, st_, a = "_rc_pnlkeys", "_rc_stale", "_rc_symmap"
            steps: list[tuple[tuple[Any, ...], set[str]]] = [
                (("alpha", "BTC", 1), {KEPT}),      # signals alone: pnl keys kept, no leg
                #                                     read, BTC resolved as the last pass did
                (("telemetry", 2), set()),          # (a pass of telemetry alone)
                (("pnl", "SOL", 1, -30.0), set()),  # a new pnl event, its symbol keyed: kept
                (("pnl", "ETH", 2, 12.5), {p}),     # a symbol no pnl event spelt: resolved
                (("pnl", None, 3, 12.5), set()),    # no symbol: nothing to key, kept
                (("bars",), {st_, KEPT}),           # bars appended: open legs may be priced
                (("alpha", "BTC", 4), {KEPT}),
                (("market", "SOLUSDT"), {p, st_, a}),  # SOL now resolves: SOLUSDT
                (("alpha", "SOL", 3), {st_, a}),    # a new alias (it has no leg yet):
                #                                     SOL is no signal's symbol yet
                (("alias",), {p, a}),               # XBT now means BTCUSDT (no signal says XBT)
                (("market", "SOLUSDC"), {p, st_, a})]  # SOL ambiguous again
            for n, (op, made) in enumerate(steps):
                for s in (kept, ref):
                    _apply(s, op, n)
                assert _kept_pass(kept, cache) == made, op
                reconcile(ref, policy(), full=True)
                assert _state(kept) == _state(ref), op
            keys = dict(kept.con.execute("SELECT alias, key FROM ledger_pnl_keys").fetchall())
            # SOL is ambiguous (SOLUSDT, SOLUSDC): its own spelling; ETH has no market
            assert keys == {"SOL": "SOL", "ETH": "ETH"}
