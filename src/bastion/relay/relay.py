"""The relay for one upstream server: a parsed request in, its answer (bytes) out.

Requests the SDK's server answered itself (`initialize`, `ping`) are answered here the
same way; the others go through the audit hook, then to the `ProxyServer`'s forwarding
(tool lists filtered, `tools/call` judged by the guard pipeline, content checked), on
the shared upstream session. Results are relayed as the upstream gave them (no model
validation): only the `_meta` rules of `outbound_params`/`_inbound_result` apply.
"""

from __future__ import annotations

import logging
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from mcp_types import methods as spec_methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, LATEST_HANDSHAKE_VERSION
from pydantic import BaseModel, ValidationError

from bastion.gateway.proxy import FORWARDED_METHODS, ProxyServer, outbound_params
from bastion.gateway.recording import CallRecorder, RecordedRequest, Target
from bastion.gateway.upstream import UpstreamUnavailable
from bastion.relay import jsonrpc
from bastion.relay.audit_hook import AuditHook
from bastion.relay.flow import Flow
from bastion.relay.params import params_ok

logger = logging.getLogger(__name__)

_SERVED = frozenset({*FORWARDED_METHODS, "initialize"})
"""Requests that are recorded and answered (every other one but `ping` is METHOD_NOT_FOUND, recorded too)."""


class Relay:
    """Serves the requests for one upstream server, through its `ProxyServer`."""

    def __init__(self, proxy: ProxyServer, recorder: CallRecorder) -> None:
        self.proxy = proxy
        self.audit = AuditHook(recorder)

    @property
    def name(self) -> str:
        return self.proxy.upstream.name

    async def answer(self, flow: Flow) -> bytes:
        """The encoded JSON-RPC answer to `flow`'s request (a result or an error; never raises but cancellation)."""
        request_id = flow.request_id
        assert request_id is not None
        try:
            result = await self._serve(flow)
        except MCPError as exc:
            error = exc.error
            return jsonrpc.error_bytes(request_id, error.code, error.message, error.data)
        except ValidationError:
            return jsonrpc.error_bytes(request_id, jsonrpc.INVALID_PARAMS, "Invalid request parameters", "")
        except Exception as exc:
            logger.exception("handler for %r raised", flow.method)
            return jsonrpc.error_bytes(request_id, 0, str(exc))  # what the SDK's dispatcher answers
        return jsonrpc.result_bytes(request_id, result)

    async def _serve(self, flow: Flow) -> dict[str, Any]:
        method = flow.method
        if method == "ping":
            return {}
        name = (flow.params or {}).get("name") if method == "tools/call" else None
        flow.tool = name if isinstance(name, str) else None
        agent = self.proxy.hub.join(flow.session.session, flow.principal, flow.session)
        request = RecordedRequest(
            principal=flow.principal,
            method=method,
            params=flow.params or {},
            target=Target(self.name, flow.tool),
            agent=agent,
            transport=flow.transport,
            endpoint=flow.endpoint,
            request_id=flow.request_id,
            scope=flow.scope,
        )
        opened = await self.audit.requested(flow, request)
        result: dict[str, Any] = await self.audit.observe(flow, opened, lambda: self._dispatch(flow))
        return result

    async def _dispatch(self, flow: Flow) -> dict[str, Any]:
        method = flow.method
        if method not in _SERVED:
            raise MCPError(code=jsonrpc.METHOD_NOT_FOUND, message="Method not found", data=method)
        if method == "initialize":
            return await self._initialize(flow)
        if not params_ok(method, flow.params):
            raise MCPError(code=jsonrpc.INVALID_PARAMS, message="Invalid request parameters", data="")
        raw = outbound_params(flow.params)
        if method == "tools/call":
            params = flow.params or {}
            assert flow.tool is not None
            result = await self.proxy.call_tool(flow, flow.tool, params.get("arguments") or {}, raw)
            return _dumped(result)
        return await self.proxy.relay(flow, method, raw)

    async def _initialize(self, flow: Flow) -> dict[str, Any]:
        """The handshake, as the SDK's server answers it: version negotiation, the upstream's
        identity and the capabilities Bastion forwards (`ProxyServer.get_capabilities`)."""
        spec_methods.validate_client_request("initialize", LATEST_HANDSHAKE_VERSION, flow.params)
        init = types.InitializeRequestParams.model_validate(flow.params or {}, by_name=False)
        requested = init.protocol_version
        negotiated = requested if requested in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
        try:
            await self.proxy.upstream.ensure_started()
        except UpstreamUnavailable as exc:
            raise MCPError(code=jsonrpc.INTERNAL_ERROR, message=f"Bastion: {exc}") from exc
        self.proxy.adopt_upstream_identity()
        options = self.proxy.create_initialization_options()
        result = types.InitializeResult(
            protocol_version=negotiated,
            capabilities=options.capabilities,
            server_info=types.Implementation(
                name=options.server_name,
                title=options.title,
                description=options.description,
                version=options.server_version,
                website_url=options.website_url,
                icons=options.icons,
            ),
            instructions=options.instructions,
        )
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        flow.session.session.protocol_version = negotiated
        return spec_methods.serialize_server_result("initialize", negotiated, dumped)

    async def notified(self, flow_session: Any, notification: jsonrpc.Notification) -> None:
        """A notification from the agent: cancellation, the handshake's end, roots changed."""
        method = notification.method
        params = notification.params or {}
        if method == "notifications/cancelled":
            flow_session.cancel(params.get("requestId"))
        elif method == "notifications/roots/list_changed":
            try:
                await self.proxy.upstream.notify("notifications/roots/list_changed", None)
            except Exception:
                logger.exception("could not tell server %r that the agent's roots changed", self.name)


def _dumped(result: Any) -> dict[str, Any]:
    if isinstance(result, BaseModel):
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dict(result)
