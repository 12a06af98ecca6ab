"""In-memory events (SDK direct sink, HTTP collector) as JSON lines, encoded in one call.

Why: `json.dumps` per event builds a new C encoder every call; for a collector round of
4,000 events that was a quarter of the round. Encoding the whole list once, with a random
separator string between the events, and cutting the text at the separators gives exactly
the per-event texts (the same encoder settings produce the same text for an item inside a
list as on its own). If the separator text could occur inside an event, or the list cannot be
encoded as a whole, the events are encoded one by one instead, so the result never differs.

Characters beyond ASCII are written as UTF-8, not as `\\u` escapes: validation sends every line
with an escape to its exact path (store/validate_sql.py), whose plan alone cost a collector round
more than the rest of it, so one accented name in a batch doubled the round. Both spellings
parse to the same values, so an event's identity does not depend on which one it came in. A
batch holding a lone surrogate (no UTF-8 form) is written with escapes, as before.

The list is encoded `SLICE` events at a time, not in one call: the C encoder holds the GIL
for the whole call, and in the collector this runs on the writer thread beside the event loop
that answers sizing requests (issue #20: p99 ≤ 5 ms). A 2,048-event round in one call held
it ~6 ms on the 2-core machine of 2026-12-05, and a thread waking beside it waited p50 6.0 ms
for the GIL, against 0.9 ms with slices of 128 (bench/bench_gil.py, bench/RESULTS.md).
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from alphatrace.errors import SchemaError

_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=True, default=str, ensure_ascii=False)
_ASCII = json.JSONEncoder(separators=(",", ":"), allow_nan=True, default=str)


class DuplicateKeys(dict[str, Any]):
    """A JSON object whose text repeated a key. Parsers disagree on which value wins, so its
    line keeps every (key, value) as written and validation quarantines it ("duplicate key
    run_id") exactly as it does a file line: the same bytes give the same outcome on every path."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def object_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads` object hook for event batches: a plain dict, or DuplicateKeys."""
    d = dict(pairs)
    return d if len(d) == len(pairs) else DuplicateKeys(pairs)


def _one(e: Any, enc: json.JSONEncoder = _ENCODER) -> str:
    try:
        if type(e) is DuplicateKeys:
            return "{" + ",".join(enc.encode(k) + ":" + enc.encode(v) for k, v in e.pairs) + "}"
        return enc.encode(e)
    except (TypeError, ValueError) as exc:
        raise SchemaError(f"event cannot be serialised as JSON: {exc}") from None


def encode_lines(events: list[Any]) -> bytes:
    """`events` as UTF-8 JSON lines, each line what `json.dumps(e, separators=(",", ":"),
    allow_nan=True, default=str, ensure_ascii=False)` gives (with `ensure_ascii=True` for a
    batch that has no UTF-8 form); SchemaError names an event that has no JSON form."""
    if not events:
        return b""
    try:
        return _lines(events, _ENCODER).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: only an escape can carry it
        return _lines(events, _ASCII).encode("utf-8")


SLICE = 128  # events encoded per call of the C encoder (module docstring)


def _lines(events: list[Any], enc: json.JSONEncoder) -> str:
    if any(type(e) is DuplicateKeys for e in events):  # the encoder would drop the repeats
        return "\n".join(_one(e, enc) for e in events) + "\n"
    mark = "\x00" + secrets.token_hex(16) + "\x00"
    sep = "," + enc.encode(mark) + ","
    parts: list[str] = []
    for i in range(0, len(events), SLICE):
        parts.extend(_slice(events[i:i + SLICE], enc, mark, sep))
    return "\n".join(parts) + "\n"


def _slice(events: list[Any], enc: json.JSONEncoder, mark: str, sep: str) -> list[str]:
    """Each event's text, from one call of the encoder over the events with `mark` between
    them (one by one when that cannot work)."""
    interleaved: list[Any] = [mark] * (2 * len(events) - 1)
    interleaved[::2] = events
    try:
        text = enc.encode(interleaved)
    except (TypeError, ValueError):
        text = ""
    parts = text[1:-1].split(sep) if text else []
    if len(parts) != len(events):  # cannot encode as a whole, or the mark text appears inside
        parts = [_one(e, enc) for e in events]
    return parts
