"""Policy loading: every mistake is a PolicyError at the file, line and column, with a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import alphatrace.policies
from alphatrace.errors import PolicyError
from alphatrace.governance.policy import (
    ConfidenceSection,
    EligibilitySection,
    GatesSection,
    SizingSection,
    Window,
    _source_text,
    load_governance,
)
from alphatrace.notify.config import NotifySection
from alphatrace.policy import SEED_POLICY, Policy, load_policy, shipped_policy

SECTIONS = {"confidence": ConfidenceSection, "gates": GatesSection,
            "eligibility": EligibilitySection, "notify": NotifySection, "sizing": SizingSection}


def write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def where(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """1-based line and column of `needle` (+offset) in text, found independently."""
    i = text.index(needle) + offset
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


def load_error(tmp_path: Path, text: str) -> PolicyError:
    with pytest.raises(PolicyError) as ei:
        load_governance(write(tmp_path, text))
    return ei.value


def test_default_policy_gates_are_sized_for_the_live_loop() -> None:
    gp = load_governance()
    assert [(g.rule.name, g.rule.action, g.rule.scope, g.rule.when) for g in gp.gate_rules] == [
        ("kill_evidence", "kill", ["agent"],
         "mean_pnl_bps < -40 and sharpe < -0.3 or error_rate > 0.2"),
        ("kill_class", "kill", ["strategy"],
         "mean_pnl_bps < -80 and sharpe < -0.5 or error_rate > 0.2"),
        ("promote_consistent", "promote", None,
         "rolling_pnl_bps > 150 and error_rate == 0 and median_latency_ms < 700"),
    ]
    assert gp.gates.min_runs == 40 and gp.gates.window.runs == 60
    assert gp.gates.window.duration is None and gp.gates.scope == ["agent", "strategy"]
    assert [(f.rule.when, f.rule.factor) for f in gp.factors] == [("pnl < -20", 0.85),
                                                                    ("pnl < 0", 0.95)]
    assert gp.confidence.recovery is None and gp.confidence.floor is None
    assert gp.eligibility.exclude_flagged is True


def test_default_yaml_equals_the_models_defaults() -> None:
    """A policy that leaves a section or key out gets the model's default: it must be what
    default.yaml says, or the same omission would mean two things."""
    shipped = load_policy().data
    for name, model in SECTIONS.items():
        assert model.model_validate(shipped.get(name, {})) == model(), name
    assert load_governance(Policy({}, "<empty>")).hash == load_governance().hash


def test_seed_policy_is_the_seed_gates() -> None:
    """policies/seed.yaml: the seed's gates (docs/architecture.md §Governance), every other
    section the default's."""
    gp, default = load_governance(shipped_policy(SEED_POLICY)), load_governance()
    assert [(g.rule.name, g.rule.action, g.rule.scope, g.rule.when) for g in gp.gate_rules] == [
        ("kill_drawdown", "kill", None, "last_5_runs_pnl < -100 or error_rate > 0.2"),
        ("promote_consistent", "promote", None,
         "rolling_pnl_bps > 150 and error_rate == 0 and median_latency_ms < 700"),
    ]
    assert gp.gates.min_runs == 5 and gp.gates.window.runs == 20
    assert gp.gates.window.duration is None and gp.gates.scope == ["agent", "strategy"]
    assert (gp.confidence, gp.eligibility, gp.notify, gp.sizing) == (
        default.confidence, default.eligibility, default.notify, default.sizing)
    assert gp.hash != default.hash


