"""The seed's gates, named explicitly by the tests written for them.

The shipped default policy's gates are sized for the live loop (a 60-run window, at least 40
runs, kills on a losing mean with a negative Sharpe; docs/governance.md). Tests built around
the seed's gates (docs/architecture.md §Governance: `kill_drawdown` when `last_5_runs_pnl <
-100 or error_rate > 0.2`, `promote_consistent`, at least 5 runs in a 20-run window) pass one
of these instead of relying on the default:

- `SEED`: the shipped policies/seed.yaml, for `db.gates.evaluate`, `backtest`, `create_app`,
  `PipelineConfig.load`, ...;
- `SEED_PATH`: its file; `SEED_FLAG`: `--policy` naming it, for the CLI and for a real
  `serve` subprocess;
- `SEED_RULES`: its gate rules as a `  rules:` line of YAML, for a test that writes its own
  `gates:` section (whose omitted keys would be the default's).
"""

from __future__ import annotations

import json
from pathlib import Path

import alphatrace.policies
from alphatrace.policy import SEED_POLICY, Policy, shipped_policy

SEED_PATH = Path(alphatrace.policies.__file__).parent / SEED_POLICY
SEED: Policy = shipped_policy(SEED_POLICY)
SEED_RULES = f"  rules: {json.dumps(SEED.data['gates']['rules'])}\n"
SEED_FLAG = ("--policy", str(SEED_PATH))
