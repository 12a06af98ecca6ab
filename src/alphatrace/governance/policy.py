"""The governance sections of a policy file (`confidence`, `gates`, `eligibility`), validated.

Every rule is parsed when the policy loads, so a typo in a metric name is a load error at the
file, line and column of the typo, with a suggestion, instead of a gate that silently never
fires. The decision hash covers the normalised `gates` and `eligibility` sections (defaults
filled in), so two files with the same effective rules have the same hash and a decision
names exactly the rules that produced it.
"""

from __future__ import annotations

import difflib
import functools
import re
import types
import typing
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from alphatrace import metrics
from alphatrace.errors import PolicyError
from alphatrace.governance import expr
from alphatrace.governance.canon import canonical_json, sha256_hex
from alphatrace.policy import DEFAULT_POLICY, Policy, load_policy

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

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(v: str | int | float) -> float:
    """Seconds in `30d`, `12h`, `90m`, `45s`, `2w` or a plain number of seconds."""
    if isinstance(v, bool):
        raise ValueError("a duration is a number of seconds or text like '30d'")
    if isinstance(v, int | float):
        secs = float(v)
    else:
        m = _DURATION.match(v)
        if not m:
            raise ValueError(f"{v!r} is not a duration (examples: 30d, 12h, 90m, 3600)")
        secs = float(m.group(1)) * _UNIT_S[m.group(2)]
    if not secs > 0:
        raise ValueError("a duration must be positive")
    return secs


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
    runs: int | None = Field(default=20, ge=1)
    duration: str | int | float | None = None

    @field_validator("duration")
    @classmethod
    def _valid_duration(cls, v: str | int | float | None) -> str | int | float | None:
        if v is not None:
            parse_duration(v)
        return v

    @property
    def seconds(self) -> float | None:
        return None if self.duration is None else parse_duration(self.duration)


class GateRule(_Model):
    name: str = Field(min_length=1)
    action: Literal["promote", "kill"]
    when: str
    scope: list[Scope] | None = None


class GatesSection(_Model):
    min_runs: int = Field(default=5, ge=1)
    window: Window = Field(default_factory=Window)
    scope: list[Scope] = Field(default_factory=lambda: list(SCOPES))
    rules: list[GateRule] = Field(default_factory=lambda: [
        GateRule(name="kill_drawdown", action="kill",
                 when="last_5_runs_pnl < -100 or error_rate > 0.2"),
        GateRule(name="promote_consistent", action="promote",
                 when="rolling_pnl_bps > 150 and error_rate == 0 and median_latency_ms < 700"),
    ])


class EligibilitySection(_Model):
    exclude_flagged: bool = True


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

    def decision_body(self) -> dict[str, Any]:
        """What a decision depends on; stored beside the decisions so audits can replay it."""
        return {"eligibility": self.eligibility.model_dump(mode="json"),
                "gates": self.gates.model_dump(mode="json")}

    @property
    def hash(self) -> str:
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
    if policy.path.startswith("<default policy"):
        return resources.files("alphatrace.policies").joinpath(DEFAULT_POLICY).read_text("utf-8")
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


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model that `loc` points into, for 'did you mean'."""
    current: Any = model
    for key in loc[:-1]:
        if isinstance(key, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field = current.model_fields.get(str(key))
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


M = typing.TypeVar("M", bound=BaseModel)


def _section(policy: Policy, name: str, model: type[M]) -> M:
    raw = policy.data.get(name)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise policy.error((name,), f"must be a mapping, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        # an unknown key beside a missing one is usually the same typo: report the typo
        errs = sorted(e.errors(), key=lambda x: x["type"] != "extra_forbidden")
        first = errs[0]
        loc = tuple(first["loc"])
        suggestion = None
        if first["type"] == "extra_forbidden":
            known = _fields_at(model, loc)
            close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.5)
            suggestion = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
            msg = "unknown key"
        else:
            msg = first["msg"]
            if first["type"] in ("string_type", "int_type", "float_type", "bool_type"):
                msg += f" (got {first['input']!r})"
            suggestion = _type_hint(first["type"], first.get("input"))
        raise policy.error((name, *loc), msg, suggestion) from None


def _type_hint(kind: str, value: Any) -> str | None:
    """A fix for the common type mistakes of hand-written YAML."""
    if kind in ("int_type", "float_type") and isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return "write a number"
        return "write the number without quotes"
    if kind == "bool_type":
        return "write true or false"
    if kind == "string_type":
        return 'quote it, e.g. when: "error_rate > 0.2"'
    if kind in ("list_type", "dict_type", "model_type"):
        return "see the shipped default.yaml for the expected shape"
    return None


def compile_policy(policy: Policy) -> GovernancePolicy:
    conf = _section(policy, "confidence", ConfidenceSection)
    gates = _section(policy, "gates", GatesSection)
    elig = _section(policy, "eligibility", EligibilitySection)

    factors = []
    run_vars = list(RUN_VARIABLES)
    for i, r in enumerate(conf.rules):
        kp = ("confidence", "rules", i, "when")
        try:
            ast = expr.parse(r.when, lambda n: n in RUN_VARIABLES, run_vars, kind="run value")
        except expr.ExprError as e:
            raise _expr_error(policy, kp, e) from None
        factors.append(CompiledFactor(r, ast))

    compiled = []
    seen: set[str] = set()
    pool = [*metrics.METRICS, "last_5_runs_pnl", "last_10_runs_pnl"]
    for i, g in enumerate(gates.rules):
        if g.name in seen:
            raise policy.error(("gates", "rules", i, "name"), f"duplicate rule name {g.name!r}",
                               "every gate rule needs its own name: decisions cite it")
        seen.add(g.name)
        kp = ("gates", "rules", i, "when")
        try:
            ast = expr.parse(g.when, metrics.is_metric, pool, kind="metric")
        except expr.ExprError as e:
            raise _expr_error(policy, kp, e) from None
        compiled.append(CompiledGate(g, ast))
    return GovernancePolicy(conf, tuple(factors), gates, tuple(compiled), elig, policy.path)


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