def test_policy_names_seed_and_default_are_the_shipped_files(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """`--policy seed` is the shipped seed.yaml read from the package's folder (found here
    independently, by its path on disk), and `default` the default; a file of that name in the
    working directory wins, so no command line that worked before changes meaning."""
    monkeypatch.chdir(tmp_path)
    folder = Path(alphatrace.policies.__file__).parent
    by_name, by_path = load_policy("seed"), load_policy(folder / "seed.yaml")
    assert by_name.data == by_path.data
    assert load_governance(by_name).hash == load_governance(by_path).hash != load_governance().hash
    assert load_governance(load_policy("default")).hash == load_governance().hash
    write(tmp_path, "gates: {min_runs: 3}\n", name="seed")
    assert load_policy("seed").data == {"gates": {"min_runs": 3}}
    with pytest.raises(PolicyError, match="no such policy file"):
        load_policy("seeed")


def test_a_shipped_policys_source_is_found_again_for_error_positions() -> None:
    """A shipped policy's source is found again from its label, so its errors point into it."""
    gp_policy = load_policy("seed")
    text = (Path(alphatrace.policies.__file__).parent / "seed.yaml").read_text("utf-8")
    assert _source_text(gp_policy) == text
    assert _source_text(load_policy()) == (
        Path(alphatrace.policies.__file__).parent / "default.yaml").read_text("utf-8")


def test_missing_sections_mean_the_defaults(tmp_path: Path) -> None:
    assert load_governance(write(tmp_path, "reconcile: {fee_bps: 5}\n")).hash == load_governance().hash


def test_decision_hash_ignores_formatting_but_not_rules(tmp_path: Path) -> None:
    a = write(tmp_path, """gates:
  rules:
    - {name: k, action: kill, when: "error_rate > 0.2"}
""", "a.yaml")
    b = write(tmp_path, """# same rules, block style, other sections differ
confidence: {default_factor: 1.0}
gates:
  rules:
    - name: k
      action: kill
      when: error_rate > 0.2
""", "b.yaml")
    c = write(tmp_path, """gates:
  rules:
    - {name: k, action: kill, when: "error_rate > 0.25"}
""", "c.yaml")
    assert load_governance(a).hash == load_governance(b).hash
    assert load_governance(a).hash != load_governance(c).hash


def test_unknown_metric_points_into_the_quoted_rule(tmp_path: Path) -> None:
    text = """gates:
  rules:
    - {name: k, action: kill, when: "last_5_runs_pnl < -100 or eror_rate > 0.2"}
"""
    e = load_error(tmp_path, text)
    assert (e.line, e.column) == where(text, "eror_rate")
    assert e.suggestion == "did you mean 'error_rate'?"
    assert "unknown metric 'eror_rate'" in str(e)
    assert str(e).startswith(f"{tmp_path / 'p.yaml'}:{e.line}:{e.column}: gates.rules.0.when")


def test_syntax_error_in_a_plain_scalar(tmp_path: Path) -> None:
    text = """gates:
  rules:
    - name: k
      action: kill
      when: error_rate > 0.2 and
"""
    e = load_error(tmp_path, text)
    # the error is at the end of the rule: just past `and`
    line, col = where(text, "error_rate > 0.2 and")
    assert (e.line, e.column) == (line, col + len("error_rate > 0.2 and"))
    assert "expected a metric or a number" in str(e)


def test_confidence_rules_read_run_values(tmp_path: Path) -> None:
    text = """confidence:
  rules:
    - {when: "pnl < -20 or latncy_ms > 900", factor: 0.8}
"""
    e = load_error(tmp_path, text)
    assert (e.line, e.column) == where(text, "latncy_ms")
    assert e.suggestion == "did you mean 'latency_ms'?"
    assert "unknown run value" in str(e)


def test_unknown_key_suggests_the_right_one(tmp_path: Path) -> None:
    text = "gates:\n  min_run: 5\n"
    e = load_error(tmp_path, text)
    assert (e.line, e.column) == where(text, "min_run")
    assert e.suggestion == "did you mean 'min_runs'?"


def test_unknown_key_inside_a_rule(tmp_path: Path) -> None:
    text = """gates:
  rules:
    - {name: k, acton: kill, when: "error_rate > 0.2"}
"""
    e = load_error(tmp_path, text)
    assert (e.line, e.column) == where(text, "acton")
    assert e.suggestion == "did you mean 'action'?"


def test_wrong_types_come_with_a_fix(tmp_path: Path) -> None:
    assert load_error(tmp_path, 'gates:\n  min_runs: "5"\n').suggestion == \
        "write the number without quotes"
    assert load_error(tmp_path, "gates:\n  rules:\n    - {name: k, action: kill, when: 5}\n"
                      ).suggestion == 'quote it, e.g. when: "error_rate > 0.2"'
    assert load_error(tmp_path, "eligibility:\n  exclude_flagged: maybe\n").suggestion == \
        "write true or false"


@pytest.mark.parametrize(("text", "needle", "fragment"), [
    ('gates:\n  min_runs: "5"\n', "min_runs", "valid integer"),
    ("gates:\n  min_runs: 0\n", "min_runs", "greater than or equal to 1"),
    ("gates:\n  rules:\n    - {name: k, action: kill, when: 5}\n", "when", "valid string"),
    ("gates:\n  rules:\n    - {name: k, action: stop, when: a > 1}\n", "action", "'promote' or 'kill'"),
    ("gates:\n  scope: [agent, desk]\n", "desk", "'agent' or 'strategy'"),
    ("confidence:\n  floor: 1.5\n", "floor", "less than or equal to 1"),
    ("confidence:\n  rules:\n    - {when: pnl < 0, factor: -1}\n", "factor", "greater than 0"),
    ("eligibility:\n  exclude_flagged: yes please\n", "exclude_flagged", "valid boolean"),
    ("gates:\n  window: {runs: 20, duration: soon}\n", "duration", "not a duration"),
    ("gates: [1, 2]\n", "gates", "must be a mapping"),
])
def test_wrong_types(tmp_path: Path, text: str, needle: str, fragment: str) -> None:
    e = load_error(tmp_path, text)
    assert fragment in str(e)
    assert e.line == where(text, needle)[0]


def test_duplicate_rule_names(tmp_path: Path) -> None:
    text = """gates:
  rules:
    - {name: k, action: kill, when: "error_rate > 0.2"}
    - {name: k, action: promote, when: "rolling_pnl_bps > 1"}
"""
    e = load_error(tmp_path, text)
    assert "duplicate rule name 'k'" in str(e)
    assert e.line == 4


@pytest.mark.parametrize(("v", "secs"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400),
                                         ("45s", 45), ("2w", 1209600), (3600, 3600), ("1.5h", 5400),
                                         ("12H", 43200), (" 2 D ", 172800)])
