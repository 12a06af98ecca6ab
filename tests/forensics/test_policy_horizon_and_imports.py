"""Issue #16 item 13: forensics reads the reconcile horizon strictly, and has no import cycle."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alphatrace.cli.main import app
from alphatrace.errors import PolicyError
from alphatrace.forensics.config import default_horizon_s
from alphatrace.policy import load_policy, parse_policy_text

from .test_cli import make_db

SRC = Path(__file__).resolve().parents[2] / "src"


def test_default_horizon_is_the_reconcile_section() -> None:
    assert default_horizon_s(load_policy()) == 8 * 3600
    pol = parse_policy_text("reconcile:\n  fee_bps: 2\n  horizon: 90M\n", "p.yaml")
    assert default_horizon_s(pol) == 5400


def test_bad_horizon_is_a_policy_error_not_8h() -> None:
    pol = parse_policy_text("reconcile:\n  fee_bps: 2\n  horizon: forever\n", "p.yaml")
    with pytest.raises(PolicyError, match=r"^p\.yaml:3:3: reconcile\.horizon: 'forever'"):
        default_horizon_s(pol)


def test_explain_with_a_bad_horizon_names_line_and_column(tmp_path: Path) -> None:
    db = make_db(tmp_path)
    pol = tmp_path / "p.yaml"
    pol.write_text("reconcile:\n  horizon: 8 hours\n")
    r = CliRunner().invoke(app, ["explain", "lost", "--db", str(db), "--policy", str(pol)])
    assert r.exit_code == 2, r.output
    assert f"{pol}:2:3: reconcile.horizon: '8 hours': not a duration" in " ".join(r.output.split())


def _imports() -> dict[str, set[str]]:
    """Each alphatrace module's imports of other alphatrace modules, function-local ones too."""
    mods = {".".join(p.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__"): p
            for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text("utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods
                         else node.module for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            graph[m] |= {n for n in names if n in mods and n != m}
    return graph


def _cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start → … → start, if any (depth-first)."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return [*path, start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def test_no_module_imports_itself_through_others() -> None:
    graph = _imports()
    assert "alphatrace.forensics.exclusions" in graph["alphatrace.forensics.api"]  # sanity
    cycles = [c for m in sorted(graph) if (c := _cycle_from(graph, m))]
    assert cycles == []
