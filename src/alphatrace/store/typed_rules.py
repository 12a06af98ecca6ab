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
- timestamps: text only in the two spellings the SDK and the OTLP mapping write (`sdk.encode.iso`,
  `otlp.iso_from_nanos`: `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`, a real date and time), read to the
  microsecond as DuckDB reads them; any other text is left to the SQL. A number is epoch
  seconds, or milliseconds from 1e11, rounded to the microsecond half away from zero, as
  `validate_sql._epoch` computes it from the same double (`epoch_timestamps`);
- directions: only `LONG`, `SHORT` and `FLAT` as written (the SQL also takes other cases and
  surrounding space: those rows go to it);
- horizons: a number as seconds, or text in the one spelling `[0-9]+(.[0-9]+)?[smhdw]?` (no
  space, lower-case unit), its quantity times the unit's seconds, as the SQL multiplies them
  (`horizon_seconds`); then the range rule of a number;
- attrs: the extra keys' JSON text as Python writes it, taken as the attrs DuckDB's `json()`
  would write when the text has no number in exponent form, no NaN/Infinity and no `\\u`
  escape (the only spellings in which the two differ: Hypothesis over every JSON value, in
  the tests); a text with any of them goes to the SQL.

The identity key is `ingest.KEY_SQL`'s: md5 over the kind, chr(31) and the event id, its
16 bytes a little-endian 128-bit number (DuckDB's `md5_number`), split into two halves.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from alphatrace.events.fields import DIRECTIONS, TS_MAX, TS_MIN, Field, Kind

ISO_UTC = r"^\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{6})?Z$"
SECOND = "%Y-%m-%dT%H:%M:%S"
# where Python's JSON text of a value may differ from DuckDB's `json()` of it
JSON_DIFFERS = r"[:,\[]-?[0-9]+(?:\.[0-9]+)?[eE]|NaN|Infinity|\\u"
_TS_LO = int(TS_MIN.timestamp()) * 1_000_000
_TS_HI = int(TS_MAX.timestamp()) * 1_000_000
EXACT = 2.0**52  # a double at least this large is a whole number: nothing to round
HORIZON = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw]?)")
UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


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


def epoch_timestamps(x: np.ndarray) -> pa.Array:
    """Epoch numbers (NaN where absent) as timestamp[us]: seconds below 1e11 in magnitude,
    milliseconds below 1e14, as `validate_sql._epoch` reads them (the same double times 1e6 or
    1e3, rounded half away from zero like DuckDB's `round`); null outside those, non-finite, or
    outside [TS_MIN, TS_MAX)."""
    with np.errstate(invalid="ignore", over="ignore"):
        mag = np.abs(x)
        sec = mag < 1e11
        ms = ~sec & (mag < 1e14)
        p = np.where(sec, x * 1e6, np.where(ms, x * 1e3, 0.0))
        low = np.floor(p)
        frac = p - low  # exact: |p| < 2^52 wherever it is used
        up = (frac > 0.5) | ((frac == 0.5) & (p > 0))
        r = np.where(np.abs(p) >= EXACT, p, low + up)
        us = np.where(sec | ms, r, 0.0).astype(np.int64)
    keep = (sec | ms) & (us >= _TS_LO) & (us < _TS_HI)
    return pa.array(us, pa.timestamp("us"), mask=~keep)


def horizon_seconds(text: pa.Array, number: pa.Array) -> pa.Array:
    """A horizon in seconds from its text (`HORIZON`'s spelling only) or its number; null
    where absent or in another spelling. Only alpha events have one, so this is a Python loop
    over the alpha rows of a round."""
    out: list[float | None] = []
    for t, x in zip(text.to_pylist(), number.to_pylist(), strict=True):
        if t is not None:
            m = HORIZON.fullmatch(t)
            out.append(float(m[1]) * UNIT_S[m[2]] if m else None)
        else:
            out.append(x)
    return pa.array(out, pa.float64())


def json_ok(col: pa.Array) -> pa.Array:
    """Whether DuckDB's `json()` of each text is the text itself (see the module docstring);
    true where absent."""
    return pc.invert(_no_nulls(pc.match_substring_regex(col, JSON_DIFFERS)))


NUMBER_COL = "{}#n"  # the column of a timestamp or horizon field's numbers (its text: `name`)
FLEX = ("timestamp", "horizon")  # the field types given as text or as a number


def _one(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _present(columns: dict[str, pa.ChunkedArray], f: Field) -> np.ndarray:
    """Where the field is given: as text or, for a flexible one, as a number."""
    present = bools(columns[f.name].is_valid())
    if f.type in FLEX:
        present |= bools(columns[NUMBER_COL.format(f.name)].is_valid())
    return present


def _joined(columns: dict[str, pa.ChunkedArray], names: list[str]) -> pa.Array:
    return pa.concat_arrays([_one(columns[k]) for k in names])


def typed_values(columns: dict[str, pa.ChunkedArray], fields: list[Field]) -> dict[str, pa.Array]:
    """The staged value of each timestamp (timestamp[us]) and horizon (seconds) field, from its
    text and number columns; null where neither reads. The timestamp fields are read together,
    their columns one after the other (`cleared`)."""
    n = len(columns[fields[0].name]) if fields else 0
    stamps = [f.name for f in fields if f.type == "timestamp"]
    values: dict[str, pa.Array] = {}
    if stamps:
        number = _joined(columns, [NUMBER_COL.format(k) for k in stamps])
        read = pc.coalesce(timestamps(_joined(columns, stamps)), epoch_timestamps(
            np.asarray(number.to_numpy(zero_copy_only=False), float)))
        values.update((k, read.slice(i * n, n)) for i, k in enumerate(stamps))
    for f in fields:
        if f.type == "horizon":
            values[f.name] = horizon_seconds(_one(columns[f.name]),
                                             _one(columns[NUMBER_COL.format(f.name)]))
    return values


def cleared(columns: dict[str, pa.ChunkedArray], fields: list[Field]
            ) -> tuple[np.ndarray, dict[str, pa.Array]]:
    """(per row: every field's value passes its rules, a required one present; the typed
    value of each timestamp and horizon field, `typed_values`). Fields of one rule are
    checked together, their columns one after the other: a compute call costs ~10 µs
    whatever its length, and a round has a few hundred rows."""
    n = len(columns[fields[0].name]) if fields else 0
    values = typed_values(columns, fields)
    ok = np.ones(n, bool)
    groups = (("text", [f for f in fields if f.type in ("string", "id")]),
              ("direction", [f for f in fields if f.type == "direction"]),
              ("number", [f for f in fields if f.type in ("number", "integer", "horizon")]),
              ("timestamp", [f for f in fields if f.type == "timestamp"]))
    for kind, group in groups:
        if not group:
            continue
        col = pa.concat_arrays([_one(values[f.name]) if f.name in values
                                else _one(columns[f.name]) for f in group])
        if kind == "text":
            rule = bools(_no_nulls(text_ok(col)))
        elif kind == "direction":
            rule = bools(pc.is_in(col, pa.array(DIRECTIONS)))
        elif kind == "number":
            rule = numbers_ok(np.asarray(col.to_numpy(zero_copy_only=False), float), group)
        else:
            rule = bools(col.is_valid())
        absent = ~np.concatenate([_present(columns, f) for f in group])
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
