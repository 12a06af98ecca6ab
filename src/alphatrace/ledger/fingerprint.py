"""The `fingerprint` of a leg: a 63-bit hash of every input that decided its numbers, the same
bits on every engine (a numpy kernel over Arrow columns, like `locate`).

Inputs, in this order (`FIELDS`): the policy hash, the market symbol, the bar interval, the
effective size, horizon, fee rate and funding switch, the reason (unpriced / open), the entry
and exit bars (time and price) and the funding in bps. Two legs with the same inputs have the
same fingerprint whichever engine priced them; a change in any input changes it (barring a
2⁻⁶³ collision).

The fixed binary form: each field is two 64-bit words, a tag (0: NULL, 1: a value) and the
value (0 when NULL): an integer or timestamp (epoch microseconds) as its two's complement; a
boolean as 0 or 1; a double as its IEEE-754 bits, every NaN as 0x7ff8000000000000; text as
the first 8 bytes (big-endian) of the MD5 of its UTF-8. The words are folded, from
`SEED`, by `h = mix((h ^ w) + GOLDEN)` with `mix` the SplitMix64 finalizer (arithmetic
modulo 2⁶⁴); the fingerprint is `h >> 1`, so it fits a signed BIGINT on Spark and the
store's UBIGINT column alike.

Why not a SQL hash: DuckDB's `hash` is its own (64-bit, not promised stable across versions)
and Spark's `hash` is a 32-bit Murmur3, so neither is portable; MD5 over a text form in SQL
is portable but measured 6.4 s per million rows in DuckDB (a printf of each double); this
kernel, with the Arrow round trip it needs, added about 0.7 µs a leg to a full reconcile.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

Kind = Literal["text", "int", "ts", "bool", "double"]

FIELDS: tuple[tuple[str, Kind], ...] = (
    ("policy_hash", "text"), ("market_symbol", "text"), ("interval_s", "int"),
    ("size_usd", "double"), ("horizon_s", "double"), ("fee_rate", "double"),
    ("include_funding", "bool"), ("reason", "text"), ("entry_ts", "ts"),
    ("entry_price", "double"), ("exit_ts", "ts"), ("exit_price", "double"),
    ("funding_bps", "double"),
)
SEED = 0x243F6A8885A308D3  # the first hex digits of pi
GOLDEN = 0x9E3779B97F4A7C15
NAN_BITS = 0x7FF8000000000000
_U = np.uint64


def _mix(z: np.ndarray) -> np.ndarray:
    """The SplitMix64 finalizer, elementwise on uint64 (wrapping)."""
    z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return z ^ (z >> _U(31))


def text_word(s: str) -> int:
    """A text value's word: the first 8 bytes of MD5 of its UTF-8, big-endian."""
    return int.from_bytes(hashlib.md5(s.encode("utf-8")).digest()[:8], "big")


def _valid(col: pa.Array) -> np.ndarray:
    """1 where `col` has a value, 0 where NULL (uint64), from its validity bitmap."""
    n = len(col)
    if col.null_count == 0:
        return np.ones(n, dtype=_U)
    bits = np.frombuffer(col.buffers()[0], dtype=np.uint8)
    return np.unpackbits(bits, bitorder="little")[col.offset:col.offset + n].astype(_U)


def _values(col: pa.Array, kind: Kind) -> np.ndarray:
    """The value word of each row (anything where NULL: `_words` zeroes those)."""
    if kind == "text":
        enc = pc.dictionary_encode(col)
        words = np.array([text_word(s) for s in enc.dictionary.to_pylist()] or [0], dtype=_U)
        return words[np.asarray(pc.fill_null(enc.indices, 0).to_numpy(zero_copy_only=False))]
    if kind == "double":
        x = np.asarray(pc.fill_null(col.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False),
                       dtype=np.float64)
        return np.where(np.isnan(x), _U(NAN_BITS), x.view(_U))
    if kind == "bool":
        return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False),
                          dtype=bool).astype(_U)
    if kind == "ts" and col.type.unit != "us":
        col = col.cast(pa.timestamp("us", col.type.tz))
    return np.asarray(pc.fill_null(col.cast(pa.int64()), 0).to_numpy(zero_copy_only=False),
                      dtype=np.int64).view(_U)


def _words(col: pa.Array, kind: Kind) -> tuple[np.ndarray, np.ndarray]:
    """(tag, value) words of one column, as uint64 arrays."""
    tag = _valid(col)
    return tag, _values(col, kind) * tag  # a NULL's value word is 0 whatever the fill


def _batch_fingerprints(legs: pa.RecordBatch) -> np.ndarray:
    h = np.full(legs.num_rows, SEED, dtype=_U)
    with np.errstate(over="ignore"):
        for name, kind in FIELDS:
            for w in _words(legs.column(name), kind):
                h = _mix((h ^ w) + _U(GOLDEN))
    return (h >> _U(1)).astype(np.int64)


def fingerprints(legs: pa.Table | pa.RecordBatch) -> pa.Array:
    """The fingerprint (int64 ≥ 0) of each leg row; `legs` has at least the `FIELDS` columns."""
    batches = legs.to_batches() if isinstance(legs, pa.Table) else [legs]
    parts = [_batch_fingerprints(b) for b in batches if b.num_rows]
    return pa.array(np.concatenate(parts) if parts else np.zeros(0, np.int64), type=pa.int64())


def with_fingerprints(legs: pa.Table) -> pa.Table:
    """`legs` (the rows of `pricing.priced_legs_sql`) with the `fingerprint` column added."""
    return legs.append_column("fingerprint", fingerprints(legs))


def with_fingerprints_batch(legs: pa.RecordBatch) -> pa.RecordBatch:
    """`with_fingerprints` of one record batch (what Spark's mapInArrow hands a worker)."""
    return pa.RecordBatch.from_arrays([*legs.columns, fingerprints(legs)],
                                      names=[*legs.schema.names, "fingerprint"])
