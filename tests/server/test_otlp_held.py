"""The held spans' rows (server/otlp_held.py): their JSON text (`_dumps`: orjson's where that is
exact, read back by `load` as the `json.dumps` text it replaced would be), and a row there twice
doing no harm (the append does not look for one)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.server.otlp_held import _dumps, apply, load
from alphatrace.server.otlp_runs import TRACE, SpanTags
from alphatrace.server.trace_hold import HoldWrites, TraceHold
from alphatrace.store import Store


def _old(v: Any) -> str:
    """What the held rows held before: `json.dumps`'s text."""
    return json.dumps(v, separators=(",", ":"), default=str)


def _same(a: Any, b: Any) -> bool:
    """Equal as values, a NaN equal to a NaN, and of the same JSON type (1 is not 1.0)."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and str(a) == str(b))
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


# What an OTLP span's event and tags can carry: attribute values of any OTLP type (strings with
# any code point, ints beyond 64 bits from a JSON body, any float, bytes, arrays, maps), and a
# few values json's `default` writes (a datetime, a set).
_leaf = (st.none() | st.booleans() | st.text() | st.integers()
         | st.integers(min_value=2**63 - 5, max_value=2**70) | st.floats()
         | st.binary(max_size=8) | st.datetimes() | st.frozensets(st.integers(), max_size=2))
_value = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=4)
                      | st.tuples(inner, inner)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=4), max_leaves=12)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(max_size=12), _value, max_size=8))
def test_the_text_reads_back_as_json_dumps_text_did(v: dict[str, Any]) -> None:
    assert _same(json.loads(_dumps(v)), json.loads(_old(v)))


def test_the_cases_orjson_would_write_otherwise_go_to_json() -> None:
    # each of these orjson writes (or refuses) differently from json.dumps
    cases = [{"cost_usd": float("nan")}, {"cost_usd": [1.0, float("inf")]},
             {"n": 2**64}, {"s": "\ud800"}, {1: "int key"}, {"at": dt.datetime(2026, 1, 2)}]
    for v in cases:
        assert _dumps(v) == _old(v), v
    # and plain events are orjson's compact text, which json reads back the same
    ev = {"type": "telemetry", "tokens_in": 12, "cost_usd": 0.25, "run_id": None, "ok": True}
    assert _dumps(ev) == '{"type":"telemetry","tokens_in":12,"cost_usd":0.25,"run_id":null,' \
                         '"ok":true}'


def test_held_rows_read_back_as_they_were_held(tmp_path: Any) -> None:
    events = [{"type": "telemetry", "event_id": "otlp:t1:s1", "cost_usd": float("nan")},
              {"type": "telemetry", "event_id": "otlp:t1:s2", "tokens_in": 2**70, "x": "é"}]
    tags = [SpanTags("t1", "s1", False, 5, (("alphatrace.run_id", None),)),
            SpanTags("t1", "s2", False, 7, (("alphatrace.agent", 1.5),))]
    with Store(tmp_path / "h.duckdb") as store:
        apply(store.con, [HoldWrites(list(zip(events, tags, strict=True)), [], 12.5)])
        back = load(store)
    assert [t for _, t, _ in back] == tags
    assert [at for _, _, at in back] == [12.5, 12.5]
    assert math.isnan(back[0][0]["cost_usd"]) and back[1][0]["tokens_in"] == 2**70
    assert back[1][0]["x"] == "é"


def test_a_span_whose_row_is_there_twice_is_held_once_and_its_rows_all_go(tmp_path: Any) -> None:
    ev = {"type": "telemetry", "event_id": "otlp:t1:s1", "tokens_in": 3}
    tags = SpanTags("t1", "s1", False, 5, tuple((None,) * len(f.keys) for f in TRACE))
    with Store(tmp_path / "h.duckdb") as store:
        writes = HoldWrites([(ev, tags)], [], 1.0)
        apply(store.con, [writes])
        apply(store.con, [writes])
        rows = load(store)
        assert len(rows) == 2
        hold = TraceHold()
        hold.restore(rows)
        assert hold.stats.spans == 1
        out = hold.drain()
        assert [r.event["event_id"] for r in out] == ["otlp:t1:s1"]
        apply(store.con, [HoldWrites.dropping(out)])
        assert load(store) == []
