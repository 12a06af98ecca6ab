"""The `reconcile:` policy section: fees, horizon, size and funding, with per-agent overrides.

Validated by pydantic through `Policy.section`, so a bad value is reported with the file, line
and column of the offending key. Reconciliation reads the effective values per agent as one
small relation (`params_table`), joined to the signals instead of looked up in Python per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from alphatrace.parse import parse_duration
from alphatrace.policy import Policy, load_policy
from alphatrace.sql import lit, num

SECTION = "reconcile"

def _seconds(value: Any) -> float:
    """Seconds of a policy duration (`alphatrace.parse.parse_duration`: the event field
    `horizon`'s grammar, so a policy and an event spell durations the same way)."""
    return parse_duration(value).total_seconds()


Duration = Annotated[float, BeforeValidator(_seconds)]
FeeBps = Annotated[float, Field(ge=0, lt=10_000, allow_inf_nan=False)]
SizeUsd = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class AgentOverride(BaseModel):
    """Per-agent values; a key left out falls back to the section default."""

    model_config = ConfigDict(extra="forbid")
    fee_bps: FeeBps | None = None
    horizon: Duration | None = None
    size_usd: SizeUsd | None = None
    include_funding: StrictBool | None = None


class ReconcilePolicy(BaseModel):
    """docs/architecture.md §Reconciliation defaults: 5 bps a side, 8h horizon, 10,000 USD, funding on."""

    model_config = ConfigDict(extra="forbid")
    fee_bps: FeeBps = 5.0
    horizon: Duration = 8 * 3600.0
    size_usd: SizeUsd = 10_000.0
    include_funding: StrictBool = True
    bar_interval: Duration | None = None
    agents: dict[str, AgentOverride] = {}

    def shortest_horizon_s(self) -> float:
        """The shortest horizon this section gives a signal that has none of its own (the
        default or an agent's): before ts + this, no bar can price its exit. The collector's
        writer uses it to tell a live signal from a replayed one (`server/writer.may_decide`)."""
        return min([self.horizon, *(a.horizon for a in self.agents.values()
                                    if a.horizon is not None)])


@dataclass(frozen=True)
class ReconcileConfig:
    """A validated section plus the hash stamped on every leg and ledger row it prices."""

    policy: ReconcilePolicy
    hash: str
    aliases: dict[str, str]
    source: str

    @property
    def bar_interval_s(self) -> int | None:
        iv = self.policy.bar_interval
        return None if iv is None else int(iv)


def load(policy: Policy | str | Path | None = None) -> ReconcileConfig:
    """The reconcile section of `policy` (a loaded Policy, a path, or None for the default)."""
    pol = policy if isinstance(policy, Policy) else load_policy(policy)
    section = pol.section(SECTION, ReconcilePolicy)
    if section.bar_interval is not None and section.bar_interval != int(section.bar_interval):
        raise pol.error((SECTION, "bar_interval"), "must be a whole number of seconds")
    from alphatrace.market.aliases import policy_aliases

    return ReconcileConfig(section, pol.section_hash(SECTION), policy_aliases(pol), pol.path)


def _str(x: str | None) -> str:
    return "NULL::VARCHAR" if x is None else lit(x)


def params_sql(p: ReconcilePolicy) -> str:
    """(agent, fee_rate, horizon_s, size_usd, include_funding): one row per agent override with
    every value filled in, plus the default row (agent NULL).

    The fee is a rate (bps / 1e4) so the SQL formulas read exactly like docs/architecture.md §Reconciliation.
    """
    rows: list[tuple[str | None, float, float, float, bool]] = [
        (None, p.fee_bps, p.horizon, p.size_usd, p.include_funding)]
    for agent in sorted(p.agents):
        o = p.agents[agent]
        rows.append((
            agent,
            o.fee_bps if o.fee_bps is not None else p.fee_bps,
            o.horizon if o.horizon is not None else p.horizon,
            o.size_usd if o.size_usd is not None else p.size_usd,
            o.include_funding if o.include_funding is not None else p.include_funding,
        ))
    values = ", ".join(
        f"({_str(a)}, {num(fee)} / 1e4, {num(h)}, {num(size)}, {'true' if fund else 'false'})"
        for a, fee, h, size, fund in rows
    )
    return (f"SELECT * FROM (VALUES {values}) "
            "v(agent, fee_rate, horizon_s, size_usd, include_funding)")
