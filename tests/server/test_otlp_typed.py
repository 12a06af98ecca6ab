"""The typed entry (store/typed_ingest.py) leaves the store as the JSON path does.

Property: the same batches of events, ingested through `ingest_typed` into one store and through
`ingest_events` (JSON lines) into another, give the same statuses and the same rows in every
table ingest writes (events, identities, quarantine, file rows but their `bytes`). The events
are OTLP-shaped telemetry dicts with every kind of flaw a value can have (wrong Python type,
out of range, empty, unparsable timestamp, non-finite, extra keys of any JSON type), events of
other kinds, and repeats within and across batches.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from alphatrace.store.typed_ingest import ingest_typed

TABLES = {
    "telemetry": "SELECT * FROM telemetry ORDER BY file_id, line",
    "alpha": "SELECT * FROM alpha ORDER BY file_id, line",
    "pnl": "SELECT * FROM pnl ORDER BY file_id, line",
    "event_identity": "SELECT * FROM event_identity ORDER BY ALL",
    "quarantine": "SELECT * FROM quarantine ORDER BY file_id, line",
    "ingested_files": "SELECT * EXCLUDE (bytes, ingested_at) FROM ingested_files ORDER BY file_id",
}

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
good_text = st.sampled_from(["gpt-4o", "Agent0", "FUNDING", "r-1", "otlp:ab:cd"])
ts = st.one_of(
    st.sampled_from(["2025-03-01T08:00:00.100000Z", "2025-03-01T08:00:01Z",
                     "2025-03-01 08:00:00", "1740816000", "1740816000123", "not a time",
                     "2300-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "", " "]),
    text)
number = st.one_of(
    st.integers(-10, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.5, 1e-05, 1e16, 2**53 + 1, 2**63, 10**13, -1, True]))
anything = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(text, inner, max_size=3)),
    max_leaves=6)


def field(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly a good value, sometimes absent (None), sometimes anything at all."""
    return st.one_of(good, good, good, st.none(), anything)


@st.composite
def event(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 30)) == 0:  # another kind, or not an event at all
        return draw(st.one_of(
            st.just({"type": "alpha", "run_id": "r", "agent": "A", "symbol": "BTC",
                     "direction": "LONG", "ts": "2025-03-01T08:00:00Z"}),
            st.just({"run_id": "r", "agent": "A", "latency_ms": 3}),
            st.just({"type": "Telemetry", "run_id": "r", "agent": "A"}),
            anything))
    ev: dict[str, Any] = {"type": "telemetry",
                          "event_id": draw(field(st.sampled_from(
                              ["otlp:1:1", "otlp:1:2", "otlp:2:1", "e", "  "])))}
    for name, good in (("run_id", st.one_of(good_text, st.integers(0, 9))), ("agent", good_text),
                       ("strategy", good_text), ("model", good_text),
                       ("tokens_in", st.integers(0, 5000)), ("tokens_out", st.integers(0, 5000)),
                       ("errors", st.integers(0, 1)), ("cost_usd", number),
                       ("latency_ms", number), ("ts", ts), ("start_ts", ts), ("end_ts", ts)):
        if draw(st.booleans()) or name in ("run_id", "agent"):
            ev[name] = draw(field(good))
    for k, v in draw(st.dictionaries(st.one_of(
            st.sampled_from(["span_ms", "trace_id", "cached_tokens", "symbol", "direction",
                             "service_name", "attrs"]), text), anything, max_size=4)).items():
        ev.setdefault(k, v)
    if draw(st.integers(0, 4)) == 0:  # keys in another order
        ev = dict(reversed(list(ev.items())))
    return ev


def contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {t: store.con.execute(sql).fetchall() for t, sql in TABLES.items()}


def same(a: Any, b: Any) -> bool:
    """Equal rows, NaN equal to NaN (a stored double may be NaN on neither path: kept honest)."""
    return repr(a) == repr(b)


@settings(max_examples=200)
@given(st.lists(st.lists(event(), max_size=12), min_size=1, max_size=3))
def test_the_typed_entry_stores_what_json_lines_store(batches: list[list[Any]]) -> None:
    with Store(":memory:") as by_json, Store(":memory:") as by_type:
        for batch in batches:
            _, want = ingest_events(by_json, batch, source="<otlp>")
            _, got = ingest_typed(by_type, batch, source="<otlp>")
            assert got == want
        a, b = contents(by_json), contents(by_type)
        for t in TABLES:
            assert same(b[t], a[t]), t


def test_otlp_events_take_the_typed_columns_and_their_extras_become_attrs() -> None:
    """A mapped span: stored from its typed columns, with DuckDB's spelling of its extras."""
    ev = {"type": "telemetry", "event_id": "otlp:1:2", "model": "gpt-4o", "tokens_in": 1830,
          "cached_tokens": 512, "errors": 0, "span_name": "chat é", "span_ms": 1e-05,
          "ts": "2025-03-01T08:00:00.100000Z", "run_id": "R", "agent": "A"}
    with Store(":memory:") as s:
        _, (r,) = ingest_typed(s, [ev], source="<otlp>")
        assert r.status == "accepted" and r.event_id == "otlp:1:2"
        row = s.con.execute("SELECT run_id, agent, tokens_in, ts::VARCHAR, attrs::VARCHAR, "
                            "line FROM telemetry").fetchall()
    assert row == [("R", "A", 1830, "2025-03-01 08:00:00.1",
                    '{"cached_tokens":512,"span_name":"chat é","span_ms":0.00001}', 1)]


def test_a_bad_value_is_quarantined_with_the_json_paths_reason() -> None:
    ev = {"type": "telemetry", "event_id": "otlp:1:3", "run_id": "R", "agent": "A",
          "tokens_in": 10**13}
    with Store(":memory:") as s:
        _, (r,) = ingest_typed(s, [ev], source="<otlp>")
        q = s.con.execute("SELECT line, field, reason FROM quarantine").fetchall()
    assert (r.status, r.field) == ("rejected", "tokens_in")
    assert q == [(1, "tokens_in", "out of range: must be <= 1e12 (got 10000000000000)")]
