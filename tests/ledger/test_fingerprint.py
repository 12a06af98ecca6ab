"""The legs' fingerprint: the numpy kernel equals a scalar re-reading of its specification (the
module docstring) on random rows, whatever the batch split; and a store whose legs were priced
by other code (old fingerprints) is re-priced in full once, then incrementally as before."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import struct
from pathlib import Path
from typing import Any

import pyarrow as pa
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.ledger.fingerprint import fingerprints
from alphatrace.store import Store
from tests.ledger.helpers import add_alpha, add_bars, add_funding, at, run_reconcile

M64 = 2**64
SCHEMA = pa.schema([
    ("policy_hash", pa.string()), ("market_symbol", pa.string()), ("interval_s", pa.int32()),
    ("size_usd", pa.float64()), ("horizon_s", pa.float64()), ("fee_rate", pa.float64()),
    ("include_funding", pa.bool_()), ("reason", pa.string()), ("entry_ts", pa.timestamp("us")),
    ("entry_price", pa.float64()), ("exit_ts", pa.timestamp("us")),
    ("exit_price", pa.float64()), ("funding_bps", pa.float64()),
])
EPOCH = dt.datetime(1970, 1, 1)


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % M64
    return z ^ (z >> 31)


def _value(v: Any) -> int:
    """The spec's value word, written from the docstring (not from the kernel)."""
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int):
        return v % M64
    if isinstance(v, float):
        return 0x7FF8000000000000 if math.isnan(v) else struct.unpack("<Q", struct.pack("<d", v))[0]
    if isinstance(v, dt.datetime):
        return (v - EPOCH) // dt.timedelta(microseconds=1) % M64
    return int(hashlib.md5(v.encode("utf-8")).hexdigest()[:16], 16)


def _reference(row: dict[str, Any]) -> int:
    h = 0x243F6A8885A308D3
    for name in SCHEMA.names:
        v = row[name]
        for w in ((0, 0) if v is None else (1, _value(v))):
            h = _mix(((h ^ w) + 0x9E3779B97F4A7C15) % M64)
    return h >> 1


def _maybe(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | s


_TS = st.datetimes(min_value=dt.datetime(1970, 1, 1), max_value=dt.datetime(2249, 12, 31))
_ROW = st.fixed_dictionaries({
    "policy_hash": _maybe(st.text(max_size=8)), "market_symbol": _maybe(st.text(max_size=6)),
    "interval_s": _maybe(st.integers(-(2**31), 2**31 - 1)),
    "size_usd": _maybe(st.floats()), "horizon_s": _maybe(st.floats()),
    "fee_rate": _maybe(st.sampled_from([0.0, -0.0, 0.0005, float("nan"), float("inf")])),
    "include_funding": _maybe(st.booleans()), "reason": _maybe(st.text(max_size=12)),
    "entry_ts": _maybe(_TS), "entry_price": _maybe(st.floats()), "exit_ts": _maybe(_TS),
    "exit_price": _maybe(st.floats(allow_nan=False)), "funding_bps": _maybe(st.floats()),
})


@given(st.lists(_ROW, max_size=12), st.integers(1, 5))
def test_the_kernel_follows_its_specification(rows: list[dict[str, Any]], chunk: int) -> None:
    batches = [pa.RecordBatch.from_pylist(rows[i:i + chunk], schema=SCHEMA)
               for i in range(0, len(rows), chunk)]
    table = pa.Table.from_batches(batches, schema=SCHEMA)
    got = fingerprints(table).to_pylist()
    assert got == [_reference(r) for r in rows]
    assert all(0 <= f < 2**63 for f in got)


def test_a_null_differs_from_its_fill_and_every_field_counts() -> None:
    row = {"policy_hash": "p", "market_symbol": "BTCUSDT", "interval_s": 3600,
           "size_usd": 1e4, "horizon_s": 28800.0, "fee_rate": 0.0005, "include_funding": True,
           "reason": None, "entry_ts": dt.datetime(2025, 1, 1), "entry_price": 100.0,
           "exit_ts": dt.datetime(2025, 1, 1, 8), "exit_price": 101.0, "funding_bps": -0.5}
    variants = [row] + [row | {k: None} for k in row if row[k] is not None]
    variants += [row | {"reason": ""}, row | {"funding_bps": 0.0},
                 row | {"funding_bps": -0.0}, row | {"exit_price": math.nextafter(101.0, 200)}]
    got = fingerprints(pa.Table.from_pylist(variants, schema=SCHEMA)).to_pylist()
    assert len(set(got)) == len(variants)


def _store(path: Path) -> Store:
    s = Store(path)
    add_bars(s, "BTCUSDT", [100.0 + i * 0.37 for i in range(30)])
    add_funding(s, "BTCUSDT", [(at(4), 0.0001, 101.0), (at(12), -0.0002, None)])
    add_alpha(s, "r1", "BTCUSDT", "LONG", at(1, 10))
    add_alpha(s, "r2", "BTCUSDT", "SHORT", at(2), horizon_s=3 * 3600.0)
    add_alpha(s, "r3", "BTCUSDT", "FLAT", at(3))
    add_alpha(s, "r4", "DOGEUSDT", "LONG", at(3))                # unpriced
    add_alpha(s, "r5", "BTCUSDT", "LONG", at(28))                # open
    return s


FPS = "SELECT run_id, fingerprint FROM legs ORDER BY run_id"  # one leg a run


def test_legs_from_older_pricing_code_are_re_priced_once(tmp_path: Path) -> None:
    fresh = _store(tmp_path / "fresh.duckdb")
    run_reconcile(fresh)
    want = fresh.con.execute(FPS).fetchall()
    fresh.close()
    old = _store(tmp_path / "old.duckdb")
    run_reconcile(old)
    # as older code left it: its own fingerprints, and its definition recorded
    old.con.execute("UPDATE legs SET fingerprint = 18446744073709551615 - fingerprint")
    old.con.execute("UPDATE ledger_build SET definition = 'older code'")
    rep = run_reconcile(old)
    assert (rep.full, rep.priced) == (True, 5)
    assert old.con.execute(FPS).fetchall() == want
    assert run_reconcile(old).priced == 0  # then as usual: nothing new, nothing priced
    old.close()
