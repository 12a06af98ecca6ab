"""The per-agent summary's metrics are listed once (metrics.View and metrics.summary) and every
view reads them there; each view shows what it showed when it kept its own list (issue #16
item 9). The lists below are those views as they were, written out by hand."""

from __future__ import annotations

import itertools

from alphatrace import metrics
from alphatrace.cli import ledger as cli_ledger
from alphatrace.server.dashboard import overview

OVERVIEW = ["runs", "realized_runs", "hit_rate", "mean_net_bps", "total_pnl_usd",
            "total_cost_usd", "net_usd"]
DEMO = ["runs", "realized_runs", "hit_rate", "mean_net_bps", "total_pnl_usd", "total_cost_usd",
        "net_usd", "sharpe", "max_drawdown_bps", "pnl_per_cost"]
TABLE = ["runs", "realized_runs", "hit_rate", "mean_net_bps", "median_net_bps", "total_pnl_usd",
         "total_cost_usd", "net_usd", "profit_factor", "sharpe", "max_drawdown_bps",
         "max_losing_streak", "mean_latency_ms", "pnl_per_cost"]
FULL = ["runs", "realized_runs", "hit_rate", "mean_pnl_bps", "median_pnl_bps", "mean_net_bps",
        "median_net_bps", "total_pnl_usd", "total_cost_usd", "unrealized_cost_usd", "net_usd",
        "profit_factor", "sharpe", "sharpe_annualised", "max_drawdown_bps", "max_drawdown_usd",
        "max_losing_streak", "mean_latency_ms", "cost_per_run", "pnl_per_cost"]


def test_each_view_shows_what_it_showed() -> None:
    assert list(metrics.summary(metrics.View.OVERVIEW)) == OVERVIEW == overview.METRICS
    assert list(metrics.summary(metrics.View.DEMO)) == DEMO
    assert list(metrics.summary(metrics.View.TABLE)) == TABLE == cli_ledger.AGENT_COLUMNS[1:]
    assert list(metrics.summary()) == list(metrics.SUMMARY) == FULL


def test_a_wider_view_shows_every_metric_of_a_narrower_one() -> None:
    views = [set(metrics.summary(v)) for v in metrics.View]
    assert all(a < b for a, b in itertools.pairwise(views))


def test_the_agents_table_drops_only_its_own_columns() -> None:
    assert sorted(cli_ledger.AGENT_PRIORITY) == sorted(cli_ledger.AGENT_COLUMNS)
