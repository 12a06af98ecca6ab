"""`--engine spark --tables DIR`, on the root or on the command: checked before any Spark
session starts (no JVM needed), never ignored, and never forwarded to a server."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from alphatrace.cli import remote
from alphatrace.cli.main import app


def test_engine_flags_are_checked_before_spark_starts(tmp_path: Path) -> None:
    cli = CliRunner()
    no_tables = cli.invoke(app, ["--engine", "spark", "gates", "evaluate"])
    assert no_tables.exit_code != 0 and "--tables" in no_tables.output
    for argv in (["--engine", "spark", "gates", "backtest"], ["--engine", "spark", "audit",
                 "verify"], ["audit", "verify", "--engine", "spark", "--chain-only"]):
        no_tables = cli.invoke(app, argv)
        assert no_tables.exit_code != 0 and "--tables" in no_tables.output, argv
    show = cli.invoke(app, ["--engine", "spark", "audit", "show", "x"])
    assert show.exit_code != 0 and "`audit show` runs on the store only" in show.output
    revive = cli.invoke(app, ["--engine", "spark", "revive", "x", "--reason", "r"])
    assert revive.exit_code != 0 and "runs on the store only" in revive.output
    bad = cli.invoke(app, ["confidence", "--engine", "flink", "--tables", str(tmp_path)])
    assert bad.exit_code != 0 and "duckdb or spark" in bad.output
    stray = cli.invoke(app, ["confidence", "--tables", str(tmp_path)])
    assert stray.exit_code != 0 and "--engine spark" in stray.output
    missing = cli.invoke(app, ["--engine", "spark", "ledger", "--out", str(tmp_path / "o")])
    assert missing.exit_code != 0 and "--tables" in missing.output


def test_a_spark_command_line_is_read_as_its_command_and_runs_here() -> None:
    argv = ["--engine", "spark", "gates", "evaluate", "--tables", "lake"]
    assert remote.command_words(argv) == ("gates", "evaluate")
    assert remote.on_spark(argv) and remote.on_spark(["confidence", "--engine=spark"])
    assert not remote.on_spark(["confidence", "--engine", "duckdb"])
    assert remote.forward(["--url", "http://127.0.0.1:9", *argv]) is None
