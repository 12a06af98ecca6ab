"""encode_lines: the per-event JSON texts of `json.dumps`, produced in one call."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.errors import SchemaError
from alphatrace.store.encode_events import encode_lines


def reference(events: list[Any], ascii: bool = False) -> bytes:
    lines = [json.dumps(e, separators=(",", ":"), allow_nan=True, default=str, ensure_ascii=ascii)
             for e in events]
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", ",", '"'])))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


@given(st.lists(values, max_size=30))
@settings(max_examples=200)
def test_same_bytes_as_one_dumps_per_event(events: list[Any]) -> None:
    assert encode_lines(events) == reference(events)


def test_non_json_values_use_their_text_like_dumps_default_str() -> None:
    events = [{"ts": object.__new__(type("T", (), {"__str__": lambda self: "x"}))}, {"a": math.inf}]
    assert encode_lines(events) == reference(events)


def test_an_event_that_looks_like_the_separator_falls_back_to_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    import alphatrace.store.encode_events as mod

    monkeypatch.setattr(mod.secrets, "token_hex", lambda n: "ab" * n)
    mark = "\x00" + "ab" * 16 + "\x00"
    events = [{"a": 1}, mark, {"b": [mark, 2]}]
    assert encode_lines(events) == reference(events)


def test_circular_event_is_a_schema_error() -> None:
    e: dict[str, Any] = {}
    e["self"] = e
    with pytest.raises(SchemaError, match="cannot be serialised"):
        encode_lines([{"ok": 1}, e])


def test_characters_beyond_ascii_are_written_as_utf8_not_escapes() -> None:
    """An escape sends a line to validation's exact path (its plan costs more than the rest of
    a collector round), so encoded events carry no escape a plain text does not need."""
    events = [{"agent": "Agenté", "note": "café ☕ 𝄞", "ctl": "a\tb\x00"}]
    assert encode_lines(events) == reference(events)
    assert b"\\u00e9" not in encode_lines(events) and "é".encode() in encode_lines(events)
    assert b"\\u0000" in encode_lines(events)  # control characters must stay escaped in JSON


def test_a_batch_with_a_lone_surrogate_is_written_with_escapes() -> None:
    events = [{"a": "é"}, {"b": "x\ud800y"}]
    assert encode_lines(events) == reference(events, ascii=True)


@given(st.lists(values, max_size=30), st.integers(1, 8))
@settings(max_examples=200)
def test_encoded_in_slices_the_bytes_are_the_same(events: list[Any], size: int) -> None:
    """The list is encoded `SLICE` events per encoder call (to bound how long one call holds
    the GIL); any slice size gives the bytes of one dumps per event."""
    import alphatrace.store.encode_events as mod

    kept = mod.SLICE
    mod.SLICE = size
    try:
        assert encode_lines(events) == reference(events)
    finally:
        mod.SLICE = kept


def test_a_slice_that_holds_the_separator_falls_back_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    import alphatrace.store.encode_events as mod

    monkeypatch.setattr(mod.secrets, "token_hex", lambda n: "ab" * n)
    monkeypatch.setattr(mod, "SLICE", 2)
    mark = "\x00" + "ab" * 16 + "\x00"
    calls: list[Any] = []
    one = mod._one
    monkeypatch.setattr(mod, "_one", lambda e, enc=mod._ENCODER: calls.append(e) or one(e, enc))
    events = [{"a": 1}, {"b": 2}, {"c": [1, mark, 2]}, {"d": 4}, {"e": 5}]
    assert encode_lines(events) == reference(events)
    # the third event's text holds the separator: its slice (the 3rd and 4th) goes one by one
    assert calls == [{"c": [1, mark, 2]}, {"d": 4}]
