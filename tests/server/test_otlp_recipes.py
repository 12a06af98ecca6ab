"""The recipes of docs/instrument.md, run as written: each block (the shared setup, then the
recipe) in a fresh interpreter, with the stock OTLP/HTTP exporter configured by the standard
environment variables, against a real collector and the fake OpenAI server. Every span lands
in the recipe's run, with its agent and what the fake server reported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server.conftest import Server
from tests.server.test_otlp_clients import serve_fake_openai

pytestmark = pytest.mark.slow  # a fresh interpreter per recipe; see `make test-fast`

DOC = Path(__file__).resolve().parents[2] / "docs" / "instrument.md"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[str]:
    with serve_fake_openai() as url:
        yield url


def blocks() -> dict[str, str]:
    """The first python block under each `## ` heading of the doc."""
    out: dict[str, str] = {}
    for section in re.split(r"^## ", DOC.read_text(), flags=re.M)[1:]:
        title = section.splitlines()[0].strip()
        code = re.search(r"```python\n(.*?)```", section, re.S)
        if code:
            out[title] = code.group(1)
    return out


def alternative_agents_block() -> str:
    """The Agents SDK recipe with OpenLLMetry's instrumentation, as the doc says to change it."""
    return blocks()["OpenAI Agents SDK"].replace(
        "openinference.instrumentation.openai_agents", "opentelemetry.instrumentation.openai_agents")


def run_recipe(server: Server, openai_url: str, code: str) -> str:
    """Run setup + `code` in a fresh interpreter; the run id it used."""
    script = blocks()["Set up once"] + "\n" + code + "\nprint(run_id)\n"
    env = {**os.environ,
           "OTEL_EXPORTER_OTLP_ENDPOINT": server.url,
           "OTEL_EXPORTER_OTLP_HEADERS": f"Authorization=Bearer%20{server.keys['ingest']}",
           "OPENAI_BASE_URL": openai_url, "OPENAI_API_KEY": "sk-test",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    for k in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER"):
        env.pop(k, None)
    res = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout.strip().splitlines()[-1]


def run_events(server: Server, run_id: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        res = c.get(f"/v1/runs/{run_id}", headers=server.auth("read"))
        assert res.status_code == 200, res.text
        events: list[dict[str, Any]] = res.json()["events"]
        for tid in {e["attrs"]["trace_id"] for e in events}:  # nothing left in a trace-id run
            assert c.get(f"/v1/runs/{tid}", headers=server.auth("read")).status_code == 404
    return events


def check_llm_run(events: list[dict[str, Any]], agent: str, spans: int) -> None:
    """The fake server's one answer: 1,000 prompt tokens (400 cached), 200 completion tokens,
    from gpt-4o-2024-08-06 (priced as gpt-4o)."""
    assert len(events) == spans, [e["attrs"].get("span_name") for e in events]
    assert {e["agent"] for e in events} == {agent}
    assert len({e["attrs"]["trace_id"] for e in events}) == 1
    assert sum(e["tokens_in"] or 0 for e in events) == 1000
    assert sum(e["tokens_out"] or 0 for e in events) == 200
    assert sum(e["attrs"].get("cached_tokens") or 0 for e in events) == 400
    assert {e["model"] for e in events if e["model"]} == {"gpt-4o-2024-08-06"}
    # gpt-4o, USD per 1M: input 2.50, cached input 1.25, output 10.00:
    # (600·2.50 + 400·1.25 + 200·10.00) / 1e6 = 0.004
    assert sum(e["cost_usd"] or 0 for e in events) == pytest.approx(0.004)
    assert sum(e["errors"] for e in events) == 0
    roots = [e for e in events if e["attrs"].get("parent_span_id") is None]
    assert len(roots) == 1 and roots[0]["latency_ms"] > 0


def test_the_doc_has_the_four_recipes() -> None:
    assert set(blocks()) == {"Set up once", "Plain OpenTelemetry SDK",
                             "OpenAI SDK with OpenInference", "OpenAI SDK with OpenLLMetry",
                             "OpenAI Agents SDK"}


def test_plain_otel_sdk(server: Server) -> None:
    events = run_events(server, run_recipe(server, "unused", blocks()["Plain OpenTelemetry SDK"]))
    assert len(events) == 2 and {e["strategy"] for e in events} == {"FUNDING"}
    assert {e["agent"] for e in events} == {"CryptoFundingRateAgent"}
    # (600·2.50 + 400·1.25 + 200·10.00) / 1e6, from the attributes the recipe sets
    assert sum(e["cost_usd"] or 0 for e in events) == pytest.approx(0.004)


@pytest.mark.parametrize("recipe", ["OpenAI SDK with OpenInference",
                                    "OpenAI SDK with OpenLLMetry"])
def test_openai_sdk(server: Server, fake_openai: str, recipe: str) -> None:
    pytest.importorskip("openai")
    run_id = run_recipe(server, fake_openai, blocks()[recipe])
    check_llm_run(run_events(server, run_id), "CryptoFundingRateAgent", spans=2)


@pytest.mark.parametrize("variant", ["openinference", "openllmetry"])
def test_openai_agents_sdk(server: Server, fake_openai: str, variant: str) -> None:
    pytest.importorskip("agents")
    if variant == "openinference":
        pytest.importorskip("openinference.instrumentation.openai_agents")
        code = blocks()["OpenAI Agents SDK"]
    else:
        pytest.importorskip("opentelemetry.instrumentation.openai_agents")
        code = alternative_agents_block()
    events = run_events(server, run_recipe(server, fake_openai, code))
    # agent.run, then the SDK's spans (workflow, agent, turn, model call): all in the run
    check_llm_run(events, "CryptoFundingRateAgent", spans=len(events))
    assert len(events) >= 3
