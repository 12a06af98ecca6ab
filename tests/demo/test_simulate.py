"""The simulator's output measured independently: what the brief promises holds in the events.

PnL here comes from tests/demo/reference.py (scalar, bisect-based, written separately), never
from the simulator's own numbers.
"""

from __future__ import annotations

import json
import math
import statistics as st
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from alphatrace.demo.simulate import DemoEvents, simulate
from alphatrace.errors import InputError
from tests.demo import reference as ref

# USD per million tokens (in, out), typed from the providers' 2025 price lists.
PRICES = {
    "gpt-4o": (2.50, 10.00), "gpt-4o-mini": (0.15, 0.60), "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00), "gemini-1.5-pro": (1.25, 5.00),
    "deepseek-chat": (0.27, 1.10), "llama-3.1-70b-instruct": (0.88, 0.88),
}


@pytest.fixture(scope="module")
def mkts(demo_market: tuple[pa.Table, pa.Table]) -> dict[str, ref.Series]:
    return ref.series(*demo_market)


@pytest.fixture(scope="module")
def pnl(demo: DemoEvents, mkts: dict[str, ref.Series]) -> dict[str, float]:
    return ref.run_pnl(demo.events, mkts)


@pytest.fixture(scope="module")
def sums(demo: DemoEvents) -> dict[str, dict[str, Any]]:
    return ref.run_sums(demo.events)


def _agent_runs(sums: dict[str, dict[str, Any]], agent: str) -> list[str]:
    return [r for _, r in sorted((s["ts"], r) for r, s in sums.items() if s["agent"] == agent)]


def test_same_seed_gives_byte_identical_files(
    demo: DemoEvents, demo_market: tuple[pa.Table, pa.Table], tmp_path: Path
) -> None:
    again = simulate(demo_market[0], seed=7, funding=demo_market[1])
    a = demo.write_jsonl(tmp_path / "a")
    b = again.write_jsonl(tmp_path / "b")
    assert [p.name for p in a] == ["telemetry.jsonl", "alpha.jsonl", "pnl.jsonl"]
    for pa_, pb in zip(a, b, strict=True):
        assert pa_.read_bytes() == pb.read_bytes()
    other = simulate(demo_market[0], seed=8, funding=demo_market[1]).write_jsonl(tmp_path / "c")
    assert other[0].read_bytes() != a[0].read_bytes()


def test_shape_of_the_cast(demo: DemoEvents, sums: dict[str, dict[str, Any]]) -> None:
    t = demo.truth
    assert 3000 <= t.runs <= 6000
    assert 5 <= len(t.runs_by_agent) <= 7
    assert set(t.strategy_by_agent.values()) == {"FUNDING", "MOMENTUM", "MEAN_REVERT"}
    assert len(sums) == t.runs  # every run has telemetry
    alpha_runs = {str(e["run_id"]) for e in demo.events["alpha"]}
    assert len(alpha_runs) == t.runs - t.no_signal_runs
    assert 0 < t.no_signal_runs < 0.05 * t.runs
    # Symbols both bare and full, horizons both text and seconds, every ts form.
    syms = Counter(e["symbol"] for e in demo.events["alpha"])
    assert {"BTC", "ETH", "BTCUSDT", "ETHUSDT"} <= set(syms)
    assert {type(e["horizon"]) for e in demo.events["alpha"]} == {str, int}
    ts_kinds = {type(e["ts"]).__name__ + (e["ts"][-1] if isinstance(e["ts"], str) else "")
                for e in demo.events["telemetry"]}
    assert ts_kinds == {"strZ", "str0", "int", "float"}  # Z, +00:00, epoch ms, epoch s
    directions = Counter(e["direction"].upper() for e in demo.events["alpha"])
    assert directions["LONG"] > 1000 and directions["SHORT"] > 1000 and directions["FLAT"] > 20


