"""The typed entry (store/typed_ingest.py) stores what the JSON path stores, for every kind.

Property: the same batches of events, ingested through `ingest_typed` into one store and through
`ingest_events` (JSON lines) into another, give the same statuses and the same rows in every
table ingest writes. The events are shaped as the SDK and HTTP clients send them: telemetry,
alpha and pnl dicts (and events of no kind), with timestamps as ISO text, epoch seconds or
milliseconds (int, float, at the rounding and range edges) or other text, directions in any
case, horizons as numbers or text in every spelling, and every flaw a value can have.
tests/server/test_otlp_typed.py does the same for OTLP-shaped telemetry.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.store import Store
from alphatrace.store.typed_ingest import ingest_typed, stage
from tests.server.test_otlp_typed import anything, assert_typed_as_json_lines, number, text

ids = st.sampled_from(["r-1", "r-2", "0195a0c0-7e1f-7000-8000-000000000001"])
good_text = st.sampled_from(["Agent0", "FUNDING", "BTCUSDT", "MEAN_REVERT", " x", "é"])
amount = st.one_of(st.integers(0, 10**6), st.floats(0.001, 1e6), st.sampled_from([0.5, 1e-05]))
good_ts = st.one_of(
    st.sampled_from(["2025-03-01T08:00:00.100000Z", "2025-03-01T08:00:01Z",
                     "2024-02-29T23:59:59.999999Z"]),
    st.integers(0, 8_835_999_999),  # epoch seconds up to 2250
    st.integers(100_000_000_000, 10**14 - 1),  # epoch milliseconds
    st.floats(0, 8.8e9), st.floats(1e11, 1e14),
    # at the rounding and range edges: a product of exactly .5 rounds away from zero
    st.sampled_from([1_740_816_000, 1_740_816_000_123, 0, 99_999_999_999, 100_000_000_000,
                     10**14 - 1, 8_835_999_999, 1740816000.0000005, 1740816000.0000015,
                     0.0000005, 0.0000015, 1e-7, 1.5e-6, 2.5e-6, 1740816000123.5,
                     1740816000123.4999, 4503599627.3704995, -0.0]))
bad_ts = st.one_of(
    st.sampled_from(["1740816000", "2025-03-01 08:00:00", "not a time", "2250-01-01T00:00:00Z",
                     "", -1, -0.0000005, 10**14, 8_836_000_000, float("nan"), float("inf"),
                     True, 2**53 + 1, 2**64, -1e11 - 0.5]),
    st.integers(-10**15, 10**15), st.floats())
direction = st.sampled_from(["LONG", "SHORT", "FLAT"])
bad_direction = st.sampled_from(["long", " Short ", "UP", "", 1, "ＬONG"])
good_horizon = st.one_of(
    st.sampled_from(["8h", "90m", "30s", "2d", "1w", "300", "0.1h", "1.5d", "0.000001s"]),
    st.integers(1, 10**8), st.floats(1e-6, 3e8),
    st.builds(lambda q, u: f"{q}{u}", st.decimals(0, 10**6, places=3), st.sampled_from("smhdw")))
bad_horizon = st.one_of(
    st.sampled_from(["8H", " 8h", "8 h", "h", "1e3", "-5", "0", "0s", "３h", "99999999999w",
                     "1" * 400, "", 315360001, 0, -1, True]),
    st.floats(allow_nan=True, allow_infinity=True))
# (good values, flawed ones) per field
FIELDS: dict[str, dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]] = {
    "telemetry": {"agent": (good_text, st.sampled_from(["", " ", 7])),
                  "latency_ms": (amount, number), "tokens_in": (st.integers(0, 5000), number),
                  "tokens_out": (st.integers(0, 5000), number), "cost_usd": (amount, number),
                  "errors": (st.integers(0, 2), number), "model": (good_text, anything),
                  "start_ts": (good_ts, bad_ts), "end_ts": (good_ts, bad_ts)},
    "alpha": {"agent": (good_text, anything), "symbol": (good_text, anything),
              "direction": (direction, bad_direction), "score_final": (st.floats(-5, 5), number),
              "regime": (good_text, anything), "size_usd": (amount, number),
              "horizon": (good_horizon, bad_horizon)},
    "pnl": {"realized_pnl_bps": (st.floats(-1e4, 1e4), number), "agent": (good_text, anything),
            "symbol": (good_text, anything), "entry_price": (amount, number),
            "exit_price": (amount, number), "revision": (st.integers(0, 3), number)},
}
COMMON = {"run_id": (ids, st.one_of(st.integers(0, 9), anything)), "ts": (good_ts, bad_ts),
          "strategy": (good_text, anything)}
REQUIRED = {"telemetry": ("run_id", "agent"), "alpha": ("run_id", "agent", "symbol", "direction"),
            "pnl": ("run_id", "realized_pnl_bps")}


@st.composite
def event(draw: st.DrawFn) -> Any:
    """Half the events clean (every value good: the typed path must clear them), the others
    with a flaw in some of their fields (absent, a bad value, a value of any type), a type of
    another spelling, no event id, extra keys of any name and value."""
    if draw(st.integers(0, 30)) == 0:  # not an event at all
        return draw(anything)
    kind = draw(st.sampled_from(["telemetry", "alpha", "pnl"]))
    clean = draw(st.booleans())

    def value(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
        if clean or draw(st.integers(0, 4)):
            return draw(good)
        return draw(st.one_of(st.none(), bad, anything))

    ev: dict[str, Any] = {"type": kind if clean else draw(st.sampled_from(
        [kind, kind, kind, None, kind.upper(), "signal", "x"]))}
    if clean or draw(st.integers(0, 5)):
        ev["event_id"] = value(st.sampled_from(["e1", "e2", "r-1:1", "r-1:end"]),
                               st.sampled_from([" ", "", 3]))
    for name, (good, bad) in {**COMMON, **FIELDS[kind]}.items():
        if draw(st.booleans()) or name in REQUIRED[kind]:
            ev[name] = value(good, bad)
    extra_keys = st.sampled_from(["note", "symbol", "model", "direction", "latency_ms", "attrs"])
    extras = draw(st.dictionaries(st.one_of(extra_keys, text), anything, max_size=2))
    for k, v in extras.items():
        ev.setdefault(k, v)
    if draw(st.integers(0, 4)) == 0:  # keys in another order
        ev = dict(reversed(list(ev.items())))
    return {k: v for k, v in ev.items() if v is not None or not clean}


# A batch's cost is mostly fixed (two stores, the JSON path's statements), so each example
# carries many events.
@settings(max_examples=100)
@given(st.lists(st.lists(event(), max_size=30), min_size=1, max_size=3))
def test_the_typed_entry_stores_what_json_lines_store(batches: list[list[Any]]) -> None:
    assert_typed_as_json_lines(batches, "<http>")


def test_sdk_events_of_every_kind_are_cleared_without_sql() -> None:
    """What the SDK sends (ISO times to the microsecond, upper-case directions, a horizon
    string, event ids) and what the benches send (epoch-second ints) takes the typed path whole:
    a row left to the SQL would only be slower, unnoticed."""
    events: list[dict[str, Any]] = []
    for i in range(50):
        rid = f"0195a0c0-7e1f-7000-8000-{i:012d}"
        events += [
            {"type": "telemetry", "event_id": f"{rid}:1", "run_id": rid, "agent": "A",
             "strategy": "S", "ts": "2025-03-01T08:00:00.123456Z", "model": "gpt-4o",
             "tokens_in": 1830, "tokens_out": 421, "cost_usd": 0.008785},
            {"type": "alpha", "event_id": f"{rid}:2", "run_id": rid, "agent": "A",
             "strategy": "S", "ts": 1_740_816_000 + i, "symbol": "BTCUSDT",
             "direction": "SHORT", "score_final": -1.42, "regime": "MEAN_REVERT",
             "horizon": "8h", "size_usd": 10_000.0},
            {"type": "pnl", "event_id": f"{rid}:3", "run_id": rid, "agent": "A",
             "ts": 1_740_816_000.25, "realized_pnl_bps": -12.5, "revision": 1},
            {"type": "telemetry", "event_id": f"{rid}:end", "run_id": rid, "agent": "A",
             "ts": "2025-03-01T08:00:01.000000Z", "latency_ms": 950.0, "errors": 0,
             "note": {"k": [1, "two"]}},
        ]
    staged, lines = stage(events)
    assert staged.column("ok").to_pylist() == [True] * 200 and lines.num_rows == 0
    assert staged.column("kind").to_pylist() == ["telemetry", "alpha", "pnl", "telemetry"] * 50
    with Store(":memory:") as s:
        _, results = ingest_typed(s, events, source="<http>")
        assert {r.status for r in results} == {"accepted"}
        row = s.con.execute("SELECT ts::VARCHAR, horizon_s, direction FROM alpha "
                            "ORDER BY line LIMIT 1").fetchone()
        pnl = s.con.execute("SELECT ts::VARCHAR FROM pnl ORDER BY line LIMIT 1").fetchone()
    # 1,740,816,000 s is 2025-03-01 08:00:00 UTC; 8 h is 28,800 s
    assert row == ("2025-03-01 08:00:00", 28_800.0, "SHORT")
    assert pnl == ("2025-03-01 08:00:00.25",)