def test_window_durations(v: str | int, secs: float) -> None:
    """gates.window.duration reads `alphatrace.parse.parse_duration`'s grammar (any case)."""
    assert Window(duration=v).seconds == secs


@pytest.mark.parametrize("v", ["", "-3d", "0", "3 days", "h"])
def test_bad_window_durations(v: str) -> None:
    with pytest.raises(ValidationError, match=r"not a duration|must be positive"):
        Window(duration=v)


def test_policy_check_reports_every_error_in_one_pass(tmp_path: Path) -> None:
    """A bad horizon on line 3 and an unknown key on line 5, a bad rule and a bad type: all
    reported, in file order, each with line, column and a suggestion."""
    from typer.testing import CliRunner

    from alphatrace.cli.main import app

    text = ("reconcile:\n"
            "  fee_bps: 5\n"
            "  horizon: 8x\n"
            "confidence:\n"
            "  recovry: 1.02\n"
            "gates:\n"
            "  min_runs: \"5\"\n"
            "  rules:\n"
            "    - {name: k, action: kill, when: \"rolling_pnl < -100\"}\n")
    p = write(tmp_path, text)
    out = CliRunner().invoke(app, ["policy", "check", str(p)])
    assert out.exit_code == 2
    lines = [x for x in out.output.splitlines() if x.startswith("error: ")]
    assert len(lines) == 4, out.output
    expected = [where(text, "horizon"), where(text, "recovry"), where(text, "min_runs"),
                where(text, "rolling_pnl")]
    for line, (ln, col) in zip(lines, expected, strict=True):
        assert line.startswith(f"error: {p}:{ln}:{col}: "), (line, ln, col)
    assert "8x" in lines[0] and '"8h"' in lines[0]
    assert "did you mean 'recovery'?" in lines[1]
    assert "write the number without quotes" in lines[2]
    assert "did you mean 'rolling_pnl_bps'?" in lines[3]
    doc = CliRunner().invoke(app, ["policy", "check", str(p), "--json"])
    assert doc.exit_code == 2
    import json

    got = json.loads(doc.stdout)
    assert got["ok"] is False and [(e["line"], e["column"]) for e in got["errors"]] == expected
