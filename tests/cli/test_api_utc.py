"""Every datetime the Python API returns is UTC-aware, and names the instant the JSON's `Z`
names (the store's demo data, read through `alphatrace.connect`)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

import alphatrace as at
from alphatrace.cli.common import to_json
from alphatrace.utc import aware, aware_table


def _datetimes(o: Any) -> Iterator[dt.datetime]:
    if isinstance(o, dt.datetime):
        yield o
    elif isinstance(o, dict):
        for v in o.values():
            yield from _datetimes(v)
    elif isinstance(o, list | tuple):
        for v in o:
            yield from _datetimes(v)


def test_every_api_result_is_utc_aware(demo_db: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.duckdb"
    copy.write_bytes(demo_db.read_bytes())  # evaluate and revive write
    db = at.connect(copy)
    try:
        led = db.ledger(agent="MeanReversionAgent")
        rows = led.to_pylist()
        run_id = rows[0]["run_id"]
        results: dict[str, Any] = {
            "ledger": rows,
            "agents": db.agents(),
            "explain": db.explain(run_id),
            "forensics": db.forensics(agent="MeanReversionAgent"),
            "exclusions": db.exclusions(),
            "confidence": db.confidence().to_pylist(),
            "history": db.confidence(history=True).to_pylist()[:50],
            "evaluate": db.gates.evaluate(),
            "backtest": db.gates.backtest(),
            "audit_show": db.audit_show("FUNDING"),
            "symbols": db.symbols(),
        }
        assert str(led.table.schema.field("ts").type) == "timestamp[us, tz=UTC]"
        assert str(led.to_pandas()["ts"].dtype) == "datetime64[us, UTC]"
        found = 0
        for name, res in results.items():
            for t in _datetimes(res):
                found += 1
                assert t.utcoffset() == dt.timedelta(0), (name, t)
        assert found > 100
        # the instant is the one the JSON names with Z
        doc = db.explain(run_id)
        assert json.loads(to_json(doc))["ts"] == doc["ts"].replace(tzinfo=None).isoformat() + "Z"
        assert doc["ts"] == rows[0]["ts"]
    finally:
        db.close()


@given(st.datetimes(timezones=st.none() | st.timezones()))
def test_aware_keeps_the_instant(t: dt.datetime) -> None:
    out = aware({"a": [t, (t,)]})["a"]
    assert out[0].tzinfo is dt.UTC and out[1][0] == out[0]
    if t.tzinfo is None:
        assert out[0].replace(tzinfo=None) == t
    else:  # the same instant (== is never true across zones for a time in a DST gap or fold)
        assert out[0].timestamp() == t.timestamp()


def test_aware_table_keeps_values_and_aware_columns() -> None:
    t = pa.table({"ts": pa.array([0, 1_000_000], pa.timestamp("us")),
                  "tz": pa.array([5], pa.timestamp("ms", tz="Asia/Tokyo")).take([0, 0]),
                  "x": [1, 2]})
    out = aware_table(t)
    assert out.schema.field("ts").type == pa.timestamp("us", tz="UTC")
    assert out.schema.field("tz").type == pa.timestamp("ms", tz="Asia/Tokyo")
    assert out.column("ts").cast(pa.int64()).to_pylist() == [0, 1_000_000]
    assert out.column("ts").to_pylist()[1] == dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=dt.UTC)
