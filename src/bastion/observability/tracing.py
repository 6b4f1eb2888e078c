"""OpenTelemetry traces: a span per request, children for each step, context in and out.

Optional (`pip install 'bastion-mcp[otel]'`); nothing here is imported unless tracing is on,
and with it off the data path pays one `None` check per hook.

- A span per request: `mcp.tools/call <tool>` (or `mcp.<method>`), with the attributes of
  the OpenTelemetry semantic conventions for MCP and GenAI tool calls (`mcp.method.name`,
  `mcp.session.id`, `jsonrpc.request.id`, `gen_ai.operation.name`, `gen_ai.tool.name`,
  `network.transport`, `error.type`) and Bastion's own (`bastion.server`, `bastion.agent`,
  `bastion.call_id`, `bastion.outcome`, `bastion.rule`).
- Children: `bastion.authenticate` (the front door's credential check), `bastion.audit.commit`
  (the write-ahead record), `bastion.guard <check>` (each guard check), `bastion.approval.wait`,
  and `bastion.upstream` (the forwarded request).
- Its parent is the trace context the agent sent: `params._meta.traceparent`/`tracestate`
  (as the MCP specification proposes), else the HTTP request's `traceparent` header.
- The context goes on to the upstream in the forwarded request's `_meta` (both stdio and HTTP
  upstreams share one session, so per-request HTTP headers are not available).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from bastion.observability.config import TracingConfig

logger = logging.getLogger(__name__)

TRACER_NAME = "bastion"
_CONTEXT_KEYS = ("traceparent", "tracestate")


def exporter_for(config: TracingConfig, environ: Mapping[str, str]) -> SpanExporter | None:
    """The exporter the settings (then the `OTEL_*` variables) name."""
    kind = config.exporter
    if kind == "otlp" and environ.get("OTEL_TRACES_EXPORTER") in ("console", "none"):
        kind = environ["OTEL_TRACES_EXPORTER"]  # type: ignore[assignment]
    if kind == "none":
        return None
    if kind == "console":
        return ConsoleSpanExporter()
    protocol = (
        config.protocol
        or environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    )
    endpoint = config.endpoint
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter(endpoint=endpoint) if endpoint else GrpcExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

    if endpoint:
        return HttpExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
    return HttpExporter()


def provider_for(config: TracingConfig, processor: SpanProcessor | None = None) -> TracerProvider | None:
    """A tracer provider exporting as configured (or through `processor`, for tests); None: nothing to export."""
    service = os.environ.get("OTEL_SERVICE_NAME") or config.service_name
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if processor is None:
        exporter = exporter_for(config, os.environ)
        if exporter is None:
            return None
        processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider


@dataclass(frozen=True, slots=True)
class TracedRequest:
    """What a request's span is made from: who sent what where, and the context it carried."""

    method: str
    tool: str | None
    server: str
    agent: str
    call_id: str
    request_id: object
    session_id: str | None
    transport: str
    meta: object
    """The request's `params._meta` (its `traceparent` is the parent)."""
    headers: Mapping[str, str] | None
    """The HTTP request's headers, lower-cased (their `traceparent` when `_meta` has none)."""
    auth_seconds: float | None
    """How long the front door's credential check took (a child span ending where this one begins)."""


@dataclass(slots=True)
class CallTrace:
    """The span of one request, current in its task until `end`."""

    span: Span
    token: object

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def end(self, outcome: str, *, rule: str | None = None, error: str | None = None) -> None:
        """End the span with how the request ended. Never raises."""
        try:
            self.span.set_attribute("bastion.outcome", outcome)
            if rule:
                self.span.set_attribute("bastion.rule", rule)
            if error is not None or outcome == "error":
                self.span.set_attribute("error.type", error or outcome)
                self.span.set_status(Status(StatusCode.ERROR, error or outcome))
            self.span.end()
        except Exception:
            logger.exception("could not end a request's span")
        _detach(self.token)