def test_cost_is_tokens_times_model_price(demo: DemoEvents) -> None:
    for e in demo.events["telemetry"]:
        p_in, p_out = PRICES[e["model"]]
        assert e["cost_usd"] == pytest.approx((e["tokens_in"] * p_in + e["tokens_out"] * p_out) / 1e6,
                                              abs=5.01e-7)


def test_latency_is_hundreds_of_ms_and_some_runs_fail(
    demo: DemoEvents, sums: dict[str, dict[str, Any]]
) -> None:
    per_agent: dict[str, list[float]] = {}
    for e in demo.events["telemetry"]:
        per_agent.setdefault(e["agent"], []).append(e["latency_ms"])
    for agent, lat in per_agent.items():
        assert 200 <= st.median(lat) <= 900, agent
    errs = [e for e in demo.events["telemetry"] if e["errors"] > 0]
    assert 0.005 * len(sums) < len(errs) < 0.06 * len(sums)


def test_signals_inside_bars_and_none_in_the_last_two_days(
    demo: DemoEvents, mkts: dict[str, ref.Series]
) -> None:
    first = max(s.ms[0] for s in mkts.values())
    last = min(s.ms[-1] for s in mkts.values())
    times = [ref.ts_ms(e["ts"]) for e in demo.events["alpha"]]
    assert min(times) >= first + 3 * 86_400_000 - 1
    assert max(times) <= last - 2 * 86_400_000 + 60_000


def test_some_agents_make_money_and_some_lose(
    pnl: dict[str, float], sums: dict[str, dict[str, Any]]
) -> None:
    by_agent: dict[str, list[float]] = {}
    for r, v in pnl.items():
        by_agent.setdefault(sums[r]["agent"], []).append(v)
    means = {a: st.mean(v) for a, v in by_agent.items()}
    assert sum(m > 5 for m in means.values()) >= 2, means
    assert sum(m < -5 for m in means.values()) >= 2, means
    # Most legs close (quiet last two days), so nearly every signalled run has a paper PnL.
    assert len(pnl) > 0.97 * sum(len(v) for v in by_agent.values())


def test_planted_loss_cluster(
    demo: DemoEvents, pnl: dict[str, float], sums: dict[str, dict[str, Any]]
) -> None:
    c = demo.truth.cluster
    runs = _agent_runs(sums, c.agent)
    found = {r for r in runs if sums[r]["latency_ms"] > c.latency_ms_gt and sums[r]["tokens_in"] > c.tokens_in_gt}
    assert found == set(c.run_ids)
    assert 0.06 <= len(found) / len(runs) <= 0.12  # big enough to clear min support 30 and FDR
    inside = [pnl[r] for r in found if r in pnl]
    outside = [pnl[r] for r in runs if r not in found and r in pnl]
    assert len(inside) >= 20
    assert st.mean(inside) < -40  # clearly negative
    assert st.mean(outside) > 10
    # More than three standard errors apart.
    se = math.sqrt(st.variance(inside) / len(inside) + st.variance(outside) / len(outside))
    assert st.mean(outside) - st.mean(inside) > 3 * se


def test_planted_cost_then_pnl_break(
    demo: DemoEvents, pnl: dict[str, float], sums: dict[str, dict[str, Any]]
) -> None:
    b = demo.truth.quality_break
    runs = _agent_runs(sums, b.agent)
    k, j = b.cost_break_index, b.pnl_break_index
    assert runs[k] == b.cost_break_run_id and runs[j] == b.pnl_break_run_id
    assert 80 <= j - k <= 120
    assert all(sums[r]["models"] == {b.model_before} for r in runs[:k])
    assert all(sums[r]["models"] == {b.model_after} for r in runs[k:])
    cost_ratio = st.mean(sums[r]["cost_usd"] for r in runs[k:]) / st.mean(sums[r]["cost_usd"] for r in runs[:k])
    assert 1.8 <= cost_ratio <= 2.2
    before = [pnl[r] for r in runs[:j] if r in pnl]
    after = [pnl[r] for r in runs[j:] if r in pnl]
    assert st.mean(before) > 10 and st.mean(after) < -20
    # The quality break is not the cost break: between the two, PnL is still well above after.
    between = [pnl[r] for r in runs[k:j] if r in pnl]
    se = math.sqrt(st.variance(between) / len(between) + st.variance(after) / len(after))
    assert st.mean(between) - st.mean(after) > 2 * se


