"""`alphatrace report`: the dashboard's pages as one self-contained HTML file.

The same documents and the same renderers as the live pages; the JSON the charts would fetch
is embedded, keyed by the URL they would fetch it from. It holds the overview (with the
report's filter), forensics over all runs, the decision log, every agent's page, and the run
pages its tables link to (each agent's most recent and worst runs, each cluster's worst
sampled runs): a link to any other run shows as plain text. Nothing in it depends on the
clock, so the same store gives the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb

from alphatrace.server.dashboard import agent as agent_doc
from alphatrace.server.dashboard import decisions as decisions_doc
from alphatrace.server.dashboard import forensics as forensics_doc
from alphatrace.server.dashboard import layout, views
from alphatrace.server.dashboard import overview as overview_doc
from alphatrace.server.dashboard import run as run_doc
from alphatrace.server.dashboard.html import Html, json_script
from alphatrace.server.dashboard.links import ReportLinks, anchor, data_url
from alphatrace.server.dashboard.params import DEFAULT_POINTS, DEFAULT_SCATTER_POINTS, RunFilter
from alphatrace.server.dashboard.source import Source

Progress = Callable[[str], None]


def linked_runs(agent_docs: dict[str, dict[str, Any]], fdoc: dict[str, Any]) -> list[str]:
    """Runs the report gives a page: first seen first, no repeats."""
    out: dict[str, None] = {}
    for doc in agent_docs.values():
        for r in [*doc["runs"]["recent"], *doc["runs"]["worst"]]:
            out.setdefault(r["run_id"], None)
    for c in fdoc["clusters"]:
        for rid in c["examples"]:
            out.setdefault(rid, None)
    return list(out)


def build(src: Source, con: duckdb.DuckDBPyConnection, flt: RunFilter, *,
          points: int = DEFAULT_POINTS, scatter_points: int = DEFAULT_SCATTER_POINTS,
          progress: Progress | None = None) -> tuple[str, dict[str, int]]:
    """(the HTML, counts of what it holds)."""
    say = progress or (lambda _: None)
    query: dict[str, object] = dict(flt.query())
    say("overview")
    ov = overview_doc.overview(src, con, flt, ("net_usd", True))
    names = [a["name"] for a in ov["agents"]]
    agents: dict[str, dict[str, Any]] = {}
    for name in names:
        say(f"agent {name}")
        agents[name] = agent_doc.agent(src, con, name, points)
    say("forensics")
    fdoc = forensics_doc.forensics(src, con, None, None, None, None, None, scatter_points)
    say("decisions")
    ddoc = decisions_doc.decisions(src, con, max(1, _count(con, src)), 0)
    runs: dict[str, dict[str, Any]] = {}
    for rid in linked_runs(agents, fdoc):
        say(f"run {rid}")
        runs[rid] = run_doc.run(src, con, rid)
    links = ReportLinks(names, list(runs))
    data: dict[str, Any] = {data_url("overview", query): ov,
                            data_url("forensics", {}): fdoc}
    data.update({data_url("agent", {"name": n}): d for n, d in agents.items()})
    data.update({data_url("run", {"id": r}): d for r, d in runs.items()})
    sections: list[tuple[str, str, Html]] = [
        ("forensics", "Forensics", views.forensics_page(fdoc, links, {}, names, [])),
        ("decisions", "Decisions", views.decisions_page(ddoc, links)),
    ]
    sections += [(anchor("agent", n), f"Agent {n}", views.agent_page(d, links))
                 for n, d in agents.items()]
    sections += [(anchor("run", r), f"Run {r}", views.run_page(d, links)) for r, d in runs.items()]
    sections.append(("overview", "Overview", views.overview_page(ov, links, query)))
    html = layout.report(sections, links, json_script(data, "dash-data"), "alphatrace report")
    return html, {"agents": len(agents), "runs": len(runs), "clusters": len(fdoc["clusters"]),
                  "decisions": ddoc["total"]}


def _count(con: duckdb.DuckDBPyConnection, src: Source) -> int:
    if not src.has(con, "decisions"):
        return 0
    return int(con.execute("SELECT count(*) FROM decisions").fetchall()[0][0])
