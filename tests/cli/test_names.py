"""Missing things behave the same everywhere: no read command creates a store, and an unknown
name is one line, exit 1, with a close match."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.cli.names import suggest

runner = CliRunner()
AGENTS = ["BasisCarryAgent", "MeanReversionAgent", "TrendFollowerAgent"]


def test_suggest_prefers_case_then_closeness() -> None:
    assert suggest("meanreversionagent", AGENTS) == "MeanReversionAgent"
    assert suggest("TrendFolower", AGENTS) == "TrendFollowerAgent"
    assert suggest("MEANREVERSION", AGENTS) == "MeanReversionAgent"
    assert suggest("Nobody", AGENTS) is None
    assert suggest("x", []) is None


READ_COMMANDS = [["quarantine"], ["agents"], ["ledger"], ["explain", "r1"], ["forensics"],
                 ["exclusions", "list"], ["confidence"], ["gates", "backtest"],
                 ["audit", "verify"], ["audit", "show", "A"], ["market", "symbols"],
                 ["revive", "A", "--reason", "x"]]


@pytest.mark.parametrize("cmd", READ_COMMANDS, ids=lambda c: " ".join(c))
def test_no_read_command_creates_a_store(tmp_path: Path, cmd: list[str]) -> None:
    db = tmp_path / "none.duckdb"
    out = runner.invoke(app, [*cmd, "--db", str(db)])
    assert out.exit_code == 2, out.output
    assert not db.exists()
    assert out.output.strip().splitlines() == [f"error: no alphatrace store at {db} "
                                                "(run `alphatrace ingest` first)"]


UNKNOWN = [
    (["ledger", "--agent", "TrendFolower"], "no agent named 'TrendFolower'; did you mean 'TrendFollowerAgent'?"),
    (["ledger", "--agent", "Nobody"], "no agent named 'Nobody'"),
    (["ledger", "--strategy", "MOMENTM"], "no strategy named 'MOMENTM'; did you mean 'MOMENTUM'?"),
    (["confidence", "--agent", "Nobody", "--history"], "no agent named 'Nobody'"),
    (["confidence", "--agent", "basiscarryagent"], "no agent named 'basiscarryagent'; did you mean 'BasisCarryAgent'?"),
    (["forensics", "--agent", "MeanReversion"], "no agent named 'MeanReversion'; did you mean 'MeanReversionAgent'?"),
    (["forensics", "--strategy", "FUNDIN"], "no strategy named 'FUNDIN'; did you mean 'FUNDING'?"),
    (["audit", "show", "FUNDIN"], "no agent or strategy named 'FUNDIN'; did you mean 'FUNDING'?"),
    (["revive", "Nobody", "--reason", "x"], "no agent or strategy named 'Nobody'"),
]


@pytest.mark.parametrize(("cmd", "message"), UNKNOWN, ids=lambda c: " ".join(c) if isinstance(c, list) else "")
def test_unknown_names_are_one_line_exit_1_with_a_close_match(
        demo_db: Path, cmd: list[str], message: str) -> None:
    out = runner.invoke(app, [*cmd, "--db", str(demo_db)])
    assert out.exit_code == 1, out.output
    assert out.output.strip().splitlines() == [f"error: {message}"]
