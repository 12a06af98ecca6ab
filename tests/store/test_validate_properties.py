"""Property tests for the event parser: the lenient fast path and the exact path must agree.

The exact path is the specification (it names the failing field); the fast path is an
optimisation. On arbitrary, often ill-typed events: the fast path never accepts a line that the
exact path rejects, and every line both accept gets the same identity and the same typed values.
"""

from __future__ import annotations

import json
import math
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.events.fields import SPECS
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from alphatrace.store.validate_sql import ALL_FIELDS, fast_sql, staged_sql

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.sampled_from(["LONG", "short", "Flat", "UP", "8h", "90m", "1e3", "2024-03-01T12:00:00Z",
                     "1709294400", "", " ", "12", "x\\y", "é", "\u2603"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
keys = st.sampled_from([*ALL_FIELDS, "extra", "nested"])
finite = st.floats(-1e9, 1e9, allow_nan=False)
ts_values = st.one_of(st.integers(0, 4_000_000_000), st.integers(10**11, 4 * 10**12),
                      st.sampled_from(["2024-03-01T12:00:00Z", "2024-03-01 12:00:00.5+02:00"]))
valid_base = st.one_of(
    st.fixed_dictionaries(
        {"run_id": st.one_of(st.text(min_size=1, max_size=5), st.integers(0, 10**6)),
         "agent": st.sampled_from(["A", "B"])},
        optional={"latency_ms": st.floats(0, 1e5), "tokens_in": st.integers(0, 10**6),
                  "tokens_out": st.integers(0, 10**6), "cost_usd": st.floats(0, 10),
                  "errors": st.integers(0, 3), "model": st.just("m"), "ts": ts_values,
                  "extra": scalars}),
    st.fixed_dictionaries(
        {"run_id": st.text(min_size=1, max_size=5), "agent": st.just("A"),
         "symbol": st.sampled_from(["BTC", "ETHUSDT"]),
         "direction": st.sampled_from(["LONG", "short", " Flat "])},
        optional={"score_final": finite, "regime": st.just("TREND"), "ts": ts_values,
                  "size_usd": st.floats(1, 1e6), "horizon": st.sampled_from(["8h", "90m", 3600, 1.5]),
                  "nested": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)}),
    st.fixed_dictionaries(
        {"run_id": st.text(min_size=1, max_size=5), "realized_pnl_bps": finite},
        optional={"revision": st.integers(0, 5), "entry_price": st.floats(1, 1e5),
                  "type": st.sampled_from(["pnl", "PnL"])}),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event of some kind, then zero to two random corruptions."""
    e = dict(draw(valid_base))
    for _ in range(draw(st.integers(0, 2))):
        if e and draw(st.booleans()):
            e.pop(draw(st.sampled_from(sorted(e))))
        else:
            e[draw(keys)] = draw(scalars)
    return e



def _line(e: dict[str, Any]) -> str:
    return json.dumps(e, allow_nan=True)


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> dict[int, tuple[Any, ...]]:
    cur = con.execute(sql)
    cols = [d[0] for d in cur.description]
    out = {}
    for row in cur.fetchall():
        rec = dict(zip(cols, row, strict=True))
        out[rec["line_no"]] = rec
    return out  # type: ignore[return-value]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return bool(a == b)


@pytest.mark.slow
@settings(max_examples=150)
@given(st.lists(events(), min_size=1, max_size=25))
def test_fast_path_agrees_with_exact_path(evs: list[dict[str, Any]]) -> None:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    lines = [_line(e) + "\n" for e in evs]
    table = pa.table({"line_no": pa.array(range(1, len(lines) + 1), pa.int64()),
                      "line": pa.array(lines, pa.large_string())})
    con.register("src", table)
    fast = _run(con, fast_sql("src", None))
    exact = _run(con, staged_sql("src", None))
    assert set(fast) == set(exact)
    both = 0
    for ln, f in fast.items():
        x = exact[ln]
        if x["err"] is not None:
            assert not f["ok"], (lines[ln - 1], x["err"])
        if f["ok"]:
            both += 1
            assert x["err"] is None
            for col in ("kind", "event_id", "attrs", *[c for c in ALL_FIELDS if c not in ("type", "event_id")]):
                assert _same(f[col], x[col]), (col, f[col], x[col], lines[ln - 1])


@settings(max_examples=100)
@given(st.lists(st.fixed_dictionaries({
    "run_id": st.text(min_size=1, max_size=8).filter(lambda s: s.strip() != ""),
    "agent": st.sampled_from(["A", "B"]),
    "symbol": st.sampled_from(["BTC", "ETHUSDT"]),
    "direction": st.sampled_from(["LONG", "short", "Flat"]),
    "score_final": st.floats(-5, 5, allow_nan=False),
}), min_size=1, max_size=20))
@pytest.mark.slow
def test_valid_alpha_events_all_clear_the_fast_path(evs: list[dict[str, Any]]) -> None:
    """Clean events (the common case) never need the slow path; unicode ones may."""
    con = duckdb.connect()
    lines = [json.dumps(e, ensure_ascii=False) + "\n" for e in evs]
    table = pa.table({"line_no": pa.array(range(1, len(lines) + 1), pa.int64()),
                      "line": pa.array(lines, pa.large_string())})
    con.register("src", table)
    fast = _run(con, fast_sql("src", None))
    for ln, f in fast.items():
        has_escape = "\\u" in lines[ln - 1]
        assert f["ok"] or has_escape, lines[ln - 1]


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=2),
                            st.dictionaries(st.text(max_size=3), inner, max_size=2)),
    max_leaves=4,
)
BASES: dict[str, dict[str, Any]] = {
    "telemetry": {"type": "telemetry", "run_id": "r", "agent": "A"},
    "alpha": {"type": "alpha", "run_id": "r", "agent": "A", "symbol": "BTC", "direction": "LONG"},
    "pnl": {"type": "pnl", "run_id": "r", "realized_pnl_bps": 1.5},
}


@settings(max_examples=60)
@given(kind=st.sampled_from(sorted(BASES)),
       extras=st.dictionaries(st.sampled_from([*ALL_FIELDS, "note", "features", "p"]), json_values,
                              max_size=4))
@pytest.mark.slow
def test_attrs_are_every_key_the_kind_does_not_know(kind: str, extras: dict[str, Any]) -> None:
    """attrs = the event minus its own kind's fields, computed here from the field table by
    hand: a key another kind knows (`model` on an alpha event) is kept like any unknown key."""
    own = {f.name for f in SPECS[kind]} | {"type", "event_id"}  # type: ignore[index]
    extras = {k: v for k, v in extras.items() if k not in own}
    event = {**BASES[kind], **extras}
    with Store(":memory:") as store:
        _, results = ingest_events(store, [event])
        assert [r.status for r in results] == ["accepted"], results
        (attrs,) = store.con.execute(f"SELECT attrs FROM {kind}").fetchall()[0]
    assert (json.loads(attrs) if attrs is not None else {}) == extras
