"""2026-07-28 requests for the relay: one self-contained POST in, one answer out, no session.

The checks are the SDK's (`mcp.shared.inbound`: the `_meta` envelope, the `Mcp-Method`,
`Mcp-Name` and `MCP-Protocol-Version` headers against the body, rejections mapped to their
HTTP status); the answer is JSON when it is ready within the deferral window and nothing
came before it, otherwise an SSE stream (progress first, or a slow call kept alive by
pings). Closing the response stream cancels the request, as the spec says. What is not a
request the relay serves (`server/discover`, notifications, unknown methods, anything
malformed) is handed to the SDK's server, which answers it as the reference does.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any

import anyio
from mcp_types import HEADER_MISMATCH
from starlette.types import Receive, Scope, Send

from bastion.model import Principal
from bastion.proxy.kept_manager import KeptSessionManager
from bastion.proxy.proxy import progress_token_of
from bastion.relay import jsonrpc
from bastion.relay.accept import accepts
from bastion.relay.flow import Flow
from bastion.relay.flow_server import FlowServer
from bastion.relay.front_checks import replay
from bastion.relay.host_checks import HostChecks
from bastion.relay.session import ModernChannel, OutMessage

if TYPE_CHECKING:
    from mcp.shared.inbound import InboundLadderRejection

logger = logging.getLogger(__name__)

DEFERRAL_SECONDS = 15.0
"""How long an answer may take and still go as JSON; then the stream commits to SSE, pinged this often."""

_SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"connection", b"keep-alive"),
    (b"x-accel-buffering", b"no"),
]
_PING = b": ping\r\n\r\n"


class ModernFront:
    """Serves the 2026-era POSTs the relay handles; hands the rest to the SDK."""

    def __init__(self, relay: FlowServer, sdk: KeptSessionManager, security: HostChecks) -> None:
        self.relay = relay
        self.sdk = sdk
        self.security = security

    async def post(self, scope: Scope, receive: Receive, send: Send, body: bytes, raw: Any) -> None:
        try:
            message = jsonrpc.classify(raw)
        except jsonrpc.Invalid:
            message = None
        if not isinstance(message, jsonrpc.Request) or message.method not in self.relay.hot_methods:
            await self.sdk.handle_request(scope, replay(body, receive), send)
            return
        refused = self.security.refusal(scope, is_post=True)
        if refused is not None:
            await refused(scope, receive, send)
            return
        headers = scope["headers"]
        accept = next((v.decode("latin-1") for k, v in headers if k == b"accept"), "")
        has_json, has_sse = accepts(accept)
        if not (has_json and has_sse):
            await _respond(send, 406, b"", [])
            return
        # The SDK's checks of the era's envelope: imported by the first 2026-era request.
        from mcp.shared.inbound import InboundLadderRejection, classify_inbound_request, find_duplicated_routing_header

        text_headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
        duplicated = find_duplicated_routing_header(text_headers)
        if duplicated is not None:
            rejection = InboundLadderRejection(
                code=HEADER_MISMATCH, message=f"{duplicated} header appears more than once"
            )
            await _reject(send, rejection, message.id)
            return
        verdict = classify_inbound_request(raw, headers=dict(text_headers))
        if isinstance(verdict, InboundLadderRejection):
            await _reject(send, verdict, message.id)
            return
        principal = scope["bastion.principal"]
        assert isinstance(principal, Principal)
        out, into = anyio.create_memory_object_stream[OutMessage](16)
        channel = ModernChannel(out, progress_token_of(message.params))
        flow = Flow.of(message, principal, self.relay.name, protocol_version=verdict.protocol_version,
                       transport="streamable-http", session=channel, scope=scope)  # fmt: skip
        codes: list[int | None] = []

        async def run() -> None:
            async with out:
                answer, code = await self.relay.answer(flow)
                codes.append(code)
                with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await out.send((answer, True))

        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()  # closing the stream cancels the request (2026-07-28)

            tg.start_soon(run)
            tg.start_soon(watch_disconnect)
            with into:
                await _write(send, into, codes)
            tg.cancel_scope.cancel()


async def _write(send: Send, into: Any, codes: list[int | None]) -> None:
    first: OutMessage | None = None
    with anyio.move_on_after(DEFERRAL_SECONDS):
        try:
            first = await into.receive()
        except anyio.EndOfStream:
            return
    if first is not None and first[1]:
        code = codes[0] if codes else None
        status = _http_status(code)
        await _respond(send, status, first[0], [(b"content-type", b"application/json")])
        return
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        message: OutMessage | None = first
        while True:
            if message is None:
                await send({"type": "http.response.body", "body": _PING, "more_body": True})
            else:
                body = b"event: message\r\ndata: " + message[0] + b"\r\n\r\n"
                await send({"type": "http.response.body", "body": body, "more_body": not message[1]})
                if message[1]:
                    return
            message = None
            with anyio.move_on_after(DEFERRAL_SECONDS):
                try:
                    message = await into.receive()
                except anyio.EndOfStream:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
    except OSError:
        pass  # the agent went away


async def _reject(send: Send, rejection: InboundLadderRejection, request_id: Any) -> None:
    status = _http_status(rejection.code)
    body = jsonrpc.error_bytes(request_id, rejection.code, rejection.message, rejection.data)
    await _respond(send, status, body, [(b"content-type", b"application/json")])


def _http_status(code: int | None) -> int:
    """The HTTP status the era gives a JSON-RPC error `code` (200 for a result or an unmapped code)."""
    if code is None:
        return 200
    from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS

    return ERROR_CODE_HTTP_STATUS.get(code, 200)


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
