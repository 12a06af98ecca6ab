"""Escaping: whatever a name contains, it comes back out of the HTML as the same text, and no
value can end the JSON <script> block it is embedded in."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

from hypothesis import given
from hypothesis import strategies as st

from alphatrace.server.dashboard import fmt
from alphatrace.server.dashboard.html import Html, el, join, json_script, json_text
from alphatrace.server.dashboard.links import Links, ReportLinks, anchor

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(2)>", '"><svg onload=alert(3)>',
           "</script><script>alert(5)</script>", "&amp;", "'\"`", "\u2028\u2029", "<!--"]
texts = st.one_of(st.sampled_from(HOSTILE), st.text())


class Collect(HTMLParser):
    """An independent reading of the markup: tags, attributes and text as a browser parses them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(markup: str) -> Collect:
    p = Collect()
    p.feed(markup)
    p.close()
    return p


@given(texts, texts)
def test_text_and_attributes_round_trip(text: str, attr: str) -> None:
    p = parse(el("td", text, title=attr, data_v=attr))
    assert p.tags == [("td", {"title": attr, "data-v": attr})]
    assert "".join(p.text) == text


@given(st.lists(texts, max_size=5))
def test_nested_children_never_add_tags(parts: list[str]) -> None:
    markup = el("div", el("span", *parts), join(*parts))
    p = parse(markup)
    assert [t for t, _ in p.tags] == ["div", "span"]
    assert "".join(p.text) == "".join(parts) * 2


def test_trusted_markup_is_kept_and_bools_are_bare() -> None:
    assert el("p", Html("<b>x</b>")) == "<p><b>x</b></p>"
    assert el("option", "a", selected=True, disabled=False, value=None) == "<option selected>a</option>"
    assert el("input", type="text") == '<input type="text">'
    assert el("a", "x", class_="c", data_run_id="r") == '<a class="c" data-run-id="r">x</a>'


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
              texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=20)


@given(json_values)
def test_embedded_json_round_trips_and_cannot_break_out(value: object) -> None:
    text = json_text(value)
    assert json.loads(text) == value
    assert not re.search(r"[<>&\u2028\u2029]", text)
    block = json_script(value, "dash-data")
    assert block.count("</script") == 1 and block.endswith("</script>")


def test_report_anchors_are_digests_and_only_link_what_exists() -> None:
    links = ReportLinks(agents=["<b>A</b>"], runs=["r1"])
    assert links.agent("<b>A</b>") == "#" + anchor("agent", "<b>A</b>")
    assert re.fullmatch(r"#agent-[0-9a-f]{16}", links.agent("<b>A</b>") or "")
    assert links.agent("other") is None and links.run("r2") is None
    served = Links()
    assert served.agent("a&b /x") == "/agent?name=a%26b+%2Fx"
    assert served.run("..") == "/run?id=.."


def test_number_formats() -> None:
    assert fmt.usd(-1234.5) == "\u2212$1,234.50" and fmt.usd(3) == "+$3.00" and fmt.usd(0) == "$0.00"
    assert fmt.usd(float("nan")) == "—" and fmt.usd(None) == "—"
    assert fmt.bps(-0.0066) == "\u22120.01" and fmt.bps(12.34) == "+12.34"
    assert fmt.bps(1234.5) == "+1,234.50" and fmt.usd(-1234.5) == "\u2212$1,234.50"  # both in hundredths
    assert fmt.pct(0.482) == "48.2%" and fmt.multiplier(5.1e-22) == "< 0.01 %"
    assert fmt.multiplier(0.8) == "80.0 %" and fmt.cost(0.0065) == "$0.0065"
    assert fmt.ts("2025-06-05T13:53:10.312000Z") == "2025-06-05 13:53:10"
