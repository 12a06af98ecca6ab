"""The store-wide search's populations (`Forensics._populations`: one attr-key query, one frame
split by agent and strategy) are the populations `Forensics._population` reads one query at a
time, bit for bit; and the attr keys are ranked over the runs the search has."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.forensics import api, data
from alphatrace.forensics.api import Forensics, PopulationFrame
from alphatrace.forensics.config import load
from alphatrace.forensics.slices import Categorical
from alphatrace.policy import parse_policy_text
from alphatrace.store import Store
from tests.rows import T0, full_row, insert, insert_rows

KEYS = ("temp", "depth", "z", "q\"uote", "latency_ms")  # the last one a base feature's name too


def _event(table: str, i: int, run_id: str, agent: str | None, attrs: dict[str, Any] | None
           ) -> dict[str, Any]:
    return {"event_id": f"{table}{i}", "run_id": run_id, "agent": agent or "anon",
            "ts": T0, "symbol": "BTC", "direction": "LONG",
            "attrs": None if attrs is None else json.dumps(attrs)}


def _random_store(store: Store, seed: int) -> None:
    """Agents in strategies (an agent without realized runs, runs with no agent or no
    strategy), attrs on alpha and telemetry: several events per run, text and null under a
    numeric key, keys only some agents carry."""
    rng = np.random.default_rng(seed)
    agents = [f"A{k}" for k in range(int(rng.integers(1, 6)))] + [None]
    strategies = ["S0", "S1", None]
    rows, events = [], {"alpha": [], "telemetry": []}
    for i in range(int(rng.integers(20, 120))):
        agent = agents[int(rng.integers(len(agents)))]
        pnl = None if agent == "A0" or rng.random() < 0.15 else float(rng.normal(0, 10))
        rid = f"r{i:03d}"
        rows.append(full_row(rid, T0 + dt.timedelta(minutes=int(rng.integers(0, 40))),
                             agent=agent, strategy=strategies[int(rng.integers(3))],
                             realized_pnl_bps=pnl, model=["m1", "m2"][int(rng.integers(2))],
                             latency_ms=float(rng.uniform(100, 900))))
        for table in ("alpha", "telemetry"):
            for _ in range(int(rng.integers(0, 3))):
                attrs: dict[str, Any] = {}
                for k in KEYS:
                    u = rng.random()
                    if u < 0.4:
                        attrs[k] = float(rng.normal()) if rng.random() < 0.7 else int(rng.integers(-5, 5))
                    elif u < 0.45:
                        attrs[k] = "text"
                    elif u < 0.5:
                        attrs[k] = None
                if agent is not None and rng.random() < 0.5:
                    attrs[f"own_{agent}"] = float(rng.normal())  # a key of this agent only
                n = len(events[table])
                events[table].append(_event(table, n, rid, agent, attrs or None))
    insert(store.con, rows)
    for table, evs in events.items():
        insert_rows(store.con, table, evs)


def _same(got: PopulationFrame, want: PopulationFrame) -> None:
    gframe, gcols, gnum = got
    wframe, wcols, wnum = want
    assert gnum == wnum
    assert list(gcols) == list(wcols)  # the same features in the same order
    for name, w in wcols.items():
        g = gcols[name]
        if isinstance(w, Categorical):
            assert isinstance(g, Categorical)
            assert g.labels == w.labels and np.array_equal(g.codes, w.codes), name
        else:  # bit for bit, NaN included
            assert np.array_equal(np.asarray(g).view(np.uint64), np.asarray(w).view(np.uint64)), name
    for c in ("run_id", "ts", "y"):
        assert gframe[c].to_pylist() == wframe[c].to_pylist()


def _check(store: Store, policy: str) -> int:
    cfg, _ = load(parse_policy_text(policy, "test policy"))
    fx = Forensics(store)
    f = data.Filters()
    pops = fx._populations(f, cfg)
    agents = [r[0] for r in store.con.execute(
        "SELECT DISTINCT agent FROM ledger WHERE agent IS NOT NULL ORDER BY 1").fetchall()]
    strategies = [r[0] for r in store.con.execute(
        "SELECT DISTINCT strategy FROM ledger WHERE strategy IS NOT NULL ORDER BY 1").fetchall()]
    subjects = ([(None, data.Filters())] + [(f"agent {a}", data.Filters(agent=a)) for a in agents]
                + [(f"strategy {s}", data.Filters(strategy=s)) for s in strategies])
    assert [label for label, _ in pops] == [label for label, _ in subjects]
    for (_, got), (_, sub) in zip(pops, subjects, strict=True):
        _same(got, fx._population(sub, cfg))
    return len(pops)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), max_attrs=st.integers(0, 4), wide=st.sampled_from([1, 3, 64]))
def test_one_split_frame_is_every_population_query(seed: int, max_attrs: int, wide: int) -> None:
    """At 1 and 3 keys per frame query, the frame queries take a subset of the agents and
    strategies (several chunks); at 64, one query has them all."""
    with Store(":memory:") as store:
        _random_store(store, seed)
        policy = f"forensics:\n  clusters: {{max_attrs: {max_attrs}}}\n"
        saved = api._WIDE
        api._WIDE = wide
        try:
            assert _check(store, policy) >= 2
        finally:
            api._WIDE = saved


def test_attr_keys_rank_by_runs_with_a_target_then_by_key(store: Store) -> None:
    """Agent B: `r` is on 2 realized runs and 5 open ones, `q` on 3 realized ones: `q` ranks
    first (open runs are not in the search). Agent A: `b` and `a` tie on 2 runs: `a` first.
    The store adds them: q 3, a 2, b 2, r 2. The mean of a run's values of a key: (1 + 2.5) / 2."""
    rows, alpha = [], []

    def add(rid: str, agent: str, pnl: float | None, attrs: list[dict[str, Any]]) -> None:
        rows.append(full_row(rid, T0 + dt.timedelta(minutes=len(rows)), agent=agent,
                             realized_pnl_bps=pnl))
        alpha.extend(_event("alpha", len(alpha), rid, agent, a) for a in attrs)

    for i in range(3):
        add(f"bq{i}", "B", 1.0, [{"q": i}])
    for i in range(2):
        add(f"br{i}", "B", 1.0, [{"r": 1.0}])
    for i in range(5):
        add(f"bo{i}", "B", None, [{"r": 1.0}])
    add("a0", "A", -1.0, [{"a": 1.0, "b": 1}, {"a": 2.5, "b": "x"}])
    add("a1", "A", -1.0, [{"a": 3, "b": 2}])
    insert(store.con, rows)
    insert_rows(store.con, "alpha", alpha)
    con = store.con
    assert data.numeric_attr_keys(con, data.Filters(agent="B"), "realized_pnl_bps", 1) == ["q"]
    assert data.numeric_attr_keys(con, data.Filters(agent="A"), "realized_pnl_bps", 2) == ["a", "b"]
    assert data.numeric_attr_keys(con, data.Filters(), "realized_pnl_bps", 8) == ["q", "a", "b", "r"]
    cfg, _ = load(parse_policy_text("forensics:\n  clusters: {max_attrs: 2}\n", "test policy"))
    pops = dict(Forensics(store)._populations(data.Filters(), cfg))
    frame, columns, _ = pops["agent A"]
    assert frame["run_id"].to_pylist() == ["a0", "a1"]
    assert columns["a"].tolist() == [1.75, 3.0] and columns["b"].tolist() == [1.0, 2.0]
    assert set(pops) == {None, "agent A", "agent B", "strategy S"}
    assert list(pops[None][1]) == [*cfg.clusters.features, "q", "a"]
    _same(pops["agent B"], Forensics(store)._population(data.Filters(agent="B"), cfg))


@pytest.mark.parametrize("n,width,expected", [
    ([["a"], ["b"], ["a", "c"], ["d"]], 2, [[0, 1], [2], [3]]),
    ([["a", "b", "c"], [], ["a"]], 2, [[0], [1, 2]]),
    ([[], [], []], 1, [[0, 1, 2]]),
])
def test_chunks_keep_each_query_within_its_width(n: list[list[str]], width: int,
                                                 expected: list[list[int]]) -> None:
    assert api._chunks(n, width) == expected
