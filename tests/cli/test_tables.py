"""CLI tables at 80, 120 and 200 columns: they fit, and no number is ever split or cut."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app

runner = CliRunner()
WIDTHS = (80, 120, 200)


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"-?\d[\d,]*\.\d+", text))


def _hidden(out: str) -> set[str]:
    m = re.search(r"not shown at \d+ columns: (.*?) \(wider", out.replace("\n", " "))
    return set(m.group(1).split(", ")) if m else set()


@pytest.mark.parametrize("width", WIDTHS)
def test_agents_fits_and_every_shown_number_is_whole(
        demo_db: Path, columns: Callable[[int], None], width: int) -> None:
    columns(width)
    doc = json.loads(runner.invoke(app, ["agents", "--db", str(demo_db), "--json"]).stdout)
    out = runner.invoke(app, ["agents", "--db", str(demo_db)])
    assert out.exit_code == 0, out.output
    assert max(len(line) for line in out.stdout.splitlines()) <= width
    hidden = _hidden(out.stdout)
    for row in doc:
        for col in ("net_usd", "mean_net_bps", "total_pnl_usd", "max_drawdown_bps"):
            if col not in hidden:
                assert f"{row[col]:,.2f}" in out.stdout, (col, row[col])
        # a name is whole or cut in the middle, never wrapped onto a second line
        name = row["agent"]
        assert name in out.stdout or re.search(re.escape(name[:5]) + r"\w*…\w*" + re.escape(name[-3:]),
                                               out.stdout)
    if width == 200:
        assert all(r["agent"] in out.stdout for r in doc)
    if width == 80:
        assert "median_net_bps" in hidden and "net_usd" not in hidden


@pytest.mark.parametrize("width", WIDTHS)
def test_ledger_keeps_run_ids_whole(demo_db: Path, columns: Callable[[int], None], width: int) -> None:
    columns(width)
    doc = json.loads(runner.invoke(app, ["ledger", "--db", str(demo_db), "--json"]).stdout)
    out = runner.invoke(app, ["ledger", "--db", str(demo_db), "--limit", "5"])
    assert out.exit_code == 0, out.output
    assert max(len(line) for line in out.stdout.splitlines()) <= width
    for row in doc[-5:]:
        assert row["run_id"] in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("width", WIDTHS)
def test_demo_summary_is_readable(tmp_path: Path, columns: Callable[[int], None], width: int) -> None:
    columns(width)
    out = runner.invoke(app, ["demo", "--db", str(tmp_path / "d.duckdb"), "--runs-per-agent", "60"])
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    table_lines = [x for x in lines if x[:1] in "┏┃┡│└"]
    assert table_lines and max(len(x) for x in table_lines) <= width
    # the numbers in table cells are whole: none ends a cell with a bare separator
    for line in table_lines:
        for cell in line.strip("│┃").split("│"):
            assert not re.search(r"\d,$|^\.\d", cell.strip()), line
