"""The typed entry's checks in Arrow (store/typed_rules.py) against what DuckDB does.

Each check may clear only what the SQL rule clears, with the value DuckDB computes: the
end-to-end property (tests/server/test_otlp_typed.py) compares whole stores; these compare
each piece with DuckDB directly, on the inputs where they could part: timestamps with any
day number, every character DuckDB's `trim` takes, JSON texts of any value, event ids of any
text.
"""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.events.fields import TS_MAX, TS_MIN
from alphatrace.store.ingest import KEY_HALVES, KEY_SQL
from alphatrace.store.typed_rules import identity_keys, json_ok, text_ok, timestamps

text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def test_arrow_trims_every_character_duckdb_trims() -> None:
    """`text_ok` is never looser than `trim(x) <> ''`."""
    chars = [chr(i) for i in range(0x110000) if not 0xD800 <= i < 0xE000]
    chars_table = pa.table({"x": chars})  # noqa: F841
    trimmed = {r[0] for r in _con().execute(
        "SELECT x FROM chars_table WHERE trim(x) = ''").fetchall()}
    assert trimmed  # DuckDB trims some (the space at least)
    ok = text_ok(pa.array(sorted(trimmed))).to_pylist()
    assert not any(ok)


@st.composite
def iso(draw: st.DrawFn) -> str:
    """Text in the spelling `timestamps` reads, with day, hour, minute and second numbers past
    their ranges too."""
    y = draw(st.integers(0, 9999))
    mo, d = draw(st.integers(0, 13)), draw(st.integers(0, 32))
    h, mi, s = draw(st.integers(0, 25)), draw(st.integers(0, 61)), draw(st.integers(0, 61))
    frac = draw(st.sampled_from(["", ".000000", ".999999", ".123456", ".5", ".1234567"]))
    return f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{frac}Z"


@settings(max_examples=300)
@given(st.lists(st.one_of(iso(), text, st.none()), min_size=1, max_size=20))
def test_timestamps_read_as_duckdb_reads_them_or_not_at_all(values: list[str | None]) -> None:
    """Compared as microseconds since 1970 (DuckDB reads years Python's datetime cannot hold)."""
    got = pc.cast(timestamps(pa.array(values, pa.string())), pa.int64()).to_pylist()
    t = pa.table({"s": pa.array(values, pa.string())})  # noqa: F841
    want = [r[0] for r in _con().execute(
        "SELECT epoch_us(TRY_CAST(TRY_CAST(s AS TIMESTAMPTZ) AS TIMESTAMP)) FROM t").fetchall()]
    for v, g, w in zip(values, got, want, strict=True):
        if g is not None:  # read here: DuckDB reads the same instant
            assert g == w, v
    # the canonical spellings of real instants in range are all read here
    lo, hi = (int(x.timestamp()) * 10**6 for x in (TS_MIN, TS_MAX))
    for v, g, w in zip(values, got, want, strict=True):
        if (v is not None and w is not None and lo <= w < hi and v.endswith("Z")
                and len(v) in (20, 27) and v[10] == "T" and v[:4].isdigit()
                and (len(v) == 20 or v[19] == ".")):
            assert g == w, v


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), text),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(text, inner, max_size=3)),
    max_leaves=8)


@settings(max_examples=500)
@given(st.lists(st.dictionaries(text, json_value, min_size=1, max_size=4), min_size=1,
                max_size=8))
def test_json_text_cleared_is_the_text_duckdb_writes(docs: list[dict[str, object]]) -> None:
    texts = [json.dumps(d, separators=(",", ":"), allow_nan=True, ensure_ascii=False)
             for d in docs]
    t = pa.table({"j": pa.array(texts, pa.string())})
    written = [r[0] for r in _con().execute(
        "SELECT NULLIF(CAST(try(json(j)) AS VARCHAR), '{}') FROM t").fetchall()]
    for text_, ok, w in zip(texts, json_ok(t["j"]).to_pylist(), written, strict=True):
        if ok:
            assert w == text_


@settings(max_examples=200)
@given(st.lists(st.one_of(text, st.none()), min_size=1, max_size=20))
def test_identity_keys_are_the_stores(ids: list[str | None]) -> None:
    hi, lo = identity_keys("telemetry", ids)
    t = pa.table({"event_id": pa.array(ids, pa.string())})  # noqa: F841
    want = _con().execute(
        f"SELECT {KEY_HALVES} FROM (SELECT {KEY_SQL} AS id_key FROM "
        "(SELECT 'telemetry' AS kind, event_id FROM t))").fetchall()
    assert list(zip(hi.to_pylist(), lo.to_pylist(), strict=True)) == want
