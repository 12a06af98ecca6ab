"""The governance sections of a policy file (`confidence`, `gates`, `eligibility`, `sizing`),
validated.

Every rule is parsed when the policy loads, so a typo in a metric name is a load error at the
file, line and column of the typo, with a suggestion, instead of a gate that silently never
fires. The decision hash covers the normalised `gates` and `eligibility` sections (defaults
filled in), so two files with the same effective rules have the same hash and a decision
names exactly the rules that produced it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alphatrace import metrics
from alphatrace.errors import PolicyError
from alphatrace.governance import expr
from alphatrace.governance.canon import canonical_json, sha256_hex
from alphatrace.notify.config import NotifySection
from alphatrace.parse import parse_duration
from alphatrace.policy import Policy, load_policy, shipped_name, shipped_text

Scope = Literal["agent", "strategy"]
SCOPES: tuple[Scope, ...] = ("agent", "strategy")

# Per-run values a confidence rule may read, and the ledger column each one is.
RUN_VARIABLES: dict[str, str] = {
    "pnl": "realized_pnl_bps",
    "errors": "errors",
    "latency_ms": "latency_ms",
    "cost_usd": "cost_usd",
    "net_bps": "net_bps",
}

class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConfidenceRule(_Model):
    when: str
    factor: float = Field(gt=0)
    name: str | None = None


class ConfidenceSection(_Model):
    rules: list[ConfidenceRule] = Field(default_factory=lambda: [
        ConfidenceRule(when="pnl < -20", factor=0.85),
        ConfidenceRule(when="pnl < 0", factor=0.95),
    ])
    default_factor: float = Field(default=1.0, gt=0)
    recovery: float | None = Field(default=None, ge=1.0)
    floor: float | None = Field(default=None, gt=0, le=1.0)
    warn_below: float | None = Field(default=0.5, ge=0)


class Window(_Model):
    runs: int | None = Field(default=60, ge=1)
    duration: str | int | float | None = None

    @field_validator("duration")
    @classmethod
    def _valid_duration(cls, v: str | int | float | None) -> str | int | float | None:
        if v is not None:
            parse_duration(v)
        return v

    @property
    def seconds(self) -> float | None:
        return None if self.duration is None else parse_duration(self.duration).total_seconds()


class GateRule(_Model):
    name: str = Field(min_length=1)
    action: Literal["promote", "kill"]
    when: str
    scope: list[Scope] | None = None


class GatesSection(_Model):
    """Defaults equal the shipped default.yaml's gates (tests/governance/test_policy.py pins it):
    sized for evaluation after every run. The seed's gates are policies/seed.yaml."""

    min_runs: int = Field(default=40, ge=1)
    window: Window = Field(default_factory=Window)
    scope: list[Scope] = Field(default_factory=lambda: list(SCOPES))
    rules: list[GateRule] = Field(default_factory=lambda: [
        GateRule(name="kill_evidence", action="kill", scope=["agent"],
                 when="mean_pnl_bps < -40 and sharpe < -0.3 or error_rate > 0.2"),
        GateRule(name="kill_class", action="kill", scope=["strategy"],
                 when="mean_pnl_bps < -80 and sharpe < -0.5 or error_rate > 0.2"),
        GateRule(name="promote_consistent", action="promote",
                 when="rolling_pnl_bps > 150 and error_rate == 0 and median_latency_ms < 700"),
    ])


class EligibilitySection(_Model):
    exclude_flagged: bool = True


class SizingSection(_Model):
    """How `alphatrace.size()` behaves against a server (docs/governance.md, "Sizing")."""

    fail: Literal["closed", "last_known"] = "closed"  # server unreachable: 0, or the last answer
    cache_s: float = Field(default=1.0, ge=0, le=60)   # how long the SDK reuses an answer
    timeout_ms: float = Field(default=200, gt=0, le=10_000)  # one request, connect to answer


@dataclass(frozen=True)
class CompiledGate:
    rule: GateRule
    ast: expr.Node

    def applies_to(self, scope: str) -> bool:
        return self.rule.scope is None or scope in self.rule.scope


@dataclass(frozen=True)
class CompiledFactor:
    rule: ConfidenceRule
    ast: expr.Node


@dataclass(frozen=True)
class GovernancePolicy:
    """The governance sections of one policy, with every rule compiled."""

    confidence: ConfidenceSection
    factors: tuple[CompiledFactor, ...]
    gates: GatesSection
    gate_rules: tuple[CompiledGate, ...]
    eligibility: EligibilitySection
    path: str
    notify: NotifySection = field(default_factory=NotifySection)  # announced where; not hashed
    sizing: SizingSection = field(default_factory=SizingSection)

    def decision_body(self) -> dict[str, Any]:
        """What a decision depends on; stored beside the decisions so audits can replay it."""
        return {"eligibility": self.eligibility.model_dump(mode="json"),
                "gates": self.gates.model_dump(mode="json")}

    @functools.cached_property
    def hash(self) -> str:
        """Computed once (the policy is frozen): a catch-up stamps it on every decision."""
        return sha256_hex(canonical_json(self.decision_body()))

    @property
    def confidence_hash(self) -> str:
        return sha256_hex(canonical_json(self.confidence.model_dump(mode="json")))

    def gate_metrics(self) -> list[str]:
        """Metrics every decision records: `runs` (for min_runs) and those the rules read."""
        seen: dict[str, None] = {"runs": None}
        for g in self.gate_rules:
            for n in expr.names(g.ast):
                seen.setdefault(n, None)
        return list(seen)

    def run_variables(self) -> list[str]:
        seen: dict[str, None] = {"pnl": None}
        for f in self.factors:
            for n in expr.names(f.ast):
                seen.setdefault(n, None)
        return list(seen)


