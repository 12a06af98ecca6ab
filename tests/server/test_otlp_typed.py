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

from alphatrace.sdk.prices import resolve_table
from alphatrace.server.otlp import request_events
from alphatrace.store import Store
from alphatrace.store.ingest import ingest_events
from alphatrace.store.typed_ingest import ingest_typed, stage

TABLES = {
    "telemetry": "SELECT * FROM telemetry ORDER BY file_id, line",
    "alpha": "SELECT * FROM alpha ORDER BY file_id, line",
    "pnl": "SELECT * FROM pnl ORDER BY file_id, line",
    "event_identity": "SELECT * FROM event_identity ORDER BY ALL",
    "quarantine": "SELECT * FROM quarantine ORDER BY file_id, line",
    "ingested_files": "SELECT * EXCLUDE (bytes, ingested_at) FROM ingested_files ORDER BY file_id",
}

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
# text the rules trim differently (DuckDB's `trim` takes fewer characters than Arrow's)
spaces = st.sampled_from([" ", "\t", "\n", "\x1f", "\x85", "\xa0", "\u2028", "\u3000", "\u200b"])
good_text = st.one_of(
    st.sampled_from(["gpt-4o", "Agent0", "FUNDING", "r-1", "otlp:ab:cd"]),
    st.builds(lambda a, b: a + b, spaces, st.sampled_from(["", "x"])))
ts = st.one_of(
    st.sampled_from(["2025-03-01T08:00:00.100000Z", "2025-03-01T08:00:01Z",
                     "2025-03-01 08:00:00", "1740816000", "1740816000123", "not a time",
                     "2300-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "", " ",
                     # the spellings typed_rules reads, at their edges and just past them
                     "2025-02-30T08:00:00Z", "2024-02-29T23:59:59.999999Z", "2025-02-29T00:00:00Z",
                     "2025-03-01T24:00:00Z", "2025-03-01T23:59:60Z", "2025-13-01T00:00:00Z",
                     "2025-03-01T08:00:00.1234567Z", "2025-03-01T08:00:00.12345Z",
                     "2025-03-01T08:00:00.000000Z", "1970-01-01T00:00:00Z",
                     "1969-12-31T23:59:59.999999Z", "2249-12-31T23:59:59.999999Z",
                     "2250-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
                     "2025-03-01T08:00:00Z\n", "2025-03-01t08:00:00z", "2025-03-01T08:00:00+00:00",
                     "\uff12025-03-01T08:00:00Z"]),
    text)
number = st.one_of(
    st.integers(-10, 10**6), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, 0.5, 1e-05, 1e16, 2**53 + 1, 2**63, 10**13, -1, True, 1e12, 1e9,
                     1e10, 1e12 + 0.5, -0.0, 5e-324]))
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
    extra = st.one_of(anything, st.sampled_from(  # spellings DuckDB's json() may change
        [1e-05, 1e16, 1e22, -2.5e-300, 80.0, "1e5", "ab1e5cd", ":1e5", "NaN", "\x1f", "\u2028",
         "00000001e00000000000000000000001", [1e-07], {"x": 1e300}]))
    for k, v in draw(st.dictionaries(st.one_of(
            st.sampled_from(["span_ms", "trace_id", "cached_tokens", "symbol", "direction",
                             "service_name", "attrs"]), text), extra, max_size=4)).items():
        ev.setdefault(k, v)
    if draw(st.integers(0, 4)) == 0:  # keys in another order
        ev = dict(reversed(list(ev.items())))
    return ev


def contents(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {t: store.con.execute(sql).fetchall() for t, sql in TABLES.items()}


def same(a: Any, b: Any) -> bool:
    """Equal rows, NaN equal to NaN (a stored double may be NaN on neither path: kept honest)."""
    return repr(a) == repr(b)


def assert_typed_as_json_lines(batches: list[list[Any]], source: str) -> None:
    """The batches through `ingest_events` into one store and `ingest_typed` into another: the
    same statuses, the same rows in every table."""
    with Store(":memory:") as by_json, Store(":memory:") as by_type:
        for batch in batches:
            _, want = ingest_events(by_json, batch, source=source)
            _, got = ingest_typed(by_type, batch, source=source)
            assert got == want
        a, b = contents(by_json), contents(by_type)
        for t in TABLES:
            assert same(b[t], a[t]), t


@settings(max_examples=200)
@given(st.lists(st.lists(event(), max_size=12), min_size=1, max_size=3))
def test_the_typed_entry_stores_what_json_lines_store(batches: list[list[Any]]) -> None:
    assert_typed_as_json_lines(batches, "<otlp>")


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


def _kv(k: str, v: Any) -> dict[str, Any]:
    return {"key": k, "value": {"intValue": str(v)} if isinstance(v, int) else {"stringValue": v}}


def test_the_spans_the_mapping_makes_are_all_cleared() -> None:
    """Spans as instrumentations send them (a tagged root, GenAI children; ids whose hex holds
    digit-e-digit, times to the microsecond and on whole seconds) take the typed path whole:
    no row is left to the exact path, where they would only be slower, unnoticed."""
    spans = []
    for i in range(200):
        tid, start = f"1e5{i:029x}", 1_740_816_000_000_000_000 + i * 1_000_000_000
        root = f"{i:013x}1e5"
        spans.append({"traceId": tid, "spanId": root, "name": "agent.run",
                      "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 9 * 10**8),
                      "attributes": [_kv("alphatrace.run_id", f"r-{i}"),
                                     _kv("alphatrace.agent", "A")]})
        for j in range(3):
            spans.append({"traceId": tid, "spanId": f"{i:012x}{j}2e7", "parentSpanId": root,
                          "name": "chat", "startTimeUnixNano": str(start + 123_456_789 * j),
                          "endTimeUnixNano": str(start + 123_456_789 * j + 80_000_000),
                          "attributes": [_kv("gen_ai.request.model", "gpt-4o"),
                                         _kv("gen_ai.usage.input_tokens", 1830),
                                         _kv("gen_ai.usage.output_tokens", 421),
                                         _kv("gen_ai.usage.cache_read.input_tokens", 512)]})
    doc = {"resourceSpans": [{"resource": {"attributes": [_kv("service.name", "svc")]},
                              "scopeSpans": [{"spans": spans}]}]}
    events = request_events(doc, resolve_table(None)).events
    staged, _ = stage(events)
    assert staged.num_rows == len(events) == 800
    assert staged.column("ok").to_pylist() == [True] * 800
    assert staged.column("attrs").null_count == staged.column("ts").null_count == 0
