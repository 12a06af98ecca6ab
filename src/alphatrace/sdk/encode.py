"""Turn queued SDK events into JSON lines, off the agent's hot path.

The hot path queues plain dicts whose times are `time.time()` floats; formatting them as ISO 8601
UTC and serialising happen here, in the background thread. None values are dropped (absent and
null mean the same in the event contract) so lines stay short.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

TIME_KEYS = ("ts", "start_ts", "end_ts")


def iso(ts: float) -> str:
    """Epoch seconds as ISO 8601 UTC with microseconds and a Z."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _default(o: Any) -> Any:
    if isinstance(o, dt.datetime):
        if o.tzinfo is not None:
            o = o.astimezone(dt.UTC).replace(tzinfo=None)
        return o.isoformat() + "Z"
    if isinstance(o, dt.date):
        return o.isoformat()
    if hasattr(o, "item"):  # numpy scalars
        return o.item()
    return str(o)


def prepare(ev: dict[str, Any]) -> dict[str, Any]:
    """The event as it goes on the wire: no None values, times as ISO strings."""
    out = {k: v for k, v in ev.items() if v is not None}
    for k in TIME_KEYS:
        v = out.get(k)
        if isinstance(v, float | int) and not isinstance(v, bool):
            out[k] = iso(float(v))
    return out


def encode(ev: dict[str, Any]) -> str:
    """One JSON line (no newline). NaN is written as NaN so the collector quarantines it with a
    reason instead of the SDK silently changing a value."""
    return json.dumps(prepare(ev), separators=(",", ":"), default=_default, allow_nan=True)


def encode_many(events: list[dict[str, Any]]) -> list[str]:
    out = []
    for ev in events:
        try:
            out.append(encode(ev))
        except (TypeError, ValueError, OverflowError):  # e.g. a circular attr: keep the rest
            out.append(json.dumps({k: str(v) for k, v in prepare(ev).items()}, separators=(",", ":")))
    return out
