"""The real `openai` client, instrumented by OpenInference and by OpenLLMetry, against a fake
OpenAI-compatible server, exported by the stock OTLP/HTTP exporter to a real collector: the
run gets the tokens, cached tokens, model and cost that the fake server reported."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.server.conftest import Server
from tests.server.test_otlp import export_and_read

openai = pytest.importorskip("openai")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http.trace_exporter")
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)

pytestmark = pytest.mark.slow  # see `make test-fast`

USAGE = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200,
         "prompt_tokens_details": {"cached_tokens": 400},
         "completion_tokens_details": {"reasoning_tokens": 50}}


RESPONSES_USAGE = {"input_tokens": 1000, "output_tokens": 200, "total_tokens": 1200,
                   "input_tokens_details": {"cached_tokens": 400},
                   "output_tokens_details": {"reasoning_tokens": 50}}


def chat_completion() -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1740816000,
            "model": "gpt-4o-2024-08-06", "usage": USAGE,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "SHORT BTC"}}]}


def response() -> dict[str, Any]:
    """A Responses API answer (what the OpenAI Agents SDK calls by default)."""
    return {"id": "resp_1", "object": "response", "created_at": 1740816000,
            "status": "completed", "model": "gpt-4o-2024-08-06", "usage": RESPONSES_USAGE,
            "output": [{"type": "message", "id": "msg_1", "role": "assistant",
                        "status": "completed", "content": [
                            {"type": "output_text", "text": "SHORT BTC", "annotations": []}]}],
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}


class FakeOpenAI(BaseHTTPRequestHandler):
    """POST /v1/chat/completions and /v1/responses: one answer with the usage above (1,000
    prompt tokens of which 400 cached, 200 completion tokens of which 50 reasoning), from a
    dated gpt-4o."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        doc = response() if self.path.rstrip("/").endswith("/responses") else chat_completion()
        data = json.dumps(doc).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serve_fake_openai() -> Iterator[str]:
    """The fake OpenAI server on a free loopback port: its base URL (…/v1)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[str]:
    with serve_fake_openai() as url:
        yield url


def instrumentor(name: str) -> Any:
    if name == "openinference":
        mod = pytest.importorskip("openinference.instrumentation.openai")
    else:  # OpenLLMetry
        mod = pytest.importorskip("opentelemetry.instrumentation.openai")
    return mod.OpenAIInstrumentor()


@pytest.mark.parametrize("name", ["openinference", "openllmetry"])
def test_instrumented_openai_client_lands_on_the_run(server: Server, fake_openai: str,
                                                     name: str) -> None:
    run_id = f"{name}-{uuid.uuid4()}"
    memory = InMemorySpanExporter()
    tp = TracerProvider(resource=Resource.create({"service.name": f"svc-{name}",
                                                  "alphatrace.run_id": run_id}))
    tp.add_span_processor(SimpleSpanProcessor(memory))
    inst = instrumentor(name)
    inst.instrument(tracer_provider=tp)
    try:
        client = openai.OpenAI(base_url=fake_openai, api_key="sk-test", max_retries=0)
        client.chat.completions.create(model="gpt-4o",
                                       messages=[{"role": "user", "content": "BTC?"}])
    finally:
        inst.uninstrument()
    spans = list(memory.get_finished_spans())
    assert len(spans) == 1
    exporter = OTLPSpanExporter(endpoint=server.url + "/v1/traces",
                                headers={"Authorization": f"Bearer {server.keys['ingest']}"})
    (ev,) = export_and_read(server, exporter, spans, run_id)
    assert ev["agent"] == f"svc-{name}"
    assert (ev["tokens_in"], ev["tokens_out"], ev["model"]) == (1000, 200, "gpt-4o-2024-08-06")
    assert ev["attrs"]["cached_tokens"] == 400 and ev["attrs"]["reasoning_tokens"] == 50
    # gpt-4o: input 2.50, cached input 1.25, output 10.00 USD per 1M tokens:
    # (600·2.50 + 400·1.25 + 200·10.00) / 1e6 — cached tokens at the cached rate.
    assert ev["cost_usd"] == pytest.approx(0.004)
    assert ev["errors"] == 0
