"""The forensics document: loss clusters ranked as the search ranked them, change points,
and a scatter sample of the same runs the search read, with each cluster's members marked.

The sample is at most `points` runs, chosen by hash(run_id) (deterministic, independent of
insertion order, no full sort of the ledger) and shown in (ts, run_id) order. Membership comes
from the cluster's own run list, so a highlighted point is a run the search put in the
cluster, whatever the chosen axes.
"""

from __future__ import annotations

from typing import Any

import duckdb

from alphatrace.errors import AlphatraceError, InputError
from alphatrace.forensics.data import Filters
from alphatrace.server.dashboard.params import SCATTER_FEATURES
from alphatrace.server.dashboard.source import Pending, Source, jsonable

PNL = "realized_pnl_bps"
EXAMPLES = 5


def sample(con: duckdb.DuckDBPyConnection, agent: str | None, strategy: str | None,
           points: int) -> tuple[int, dict[str, list[Any]]]:
    """(runs in the population, sampled columns)."""
    where, params = Filters(agent, strategy).where([f"{PNL} IS NOT NULL"])
    total = int(con.execute(f"SELECT count(*) FROM ledger WHERE {where}", params).fetchall()[0][0])
    feats = ", ".join(f'CAST({f} AS DOUBLE) AS "{f}"' for f in SCATTER_FEATURES)
    sql = f"""
SELECT run_id, epoch_ms(ts) AS t, {PNL} AS pnl, {feats} FROM (
  SELECT * FROM ledger WHERE {where} ORDER BY hash(run_id), run_id LIMIT {int(points)})
ORDER BY ts NULLS LAST, run_id"""
    cols = con.sql(sql, params=params).to_arrow_table().to_pydict()
    return total, {k: list(v) for k, v in cols.items()}


def _axes(predicates: list[dict[str, Any]], x: str | None, y: str | None) -> tuple[str, str]:
    """Axes: as asked, else the cluster's numeric features, else latency against cost."""
    numeric = [p["feature"] for p in predicates if p["feature"] in SCATTER_FEATURES]
    picks = [f for f in (x, y) if f]
    for f in [*numeric, "latency_ms", "cost_usd", "tokens_in"]:
        if len(picks) >= 2:
            break
        if f not in picks:
            picks.append(f)
    return picks[0], picks[1]


def base(con: duckdb.DuckDBPyConnection, status: str, error: str | None,
         doc: dict[str, Any] | None, agent: str | None, strategy: str | None,
         points: int) -> dict[str, Any]:
    """The document before the reader's choices (axes, cluster); kept per version and status."""
    total, cols = sample(con, agent, strategy, points)
    position = {r: i for i, r in enumerate(cols["run_id"])}
    pnl = cols["pnl"]
    clusters = []
    for rank, c in enumerate((doc or {}).get("clusters", []), start=1):
        members = sorted(position[r] for r in c["run_ids"] if r in position)
        worst = sorted(members, key=lambda i: (pnl[i], cols["run_id"][i]))[:EXAMPLES]
        clusters.append({
            "rank": rank, **{k: v for k, v in c.items() if k != "run_ids"},
            "members": members, "examples": [cols["run_id"][i] for i in worst],
        })
    return jsonable({
        "status": status, "error": error,
        "filters": {"agent": agent, "strategy": strategy},
        "runs": None if doc is None else doc.get("runs"),
        "target": None if doc is None else doc.get("target"),
        "search": None if doc is None else doc.get("search"),
        "findings": [] if doc is None else doc.get("findings", []),
        "clusters": clusters,
        "changepoints": [] if doc is None else doc.get("changepoints", []),
        "scatter": {"features": list(SCATTER_FEATURES), "points": len(pnl), "of_runs": total,
                    "run_id": cols["run_id"], "t": cols["t"], "pnl": pnl,
                    "values": {f: cols[f] for f in SCATTER_FEATURES}},
    })


def forensics(src: Source, con: duckdb.DuckDBPyConnection, agent: str | None,
              strategy: str | None, x: str | None, y: str | None, cluster: int | None,
              points: int) -> dict[str, Any]:
    version = src.version(con)
    status, error, doc = "ready", None, None
    try:
        doc = src.forensics(version, agent, strategy)
    except Pending:
        status = "computing"
    except AlphatraceError as e:
        status, error = "failed", str(e)
    out = src.cached(("forensics-doc", version, agent, strategy, points, status),
                     lambda: base(con, status, error, doc, agent, strategy, points))
    clusters = out["clusters"]
    selected = (cluster or 1) if clusters else None
    if selected is not None and not 1 <= selected <= len(clusters):
        raise InputError(f"cluster {selected} does not exist (there are {len(clusters)})")
    preds = clusters[selected - 1]["predicates"] if selected is not None else []
    ax, ay = _axes(preds, x, y)
    return {**out, "selected": selected, "scatter": {**out["scatter"], "x": ax, "y": ay}}
