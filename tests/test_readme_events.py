"""The README's event tables are generated from the field table; they must not drift."""

from __future__ import annotations

from pathlib import Path

from alphatrace.events.markdown import fields_markdown, kinds_markdown

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_event_tables_are_the_field_table() -> None:
    text = README.read_text(encoding="utf-8")
    assert kinds_markdown() in text
    assert fields_markdown() in text


def test_the_ranges_shown_are_the_ranges_enforced() -> None:
    # a few rows written out by hand from the examples
    table = fields_markdown()
    assert "| `tokens_in` | telemetry | whole number | 0 ≤ x ≤ 1e12 |" in table
    assert "| `realized_pnl_bps` | pnl | finite number | -1e7 ≤ x ≤ 1e7 |" in table
    assert "| `ts` | all | ISO 8601 (UTC when no offset) or epoch s/ms | 1970-01-01 ≤ t < 2250-01-01 |" in table
