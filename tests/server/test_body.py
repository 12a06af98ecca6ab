"""Batch body shapes: an array of objects or {"events": [...]}, anything else a clear 400."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi import HTTPException
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.server.body import event_list, parse_json

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["events", "run_id", "x"]), inner, max_size=3),
    max_leaves=10,
)


@given(VALUES)
def test_event_list_accepts_exactly_the_two_shapes(doc: Any) -> None:
    items = doc.get("events") if isinstance(doc, dict) else doc
    ok = isinstance(items, list) and all(isinstance(e, dict) for e in items)
    if ok:
        assert event_list(doc) == items
    else:
        with pytest.raises(HTTPException) as e:
            event_list(doc)
        assert e.value.status_code == 400


@given(st.binary(max_size=50))
def test_parse_json_is_json_loads_or_400(body: bytes) -> None:
    try:
        expected = json.loads(body)
    except (ValueError, RecursionError):
        with pytest.raises(HTTPException) as e:
            parse_json(body)
        assert e.value.status_code == 400
        return
    got = parse_json(body)
    assert got == expected or (got != got and expected != expected)  # NaN is not equal to itself
