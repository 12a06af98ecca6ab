"""docs/ledger.md's metric table is the code's: a metric edited in alphatrace.metrics without
the docs (or the reverse) fails here."""

from __future__ import annotations

from pathlib import Path

from alphatrace import metrics

DOC = Path(__file__).resolve().parents[2] / "docs" / "ledger.md"


def test_agent_metric_table_matches_the_registry() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("<!-- agent-metrics:start")[1].split("<!-- agent-metrics:end")[0]
    documented = [ln for ln in section.splitlines() if ln.startswith("| `")]
    code = {ln.split("|")[1].strip().strip("`"): ln
            for ln in metrics.glossary_markdown().splitlines()[2:]}
    assert documented == [code[name] for name in metrics.SUMMARY]
