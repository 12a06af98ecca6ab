"""The README's metric glossary is generated from the metric registry; they must not drift."""

from __future__ import annotations

from pathlib import Path

from alphatrace import metrics

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_glossary_is_the_registry() -> None:
    assert metrics.glossary_markdown() in README.read_text(encoding="utf-8")


def test_every_registry_metric_has_a_formula_and_unit() -> None:
    for m in metrics.METRICS.values():
        assert m.formula and m.unit and m.doc, m.name
