"""`alphatrace report`: one self-contained, deterministic HTML file with the pages' content."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.server.dashboard.links import anchor
from tests.dashboard.util import (
    EVIL_AGENT,
    EVIL_RUN,
    EVIL_SYMBOL,
    KILL_POLICY,
    evaluate,
    make_store,
)

runner = CliRunner()


class Doc(HTMLParser):
    """Tags, attributes and the text of <script>/<style> elements, as a browser reads them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw: dict[str, list[str]] = {"script": [], "style": []}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag if tag in self.raw else None

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.raw[self._in].append(data)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    path = tmp / "r.duckdb"
    store = make_store(path)
    evaluate(store, KILL_POLICY, tmp)
    store.close()
    return path


def report(db: Path, out: Path, *extra: str) -> dict[str, object]:
    res = runner.invoke(app, ["report", "--db", str(db), "--out", str(out), "--json", *extra])
    assert res.exit_code == 0, res.output
    doc: dict[str, object] = json.loads(res.stdout)
    return doc


def test_report_is_self_contained_and_pinned_by_its_csp(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    summary = report(db, out)
    text = out.read_text(encoding="utf-8")
    assert summary == {"out": str(out), "bytes": len(text.encode()), "agents": 3,
                       "runs": 8, "clusters": 0, "decisions": 6}
    doc = Doc()
    doc.feed(text)
    # Nothing is fetched: no src/href pointing anywhere but inside the file.
    for tag, attrs in doc.tags:
        for k in ("src", "href", "action"):
            v = attrs.get(k)
            assert v is None or v.startswith("#") or v.startswith("data:"), (tag, k, v)
    scripts = [a for t, a in doc.tags if t == "script"]
    assert scripts == [{"type": "application/json", "id": "dash-data"}, {}]
    csp = next(a["content"] for t, a in doc.tags
               if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
    assert csp is not None

    def sha(s: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"

    js, css = doc.raw["script"][1], doc.raw["style"][0]
    assert f"script-src {sha(js)};" in csp and f"style-src {sha(css)};" in csp
    assert "default-src 'none'" in csp
    # Every chart's data source is embedded.
    data = json.loads(doc.raw["script"][0])
    srcs = {a["data-src"] for _, a in doc.tags if a.get("data-chart")}
    assert srcs and srcs <= set(data)
    # Sections: overview last (the default), one per agent, one per linked run.
    ids = [a["id"] for t, a in doc.tags if t == "section"]
    assert ids[:2] == ["forensics", "decisions"] and ids[-1] == "overview"
    assert anchor("agent", EVIL_AGENT) in ids and anchor("run", EVIL_RUN) in ids
    assert len(ids) == 2 + 3 + 8 + 1


def test_report_escapes_hostile_names(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    report(db, out)
    text = out.read_text(encoding="utf-8")
    doc = Doc()
    doc.feed(text)
    assert [t for t, _ in doc.tags].count("script") == 2
    assert not {t for t, _ in doc.tags} & {"img", "svg", "iframe"}
    assert not [k for _, a in doc.tags for k in a if k.startswith("on")]
    for evil in (EVIL_AGENT, EVIL_SYMBOL, "</script><script>alert(5)"):
        assert evil not in text
    data = json.loads(doc.raw["script"][0])
    assert data["/v1/dash/agent?name=%3Cscript%3Ealert%281%29%3C%2Fscript%3E"]["agent"] == EVIL_AGENT


def test_report_is_byte_identical_for_the_same_store(db: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    report(db, a)
    report(db, b)
    assert a.read_bytes() == b.read_bytes()


def test_report_filters_the_overview(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.html"
    report(db, out, "--strategy", "S1", "--since", "2025-03-01")
    doc = Doc()
    doc.feed(out.read_text(encoding="utf-8"))
    data = json.loads(doc.raw["script"][0])
    ov = data["/v1/dash/overview?strategy=S1&since=2025-03-01"]
    assert [r["name"] for r in ov["agents"]] == ["A"]


def test_report_refuses_bad_input(db: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["report", "--db", str(db), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.output
    res = runner.invoke(app, ["report", "--db", str(db), "--out", str(tmp_path / "x.html"),
                              "--since", "soon"])
    assert res.exit_code == 2 and "since" in res.output
    res = runner.invoke(app, ["report", "--db", str(tmp_path / "none.duckdb"), "--out",
                              str(tmp_path / "x.html")])
    assert res.exit_code == 2 and "no alphatrace store" in res.output
    assert not re.search("Traceback", res.output)
