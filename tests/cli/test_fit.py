"""Table fitting: numbers are never cut or wrapped, the table fits, dropped columns are named."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from alphatrace.cli.fit import abbreviate, fit, header_lines, header_min, table_width


def test_abbreviate_keeps_both_ends() -> None:
    assert abbreviate("BreakoutMomentumAgent", 12) == "Breako…Agent"
    assert abbreviate("short", 12) == "short"
    assert len(abbreviate("BreakoutMomentumAgent", 7)) == 7


def test_header_wraps_after_underscores_into_two_lines() -> None:
    assert header_lines("max_drawdown_bps", 12) == ["max_", "drawdown_bps"]
    assert header_min("max_drawdown_bps") == 12  # "max_drawdown_" is 13, "drawdown_bps" 12
    assert header_min("runs") == 4


def test_least_important_columns_go_first() -> None:
    headers = ["agent", "a_metric", "b_metric", "c_metric"]
    cells = [["Agent"], ["1,000.00"], ["2,000.00"], ["3,000.00"]]
    atomic = [False, True, True, True]
    full = fit(headers, cells, atomic, 200)
    assert full.dropped == () and full.columns == tuple(headers)
    # a_metric is the least important: it goes before b_metric and c_metric.
    narrow = fit(headers, cells, atomic, 36, priority=["agent", "c_metric", "b_metric", "a_metric"])
    assert narrow.dropped == ("a_metric",)
    assert narrow.columns == ("agent", "b_metric", "c_metric")
    assert table_width(narrow.widths) <= 36


words = st.text(alphabet="abcdefghij_", min_size=1, max_size=25)


@given(st.lists(st.tuples(words, st.lists(st.text(alphabet="0123456789,.-", min_size=1, max_size=14),
                                          min_size=3, max_size=3), st.booleans()),
                min_size=1, max_size=12, unique_by=lambda c: c[0]),
       st.integers(40, 220))
def test_a_layout_fits_and_never_narrows_an_atomic_cell(
        cols: list[tuple[str, list[str], bool]], width: int) -> None:
    headers = [c[0] for c in cols]
    cells = [c[1] for c in cols]
    atomic = [c[2] for c in cols]
    lay = fit(headers, cells, atomic, width)
    assert set(lay.columns) | set(lay.dropped) == set(headers)
    assert not set(lay.columns) & set(lay.dropped)
    assert lay.columns[0] == headers[0]
    for c, w in zip(lay.columns, lay.widths, strict=True):
        i = headers.index(c)
        if atomic[i]:
            assert w >= max(len(x) for x in cells[i])
        assert w >= header_min(c)
    if len(lay.columns) > 1:  # only a lone first column may overflow
        assert table_width(lay.widths) <= width
