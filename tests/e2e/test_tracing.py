"""Traces of real calls through an in-process gateway, in front of a real stdio server.

Spans go to the OpenTelemetry SDK's in-memory exporter: one span per request, its children
(authentication, audit commit, each guard check, the approval wait, the upstream), the agent's
trace context honoured from `_meta` and from the HTTP `traceparent` header, the context passed
on to the upstream in `_meta`, and the trace id in the audit event.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bastion.audit.query import EventQuery
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.observability.config import TracingConfig
from bastion.observability.tracing import CallTracer, provider_for
from bastion.observability.wiring import GatewayObservability
from tests.e2e.conftest import write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

SERVER = Path(__file__).parent / "servers" / "crashy_server.py"
AGENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
AGENT_PARENT = f"00-{AGENT_TRACE}-00f067aa0ba902b7-01"
HEADER_TRACE = "0af7651916cd43dd8448eb211c80319c"


def traced_gateway(tmp_path: Path, exporter: InMemorySpanExporter) -> Gateway:
    config_path = write_config(
        tmp_path,
        {"crashy": {"command": sys.executable, "args": [str(SERVER)], "sandbox": "off"}},
        policy={"rules": [{"name": "ask-notes", "match": {"tool": "note"}, "action": "ask"}]},
        approvals={"wait": 0},
    )
    config = load_config(config_path)
    provider = provider_for(TracingConfig(enabled=True), SimpleSpanProcessor(exporter))
    assert provider is not None
    return Gateway(config, observability=GatewayObservability(config, tracer=CallTracer(provider)))


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


async def test_a_call_is_one_span_with_its_steps_as_children(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    gateway = traced_gateway(tmp_path, exporter)
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("tracer")
            async with http_client(gateway, "crashy", token) as client:
                seen = await client.call_tool("trace_context", {}, meta={"traceparent": AGENT_PARENT})
                held = await client.call_tool("note", {"path": str(tmp_path / "n"), "text": "x"})
            await gateway.audit.flush()
            requested = list(gateway.audit.rows(EventQuery(types=("call.requested",)), newest_first=False))
    spans = exporter.get_finished_spans()
    (call,) = by_name(spans, "mcp.tools/call trace_context")
    context = call.get_span_context()
    assert format(context.trace_id, "032x") == AGENT_TRACE  # the agent's trace, from _meta
    assert call.parent is not None
    assert format(call.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert call.attributes is not None
    assert call.attributes["gen_ai.tool.name"] == "trace_context"
    assert call.attributes["mcp.method.name"] == "tools/call"
    assert call.attributes["bastion.agent"] == "tracer"
    assert call.attributes["bastion.outcome"] == "allowed"
    children = {span.name for span in spans if span.parent is not None and span.parent.span_id == context.span_id}
    assert {"bastion.authenticate", "bastion.audit.commit", "bastion.guard policy", "bastion.upstream"} <= children
    (upstream,) = [s for s in by_name(spans, "bastion.upstream") if s.parent and s.parent.span_id == context.span_id]
    # The upstream got the context of Bastion's upstream span, in the same trace.
    assert seen.content[0].text == f"00-{AGENT_TRACE}-{format(upstream.get_span_context().span_id, '016x')}-01"
    (held_span,) = by_name(spans, "mcp.tools/call note")
    assert held.is_error is True
    assert held_span.attributes is not None
    assert held_span.attributes["bastion.outcome"] == "denied"
    held_children = {s.name for s in spans if s.parent is not None and s.parent.span_id == held_span.context.span_id}
    assert "bastion.approval.wait" in held_children
    details = [json.loads(chained.row.data) for chained in requested]
    trace_ids = [d.get("trace_id") for d in details if d.get("tool") == "trace_context"]
    assert trace_ids == [AGENT_TRACE]  # the audit trail names the trace


async def test_the_http_traceparent_header_is_honoured(tmp_path: Path) -> None:
    exporter = InMemorySpanExporter()
    gateway = traced_gateway(tmp_path, exporter)
    header = f"00-{HEADER_TRACE}-b7ad6b7169203331-01"
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("tracer")
            headers = {"Authorization": f"Bearer {token}", "traceparent": header}
            url = f"{gateway.base_url}/servers/crashy/mcp"
            async with (
                httpx2.AsyncClient(headers=headers, timeout=60) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                await client.call_tool("echo", {"text": "hi"})
    (call,) = by_name(exporter.get_finished_spans(), "mcp.tools/call echo")
    assert format(call.get_span_context().trace_id, "032x") == HEADER_TRACE
