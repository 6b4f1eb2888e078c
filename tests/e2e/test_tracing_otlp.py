"""A real `bastion up` exports its spans over OTLP/HTTP to a receiver run by the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import anyio
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.e2e.clients import connect
from tests.e2e.conftest import VENV_BIN, start_gateway, write_config

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


class Receiver:
    """An OTLP/HTTP trace receiver on a loopback port: keeps the span names it is sent."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.services: set[str] = set()
        self.got_call = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    for attribute in resource_spans.resource.attributes:
                        if attribute.key == "service.name":
                            receiver.services.add(attribute.value.string_value)
                    for scope_spans in resource_spans.scope_spans:
                        receiver.names += [span.name for span in scope_spans.spans]
                if "mcp.tools/call get_current_time" in receiver.names:
                    receiver.got_call.set()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()


async def test_spans_reach_an_otlp_http_receiver(tmp_path: Path, receiver: Receiver) -> None:
    tracing = {"enabled": True, "endpoint": receiver.url, "service_name": "bastion-under-test"}
    config = write_config(
        tmp_path, {"time": {"command": str(VENV_BIN / "mcp-server-time")}}, observability={"tracing": tracing}
    )
    gateway = start_gateway(config)
    try:
        with anyio.fail_after(60):
            async with connect(gateway, "time") as client:
                result = await client.call_tool("get_current_time", {"timezone": "UTC"})
        assert result.is_error is False
    finally:
        gateway.stop()  # the gateway's shutdown exports what its batch still holds
    assert receiver.got_call.wait(timeout=30)
    assert "bastion.upstream" in receiver.names
    assert "bastion.guard policy" in receiver.names
    assert receiver.services == {"bastion-under-test"}
