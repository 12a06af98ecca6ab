"""`alphatrace confidence` reads as a percentage and says why multipliers collapsed."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.governance.confidence import percent

runner = CliRunner()


def test_multipliers_as_percent_and_one_note_on_collapse(demo_db: Path, tmp_path: Path) -> None:
    doc = json.loads(runner.invoke(app, ["confidence", "--db", str(demo_db), "--json"]).stdout)
    assert any(r["multiplier"] < 0.01 for r in doc)  # the seed rule collapses on the demo
    out = runner.invoke(app, ["confidence", "--db", str(demo_db)])
    assert out.exit_code == 0, out.output
    assert all(percent(r["multiplier"]) in out.stdout for r in doc)
    assert "state" in out.stdout and not re.search(r"\de-\d", out.output)
    notes = [x for x in out.output.splitlines() if x.startswith("note:")]
    assert len(notes) == 1 and "recovery" in out.output and "floor" in out.output
    # with a floor, nothing collapses and nothing is said
    pol = tmp_path / "floor.yaml"
    pol.write_text("confidence:\n  floor: 0.25\n")
    out = runner.invoke(app, ["confidence", "--db", str(demo_db), "--policy", str(pol)])
    assert out.exit_code == 0, out.output
    assert "note:" not in out.output and "25.0 %" in out.stdout
