"""Fit a table of already formatted cells into a terminal width without breaking a number.

Pure layout: given the cell texts, which columns are atomic (numbers, times: never wrapped or
cut), the order in which columns may go, and the width, decide which columns are shown at which
width. Text columns shrink first (names are abbreviated in the middle, prose wraps at spaces);
when the atomic columns alone do not fit, the least important columns are dropped and named so
the caller can say what is hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ELLIPSIS = "…"
MIN_TEXT = 16  # a text column is not narrowed below this (or its header, or its widest cell)


def table_width(widths: Sequence[int]) -> int:
    """Characters a rich Table with edges and one space of padding each side takes."""
    return sum(widths) + 3 * len(widths) + 1


def abbreviate(text: str, width: int) -> str:
    """`text` cut in the middle to `width` characters: both ends of a name stay readable
    (BreakoutMomentumAgent → Breako…Agent)."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    head = width // 2
    tail = width - 1 - head
    return text[:head] + ELLIPSIS + (text[-tail:] if tail else "")


@dataclass(frozen=True)
class Layout:
    """Shown columns (in display order) with their widths, and the dropped ones."""

    columns: tuple[str, ...]
    widths: tuple[int, ...]
    dropped: tuple[str, ...]


def header_lines(header: str, width: int) -> list[str]:
    """`header` wrapped after underscores into lines of at most `width` characters (a part
    longer than that stays whole)."""
    parts = [p + "_" for p in header.split("_")]
    parts[-1] = parts[-1][:-1]
    lines = [""]
    for p in parts:
        if lines[-1] and len(lines[-1]) + len(p) > width:
            lines.append("")
        lines[-1] += p
    return lines


def header_min(header: str) -> int:
    """The narrowest width at which `header` takes at most two lines, none cut."""
    return next(w for w in range(1, len(header) + 1)
                if len(lines := header_lines(header, w)) <= 2 and max(map(len, lines)) <= w)


def _natural(header: str, cells: Sequence[str]) -> int:
    return max([len(header), *(len(c) for c in cells)])


def _min_width(header: str, cells: Sequence[str], atomic: bool) -> int:
    widest = max([0, *(len(c) for c in cells)])
    if atomic:
        return max(header_min(header), widest)
    return max(header_min(header), min(widest, MIN_TEXT))


def _shrink(w: list[int], minimum: list[int], budget: int, which: list[bool]) -> int:
    """Narrow the columns marked in `which`, widest excess first, one character at a time,
    until the total fits `budget` or they are at their minimum; the excess left."""
    excess = sum(w) - budget
    while excess > 0:
        cand = [j for j in range(len(w)) if which[j] and w[j] > minimum[j]]
        if not cand:
            break
        i = max(cand, key=lambda j: w[j] - minimum[j])
        w[i] -= 1
        excess -= 1
    return excess


def _widths(natural: list[int], minimum: list[int], atomic: list[bool], budget: int) -> list[int] | None:
    """Headers of number columns wrap first, then names and prose narrow; None when even the
    minimums do not fit."""
    if sum(minimum) > budget:
        return None
    w = list(natural)
    if _shrink(w, minimum, budget, atomic) > 0:
        _shrink(w, minimum, budget, [not a for a in atomic])
    return w


def fit(headers: Sequence[str], cells: Sequence[Sequence[str]], atomic: Sequence[bool],
        width: int, priority: Sequence[str] | None = None, keep: int = 1) -> Layout:
    """The widest layout of `headers` (display order) that fits `width` characters.

    `cells[i]` are column i's texts. `priority` lists the columns most important first
    (default: display order); columns are dropped from its end, never the first `keep`
    columns of the display order."""
    order = list(priority) if priority is not None else list(headers)
    order += [h for h in headers if h not in order]
    protected = set(headers[:keep])
    shown = list(headers)
    dropped: list[str] = []
    while True:
        idx = [headers.index(h) for h in shown]
        natural = [_natural(headers[i], cells[i]) for i in idx]
        minimum = [_min_width(headers[i], cells[i], atomic[i]) for i in idx]
        w = _widths(natural, minimum, [atomic[i] for i in idx], width - 3 * len(shown) - 1)
        droppable = [h for h in reversed(order) if h in shown and h not in protected]
        if w is not None or not droppable:
            if w is None:
                w = minimum
            return Layout(tuple(shown), tuple(w), tuple(h for h in headers if h in dropped))
        shown.remove(droppable[0])
        dropped.append(droppable[0])
