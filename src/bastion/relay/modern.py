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

import logging
from typing import TYPE_CHECKING, Any

import anyio
from starlette.types import Receive, Scope, Send

from bastion.mcp_names import HEADER_MISMATCH
from bastion.model import Principal
from bastion.proxy.kept_manager import KeptSessionManager
from bastion.proxy.proxy import progress_token_of
from bastion.relay import jsonrpc
from bastion.relay.accept import accepts
from bastion.relay.asgi_headers import header
from bastion.relay.flow import Flow
from bastion.relay.flow_server import FlowServer
from bastion.relay.front_checks import replay
from bastion.relay.host_checks import HostChecks
from bastion.relay.response_stream import ResponseStream, respond
from bastion.relay.session import ModernChannel

if TYPE_CHECKING:
    from mcp.shared.inbound import InboundLadderRejection

logger = logging.getLogger(__name__)

DEFERRAL_SECONDS = 15.0
"""How long an answer may take and still go as JSON; then the stream commits to SSE, pinged this often."""


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
        has_json, has_sse = accepts(header(scope, b"accept") or "")
        if not (has_json and has_sse):
            await respond(send, 406, b"", [])
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
        stream = ResponseStream(send, [], DEFERRAL_SECONDS)
        channel = ModernChannel(stream, progress_token_of(message.params))
        flow = Flow.of(message, principal, self.relay.name, protocol_version=verdict.protocol_version,
                       transport="streamable-http", session=channel, scope=scope)  # fmt: skip
        async with anyio.create_task_group() as tg:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tg.cancel_scope.cancel()  # closing the stream cancels the request (2026-07-28)

            tg.start_soon(watch_disconnect)
            with stream.kept_alive():
                answer, code = await self.relay.answer(flow)
            await stream.finish(answer, _http_status(code))
            tg.cancel_scope.cancel()


async def _reject(send: Send, rejection: InboundLadderRejection, request_id: Any) -> None:
    status = _http_status(rejection.code)
    body = jsonrpc.error_bytes(request_id, rejection.code, rejection.message, rejection.data)
    await respond(send, status, body, [(b"content-type", b"application/json")])


def _http_status(code: int | None) -> int:
    """The HTTP status the era gives a JSON-RPC error `code` (200 for a result or an unmapped code)."""
    if code is None:
        return 200
    from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS

    return ERROR_CODE_HTTP_STATUS.get(code, 200)
