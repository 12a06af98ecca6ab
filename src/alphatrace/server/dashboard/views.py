"""The pages' HTML, rendered on the server from the same documents the JSON endpoints return.

Tables are complete without JavaScript; charts are empty `div[data-chart]` placeholders that
`dash.js` fills from `data-src` (a JSON endpoint on the dashboard, an embedded document in the
report). Every value goes through `html.el`, which escapes it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from alphatrace.metrics import SUMMARY
from alphatrace.server.dashboard import fmt
from alphatrace.server.dashboard.html import Html, el, join
from alphatrace.server.dashboard.links import Links, data_url
from alphatrace.server.dashboard.params import DEFAULT_POINTS

Cell = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Col:
    key: str
    label: str
    cell: Cell
    raw: Callable[[dict[str, Any]], Any] | None = None
    numeric: bool = False
    sort: str | None = None  # the overview's sort key for this column


def link(href: str | None, text: Any, **attrs: Any) -> Html:
    """A link, or the bare text when the target does not exist (e.g. outside the report)."""
    return el("a", text, href=href, **attrs) if href else el("span", text)


def state_badge(state: str | None) -> Html:
    return el("span", state or "candidate", class_=f"badge state-{state or 'candidate'}")


def action_badge(action: str | None) -> Html:
    return el("span", action or "—", class_=f"badge action-{action or 'none'}")


def _raw_attr(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int | float):
        return repr(float(v))
    return str(v)


def table(cols: Sequence[Col], rows: Sequence[dict[str, Any]], *, cls: str = "",
          sort_href: Callable[[Col], str | None] | None = None, sortable: bool = False,
          row_attrs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
          empty: str = "nothing to show") -> Html:
    head = []
    for c in cols:
        href = sort_href(c) if sort_href is not None and c.sort else None
        label: Html = link(href, c.label) if href else el("span", c.label)
        head.append(el("th", label, class_="num" if c.numeric else None, scope="col",
                       data_sort=c.key if sortable else None,
                       data_type="num" if c.numeric else "text"))
    body = []
    for r in rows:
        tds = []
        for c in cols:
            raw = c.raw(r) if c.raw is not None else None
            tds.append(el("td", c.cell(r), class_="num" if c.numeric else None,
                          data_v=_raw_attr(raw)))
        body.append(el("tr", tds, **(row_attrs(r) if row_attrs else {})))
    if not rows:
        body.append(el("tr", el("td", empty, colspan=str(len(cols)), class_="empty")))
    return el("table", el("thead", el("tr", head)), el("tbody", body),
              class_=" ".join(x for x in ("data", cls, "sortable" if sortable else "") if x))


def chart(kind: str, src: str, title: str, note: str | None = None, **attrs: Any) -> Html:
    return el("figure",
              el("figcaption", title, el("small", note) if note else None),
              el("div", el("noscript", "This chart needs JavaScript; the tables have the numbers."),
                 class_="chart", data_chart=kind, data_src=src, **attrs),
              class_="chart-box")


def kv_table(pairs: Sequence[tuple[str, Any]], cls: str = "kv") -> Html:
    return el("table", el("tbody", [el("tr", el("th", k, scope="row"), el("td", v))
                                     for k, v in pairs]), class_=cls)


def _json_text(v: Any) -> str:
    return json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))


# --- overview ---------------------------------------------------------------------------------

def _last_decision(r: dict[str, Any]) -> Html:
    d = r.get("last_decision")
    if not d:
        return el("span", "—")
    return join(action_badge(d["action"]), " ", el("small", d.get("rule") or ""), " ",
                el("small", fmt.ts(d.get("as_of")), class_="muted"))


def overview_columns(links: Links, scope: str) -> list[Col]:
    name_cell: Cell = ((lambda r: link(links.agent(r["name"]), r["name"], class_="agent-link"))
                       if scope == "agent" else (lambda r: el("span", r["name"])))
    who = ("strategies", "strategy") if scope == "agent" else ("agents", "agents")
    return [
        Col("name", scope, name_cell, lambda r: r["name"], sort="name"),
        Col(who[0], who[1], lambda r: ", ".join(r.get(who[0]) or []) or "—"),
        Col("state", "state", lambda r: state_badge(r.get("state")), lambda r: r.get("state"),
            sort="state"),
        Col("multiplier", "confidence", lambda r: el(
            "span", fmt.multiplier(r.get("multiplier")),
            class_="warn" if r.get("warning") else None), lambda r: r.get("multiplier"),
            numeric=True, sort="multiplier"),
        Col("signal_size_usd", "size of $10k", lambda r: el(
            "span", fmt.amount_usd(r.get("signal_size_usd")),
            title=None if r.get("sizing_multiplier") is None else
            f"alphatrace.size(agent, 10000, 1): multiplier as used "
            f"{fmt.multiplier(r.get('sizing_multiplier'))} (0 when the agent or a strategy "
            f"class it trades is killed)"),
            lambda r: r.get("signal_size_usd"), numeric=True, sort="signal_size_usd"),
        Col("runs", "runs", lambda r: fmt.number(r.get("runs")), lambda r: r.get("runs"),
            numeric=True, sort="runs"),
        Col("hit_rate", "hit rate", lambda r: fmt.pct(r.get("hit_rate")),
            lambda r: r.get("hit_rate"), numeric=True, sort="hit_rate"),
        Col("mean_net_bps", "net bps", lambda r: fmt.bps(r.get("mean_net_bps")),
            lambda r: r.get("mean_net_bps"), numeric=True, sort="mean_net_bps"),
        Col("total_pnl_usd", "pnl usd", lambda r: fmt.usd(r.get("total_pnl_usd")),
            lambda r: r.get("total_pnl_usd"), numeric=True, sort="total_pnl_usd"),
        Col("total_cost_usd", "inference", lambda r: fmt.cost(r.get("total_cost_usd")),
            lambda r: r.get("total_cost_usd"), numeric=True, sort="total_cost_usd"),
        Col("net_usd", "net usd", lambda r: el("span", fmt.usd(r.get("net_usd")),
                                               class_=_sign_class(r.get("net_usd"))),
            lambda r: r.get("net_usd"), numeric=True, sort="net_usd"),
        Col("last_decision", "last decision", _last_decision,
            lambda r: (r.get("last_decision") or {}).get("seq"), sort="last_decision"),
    ]


def _sign_class(v: Any) -> str | None:
    if not isinstance(v, int | float):
        return None
    return "pos" if v > 0 else "neg" if v < 0 else None


def _filter_form(doc: dict[str, Any], links: Links, query: dict[str, object]) -> Html:
    f = doc["filters"]
    avail = doc["strategies_available"]
    opts = [el("option", "all strategies", value="", selected=f["strategy"] is None)]
    opts += [el("option", s, value=s, selected=s == f["strategy"]) for s in avail]
    rng = doc["range"]
    if links.report:
        return el("div",
                  el("label", "strategy ", el("select", opts, id="strategy-filter",
                                              data_filter="strategy")),
                  el("span", f" runs from {fmt.ts(f['since'] or rng['first'])} to "
                             f"{fmt.ts(f['until'] or rng['last'])}", class_="muted"),
                  class_="filters")
    sort = doc["sort"]
    return el("form",
              el("label", "strategy ", el("select", opts, name="strategy", id="strategy-filter")),
              el("label", "since ", el("input", type="text", name="since", id="since-filter",
                                       value=query.get("since"),
                                       placeholder=fmt.ts(rng["first"])[:10])),
              el("label", "until ", el("input", type="text", name="until", id="until-filter",
                                       value=query.get("until"),
                                       placeholder=fmt.ts(rng["last"])[:10])),
              el("input", type="hidden", name="sort", value=sort["key"]),
              el("input", type="hidden", name="order", value=sort["order"]),
              el("button", "apply", type="submit", id="apply-filter"),
              el("a", "clear", href=links.overview()),
              method="get", action=links.overview(), class_="filters")


def overview_page(doc: dict[str, Any], links: Links, query: dict[str, object]) -> Html:
    sort = doc["sort"]

    def sort_href(c: Col) -> str | None:
        order = "asc" if sort["key"] == c.sort and sort["order"] == "desc" else "desc"
        if sort["key"] != c.sort and c.sort in ("name", "state", "last_decision"):
            order = "asc"
        return links.overview({**query, "sort": c.sort, "order": order})

    sh = None if links.report else sort_href

    def strat_attrs(r: dict[str, Any]) -> dict[str, Any]:
        names = r.get("strategies") if r["scope"] == "agent" else [r["name"]]
        return {"data_strategies": "\n".join(names or [])}

    return join(
        el("h1", "Agents and strategies"),
        _filter_form(doc, links, query),
        chart("overview-net", data_url("overview", query), "Net USD by agent",
              "trading PnL minus inference cost, over the filtered runs"),
        el("h2", "Agents"),
        table(overview_columns(links, "agent"), doc["agents"], cls="agents", sort_href=sh,
              sortable=links.report, row_attrs=strat_attrs, empty="no agent has runs here"),
        el("h2", "Strategy classes"),
        table(overview_columns(links, "strategy"), doc["strategies"], cls="strategies",
              sort_href=sh, sortable=links.report, row_attrs=strat_attrs,
              empty="no strategy has runs here"),
        el("p", "Confidence and state are as of now (confidence as of 'until' when set); the "
                "other columns cover the filtered runs. net bps: mean per-run bps after "
                "inference cost.", class_="muted"),
    )


# --- agent --------------------------------------------------------------------------------------

RUN_COLS_SHORT = ("ts", "symbols", "direction", "status", "realized_pnl_bps", "net_usd")


def run_columns(links: Links) -> list[Col]:
    return [
        Col("run_id", "run", lambda r: link(links.run(r["run_id"]), r["run_id"], class_="run-link"),
            lambda r: r["run_id"]),
        Col("ts", "time", lambda r: fmt.ts(r.get("ts")), lambda r: r.get("ts")),
        Col("symbols", "symbols", lambda r: r.get("symbols") or "—"),
        Col("direction", "dir", lambda r: r.get("direction") or "—"),
        Col("status", "status", lambda r: r.get("status") or "—"),
        Col("realized_pnl_bps", "pnl bps", lambda r: fmt.bps(r.get("realized_pnl_bps")),
            lambda r: r.get("realized_pnl_bps"), numeric=True),
        Col("net_usd", "net usd", lambda r: el("span", fmt.usd(r.get("net_usd")),
                                               class_=_sign_class(r.get("net_usd"))),
            lambda r: r.get("net_usd"), numeric=True),
        Col("cost_usd", "inference", lambda r: fmt.cost(r.get("cost_usd")),
            lambda r: r.get("cost_usd"), numeric=True),
        Col("latency_ms", "latency ms", lambda r: fmt.number(r.get("latency_ms")),
            lambda r: r.get("latency_ms"), numeric=True),
        Col("errors", "errors", lambda r: fmt.number(r.get("errors")), lambda r: r.get("errors"),
            numeric=True),
    ]


def decision_columns(links: Links, with_subject: bool) -> list[Col]:
    cols = [
        Col("seq", "seq", lambda r: str(r["seq"]), lambda r: r["seq"], numeric=True),
        Col("as_of", "as of", lambda r: fmt.ts(r.get("as_of")), lambda r: r.get("as_of")),
    ]
    if with_subject:
        cols += [
            Col("subject", "subject", lambda r: link(
                links.agent(r["subject"]) if r["scope"] == "agent" else None, r["subject"]),
                lambda r: r["subject"]),
            Col("scope", "scope", lambda r: r["scope"]),
        ]
    cols += [
        Col("action", "action", lambda r: join(action_badge(r["action"]),
                                               el("small", " blocked") if r.get("blocked") else None),
            lambda r: r["action"]),
        Col("rule", "rule", lambda r: r.get("rule") or "—"),
        Col("state", "state after", lambda r: state_badge(r.get("state"))),
        Col("metrics", "metrics", lambda r: _metrics_cell(r.get("metrics"))),
        Col("runs", "runs", lambda r: fmt.number(r.get("runs")), lambda r: r.get("runs"),
            numeric=True),
        Col("why", "cascade / reason", lambda r: r.get("cascade_from") or r.get("reason") or "—"),
        Col("hash", "hash", lambda r: el("code", str(r.get("hash") or "")[:12],
                                         title=str(r.get("hash") or ""))),
    ]
    return cols


def _metrics_cell(m: Any) -> Html:
    if not isinstance(m, dict):
        return el("span", fmt.plain(m))
    return join(*[el("span", el("b", k), " ", fmt.metric(k, v), class_="field")
                  for k, v in sorted(m.items())])


def _cp_columns(links: Links, with_agent: bool) -> list[Col]:
    cols = [Col("agent", "agent", lambda r: link(links.agent(r["agent"]), r["agent"]))] \
        if with_agent else []
    return [
        *cols,
        Col("metric", "metric", lambda r: r["metric"]),
        Col("run_index", "at run #", lambda r: fmt.number(r["run_index"]), lambda r: r["run_index"],
            numeric=True),
        Col("run_id", "run", lambda r: link(links.run(r["run_id"]), r["run_id"])),
        Col("ts", "time", lambda r: fmt.ts(r.get("ts"))),
        Col("change", "before → after", lambda r: f"{fmt.metric(r['metric'], r.get('before'))} → "
                                                   f"{fmt.metric(r['metric'], r.get('after'))}"),
        Col("direction", "", lambda r: r.get("direction") or ""),
        Col("p", "p", lambda r: f"{r['p']:.1e}" if r.get("p") is not None else "—"),
    ]


def agent_page(doc: dict[str, Any], links: Links) -> Html:
    s = doc["summary"]
    name = doc["agent"]
    src = data_url("agent", {"name": name, "points": None if doc["points"] == DEFAULT_POINTS
                              else doc["points"]})
    cards = [
        ("state", state_badge(s["state"])),
        ("confidence", el("span", fmt.multiplier(s["multiplier"]),
                          class_="warn" if s["warning"] else None)),
        ("runs", fmt.number(s["runs"])),
        ("hit rate", fmt.pct(s["hit_rate"])),
        ("net bps / run", fmt.bps(s["mean_net_bps"])),
        ("pnl", fmt.usd(s["total_pnl_usd"])),
        ("inference", fmt.cost(s["total_cost_usd"])),
        ("net", el("span", fmt.usd(s["net_usd"]), class_=_sign_class(s["net_usd"]))),
    ]
    cp = doc["changepoints_status"]
    cp_note = None if cp == "ready" else f"change points: {cp}"
    metrics_rows = [(m, fmt.metric(m, s.get(m))) for m in SUMMARY]
    return join(
        el("h1", el("span", "agent ", class_="muted"), el("span", name, class_="agent-name")),
        el("p", f"strategy {', '.join(s['strategies']) or '—'} · models "
                f"{', '.join(s['models']) or '—'} · runs {fmt.ts(s['first_ts'])} → "
                f"{fmt.ts(s['last_ts'])}", class_="muted"),
        el("div", [el("div", el("div", k, class_="card-k"), el("div", v, class_="card-v"),
                      class_="card") for k, v in cards], class_="cards"),
        el("p", cp_note, class_="notice") if cp_note else None,
        el("p", s["confidence_note"], class_="notice") if s.get("confidence_note") else None,
        el("div",
           chart("agent-pnl-bps", src, "Cumulative PnL (bps)",
                 "realized bps; decisions and PnL change points marked"),
           chart("agent-pnl-usd", src, "Cumulative PnL (USD)",
                 "net of inference cost (wide line) and trading PnL (dashed); decisions marked"),
           chart("agent-confidence", src, "Confidence multiplier", "log scale, after each run"),
           chart("agent-latency", src, "Latency per run (ms)", "change points marked"),
           chart("agent-tokens", src, "Tokens per run", "change points marked"),
           chart("agent-cost", src, "Inference cost per run (USD)", "change points marked"),
           class_="charts"),
        el("p", f"{len(doc['series']['t'])} points for {fmt.number(s['runs'])} runs "
                "(several runs per point when there are more runs than points).", class_="muted"),
        el("h2", "Decision history"),
        table(decision_columns(links, False), doc["decisions"], cls="decisions",
              empty="no decision about this agent yet (run `alphatrace gates evaluate`)"),
        el("h2", "Change points"),
        table(_cp_columns(links, False), doc["changepoints"], cls="changepoints",
              empty="none found" if cp == "ready" else cp),
        el("h2", "Most recent runs"),
        table(run_columns(links), doc["runs"]["recent"], cls="runs recent"),
        el("h2", "Worst runs (net USD)"),
        table(run_columns(links), doc["runs"]["worst"], cls="runs worst"),
        el("h2", "All metrics"),
        kv_table(metrics_rows),
    )


# --- forensics ----------------------------------------------------------------------------------

def forensics_page(doc: dict[str, Any], links: Links, query: dict[str, object],
                   agents: Sequence[str], strategies: Sequence[str]) -> Html:
    f = doc["filters"]
    sc = doc["scatter"]
    selected = doc["selected"]
    items = []
    for c in doc["clusters"]:
        href = links.forensics({**query, "cluster": c["rank"]})
        ex = [link(links.run(r), r, class_="run-link") for r in c["examples"]]
        items.append(el(
            "li",
            el("a" if href else "span", c["sentence"], href=href, class_="cluster-pick",
               data_cluster=str(c["rank"])),
            el("div", f"{fmt.number(c['runs'])} runs · {fmt.pct(c['share'])} of runs · "
                      f"{fmt.pct(c['loss_share'])} of loss · mean {fmt.bps(c['mean_in_bps'])} vs "
                      f"{fmt.bps(c['mean_out_bps'])} bps · q {c['q']:.3g}", class_="muted"),
            el("div", "worst sampled runs: ", join(*[join(e, " ") for e in ex])) if ex else None,
            class_="cluster" + (" selected" if c["rank"] == selected else ""),
            data_rank=str(c["rank"]), aria_current="true" if c["rank"] == selected else None))
    status = doc["status"]
    notice = None
    if status == "computing":
        notice = el("p", "The loss-cluster search is still running on this data; this page "
                         "reloads when it is done.", class_="notice", id="forensics-pending")
    elif status == "failed":
        notice = el("p", f"The loss-cluster search failed: {doc['error']}", class_="notice error")

    def axis(which: str, current: str) -> Html:
        return el("label", f"{which} ", el("select", [
            el("option", feat, value=feat, selected=feat == current) for feat in sc["features"]],
            name=which, data_axis=which))

    if links.report:
        filters = el("p", "All agents and strategies.", class_="muted")
    else:
        filters = el("form",
                     el("label", "agent ", el("select", [el("option", "all", value="")] + [
                         el("option", a, value=a, selected=a == f["agent"]) for a in agents],
                         name="agent")),
                     el("label", "strategy ", el("select", [el("option", "all", value="")] + [
                         el("option", s, value=s, selected=s == f["strategy"]) for s in strategies],
                         name="strategy")),
                     el("button", "apply", type="submit"),
                     method="get", action=links.forensics(), class_="filters")
    plot_form = el("form", axis("x", sc["x"]), axis("y", sc["y"]),
                   el("input", type="hidden", name="agent", value=f["agent"] or None),
                   el("input", type="hidden", name="strategy", value=f["strategy"] or None),
                   el("input", type="hidden", name="cluster",
                      value=str(selected) if selected else None),
                   None if links.report else el("button", "plot", type="submit"),
                   method="get", action=links.forensics() or "", class_="filters axes")
    src = data_url("forensics", {"agent": f["agent"], "strategy": f["strategy"]})
    return join(
        el("h1", "Forensics: where the losses cluster"),
        filters,
        notice,
        el("ul", [el("li", s) for s in doc["findings"]], class_="findings") if doc["findings"]
        else None,
        el("h2", "Loss clusters, ranked"),
        el("ol", items, class_="clusters") if items else el(
            "p", "No loss cluster passed the significance test." if status == "ready" else "—",
            class_="muted"),
        el("h2", "Runs by two features, coloured by PnL"),
        plot_form,
        chart("forensics-scatter", src, "Scatter",
              f"{fmt.number(sc['points'])} of {fmt.number(sc['of_runs'])} runs (sampled by "
              "run_id hash); red lost, blue made money; ringed: in the selected cluster",
              data_x=sc["x"], data_y=sc["y"], data_cluster=str(selected) if selected else ""),
        el("h2", "Change points"),
        table(_cp_columns(links, True), doc["changepoints"], cls="changepoints",
              empty="none found" if status == "ready" else status),
    )


# --- run ------------------------------------------------------------------------------------------

WATERFALL_LABELS = {"gross_move": "gross move", "fees": "fees", "funding": "funding",
                    "execution_gap": "execution gap", "inference_cost": "inference cost",
                    "net": "net"}
EVENT_BASE = ("type", "ts", "event_id", "agent")


def _event_fields(e: dict[str, Any]) -> Html:
    parts = []
    for k in sorted(e):
        if k in EVENT_BASE or e[k] is None:
            continue
        v = e[k]
        text = _json_text(v) if isinstance(v, dict | list) else fmt.plain(v)
        parts.append(el("span", el("b", k), " ", text, class_="field"))
    return join(*parts)


def run_page(doc: dict[str, Any], links: Links) -> Html:
    led = doc.get("ledger") or {}
    ex = doc.get("explain")
    rid = doc["run_id"]
    head = el("p", "agent ", link(links.agent(doc.get("agent")), doc.get("agent") or "—",
                                  class_="agent-link"),
              f" · strategy {led.get('strategy') or '—'} · {fmt.ts(led.get('ts'))} · "
              f"{led.get('direction') or '—'} {led.get('symbols') or ''} · status "
              f"{led.get('status') or '—'}", class_="muted")
    parts: list[Any] = [el("h1", el("span", "run ", class_="muted"), el("span", rid, class_="run-id")),
                        head]
    if doc.get("note"):
        parts.append(el("p", doc["note"], class_="notice"))
    if ex:
        parts.append(el("p", ex.get("because") or "", class_="because"))
        if ex.get("excluded"):
            x = ex["excluded"]
            parts.append(el("p", f"Excluded from governance by rule {x.get('rule')}: "
                                 f"{x.get('reason')}", class_="notice"))
        wf = ex.get("waterfall") or []
        parts.append(chart("run-waterfall", data_url("run", {"id": rid}), "Where the dollars went",
                           "each step in USD; the last bar is the net"))
        parts.append(table([
            Col("step", "step", lambda r: WATERFALL_LABELS.get(r["step"], r["step"])),
            Col("bps", "bps", lambda r: fmt.bps(r.get("bps")), lambda r: r.get("bps"), numeric=True),
            Col("usd", "usd", lambda r: fmt.usd(r.get("usd")), lambda r: r.get("usd"), numeric=True),
            Col("cumulative_usd", "running total", lambda r: fmt.usd(r.get("cumulative_usd")),
                lambda r: r.get("cumulative_usd"), numeric=True),
        ], wf, cls="waterfall"))
        causes = ex.get("causes") or []
        parts.append(el("h2", "Causes"))
        if causes:
            parts.append(el("ul", [el("li", el("b", c["cause"]), kv_table(
                [(k, _json_text(v) if isinstance(v, dict | list) else fmt.plain(v))
                 for k, v in sorted((c.get("evidence") or {}).items())], "kv evidence"))
                for c in causes], class_="causes"))
        else:
            parts.append(el("p", "No failure cause is supported by the evidence.", class_="muted"))
    parts.append(el("h2", f"Raw events ({len(doc['events'])})"))
    parts.append(table([
        Col("type", "type", lambda e: e["type"]),
        Col("ts", "time", lambda e: fmt.ts(e.get("ts"))),
        Col("event_id", "event id", lambda e: el("code", e.get("event_id") or "")),
        Col("agent", "agent", lambda e: e.get("agent") or "—"),
        Col("fields", "fields", _event_fields),
    ], doc["events"], cls="events", empty="no stored events"))
    if led:
        parts.append(el("h2", "Ledger row"))
        parts.append(kv_table([(k, fmt.plain(v)) for k, v in led.items()]))
    return join(*parts)


# --- decisions --------------------------------------------------------------------------------------

def decisions_page(doc: dict[str, Any], links: Links) -> Html:
    v = doc["verify"]
    if doc["status"] == "computing":
        banner = el("p", "Verifying the chain (re-hashing and re-computing every decision)…",
                    class_="notice", id="verify-status")
    elif v["ok"]:
        banner = el("p", f"Chain verified: {v['records']} records intact, every decision still "
                         f"follows from its inputs. Head {str(v['head'] or '')[:16]}.",
                    class_="ok-banner", id="verify-status")
    else:
        banner = el("p", f"Verification found {v['problems']} problem(s) in {v['records']} records.",
                    class_="notice error", id="verify-status")
    cols = decision_columns(links, True)
    cols.insert(1, Col("status", "verified", lambda r: el(
        "span", r["status"], class_="badge " + ("ok" if r["status"] == "ok" else "bad"),
        title="; ".join(r["problems"]) or None), lambda r: r["status"]))
    other = doc["other_problems"]
    total, off, lim = doc["total"], doc["offset"], doc["limit"]
    nav = []
    if not links.report:
        if off > 0:
            nav.append(el("a", "newer", href=links.decisions({"offset": max(0, off - lim),
                                                              "limit": lim})))
        if off + lim < total:
            nav.append(el("a", "older", href=links.decisions({"offset": off + lim, "limit": lim})))
    return join(
        el("h1", "Decisions: the audit log"),
        banner,
        el("ul", [el("li", f"seq {p.get('seq') if p.get('seq') is not None else '—'}: "
                           f"{p['kind']}: {p['detail']}") for p in other], class_="problems")
        if other else None,
        el("p", f"{total} records, newest first"
                + (f"; showing {off + 1}–{min(off + lim, total)}" if total > lim else "") + ".",
           class_="muted"),
        _live_log(table(cols, doc["records"], cls="decisions audit",
                        empty="no decisions recorded yet"), cols, doc, links),
        el("p", *[join(n, " ") for n in nav], class_="pager") if nav else None,
    )


LIVE_STREAM = "/v1/decisions/stream"


def _live_log(tbl: Html, cols: Sequence[Col], doc: dict[str, Any], links: Links) -> Html:
    """The decision table; on the served first page, dash.js adds each record appended from
    now on at its top, from the decision stream (resuming after the newest record shown)."""
    if links.report or doc["offset"] != 0:
        return tbl
    newest = max((int(r["seq"]) for r in doc["records"]), default=0)
    return el("div", el("p", "live: new decisions appear at the top as they are recorded",
                         class_="muted", id="decision-live"),
              tbl, id="decision-log", data_live=LIVE_STREAM, data_since=str(newest),
              data_columns=",".join(c.key for c in cols))


def error_page(message: str) -> Html:
    return join(el("h1", "Not available"), el("p", message, class_="notice error"))


def login_page(next_url: str, error: str | None) -> Html:
    return join(
        el("h1", "Sign in"),
        el("p", error, class_="notice error", id="login-error") if error else None,
        el("form",
           el("label", "API key (scope read or admin)",
              el("input", type="password", name="key", id="key", autocomplete="current-password",
                 required=True, autofocus=True)),
           el("input", type="hidden", name="next", value=next_url),
           el("button", "sign in", type="submit", id="login-submit"),
           method="post", action="/login", class_="login"),
        el("p", "Create a key with `alphatrace keys create --name NAME --scope read`. Scripts can "
                "send it as `Authorization: Bearer <key>` instead.", class_="muted"),
    )
