"""The typed entry's staging in Arrow: which rows it clears, their typed values and identity
keys, without a DuckDB statement (store/typed_ingest.py).

Why: the staging statement (the value rules in SQL over the typed columns) cost a collector
round about 4.5 ms of CPU to bind and plan whatever its size; under bench/bench_otlp.py's load
the writer's rounds carry one 512-span request each, so that was ~9 µs of each span's CPU. The
values are already Python values of their field types, so the rules are checked here with
Arrow compute functions and numpy over whole columns, the fields of one type together
(`cleared`: ~0.7 ms a round, ~2.5 µs a span, md5 included).

These checks only clear rows; they never name a reason. A row they do not clear goes to the
JSON path's exact query (`ingest.ingest_staged` re-runs it from its JSON line), which decides
it: stored, or quarantined with its field and reason. So each check here is the SQL rule
(`validate_sql._checks`, from the field table) or stricter, never looser:

- text (`trim(x) <> ''`): Arrow's whitespace trim removes every character DuckDB's `trim`
  removes and more (tests/store/test_typed_rules.py), so a value non-empty here is non-empty
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


def bools(a: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean column as numpy (null: false)."""
    return np.asarray(a.to_numpy(zero_copy_only=False), dtype=bool)


def text_ok(col: pa.Array) -> pa.Array:
    """Non-empty after trimming whitespace (stricter than DuckDB's `trim`); null where absent."""
    return pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(col)), 0)


def numbers_ok(x: np.ndarray, fields: list[Field]) -> np.ndarray:
    """Per value of `x` (the fields' columns one after the other, NaN where absent): finite,
    whole for an integer field, within the field's range."""
    n = len(x) // len(fields) if fields else 0

    def each(values: list[float | bool]) -> np.ndarray:
        return np.repeat(np.array(values), n)

    inf = float("inf")
    lo = each([f.range.lo if f.range else -inf for f in fields])
    hi = each([f.range.hi if f.range else inf for f in fields])
    lo_open = each([bool(f.range and f.range.lo_open) for f in fields])
    integer = each([f.type == "integer" for f in fields])
    with np.errstate(invalid="ignore"):
        return (np.isfinite(x) & (~integer | (x == np.floor(x)))
                & np.where(lo_open, x > lo, x >= lo) & (x <= hi))


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


def cleared(columns: dict[str, pa.ChunkedArray], fields: list[Field]
            ) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """(per row: every field's value passes its rules, a required one present; the typed
    value of each timestamp field). Fields of one type are checked together, their columns
    one after the other: a compute call costs ~10 µs whatever its length, and a round has
    a few hundred rows."""
    n = len(columns[fields[0].name]) if fields else 0
    values: dict[str, pa.Array] = {}
    ok = np.ones(n, bool)
    groups = (("text", [f for f in fields if f.type in ("string", "id")]),
              ("number", [f for f in fields if f.type in ("number", "integer")]),
              ("timestamp", [f for f in fields if f.type == "timestamp"]))
    for kind, group in groups:
        if not group:
            continue
        col = pa.concat_arrays([c for f in group for c in columns[f.name].chunks])
        absent = bools(col.is_null())
        if kind == "text":
            rule = bools(_no_nulls(text_ok(col)))
        elif kind == "number":
            rule = numbers_ok(np.asarray(col.to_numpy(zero_copy_only=False), float), group)
        else:
            typed = timestamps(col)
            rule = bools(typed.is_valid())
            values.update((f.name, typed.slice(i * n, n)) for i, f in enumerate(group))
        required = np.repeat(np.array([f.required for f in group]), n)
        ok &= np.where(absent, ~required, rule).reshape(len(group), n).all(axis=0)
    return ok, values


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
