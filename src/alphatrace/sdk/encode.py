"""Turn queued SDK events into JSON lines, off the agent's hot path.

The hot path queues plain dicts whose times are `time.time()` floats; formatting them as ISO 8601
UTC and serialising happen here, in the background thread. None values are dropped (absent and
null mean the same in the event contract) so lines stay short.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from alphatrace.jsonvalue import plain

TIME_KEYS = ("ts", "start_ts", "end_ts")


_second: tuple[int, str] = (-(2**62), "")


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with microseconds and a Z.

    Events come in bursts within the same second, so the formatted second is cached (one
    tuple, replaced atomically: safe across threads)."""
    global _second
    sec = math.floor(ts)
    us = round((ts - sec) * 1_000_000)
    if us >= 1_000_000:
        sec, us = sec + 1, us - 1_000_000
    cached_sec, prefix = _second
    if sec != cached_sec:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        _second = (sec, prefix)
    return f"{prefix}.{us:06d}Z"


def _default(o: Any) -> Any:
    """Attrs may hold anything: what has no JSON form is sent as its text."""
    try:
        return plain(o)
    except TypeError:
        return str(o)


def prepare(ev: dict[str, Any]) -> dict[str, Any]:
    """The event as it goes on the wire: no None values, times as ISO strings."""
    out = {k: v for k, v in ev.items() if v is not None}
    for k in TIME_KEYS:
        v = out.get(k)
        if isinstance(v, float | int) and not isinstance(v, bool):
            out[k] = iso(float(v))
    return out


# One encoder for every event: json.dumps(..., default=...) would build a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), default=_default, allow_nan=True).encode


def encode(ev: dict[str, Any]) -> str:
    """One JSON line (no newline). NaN is written as NaN so the collector quarantines it with a
    reason instead of the SDK silently changing a value."""
    return _encode(prepare(ev))


def encode_many(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for ev in events:
        try:
            out.append(encode(ev))
        except (TypeError, ValueError, OverflowError):  # e.g. a circular attr: keep the rest
            out.append(json.dumps({k: str(v) for k, v in prepare(ev).items()}, separators=(",", ":")))
    return out
