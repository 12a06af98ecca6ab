"""Change points: planted breaks found near where they were planted, confirmed, and ordered."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from alphatrace.forensics import changepoints as cp
from alphatrace.forensics import synthetic as syn
from alphatrace.forensics.api import Forensics
from alphatrace.forensics.config import ChangepointsConfig
from alphatrace.store import Store
from tests.rows import full_row, insert

CFG = ChangepointsConfig()


@pytest.mark.parametrize("seed", range(4))
def test_planted_cost_and_pnl_breaks_are_located(seed: int) -> None:
    d = syn.breaks(700, seed, cost_at=360, pnl_at=468)
    cost = cp.detect(np.asarray(d["cost_usd"]), CFG)
    pnl = cp.detect(np.asarray(d["y"]), CFG)
    assert len(cost) == 1 and abs(cost[0] - 360) <= 2
    assert len(pnl) == 1 and abs(pnl[0] - 468) <= 15


@pytest.mark.parametrize("dist", ["normal", "lognormal", "student_t3", "rare_errors"])
def test_no_confirmed_change_in_stationary_series(dist: str) -> None:
    hits = 0
    for seed in range(40):
        r = np.random.default_rng(seed)
        x = {"normal": r.normal(0, 1, 600), "lognormal": np.exp(r.normal(0, 0.5, 600)),
             "student_t3": r.standard_t(3, 600) * 40,
             "rare_errors": (r.random(600) < 0.05).astype(float)}[dist]
        changes = cp.agent_changes("A", np.arange(1, 601), [f"r{i}" for i in range(600)],
                                   [None] * 600, {"cost_per_run": x}, CFG,
                                   lambda *a: 0.0)
        hits += bool(changes)
    assert hits <= 2


def test_constant_series_has_no_change() -> None:
    assert cp.detect(np.full(300, 0.01), CFG) == []


def test_robust_scale_ignores_a_level_shift() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([np.zeros(300), np.full(300, 50.0)]) + rng.normal(0, 1, 600)
    z = cp.robust_standardise(x)
    assert z is not None
    scale = (x - np.median(x))[0] / z[0]
    # the noise sd (1), not the sd of the shifted series (~25)
    assert 0.85 < scale < 1.15
    assert np.std(x) > 20


def _store_with_break(store: Store, n: int = 600, cost_at: int = 300, pnl_at: int = 420) -> dict[str, object]:
    d = syn.breaks(n, 3, cost_at=cost_at, pnl_at=pnl_at, agent="BreakAgent")
    rows = [full_row(str(d["run_id"][i]), d["ts"][i], agent="BreakAgent",  # type: ignore[index]
                       cost_usd=float(d["cost_usd"][i]), realized_pnl_bps=float(d["y"][i]),  # type: ignore[index]
                       latency_ms=float(d["latency_ms"][i]), tokens_in=int(d["tokens_in"][i]),  # type: ignore[index]
                       tokens_out=int(d["tokens_out"][i]))  # type: ignore[index]
            for i in range(n)]
    insert(store.con, rows)
    return d


def test_forensics_orders_cost_before_pnl(store: Store) -> None:
    d = _store_with_break(store)
    out = Forensics(store).forensics()
    by_metric = {c["metric"]: c for c in out["changepoints"] if c["agent"] == "BreakAgent"}
    cost, pnl = by_metric["cost_per_run"], by_metric["mean_pnl_bps"]
    assert abs(cost["run_index"] - 301) <= 2  # 1-based: run 301 is the first at 2.1×
    assert pnl["direction"] == "fell" and abs(pnl["run_index"] - 421) <= 15
    # before/after are the metric over the segments, computed here directly
    c = np.asarray(d["cost_usd"])
    k = cost["run_index"] - 1
    assert cost["before"] == pytest.approx(c[:k].mean())
    assert cost["after"] == pytest.approx(c[k:].mean())
    assert cost["ratio"] == pytest.approx(c[k:].mean() / c[:k].mean())
    assert 1.9 < cost["ratio"] < 2.3 and cost["p"] < 1e-3
    assert cost["run_id"] == d["run_id"][k]  # type: ignore[index]
    gap = pnl["run_index"] - cost["run_index"]
    sentence = next(f for f in out["findings"] if f.startswith("BreakAgent:"))
    assert sentence.startswith(f"BreakAgent: cost per run rose {cost['ratio']:.1f}× at run {cost['run_index']} (")
    assert f"{gap} runs before PnL fell from " in sentence
    assert sentence.endswith(f"bps at run {pnl['run_index']} ({pnl['ts'].strftime('%Y-%m-%d')}).")


def test_finding_sentence_format() -> None:
    t1, t2 = dt.datetime(2024, 3, 2), dt.datetime(2024, 3, 7)
    changes = [cp.Change("Ag", "cost_per_run", 361, "x", t1, 0.01, 0.021, 1e-9),
               cp.Change("Ag", "mean_pnl_bps", 469, "y", t2, 12.2, -31.4, 1e-6)]
    assert cp.findings(changes) == [
        "Ag: cost per run rose 2.1× at run 361 (2024-03-02), 108 runs before PnL fell from +12 "
        "to −31 bps at run 469 (2024-03-07)."]
    only_pnl = [changes[1], cp.Change("Ag", "mean_pnl_bps", 600, "z", t2, -31.4, -35.0, 1e-4)]
    assert cp.findings(only_pnl) == [  # the largest fall
        "Ag: PnL fell from +12 to −31 bps at run 469 (2024-03-07) with no change in cost, tokens, "
        "latency or errors before it."]
    # a market-driven PnL fall before the cost rise does not hide the cost → PnL ordering
    early = cp.Change("Ag", "mean_pnl_bps", 200, "w", t1, 140.0, 18.0, 1e-4)
    assert cp.findings([early, *changes])[0].startswith("Ag: cost per run rose 2.1× at run 361")
    assert cp.findings([changes[0]]) == ["Ag: cost per run rose 2.1× at run 361 (2024-03-02); "
                                         "PnL did not fall after it."]
