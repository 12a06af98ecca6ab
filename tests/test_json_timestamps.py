"""One text form for an instant in every JSON alphatrace writes (alphatrace.utc.iso_z)."""

from __future__ import annotations

import datetime as dt


def test_one_timestamp_form_in_every_json() -> None:
    """CLI --json (jsonvalue.plain), HTTP rows (server.serialize.value) and decision records
    (governance.canon.ts_text) write an instant the same way: six fractional digits and a Z,
    an aware time converted to UTC first."""
    from alphatrace.governance.canon import ts_text
    from alphatrace.jsonvalue import plain
    from alphatrace.server.serialize import value

    paris = dt.timezone(dt.timedelta(hours=1))
    for t in (dt.datetime(2025, 3, 1, 8, 0), dt.datetime(2025, 3, 1, 9, 0, tzinfo=paris)):
        assert plain(t) == value(t) == ts_text(t) == "2025-03-01T08:00:00.000000Z"
    assert plain(dt.datetime(2025, 3, 1, 8, 0, 0, 250)) == "2025-03-01T08:00:00.000250Z"
