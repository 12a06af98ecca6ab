"""Run, agent and strategy are decided per trace: a tag on any span (usually the root), on a
resource, or in baggage applies to the whole trace, whatever the order and grouping in which
the spans arrive; the fallbacks apply in their documented order."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from alphatrace.server.otlp import request_events
from alphatrace.server.trace_hold import TraceHold
from tests.server.test_otlp_attrs import kvs

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = 1_740_816_000_000_000_000


def span(sid: int, parent: int | None = None, start: int = 0, **attrs: Any) -> dict[str, Any]:
    s: dict[str, Any] = {
        "traceId": TID, "spanId": f"{sid:016x}", "name": f"s{sid}",
        "startTimeUnixNano": str(T0 + start), "endTimeUnixNano": str(T0 + start + 10**6),
        "attributes": kvs({k.replace("__", "."): v for k, v in attrs.items()})}
    if parent is not None:
        s["parentSpanId"] = f"{parent:016x}"
    return s


def request(spans: list[dict[str, Any]], **resource: Any) -> dict[str, Any]:
    res = {"service.name": "svc", **{k.replace("__", "."): v for k, v in resource.items()}}
    return {"resourceSpans": [{"resource": {"attributes": kvs(res)},
                               "scopeSpans": [{"spans": spans}]}]}


def decided(*requests: dict[str, Any], hold: TraceHold | None = None) -> dict[str, Any]:
    """event_id → (run_id, agent, strategy) after the requests went through a hold in order,
    as the collector admits them (with each request's own attribution of its traces)."""
    hold = hold if hold is not None else TraceHold(wait_s=1e9)
    out: dict[str, Any] = {}
    for doc in requests:
        m = request_events(doc)
        for r in hold.admit(list(zip(m.events, m.tags, m.positions, strict=True)), m.traces):
            out.setdefault(r.event["event_id"], (r.event["run_id"], r.event.get("agent"),
                                                 r.event.get("strategy")))
    for r in hold.drain():
        out.setdefault(r.event["event_id"], (r.event["run_id"], r.event.get("agent"),
                                             r.event.get("strategy")))
    return out


def by_span(result: dict[str, Any]) -> dict[int, Any]:
    return {int(k.rsplit(":", 1)[1], 16): v for k, v in result.items()}


# -- the rules, by hand -------------------------------------------------------------------
def test_the_roots_tags_apply_to_children_sent_before_it() -> None:
    child = span(2, parent=1, start=100, gen_ai__usage__input_tokens=10)
    root = span(1, alphatrace__run_id="run-7", alphatrace__agent="Funding",
                alphatrace__strategy="FUNDING")
    got = by_span(decided(request([child]), request([root])))
    assert got == {1: ("run-7", "Funding", "FUNDING"), 2: ("run-7", "Funding", "FUNDING")}


def test_a_spans_own_tag_wins_for_that_span_only() -> None:
    root = span(1, alphatrace__run_id="outer")
    own = span(2, parent=1, start=10, alphatrace__run_id="inner")
    plain = span(3, parent=1, start=20)
    got = by_span(decided(request([own, plain]), request([root])))
    assert [got[i][0] for i in (1, 2, 3)] == ["outer", "inner", "outer"]


def test_resource_tags_are_the_spans_own_and_reach_the_rest_of_the_trace() -> None:
    # service B (tagged on its resource) calls service A's child span: one trace, one run
    child = request([span(2, parent=1, start=10)])
    root = request([span(1)], alphatrace__run_id="res-run", alphatrace__agent="ResAgent")
    got = by_span(decided(child, root))
    assert got == {1: ("res-run", "ResAgent", None), 2: ("res-run", "ResAgent", None)}


def test_baggage_copied_to_spans_is_a_span_tag() -> None:
    # BaggageSpanProcessor puts each baggage entry on every span as an attribute of its name
    spans = [span(i, parent=None if i == 1 else 1, start=i, alphatrace__run_id="bag")
             for i in (1, 2, 3)]
    assert {v[0] for v in decided(request(spans[1:]), request(spans[:1])).values()} == {"bag"}


def test_fallbacks_in_order() -> None:
    root = span(1)
    agent_span = span(2, parent=1, start=10, gen_ai__agent__name="Triage",
                      session__id="sess-1")
    oi_agent = span(3, parent=2, start=20, agent__name="oi-agent",
                    gen_ai__conversation__id="conv-9")
    llm = span(4, parent=3, start=30)
    got = by_span(decided(request([llm, oi_agent, agent_span]), request([root])))
    assert set(got.values()) == {("sess-1", "Triage", None)}
    # without session.id: the conversation id; without gen_ai.agent.name: agent.name
    got = by_span(decided(request([span(4, parent=3, start=30), span(3, parent=1, start=20,
                                   agent__name="oi-agent", gen_ai__conversation__id="conv-9")]),
                          request([root])))
    assert set(got.values()) == {("conv-9", "oi-agent", None)}
    # nothing said: the trace id, and the resource's service.name
    assert set(decided(request([span(2, parent=1), root])).values()) == {(TID, "svc", None)}


def test_the_earliest_span_decides_among_children() -> None:
    early = span(9, parent=1, start=5, gen_ai__agent__name="Planner")
    late = span(2, parent=1, start=50, gen_ai__agent__name="Executor")
    for order in ([early, late], [late, early]):
        got = by_span(decided(request(order), request([span(1)])))
        assert {v[1] for v in got.values()} == {"Planner"}


def test_alphatrace_agent_beats_every_fallback() -> None:
    root = span(1, alphatrace__agent="Funding")
    child = span(2, parent=1, start=1, gen_ai__agent__name="Triage")
    assert {v[1] for v in decided(request([child]), request([root])).values()} == {"Funding"}


# -- any order, any grouping --------------------------------------------------------------
TAGS = st.fixed_dictionaries({}, optional={
    "alphatrace.run_id": st.sampled_from(["r1", "r2"]),
    "alphatrace.agent": st.sampled_from(["A1", "A2"]),
    "alphatrace.strategy": st.sampled_from(["S1", "S2"]),
    "session.id": st.sampled_from(["sess1", "sess2"]),
    "gen_ai.agent.name": st.sampled_from(["G1", "G2"]),
    "agent.name": st.sampled_from(["O1", "O2"]),
})


@st.composite
def traces(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A root and up to 8 descendants (each under an earlier span), random tags anywhere."""
    n = draw(st.integers(0, 8))
    spans = [span(1, start=0, **{k.replace(".", "__"): v for k, v in draw(TAGS).items()})]
    for i in range(2, n + 2):
        parent = draw(st.integers(1, i - 1))
        start = draw(st.integers(0, 1000))
        tags = draw(TAGS)
        spans.append(span(i, parent=parent, start=start,
                          **{k.replace(".", "__"): v for k, v in tags.items()}))
    return spans


def split(draw: st.DrawFn, items: list[Any]) -> list[list[Any]]:
    cuts = sorted(draw(st.lists(st.integers(0, len(items)), max_size=4)))
    bounds = [0, *cuts, len(items)]
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


@given(traces(), st.data())
def test_root_last_in_any_order_and_grouping_equals_all_at_once(
        spans: list[dict[str, Any]], data: st.DataObject) -> None:
    """Exporters send children as they end and the root last: however the children are
    ordered and grouped into requests, the events are those of the whole trace at once."""
    whole = decided(request(spans))
    children = data.draw(st.permutations(spans[1:]))
    parts = [request(p) for p in split(data.draw, list(children))]
    assert decided(*parts, request(spans[:1])) == whole


@given(traces(), st.data())
def test_tags_on_the_root_decide_whatever_arrives_first(
        spans: list[dict[str, Any]], data: st.DataObject) -> None:
    """With the tags on the root (the usual place), any order of arrival, root included,
    gives the events of the whole trace at once."""
    root = span(1, alphatrace__run_id="run", alphatrace__agent="Agent",
                alphatrace__strategy="S")
    spans = [root, *spans[1:]]
    order = data.draw(st.permutations(spans))
    parts = [request(p) for p in split(data.draw, list(order))]
    assert decided(*parts) == decided(request(spans))


@given(traces(), st.data())
def test_re_sent_spans_keep_their_attribution(spans: list[dict[str, Any]],
                                              data: st.DataObject) -> None:
    hold = TraceHold(wait_s=1e9)
    parts = [request(p) for p in split(data.draw, spans[1:])] + [request(spans[:1])]
    once = decided(*parts, hold=TraceHold(wait_s=1e9))
    again: dict[str, Any] = {}
    for doc in parts + parts:
        m = request_events(doc)
        for r in hold.admit(list(zip(m.events, m.tags, m.positions, strict=True))):
            assert again.setdefault(r.event["event_id"], (
                r.event["run_id"], r.event.get("agent"), r.event.get("strategy"))) == once[
                r.event["event_id"]]
    assert again == once
