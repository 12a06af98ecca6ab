"""`locate.as_arrow`: the columns `locate.exits` returns, as Arrow, read by SQL exactly as
DuckDB reads the numpy dict itself (its own scan is the independent method here)."""

from __future__ import annotations

import duckdb
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.ledger import locate

_N = st.integers(0, 12)


@st.composite
def _columns(draw: st.DrawFn) -> locate.Columns:
    n = draw(_N)
    def mask() -> np.ndarray:
        return np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool)
    ints = np.array(draw(st.lists(st.integers(-2**62, 2**62), min_size=n, max_size=n)),
                    dtype=np.int64)
    floats = np.array(draw(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64),
                                    min_size=n, max_size=n)), dtype=np.float64)
    text = np.array(draw(st.lists(st.one_of(st.none(), st.text(max_size=5)), min_size=n,
                                  max_size=n)), dtype=object).reshape(n)
    return {
        "event_id": text,
        "sid": ints.astype(np.int32) if n else np.zeros(0, np.int32),
        "entry_us": np.ma.masked_array(ints, mask=mask()),
        "entry_price": np.ma.masked_array(floats, mask=mask()),
        "exit_price": floats.copy(),  # NaN without a mask
        "funded": np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
    }


@settings(deadline=None, max_examples=150)
@given(_columns())
def test_sql_reads_the_same_rows_from_either_form(cols: locate.Columns) -> None:
    con = duckdb.connect()
    con.register("as_numpy", cols)
    con.register("as_arrow", locate.as_arrow(cols))
    assert (con.execute("DESCRIBE as_numpy").fetchall()
            == con.execute("DESCRIBE as_arrow").fetchall())
    a = con.execute("SELECT * FROM as_numpy").fetchall()
    b = con.execute("SELECT * FROM as_arrow").fetchall()
    assert len(a) == len(b) == len(cols["sid"])
    for x, y in zip(a, b, strict=True):  # row by row, NaN equal to NaN (inf stays inf)
        assert all((u != u and v != v) or u == v for u, v in zip(x, y, strict=True)), (x, y)
