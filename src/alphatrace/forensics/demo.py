"""The demo's forensics step: what forensics finds in the demo store, told without the answer
and then checked against what the simulator planted.

`step(ctx)` is meant for `alphatrace.demo.pipeline.STEPS` (after reconcile); `render(result)`
gives the lines `alphatrace demo` prints. Clusters are searched per agent (agents differ in
latency, prompt size and PnL noise, so one agent's loss region is diluted in the pool);
change points and the cost-before-PnL finding come from all runs.
"""

from __future__ import annotations

from typing import Any

from alphatrace.forensics.api import Forensics


def _planted(ctx: Any) -> Any:
    demo = getattr(ctx, "demo", None)
    return getattr(demo, "truth", None)


def step(ctx: Any) -> dict[str, Any]:
    db = Forensics(ctx.store)
    agents = [r[0] for r in ctx.store.con.execute(
        "SELECT DISTINCT agent FROM ledger WHERE agent IS NOT NULL ORDER BY agent").fetchall()]
    clusters: list[dict[str, Any]] = []
    for agent in agents:
        out = db.forensics(agent=agent, changepoints=False)
        for rank, c in enumerate(out["clusters"][:3], 1):
            clusters.append({"agent": agent, "rank": rank, "sentence": c["sentence"],
                             "runs": c["runs"], "q": c["q"], "run_ids": c["run_ids"]})
    overall = db.forensics()
    cp_findings = [f for f in overall["findings"] if not f.startswith("Losses cluster")]
    result: dict[str, Any] = {
        "clusters": [{k: v for k, v in c.items() if k != "run_ids"} for c in clusters],
        "changepoints": overall["changepoints"],
        "findings": cp_findings,
    }
    truth = _planted(ctx)
    if truth is not None:
        result["checks"] = _checks(truth, clusters, overall["changepoints"], cp_findings)
    return result


def _checks(truth: Any, clusters: list[dict[str, Any]], changes: list[dict[str, Any]],
            findings: list[str]) -> dict[str, Any]:
    lc = truth.cluster
    planted = set(lc.run_ids)
    best: dict[str, Any] | None = None
    for c in clusters:
        if c["agent"] != lc.agent:
            continue
        got = set(c["run_ids"])
        jaccard = len(got & planted) / len(got | planted) if got | planted else 0.0
        if best is None or jaccard > best["jaccard"]:
            best = {"rank": c["rank"], "jaccard": round(jaccard, 3), "sentence": c["sentence"]}
    qb = truth.quality_break
    cost = [c for c in changes if c["agent"] == qb.agent and c["metric"] == "cost_per_run"
            and c["direction"] == "rose"]
    fall = [c for c in changes if c["agent"] == qb.agent and c["metric"] == "mean_pnl_bps"
            and c["direction"] == "fell"]
    cost_at = cost[0]["run_index"] if cost else None
    fall_after = [c["run_index"] for c in fall if cost_at is not None and c["run_index"] >= cost_at]
    return {
        "loss_cluster": {"agent": lc.agent, "planted_runs": len(planted),
                         "found": bool(best and best["jaccard"] >= 0.5), **(best or {})},
        "cost_then_pnl": {
            "agent": qb.agent,
            "planted_cost_run": qb.cost_break_index + 1, "found_cost_run": cost_at,
            "planted_pnl_run": qb.pnl_break_index + 1,
            "found_pnl_run": fall_after[0] if fall_after else None,
            "found": bool(cost_at is not None and fall_after),
            "finding": next((f for f in findings if f.startswith(f"{qb.agent}:")), None),
        },
    }


def render(result: dict[str, Any]) -> list[str]:
    """Rich-markup lines for `alphatrace demo`."""
    lines = ["[bold]forensics[/]:"]
    top = [c for c in result["clusters"] if c["rank"] == 1]
    lines += [f"  {c['agent']}: {c['sentence']}" for c in top] or ["  no loss cluster survives FDR control"]
    lines += [f"  {f}" for f in result["findings"]]
    checks = result.get("checks")
    if checks:
        lc, cb = checks["loss_cluster"], checks["cost_then_pnl"]
        mark = "[green]found[/]" if lc["found"] else "[yellow]not found[/]"
        lines.append(f"  planted loss cluster ({lc['agent']}, {lc['planted_runs']} runs): {mark}"
                     + (f" at rank {lc['rank']} (Jaccard {lc['jaccard']})" if lc.get("rank") else ""))
        mark = "[green]found[/]" if cb["found"] else "[yellow]not found[/]"
        lines.append(f"  planted cost-then-PnL break ({cb['agent']}): {mark}; cost at run "
                     f"{cb['found_cost_run']} (planted {cb['planted_cost_run']}), PnL fall at run "
                     f"{cb['found_pnl_run']} (planted {cb['planted_pnl_run']})")
    return lines
