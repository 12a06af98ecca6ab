"""The attribute table: GenAI semconv (current and older names) and OpenInference spans give the
same event, cached tokens are priced as cached, the agent comes from the agent attributes, and
docs/collector.md shows the table the code uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.sdk.prices import shipped_table
from alphatrace.server.otlp import request_events
from alphatrace.server.otlp_attrs import AGENT, USAGE, markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "collector.md"


def value(v: Any) -> dict[str, Any]:
    if isinstance(v, bool):
        return {"boolValue": v}
    if isinstance(v, int):
        return {"intValue": str(v)}
    if isinstance(v, float):
        return {"doubleValue": v}
    return {"stringValue": v}


def kvs(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": k, "value": value(v)} for k, v in d.items()]


def one_span(attrs: dict[str, Any], resource: dict[str, Any] | None = None,
             **span: Any) -> dict[str, Any]:
    """The event of a request holding one span with `attrs`."""
    doc = {"resourceSpans": [{
        "resource": {"attributes": kvs({"service.name": "svc", **(resource or {})})},
        "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "llm", "startTimeUnixNano": "1740816000000000000",
            "endTimeUnixNano": "1740816001000000000", "attributes": kvs(attrs), **span}]}]}]}
    mapped = request_events(doc, shipped_table())
    assert not mapped.rejected, mapped.rejected
    return mapped.events[0]


# gpt-4o, USD per 1M tokens: input 2.50, cached input 1.25, output 10.00 (sdk/prices.yaml).
# 1000 prompt tokens of which 400 cached, 200 completion tokens of which 50 reasoning:
# (600·2.50 + 400·1.25 + 200·10.00) / 1e6 = (1500 + 500 + 2000) / 1e6
COST = 0.004

OPENINFERENCE = {
    "openinference.span.kind": "LLM", "llm.model_name": "gpt-4o-2024-08-06",
    "llm.provider": "openai", "llm.token_count.prompt": 1000,
    "llm.token_count.completion": 200, "llm.token_count.total": 1200,
    "llm.token_count.prompt_details.cache_read": 400,
    "llm.token_count.completion_details.reasoning": 50,
}
SEMCONV = {
    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 200,
    "gen_ai.usage.cache_read.input_tokens": 400, "gen_ai.usage.reasoning.output_tokens": 50,
}
OLDER = {  # OpenLLMetry and older semconv spellings
    "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.prompt_tokens": 1000, "gen_ai.usage.completion_tokens": 200,
    "gen_ai.usage.cache_read_input_tokens": 400, "gen_ai.usage.reasoning_tokens": 50,
    "llm.usage.total_tokens": 1200,
}


@pytest.mark.parametrize("attrs", [OPENINFERENCE, SEMCONV, OLDER],
                         ids=["openinference", "semconv", "older-names"])
def test_each_vocabulary_gives_the_same_usage_and_cost(attrs: dict[str, Any]) -> None:
    ev = one_span(attrs)
    assert (ev["tokens_in"], ev["tokens_out"]) == (1000, 200)
    assert (ev["cached_tokens"], ev["reasoning_tokens"]) == (400, 50)
    assert ev["model"].startswith("gpt-4o") and ev["gen_ai_system"] == "openai"
    assert ev["cost_usd"] == pytest.approx(COST)
    assert ev["price_version"] == shipped_table().version


def test_without_cached_tokens_everything_is_full_price() -> None:
    attrs = {k: v for k, v in SEMCONV.items() if "cache" not in k}
    # (1000·2.50 + 200·10.00) / 1e6
    assert one_span(attrs)["cost_usd"] == pytest.approx(0.0045)


def test_the_model_that_answered_wins_and_extras_are_kept() -> None:
    ev = one_span({**OPENINFERENCE, "gen_ai.request.model": "gpt-4o-mini",
                   "gen_ai.response.model": "gpt-4.1"})
    assert ev["model"] == "gpt-4.1"
    assert ev["span_kind"] == "LLM" and ev["tokens_total"] == 1200


def test_agent_order() -> None:
    assert one_span({})["agent"] == "svc"
    assert one_span({"agent.name": "oi-agent"})["agent"] == "oi-agent"
    assert one_span({"agent.name": "oi", "gen_ai.agent.name": "Triage"})["agent"] == "Triage"
    assert one_span({}, {"gen_ai.agent.name": "FromResource"})["agent"] == "FromResource"
    # alphatrace's own tag wins, on the resource too
    assert one_span({"gen_ai.agent.name": "Triage"},
                    {"alphatrace.agent": "Funding"})["agent"] == "Funding"


def test_error_type_from_the_exception_event() -> None:
    exc = {"events": [{"name": "log"}, {"name": "exception", "attributes": kvs(
        {"exception.type": "openai.RateLimitError", "exception.message": "429"})}]}
    failed = one_span({}, status={"code": 2}, **exc)
    assert failed["errors"] == 1 and failed["error_type"] == "openai.RateLimitError"
    explicit = one_span({"error.type": "timeout"}, status={"code": 2}, **exc)
    assert explicit["error_type"] == "timeout"
    handled = one_span({}, **exc)  # an exception recorded on a span that did not fail
    assert handled["errors"] == 0 and "error_type" not in handled


MULTI = [s for s in USAGE if len(s.keys) > 1]


@given(st.sampled_from(MULTI), st.data())
def test_first_listed_attribute_wins(source: Any, data: st.DataObject) -> None:
    present = data.draw(st.lists(st.sampled_from(source.keys), min_size=1, unique=True))
    values = {k: (source.keys.index(k) + 1 if source.kind == "count"
                  else f"v{source.keys.index(k)}") for k in present}  # in the span, any order
    ev = one_span(values)
    first = next(k for k in source.keys if k in present)
    assert ev[source.field] == values[first]


def test_each_attribute_feeds_one_field() -> None:
    """The mapping reads each attribute into the one USAGE field that lists it."""
    keys = [k for s in USAGE for k in s.keys]
    assert len(keys) == len(set(keys))


def test_docs_show_the_table_of_the_code() -> None:
    assert markdown() in DOCS.read_text()
    assert AGENT.keys[0] == "alphatrace.agent"
