"""Fuzzing ingest with mutated valid lines (issue #13 item 4).

The invariant: every non-blank line is either stored, or quarantined with a field-or-line
reason, or a duplicate of an earlier line; nothing raises; and an in-memory batch (the HTTP
collector's and the SDK's path) judges each event exactly as a file line with the same text.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.store import Store
from alphatrace.store.encode_events import object_pairs
from alphatrace.store.ingest import ingest_events, ingest_paths

pytestmark = pytest.mark.slow  # see `make test-fast`

SEEDS: list[dict[str, Any]] = [
    {"run_id": "r1", "agent": "A", "latency_ms": 812, "tokens_in": 1830, "tokens_out": 421,
     "cost_usd": 0.0123, "errors": 0, "ts": "2025-03-01T08:00:00Z", "model": "m"},
    {"run_id": "r1", "agent": "A", "symbol": "BTC", "direction": "SHORT", "score_final": -1.42,
     "regime": "MEAN_REVERT", "ts": "2025-03-01T08:00:00Z", "horizon": "8h", "size_usd": 1000},
    {"run_id": "r1", "realized_pnl_bps": -12.5, "revision": 1, "entry_price": 100.0,
     "exit_price": 99.0, "ts": 1740816000},
    {"type": "telemetry", "run_id": 7, "agent": "B", "errors": 1, "start_ts": 1740816000000,
     "end_ts": "2025-03-01T08:00:01+01:00"},
]
KEYS = sorted({k for s in SEEDS for k in s} | {"type", "event_id", "extra"})

json_values = st.one_of(
    st.none(), st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, 2**63 - 1, 2**64, 10**12, 10**12 + 1, -1, 0, 2**53]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([1.7e308, -1.7e308, 1e7, 1e7 + 1, 5e-324]),
    st.text(max_size=8),
    st.sampled_from(["10000-01-01T00:00:00Z", "9999-12-31T00:00:00-14:00", "2249-12-31T23:59:59Z",
                     "1969-12-31T23:59:59Z", "8h", "3651d", "0s", "long", "FLAT", "UP", "", " ",
                     "telemetry", "alpha", "pnl", "signal", "\u00e9\u20ac", "\\u0000"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["k", "run_id"]), st.integers(), max_size=2),
)
RAW_NUMBERS = ["1e400", "-1e400", "123456789012345678901234567890", "NaN", "Infinity", "-0",
               "1.0", "1E2", "0.1e-400"]


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    event = dict(draw(st.sampled_from(SEEDS)))
    text = json.dumps(event)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["set", "set_raw", "drop", "dup", "truncate", "byte", "pad"]))
        if op == "set":
            event[draw(st.sampled_from(KEYS))] = draw(json_values)
            text = json.dumps(event)
        elif op == "set_raw":
            key = draw(st.sampled_from(KEYS))
            event.pop(key, None)
            body = json.dumps(event)[:-1]
            text = body + ("," if event else "") + f'"{key}":{draw(st.sampled_from(RAW_NUMBERS))}}}'
        elif op == "drop" and event:
            event.pop(draw(st.sampled_from(sorted(event))))
            text = json.dumps(event)
        elif op == "dup" and event:
            key = draw(st.sampled_from(sorted(event)))
            text = text[:-1] + f', "{key}": {json.dumps(draw(json_values))}}}'
        elif op == "truncate":
            text = text[: draw(st.integers(0, max(0, len(text) - 1)))]
        elif op == "pad":
            text = draw(st.sampled_from([" ", "\t", " \t "])) + text
    data = text.encode("utf-8")
    if draw(st.booleans()) and draw(st.booleans()):  # a stray byte, often not UTF-8
        pos = draw(st.integers(0, len(data)))
        byte = draw(st.integers(0, 255).filter(lambda b: b != 10))
        data = data[:pos] + bytes([byte]) + data[pos:]
    return data


_STORES: dict[str, Store] = {}


def _store(name: str) -> Store:
    """One store per path for the whole run: making a store per example would cost more than
    the example. Events repeated across examples are duplicates, which the invariant allows."""
    if name not in _STORES:
        _STORES[name] = Store(":memory:")
    return _STORES[name]


def _outcomes(store: Store, path: str) -> tuple[set[int], dict[int, str | None]]:
    fid = "(SELECT max(file_id) FROM ingested_files)"
    stored = {ln for (ln,) in store.con.execute(
        f"SELECT line FROM telemetry WHERE file_id = {fid} UNION ALL "
        f"SELECT line FROM alpha WHERE file_id = {fid} UNION ALL "
        f"SELECT line FROM pnl WHERE file_id = {fid}").fetchall()}
    bad = {ln: fld for ln, fld, reason in store.con.execute(
        "SELECT line, field, reason FROM quarantine WHERE path = ?", [path]).fetchall()
        if reason}
    return stored, bad


@settings(max_examples=200)
@given(st.lists(mutated_line(), min_size=1, max_size=12))
def test_every_line_is_stored_quarantined_or_a_duplicate(lines: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "fuzz.jsonl"  # a new path each time: quarantine rows are per path
        f.write_bytes(b"\n".join(lines) + b"\n")
        store = _store("file")
        report = ingest_paths(store, [str(f)])
        stored, bad = _outcomes(store, str(f))
    nonblank = {i + 1 for i, ln in enumerate(lines) if ln.strip(b" \t\r")}
    assert not stored & set(bad), "a line both stored and quarantined"
    assert stored | set(bad) <= nonblank
    assert report.accepted == len(stored) and report.quarantined == len(bad)
    assert report.accepted + report.quarantined + report.duplicates == len(nonblank)

    # The same text through the in-memory path (HTTP collector, SDK direct sink) is judged
    # the same: valid or not, and the same field named.
    as_objects: list[tuple[int, dict[str, Any]]] = []
    for i, raw in enumerate(lines):
        try:
            doc = json.loads(raw.decode("utf-8"), object_pairs_hook=object_pairs)
        except (UnicodeDecodeError, ValueError, RecursionError):
            continue
        if isinstance(doc, dict):
            as_objects.append((i + 1, doc))
    if not as_objects:
        return
    _, results = ingest_events(_store("memory"), [doc for _, doc in as_objects], source="<http>")
    for (line_no, _), res in zip(as_objects, results, strict=True):
        if line_no in bad:
            assert res.status == "rejected" and res.field == bad[line_no], (line_no, res, lines[line_no - 1])
        else:
            assert res.status in ("accepted", "duplicate"), (line_no, res, lines[line_no - 1])
