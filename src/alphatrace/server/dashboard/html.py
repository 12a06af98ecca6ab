"""A tiny HTML builder that escapes by default.

Every string that is not already `Html` is escaped when it becomes a child or an attribute
value, so a hostile agent name, symbol or run_id can only ever show up as text. Markup is
built only from tag and attribute names written in this package, never from data.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})


class Html(str):
    """Markup that is already safe: inserted as-is, never escaped again."""

    __slots__ = ()

    def __add__(self, other: str) -> Html:
        return Html(str.__add__(self, other if isinstance(other, Html) else escape(other)))


def escape(text: Any) -> str:
    return html.escape(str(text), quote=True)


Child = Html | str | int | float | None | Iterable[Any]


def _children(parts: Iterable[Any], out: list[str]) -> None:
    for c in parts:
        if c is None or c is False:
            continue
        if isinstance(c, Html):
            out.append(c)
        elif isinstance(c, str | int | float):
            out.append(escape(c))
        else:
            _children(c, out)


def join(*parts: Any) -> Html:
    out: list[str] = []
    _children(parts, out)
    return Html("".join(out))


def _attr_name(key: str) -> str:
    """`class_` → class, `data_run_id` → data-run-id, `aria_label` → aria-label."""
    key = key.rstrip("_")
    return key.replace("_", "-")


def attrs(values: dict[str, Any]) -> str:
    out = []
    for k, v in values.items():
        if v is None or v is False:
            continue
        name = _attr_name(k)
        if v is True:
            out.append(f" {name}")
        else:
            out.append(f' {name}="{escape(v)}"')
    return "".join(out)


def el(tag: str, *children: Any, **attributes: Any) -> Html:
    """`<tag attrs>children</tag>`; children and attribute values are escaped unless Html."""
    opening = f"<{tag}{attrs(attributes)}>"
    if tag in VOID:
        return Html(opening)
    inner: list[str] = []
    _children(children, inner)
    return Html(f"{opening}{''.join(inner)}</{tag}>")


def json_text(data: Any) -> str:
    """JSON that is safe inside a <script> element: no `<`, `>`, `&` or line separators
    survive literally, so no value can close the element or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def json_script(data: Any, element_id: str) -> Html:
    """Data for the page's scripts: a non-executable <script type="application/json">."""
    return Html(f'<script type="application/json" id="{escape(element_id)}">{json_text(data)}</script>')