@dataclass(slots=True)
class UpstreamTrace:
    """The span of one forwarded request, current in its task until `end`."""

    span: Span
    token: object

    def end(self) -> None:
        try:
            self.span.end()
        except Exception:
            logger.exception("could not end the upstream span")
        _detach(self.token)


def _detach(token: object) -> None:
    try:
        otel_context.detach(token)  # type: ignore[arg-type]
    except Exception:  # detached in another context (a cancelled task): the span still ended
        logger.debug("trace context detached elsewhere", exc_info=True)


class CallTracer:
    """Makes the spans of the module docstring; one per gateway."""

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer(TRACER_NAME)

    def begin(self, request: TracedRequest) -> CallTrace | None:
        """Start the request's span (current in this task from now on) under the agent's context.

        None if it could not be made: a trace is never worth failing a call for.
        """
        try:
            return self._begin(request)
        except Exception:
            logger.exception("could not start the span of %s", request.call_id)
            return None

    def _begin(self, request: TracedRequest) -> CallTrace:
        method, tool, meta, headers = request.method, request.tool, request.meta, request.headers
        carrier = {key: str(meta[key]) for key in _CONTEXT_KEYS if isinstance(meta, Mapping) and key in meta}
        if not carrier and headers is not None:
            carrier = {key: headers[key] for key in _CONTEXT_KEYS if key in headers}
        parent = propagate.extract(carrier) if carrier else None
        name = f"mcp.{method} {tool}" if tool else f"mcp.{method}"
        attributes: dict[str, Any] = {
            "mcp.method.name": method,
            "jsonrpc.request.id": str(request.request_id),
            "network.transport": "pipe" if request.transport == "stdio" else "tcp",
            "bastion.transport": request.transport,
            "bastion.server": request.server,
            "bastion.agent": request.agent,
            "bastion.call_id": request.call_id,
        }
        if request.session_id:
            attributes["mcp.session.id"] = request.session_id
        if tool:
            attributes |= {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": tool}
        now = time.time_ns()
        auth_seconds = request.auth_seconds
        start = now - int(auth_seconds * 1e9) if auth_seconds else now
        span = self.tracer.start_span(
            name, context=parent, kind=SpanKind.SERVER, attributes=attributes, start_time=start
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        if auth_seconds:
            self.past_child("bastion.authenticate", auth_seconds, end=now)
        return CallTrace(span, token)

    def past_child(
        self, name: str, seconds: float, *, end: int | None = None, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """A child of the current span for a step that just took `seconds`. Never raises."""
        try:
            finished = end if end is not None else time.time_ns()
            span = self.tracer.start_span(name, start_time=finished - int(seconds * 1e9), attributes=attributes)
            span.end(end_time=finished)
        except Exception:
            logger.exception("could not record the span %s", name)

    def check_took(self, check: str, seconds: float) -> None:
        if trace.get_current_span().get_span_context().is_valid:
            self.past_child(f"bastion.guard {check}", seconds, attributes={"bastion.check": check})

    def approval_took(self, seconds: float) -> None:
        if trace.get_current_span().get_span_context().is_valid:
            self.past_child("bastion.approval.wait", seconds)

    def upstream(self, server: str, method: str, params: MutableMapping[str, Any]) -> UpstreamTrace | None:
        """The span of a forwarded request, current until `end`; its context goes in `params["_meta"]`.

        (The SDK's client, when it sends, injects the current context into `_meta` too: with
        this span current, both say the same.)
        """
        try:
            span = self.tracer.start_span(
                "bastion.upstream",
                kind=SpanKind.CLIENT,
                attributes={"bastion.server": server, "mcp.method.name": method},
            )
            context = trace.set_span_in_context(span)
            carrier: dict[str, str] = {}
            propagate.inject(carrier, context=context)
        except Exception:
            logger.exception("could not start the upstream span")
            return None
        if carrier:
            meta = params.get("_meta")
            params["_meta"] = {**(meta if isinstance(meta, Mapping) else {}), **carrier}
        return UpstreamTrace(span, otel_context.attach(context))

    def shutdown(self) -> None:
        self.provider.shutdown()
