"""Every metric declares how it reads (label, format) once, in the registry, and the dashboard
and the change-point sentences use that declaration."""

from __future__ import annotations

import datetime as dt

import pytest

from alphatrace import metrics
from alphatrace.forensics.changepoints import Change
from alphatrace.metrics import FORMATS, Metric
from alphatrace.server.dashboard import fmt


@pytest.mark.parametrize("name", list(metrics.METRICS))
def test_each_metric_has_a_label_and_a_known_format(name: str) -> None:
    m = metrics.get(name)
    assert m.label and m.fmt in FORMATS and m.fmt in fmt.FORMATTERS


def test_formats_read_as_declared() -> None:
    # values and their expected text written out by hand
    assert fmt.metric("hit_rate", 0.4567) == "45.7%"
    assert fmt.metric("mean_net_bps", -3.14159) == "\u22123.14"
    assert fmt.metric("total_cost_usd", 0.01234) == "$0.0123"
    assert fmt.metric("max_drawdown_usd", 1234.5) == "$1,234.50"
    assert fmt.metric("sharpe", 0.12345) == "0.123"
    assert fmt.metric("last_7_runs_pnl", 12.0) == "+12.00"
    assert fmt.metric("multiplier", 0.85) == "85.0 %"
    assert fmt.metric("not_a_metric", 0.5) == "0.5000"


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown format 'money'"):
        Metric("x", "count(*)", "runs", "n", "doc", fmt="money")


def test_change_point_sentences_use_the_registry_label() -> None:
    cp = Change(agent="A", metric="cost_per_run", run_index=40, run_id="r40",
                     ts=dt.datetime(2025, 1, 1), before=0.01, after=0.05, p=0.001)
    assert cp.phrase() == "cost per run rose 5.0× at run 40"

