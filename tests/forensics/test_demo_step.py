"""The demo step finds planted stories it was not told about, and says so."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import numpy as np

from alphatrace.forensics import demo
from alphatrace.forensics import synthetic as syn
from alphatrace.store import Store


def test_demo_step_rediscovers_cluster_and_break(store: Store) -> None:
    d = syn.runs(2500, 21)
    d["run_id"] = np.array([f"c{i:05d}" for i in range(2500)], dtype=object)
    b = syn.breaks(600, 5, cost_at=300, pnl_at=400, agent="BreakAgent")
    b["ts"] = np.array([dt.datetime(2024, 6, 1) + dt.timedelta(hours=i) for i in range(600)], dtype=object)
    for t in (syn.ledger_table(d, agent="ClusterAgent"), syn.ledger_table(b, agent="BreakAgent")):
        store.con.register("_t", t)
        store.con.execute("INSERT INTO ledger BY NAME SELECT * FROM _t")
        store.con.unregister("_t")
    truth = SimpleNamespace(
        cluster=SimpleNamespace(agent="ClusterAgent",
                                run_ids=tuple(np.asarray(d["run_id"])[np.asarray(d["in_cluster"])].tolist())),
        quality_break=SimpleNamespace(agent="BreakAgent", cost_break_index=300, pnl_break_index=400))
    out = demo.step(SimpleNamespace(store=store, demo=SimpleNamespace(truth=truth)))
    lc, cb = out["checks"]["loss_cluster"], out["checks"]["cost_then_pnl"]
    assert lc["found"] and lc["rank"] == 1 and lc["jaccard"] >= 0.5
    assert cb["found"] and abs(cb["found_cost_run"] - 301) <= 2
    assert cb["finding"].startswith("BreakAgent: cost per run rose")
    lines = demo.render(out)
    assert any("planted loss cluster (ClusterAgent" in ln and "found" in ln for ln in lines)
    assert all("run_ids" not in c for c in out["clusters"])
