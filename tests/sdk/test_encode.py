"""Wire encoding of SDK events: ISO times to the microsecond, None dropped, NaN kept visible."""

from __future__ import annotations

import datetime as dt
import json
import math

from hypothesis import given
from hypothesis import strategies as st

from alphatrace.sdk.encode import encode, encode_many, iso, prepare


@given(st.floats(min_value=-2e9, max_value=4e9, allow_nan=False))
def test_iso_round_trips_to_the_microsecond(ts: float) -> None:
    s = iso(ts)
    assert s.endswith("Z") and len(s) == 27
    back = dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()
    # Independent reference: the stdlib's own conversion, to the nearest microsecond.
    ref = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=round(ts * 1e6))
    assert abs(back - ts) <= 1e-6 + abs(ts) * 1e-15
    assert abs(ref.timestamp() - back) <= 1e-6 + abs(ts) * 1e-15


def test_prepare_and_encode() -> None:
    ev = {"type": "alpha", "ts": 1_740_816_000.25, "start_ts": 0, "regime": None,
          "when": dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
          "flag": True}
    out = prepare(ev)
    assert out == {"type": "alpha", "ts": "2025-03-01T08:00:00.250000Z",
                   "start_ts": "1970-01-01T00:00:00.000000Z", "when": ev["when"], "flag": True}
    assert json.loads(encode(ev))["when"] == "2025-03-01T08:00:00.000000Z"
    assert encode({"score_final": math.nan}) == '{"score_final":NaN}'
    circular: dict[str, object] = {}
    circular["self"] = circular
    assert json.loads(encode_many([{"run_id": "r", "x": circular}])[0])["run_id"] == "r"