def test_external_pnl_is_paper_plus_slippage(
    demo: DemoEvents, pnl: dict[str, float], sums: dict[str, dict[str, Any]]
) -> None:
    t = demo.truth
    ev = demo.events["pnl"]
    assert {e["agent"] for e in ev} == {t.external_pnl_agent}
    final: dict[str, dict[str, Any]] = {}
    for e in ev:
        if e["run_id"] not in final or e.get("revision", 0) > final[e["run_id"]].get("revision", 0):
            final[e["run_id"]] = e
    assert len(final) == t.external_pnl_runs
    agent_runs = [r for r, s in sums.items() if s["agent"] == t.external_pnl_agent]
    assert 0.10 <= len(final) / len(agent_runs) <= 0.20
    gaps = [e["realized_pnl_bps"] - pnl[r] for r, e in final.items()]
    assert all(-17 < g < 12 for g in gaps)  # N(−2.5, 3) slippage: beyond ±4.8σ never here
    assert -4.5 < st.mean(gaps) < -0.5
    revised = [e for e in ev if "revision" in e]
    assert revised and Counter(e["revision"] for e in revised)[0] == Counter(e["revision"] for e in revised)[1]


PROBLEMS = {"not_json", "missing_field", "wrong_type", "nan", "unknown_direction", "negative_tokens"}


def test_bad_lines_one_of_each_kind_where_the_truth_says(demo: DemoEvents) -> None:
    bad = demo.truth.bad_lines
    assert 5 <= len(bad) <= 10
    assert {b.problem for b in bad} == PROBLEMS
    for b in bad:
        line = demo.lines[b.file][b.line - 1]
        if b.problem == "not_json":
            with pytest.raises(json.JSONDecodeError):
                json.loads(line)
            continue
        obj = json.loads(line)
        if b.problem == "missing_field":
            assert b.field not in obj
        elif b.problem == "wrong_type":
            assert isinstance(obj[b.field], str)
        elif b.problem == "nan":
            assert math.isnan(obj[b.field])
        elif b.problem == "unknown_direction":
            assert obj["direction"].upper() not in ("LONG", "SHORT", "FLAT")
        elif b.problem == "negative_tokens":
            assert obj[b.field] < 0
    # Every other line is a valid event; exact repeats are the retried duplicates.
    bad_at = {(b.file, b.line) for b in bad}
    seen: Counter[str] = Counter()
    for f, lines in demo.lines.items():
        for i, line in enumerate(lines, 1):
            if (f, i) not in bad_at:
                json.loads(line)
                seen[line] += 1
    assert sum(n - 1 for n in seen.values()) == demo.truth.duplicates == 3
    assert sum(len(v) for v in demo.lines.values()) == (
        sum(demo.truth.events_by_kind.values()) + len(bad) + demo.truth.duplicates
    )


def test_bad_input_is_a_typed_error(demo_market: tuple[pa.Table, pa.Table]) -> None:
    bars, _ = demo_market
    with pytest.raises(InputError, match="at least 20"):
        simulate(bars, runs_per_agent=5)
    with pytest.raises(InputError, match="symbol column"):
        simulate(bars.drop_columns(["symbol"]))
    with pytest.raises(InputError, match="too short"):
        simulate(bars.slice(0, 100))
    # Runs start on distinct minutes: ~180 days leave ~260k of them.
    with pytest.raises(InputError, match="exceeds the minutes"):
        simulate(bars, runs_per_agent=400_000)
