"""What the simulator planted, so tests and later demo steps can check what the product finds.

The demo is only convincing if forensics and gates rediscover facts nobody told them; these
records are those facts, kept beside the events instead of inside them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Problem = Literal[
    "not_json", "missing_field", "wrong_type", "nan", "unknown_direction", "negative_tokens"
]


@dataclass(frozen=True)
class LossCluster:
    """Runs of `agent` with run latency > latency_ms_gt and run tokens_in > tokens_in_gt had
    their direction flipped."""

    agent: str
    latency_ms_gt: float
    tokens_in_gt: int
    run_ids: tuple[str, ...]
    agent_runs: int


@dataclass(frozen=True)
class QualityBreak:
    """Cost per run doubles from run `cost_break_index` (model switch), signal quality turns
    negative from run `pnl_break_index`; indices are 0-based in the agent's (ts, run_id) order,
    and a run's ts is its signal's (its first telemetry record's when it sent none)."""

    agent: str
    model_before: str
    model_after: str
    cost_ratio: float
    cost_break_index: int
    cost_break_run_id: str
    cost_break_ts: str
    pnl_break_index: int
    pnl_break_run_id: str
    pnl_break_ts: str
    skill_before: float
    skill_after: float


@dataclass(frozen=True)
class BadLine:
    file: str
    line: int  # 1-based line number in the written file
    problem: Problem
    field: str | None


@dataclass(frozen=True)
class Truth:
    seed: int
    runs: int
    runs_by_agent: dict[str, int]
    strategy_by_agent: dict[str, str]
    events_by_kind: dict[str, int]  # distinct valid events per kind (what ingest accepts)
    duplicates: int  # exact retried lines (what ingest counts as duplicates)
    bad_lines: tuple[BadLine, ...]
    cluster: LossCluster
    quality_break: QualityBreak
    external_pnl_agent: str
    external_pnl_runs: int
    no_signal_runs: int  # runs with telemetry only (the LLM call failed, no signal sent)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cluster"]["run_ids"] = list(self.cluster.run_ids)
        d["bad_lines"] = [asdict(b) for b in self.bad_lines]
        return d
