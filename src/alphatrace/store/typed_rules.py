"""The typed entry's staging in Arrow: which rows it clears, their typed values and identity
keys, without a DuckDB statement (store/typed_ingest.py).

Why: the staging statement (the value rules in SQL over the typed columns) cost a collector
round about 4.5 ms of CPU to bind and plan whatever its size; under bench/bench_otlp.py's load
the writer's rounds carry one 512-span request each, so that was ~9 µs of each span's CPU. The
values are already Python values of their field types, so the rules are checked here with
Arrow compute functions over whole columns (microseconds a column).

These checks only clear rows; they never name a reason. A row they do not clear goes to the
JSON path's exact query (`ingest.ingest_staged` re-runs it from its JSON line), which decides
it: stored, or quarantined with its field and reason. So each check here is the SQL rule
(`validate_sql._checks`, from the field table) or stricter, never looser:

- text (`trim(x) <> ''`): Arrow's whitespace trim removes every character DuckDB's `trim`
  removes and more (tests/server/test_otlp_typed.py), so a value non-empty here is non-empty
  there;
- numbers: finite, whole for an integer field, within the field's range, as the SQL compares
  the same doubles;
- timestamps: only the two spellings the OTLP mapping writes (`otlp.iso_from_nanos`:
  `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, a real date and time) are read here, to the microsecond, as
  DuckDB reads them; any other spelling is left to the SQL;
- attrs: the extra keys' JSON text as Python writes it, taken as the attrs DuckDB's `json()`
  would write when the text has no number in exponent form, no NaN/Infinity and no `\\u`
  escape (the only spellings in which the two differ: Hypothesis over every JSON value, in
  the tests); a text with any of them goes to the SQL.

The identity key is `ingest.KEY_SQL`'s: md5 over `telemetry`, chr(31) and the event id, its
16 bytes a little-endian 128-bit number (DuckDB's `md5_number`), split into two halves.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.events.fields import TS_MAX, TS_MIN, Field, Kind

ISO_UTC = r"^\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{6})?Z$"
SECOND = "%Y-%m-%dT%H:%M:%S"
# where Python's JSON text of a value may differ from DuckDB's `json()` of it
JSON_DIFFERS = r"[:,\[]-?[0-9]+(?:\.[0-9]+)?[eE]|NaN|Infinity|\\u"
_TS_LO = int(TS_MIN.timestamp()) * 1_000_000
_TS_HI = int(TS_MAX.timestamp()) * 1_000_000


def _no_nulls(mask: pa.Array) -> pa.Array:
    return pc.fill_null(mask, False)


def text_ok(col: pa.Array) -> pa.Array:
    """Non-empty after trimming whitespace (stricter than DuckDB's `trim`); null where absent."""
    return pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0)


def number_ok(col: pa.Array, f: Field) -> pa.Array:
    """Finite, whole for an integer field, within the field's range; null where absent."""
    ok = pc.is_finite(col)
    if f.type == "integer":
        ok = pc.and_(ok, pc.equal(col, pc.floor(col)))
    if f.range is not None:
        low = (pc.greater if f.range.lo_open else pc.greater_equal)(col, f.range.lo)
        ok = pc.and_(ok, pc.and_(low, pc.less_equal(col, f.range.hi)))
    return ok


def timestamps(col: pa.Array) -> pa.Array:
    """ISO 8601 UTC text in the mapping's spellings as timestamp[us]; null where absent, in
    another spelling, not a real date and time, or outside [TS_MIN, TS_MAX)."""
    canon = _no_nulls(pc.match_substring_regex(col, ISO_UTC))
    text = pc.if_else(canon, col, pa.scalar(None, pa.string()))
    head = pc.utf8_slice_codeunits(text, 0, 19)
    secs = pc.strptime(head, format=SECOND, unit="s", error_is_null=True)
    # strptime rolls an impossible date over (Feb 30 -> Mar 2): only a value that prints back
    # as it was written is a real one (Arrow prints "YYYY-MM-DD HH:MM:SS"; its strftime costs
    # 30x more)
    written = pc.replace_substring(head, "T", " ", max_replacements=1)
    real = _no_nulls(pc.equal(pc.cast(secs, pa.string()), written))
    frac = pc.utf8_slice_codeunits(text, 20, 26)
    micros = pc.cast(pc.if_else(pc.equal(pc.utf8_length(frac), 6), frac, "0"), pa.int64())
    us = pc.add(pc.multiply(pc.cast(secs, pa.int64()), 1_000_000), micros)
    inside = pc.and_(pc.greater_equal(us, _TS_LO), pc.less(us, _TS_HI))
    keep = _no_nulls(pc.and_(real, inside))
    return pc.cast(pc.if_else(keep, us, pa.scalar(None, pa.int64())), pa.timestamp("us"))


def json_ok(col: pa.Array) -> pa.Array:
    """Whether DuckDB's `json()` of each text is the text itself (see the module docstring);
    true where absent."""
    return pc.invert(_no_nulls(pc.match_substring_regex(col, JSON_DIFFERS)))


def field_values(col: pa.Array, f: Field) -> tuple[pa.Array, pa.Array]:
    """(typed value, the row's value passes the field's rules) of one field's column; a
    required field must be present."""
    if f.type == "timestamp":
        value = timestamps(col)
        ok = pc.or_(pc.is_null(col), pc.is_valid(value))
    else:
        value = col
        rule = number_ok(col, f) if f.type in ("number", "integer") else text_ok(col)
        ok = _no_nulls(rule) if f.required else pc.or_(pc.is_null(col), _no_nulls(rule))
    return value, ok


def identity_keys(kind: Kind, ids: list[str | None]) -> tuple[pa.Array, pa.Array]:
    """(key_hi, key_lo) of each event id (null for None): `ingest.KEY_SQL`'s key."""
    prefix = kind + "\x1f"
    present = [i for i, e in enumerate(ids) if e is not None]
    digests = b"".join(hashlib.md5((prefix + ids[i]).encode()).digest()  # type: ignore[operator]
                       for i in present)
    halves = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    hi = np.zeros(len(ids), np.uint64)
    lo = np.zeros(len(ids), np.uint64)
    hi[present], lo[present] = halves[:, 1], halves[:, 0]
    mask = np.ones(len(ids), bool)
    mask[present] = False
    return pa.array(hi, mask=mask), pa.array(lo, mask=mask)