# ---------------------------------------------------------------- error positions

def _source_text(policy: Policy) -> str | None:
    shipped = shipped_name(policy.path)
    if shipped is not None:
        return shipped_text(shipped)
    p = Path(policy.path)
    return p.read_text("utf-8") if p.is_file() and not policy.path.endswith(".toml") else None


def _value_node(policy: Policy, keypath: tuple[Any, ...]) -> yaml.Node | None:
    text = _source_text(policy)
    if text is None:
        return None
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for key in keypath:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            return None
        if node is None:
            return None
    return node


def _expr_error(policy: Policy, keypath: tuple[Any, ...], e: expr.ExprError) -> PolicyError:
    """Map a column inside the rule text to the file's line and column."""
    where = ".".join(str(k) for k in keypath)
    node = _value_node(policy, keypath)
    if isinstance(node, yaml.ScalarNode) and node.style in (None, "", '"', "'"):
        quote = 1 if node.style in ('"', "'") else 0
        line, col = node.start_mark.line + 1, node.start_mark.column + 1 + quote + e.pos
    elif node is not None:
        line, col = node.start_mark.line + 1, node.start_mark.column + 1
    else:
        line, col = policy.locate(keypath)
    return PolicyError(f"{where}: {e.message} (column {e.pos + 1} of the rule)", path=policy.path,
                       line=line, column=col, suggestion=e.suggestion)


def compile_policy(policy: Policy) -> GovernancePolicy:
    """The compiled governance sections; the first problem (see `policy_errors`) is raised."""
    gp, errors = _compile(policy)
    if errors:
        raise errors[0]
    assert gp is not None
    return gp


def policy_errors(policy: Policy) -> list[PolicyError]:
    """Every problem of the governance sections in one pass: unknown keys, wrong types, rules
    over unknown names or with syntax errors, duplicate rule names."""
    return _compile(policy)[1]


def _rules(policy: Policy, section: str, rules: Sequence[BaseModel] | None,
           model: type[BaseModel]) -> list[tuple[int, Any]]:
    """(index, rule) of a section's rules; when the section itself failed, its rules that
    are valid on their own, so their expressions are still checked in the same pass."""
    if rules is not None:
        return list(enumerate(rules))
    raw = (policy.data.get(section) or {}) if isinstance(policy.data.get(section), dict) else {}
    items = raw.get("rules")
    out: list[tuple[int, Any]] = []
    for i, item in enumerate(items if isinstance(items, list) else []):
        try:
            out.append((i, model.model_validate(item)))
        except ValidationError:
            continue  # reported by the section's own validation
    return out


def _compile(policy: Policy) -> tuple[GovernancePolicy | None, list[PolicyError]]:
    errors: list[PolicyError] = []
    conf, e1 = policy.checked_section("confidence", ConfidenceSection)
    gates, e2 = policy.checked_section("gates", GatesSection)
    elig, e3 = policy.checked_section("eligibility", EligibilitySection)
    notify, e4 = policy.checked_section("notify", NotifySection)
    sizing, e5 = policy.checked_section("sizing", SizingSection)
    errors += e1 + e2 + e3 + e4 + e5

    factors = []
    run_vars = list(RUN_VARIABLES)
    for i, r in _rules(policy, "confidence", conf.rules if conf else None, ConfidenceRule):
        kp = ("confidence", "rules", i, "when")
        try:
            ast = expr.parse(r.when, lambda n: n in RUN_VARIABLES, run_vars, kind="run value")
        except expr.ExprError as e:
            errors.append(_expr_error(policy, kp, e))
            continue
        factors.append(CompiledFactor(r, ast))

    compiled = []
    seen: set[str] = set()
    pool = [*metrics.METRICS, "last_5_runs_pnl", "last_10_runs_pnl"]
    for i, g in _rules(policy, "gates", gates.rules if gates else None, GateRule):
        if g.name in seen:
            errors.append(policy.error(("gates", "rules", i, "name"),
                                       f"duplicate rule name {g.name!r}",
                                       "every gate rule needs its own name: decisions cite it"))
        seen.add(g.name)
        kp = ("gates", "rules", i, "when")
        try:
            ast = expr.parse(g.when, metrics.is_metric, pool, kind="metric")
        except expr.ExprError as e:
            errors.append(_expr_error(policy, kp, e))
            continue
        compiled.append(CompiledGate(g, ast))
    if errors or conf is None or gates is None or elig is None or notify is None \
            or sizing is None:
        return None, errors
    return GovernancePolicy(conf, tuple(factors), gates, tuple(compiled), elig, policy.path,
                            notify, sizing), errors


@functools.cache
def _default() -> GovernancePolicy:
    return compile_policy(load_policy(None))


def load_governance(source: str | Path | Policy | GovernancePolicy | None = None) -> GovernancePolicy:
    """The governance view of a policy file, a loaded Policy, or the shipped default."""
    if isinstance(source, GovernancePolicy):
        return source
    if source is None:
        return _default()
    policy = source if isinstance(source, Policy) else load_policy(source)
    return compile_policy(policy)


def from_decision_body(body: dict[str, Any], label: str) -> GovernancePolicy:
    """A policy rebuilt from the body stored with decisions (for audits)."""
    return compile_policy(Policy(dict(body), label))
