"""Which span attributes become which event fields: the one table for OTLP spans.

Instrumentations name the same thing differently: the OpenTelemetry GenAI semantic conventions
(current and older names, as emitted by opentelemetry-instrumentation-openai-v2 and OpenLLMetry)
and Arize's OpenInference (`llm.token_count.*`, `llm.model_name`). For each event field the
table lists the attributes that may carry it; the first one set on the span wins, in table
order (current semconv name, older names, then OpenInference). docs/collector.md shows this
table as `markdown()` renders it (a test keeps the two equal).

Conventions (OpenAI's, which both semconv and OpenInference follow): the prompt count includes
the cached prompt tokens, and the completion count includes the reasoning tokens; so cached
tokens are priced at the cached rate and not again at the input rate, and reasoning tokens are
not added a second time (`sdk/prices.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Source:
    field: str  # the event's key (a column, or an attr for the others)
    keys: tuple[str, ...]  # attributes, first set wins
    kind: Literal["count", "text"]
    where: Literal["span", "trace"]
    note: str


# Who the span's work is for: decided per trace (server/otlp_runs.py). The first key is
# alphatrace's own tag: the span's (span attribute, then its resource's) wins for that span;
# a span without it takes the trace's value. The other keys are fallbacks, taken at trace
# level only, so one trace's untagged spans land in one run, under one agent. The trace's
# value of a key: the root span's (span, then resource), else that of the earliest-starting
# span that has it. A baggage entry reaches a span as an attribute of the same name
# (OpenTelemetry's BaggageSpanProcessor copies it), so the tags can also ride in baggage.
RUN = Source("run_id", ("alphatrace.run_id", "session.id", "gen_ai.conversation.id"), "text",
             "trace", "else the trace id (hex)")
AGENT = Source("agent", ("alphatrace.agent", "gen_ai.agent.name", "agent.name",
                         "service.name"), "text", "trace",
               "`gen_ai.agent.name`: OpenAI Agents SDK via OpenLLMetry; `agent.name`: "
               "OpenInference")
STRATEGY = Source("strategy", ("alphatrace.strategy",), "text", "trace", "else none")
TRACE: tuple[Source, ...] = (RUN, AGENT, STRATEGY)

USAGE: tuple[Source, ...] = (
    Source("model", ("gen_ai.response.model", "gen_ai.request.model", "llm.model_name"),
           "text", "span", "the model that answered, else the one asked for"),
    Source("tokens_in", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens",
                         "llm.token_count.prompt"),
           "count", "span", "prompt tokens, cached ones included"),
    Source("tokens_out", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
                          "llm.token_count.completion"),
           "count", "span", "generated tokens, reasoning ones included"),
    Source("cached_tokens", ("gen_ai.usage.cache_read.input_tokens",
                             "gen_ai.usage.cache_read_input_tokens",
                             "gen_ai.usage.input_tokens.cached",
                             "llm.token_count.prompt_details.cache_read"),
           "count", "span", "prompt tokens read from the cache: priced at the cached rate"),
    Source("reasoning_tokens", ("gen_ai.usage.reasoning.output_tokens",
                                "gen_ai.usage.reasoning_tokens",
                                "gen_ai.usage.output_tokens.reasoning",
                                "llm.token_count.completion_details.reasoning"),
           "count", "span", "kept as an attr (already in tokens_out)"),
    Source("tokens_total", ("gen_ai.usage.total_tokens", "llm.usage.total_tokens",
                            "llm.token_count.total"),
           "count", "span", "kept as an attr"),
    Source("gen_ai_system", ("gen_ai.provider.name", "gen_ai.system", "llm.provider",
                             "llm.system"),
           "text", "span", "the provider (openai, anthropic, ...)"),
    Source("gen_ai_operation", ("gen_ai.operation.name",), "text", "span",
           "chat, embeddings, invoke_agent, ..."),
    Source("span_kind", ("openinference.span.kind",), "text", "span",
           "OpenInference's LLM, AGENT, TOOL, CHAIN, ..."),
    Source("error_type", ("error.type",), "text", "span",
           "else, on an error span, `exception.type` of its `exception` event"),
)


def markdown() -> str:
    """The table as docs/collector.md shows it."""
    rows = ["| event field | span attributes, first set wins | notes |", "|---|---|---|"]
    for s in (*TRACE, *USAGE):
        keys = " / ".join(f"`{k}`" for k in s.keys)
        where = " (trace level, below)" if s.where == "trace" else ""
        rows.append(f"| {s.field} | {keys}{where} | {s.note} |")
    return "\n".join(rows)
