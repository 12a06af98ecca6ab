"""The `forensics:` policy section: every threshold forensics uses, with its default.

Unknown keys are errors (a typo must not silently fall back to a default); the policy loader
turns validation errors into file:line:column messages.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alphatrace.ledger.policy import SECTION as RECONCILE
from alphatrace.ledger.policy import ReconcilePolicy
from alphatrace.parse import parse_duration
from alphatrace.policy import Policy, load_policy


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExplainConfig(_Strict):
    history_runs: int = Field(default=200, ge=1)
    min_history: int = Field(default=10, ge=1)
    slow_abs_ms: float | None = Field(default=5000.0, gt=0)
    wrong_bps: float = Field(default=0.0, ge=0)
    cost_z: float = Field(default=3.5, gt=0)
    cost_min_ratio: float = Field(default=1.5, ge=1)
    gap_bps: float = Field(default=20.0, gt=0)


class RegimeConfig(_Strict):
    min_steps: int = Field(default=4, ge=2)
    trend_min: float = Field(default=2.0, gt=0)
    revert_max: float = Field(default=0.5, ge=0)
    vr_max: float = Field(default=0.8, gt=0)
    vol_lookback: float = 7 * 86400.0
    volatile_min: float = Field(default=1.5, gt=1)
    calm_max: float = Field(default=0.67, gt=0, lt=1)
    aliases: dict[str, Literal["TREND", "MEAN_REVERT", "VOLATILE"]] = Field(default_factory=dict)

    @field_validator("vol_lookback", mode="before")
    @classmethod
    def _dur(cls, v: Any) -> float:
        return parse_duration(v).total_seconds()

    @model_validator(mode="after")
    def _order(self) -> RegimeConfig:
        if self.revert_max >= self.trend_min:
            raise ValueError("revert_max must be below trend_min")
        return self


NUMERIC_FEATURES = ("latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "score_final")
CATEGORICAL_FEATURES = ("symbols", "direction", "regime", "hour", "model", "agent", "strategy")


class ClustersConfig(_Strict):
    features: list[str] = Field(default_factory=lambda: [
        "latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "symbols", "direction",
        "regime", "score_final", "hour", "model"])
    attrs: bool = True
    max_attrs: int = Field(default=8, ge=0)
    quantiles: list[float] = Field(default_factory=lambda: [round(0.05 * i, 2) for i in range(1, 20)])
    max_categories: int = Field(default=30, ge=1, le=250)
    min_support: float = Field(default=30, gt=0)
    max_depth: int = Field(default=2, ge=1, le=4)
    alpha: float = Field(default=0.95, gt=0, le=1)
    search_k: int = Field(default=100, ge=1)
    fdr_q: float = Field(default=0.05, gt=0, lt=1)
    max_clusters: int = Field(default=10, ge=1)
    max_examined: int = Field(default=300, ge=1)

    @field_validator("features")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        known = set(NUMERIC_FEATURES) | set(CATEGORICAL_FEATURES)
        for f in v:
            if f not in known:
                raise ValueError(f"unknown feature {f!r} (known: {', '.join(sorted(known))})")
        return v

    @field_validator("quantiles")
    @classmethod
    def _q(cls, v: list[float]) -> list[float]:
        if not v or any(not 0 < q < 1 for q in v):
            raise ValueError("quantiles must be in (0, 1)")
        return sorted(set(v))

    def support(self, n: int) -> int:
        """min_support in runs: a count, or a share of the runs when below 1."""
        return max(2, int(self.min_support * n) if self.min_support < 1 else int(self.min_support))


SeriesName = Literal["cost_per_run", "tokens_per_run", "mean_latency_ms", "error_rate",
                     "mean_pnl_bps"]
SERIES: tuple[SeriesName, ...] = ("cost_per_run", "tokens_per_run", "mean_latency_ms", "error_rate",
                                  "mean_pnl_bps")


class ChangepointsConfig(_Strict):
    metrics: list[SeriesName] = Field(default_factory=lambda: list(SERIES))
    min_size: int = Field(default=30, ge=2)
    penalty: float = Field(default=3.0, gt=0)
    p_max: float = Field(default=0.001, gt=0, lt=1)
    max_points: int = Field(default=20000, ge=100)


# Ledger columns an exclusion rule may test; `pnl` is the realized PnL in bps (the gates' name).
FIELDS: dict[str, str] = {
    "pnl": "realized_pnl_bps",
    **{c: c for c in (
        "agent", "strategy", "symbols", "direction", "regime", "model", "status", "pnl_source",
        "latency_ms", "tokens_in", "tokens_out", "cost_usd", "errors", "score_final",
        "gross_bps", "fee_bps", "funding_bps", "paper_pnl_bps", "realized_pnl_bps",
        "size_usd", "pnl_usd", "net_usd", "net_bps", "execution_gap_bps")},
}

TEXT_FIELDS = frozenset({"agent", "strategy", "symbols", "direction", "regime", "model", "status",
                         "pnl_source"})

CONDITION_OPS = ("<", "<=", ">", ">=", "==", "!=", "in", "not_in", "is_null", "not_null")


class Condition(_Strict):
    field: str
    op: Literal["<", "<=", ">", ">=", "==", "!=", "in", "not_in", "is_null", "not_null"]
    value: float | str | list[float | str] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Condition:
        if self.field not in FIELDS:
            raise ValueError(f"unknown field {self.field!r} (known: {', '.join(sorted(FIELDS))})")
        values = self.value if isinstance(self.value, list) else [self.value]
        want_text = self.field in TEXT_FIELDS
        if self.value is not None and any(isinstance(v, str) != want_text for v in values):
            kind = "text" if want_text else "numbers"
            raise ValueError(f"{self.field} compares with {kind}")
        if self.op in ("is_null", "not_null"):
            if self.value is not None:
                raise ValueError(f"{self.op} takes no value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list) or not self.value:
                raise ValueError(f"{self.op} needs a non-empty list value")
        elif self.value is None or isinstance(self.value, list):
            raise ValueError(f"{self.op} needs a single value")
        return self


class ExclusionRule(_Strict):
    name: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    when: list[Condition] = Field(min_length=1)


class ForensicsConfig(_Strict):
    target: Literal["realized_pnl_bps", "net_bps"] = "realized_pnl_bps"
    explain: ExplainConfig = ExplainConfig()
    regime: RegimeConfig = RegimeConfig()
    clusters: ClustersConfig = ClustersConfig()
    changepoints: ChangepointsConfig = ChangepointsConfig()
    exclusions: list[ExclusionRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_rules(self) -> ForensicsConfig:
        names = [r.name for r in self.exclusions]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"duplicate exclusion rule names: {', '.join(sorted(dup))}")
        return self


def load(policy: str | Policy | None = None) -> tuple[ForensicsConfig, Policy]:
    """The forensics section of `policy` (a path, a loaded Policy, or the shipped default)."""
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    return pol.section("forensics", ForensicsConfig), pol


def default_horizon_s(pol: Policy) -> float:
    """The reconcile default horizon (docs/architecture.md §Reconciliation: 8h) for legs without
    one; a horizon that does not parse is a PolicyError at its line and column, as when
    reconciling."""
    return pol.section(RECONCILE, ReconcilePolicy).horizon
