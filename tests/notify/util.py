"""Policies with a notify section (and the seed's gates), and stores whose evaluation kills
or promotes."""

from __future__ import annotations

from typing import Any

import yaml

from alphatrace.governance.policy import GovernancePolicy, compile_policy
from alphatrace.policy import parse_policy_text
from alphatrace.store import Store
from tests.policies import SEED
from tests.rows import insert, series

SECRET_ENV = "ALPHATRACE_TEST_HOOK_SECRET"


def policy(targets: list[dict[str, Any]], **notify: Any) -> GovernancePolicy:
    return compile_policy(parse_policy_text(policy_text(targets, **notify), "test.yaml"))


def policy_text(targets: list[dict[str, Any]], **notify: Any) -> str:
    """The seed's gates (which `losers` is built for) and these notify targets."""
    return yaml.safe_dump({"gates": SEED.data["gates"], "notify": {"targets": targets, **notify}},
                          sort_keys=False)


def hook(url: str, name: str = "ops", **kw: Any) -> dict[str, Any]:
    return {"name": name, "kind": "webhook", "url": url, "secret_env": SECRET_ENV, **kw}


def losers(store: Store, agents: list[str], strategy: str = "S") -> None:
    """Agents whose last five runs lose 250 bps: the seed's kill_drawdown kills each, and
    their strategy."""
    for a in agents:
        insert(store.con, series(a, [-50.0] * 6, strategy=strategy))
