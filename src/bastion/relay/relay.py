"""The relay for one upstream server: a parsed request in, its answer (bytes) out.

Requests the SDK's server answered itself (`initialize`, `ping`, `server/discover`) are
answered here the same way, with its checks by era and session state (`era`); the others
go through the audit hook, then to the `ProxyServer`'s forwarding
(tool lists filtered, `tools/call` judged by the guard pipeline, content checked), on
the shared upstream session. Results are relayed as the upstream gave them (no model
validation): only the `_meta` rules of `outbound_params`/`_inbound_result` apply.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from bastion import handshake_shapes
from bastion.lazy_import import lazy_module
from bastion.mcp_names import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    MODERN_PROTOCOL_VERSIONS,
    SERVER_INFO_META_KEY,
)
from bastion.proxy.identity import implementation_wire
from bastion.proxy.proxy import FORWARDED_METHODS, ProxyServer, outbound_params
from bastion.proxy.recording import CallRecorder, Target
from bastion.relay import era, jsonrpc
from bastion.relay.audit_hook import AuditHook
from bastion.relay.flow import Flow
from bastion.relay.params import invalid_params, params_ok
from bastion.rpc_error import RpcError, rpc_error
from bastion.upstream.upstream import UpstreamUnavailable

if TYPE_CHECKING:
    import mcp_types as types
    from mcp_types import methods as spec_methods

    from bastion.proxy.identity import ServedIdentity
else:  # both eras' models (a third of a wrap's start): loaded by the first 2026-era request
    types = lazy_module("mcp_types")
    spec_methods = lazy_module("mcp_types.methods")

logger = logging.getLogger(__name__)

_SERVED = frozenset({*FORWARDED_METHODS, "initialize", era.DISCOVER})
"""Requests that are recorded and answered (every other one but `ping` is METHOD_NOT_FOUND, recorded too)."""
_MODERN_ONLY_KEYS = ("resultType", "ttlMs", "cacheScope")
"""Result fields of the 2026-07-28 era: the SDK's serializer drops them from a handshake-era answer."""
HOT_METHODS = frozenset(FORWARDED_METHODS)
"""What the relay serves in the 2026-07-28 era (`server/discover`, the rest and errors go to the SDK's server)."""


class Relay:
    """Serves the requests for one upstream server, through its `ProxyServer`."""

    hot_methods = HOT_METHODS

    def __init__(self, proxy: ProxyServer, recorder: CallRecorder) -> None:
        self.proxy = proxy
        self.audit = AuditHook(recorder)

    @property
    def name(self) -> str:
        return self.proxy.upstream.name

    async def answer(self, flow: Flow) -> tuple[bytes, int | None]:
        """The encoded JSON-RPC answer to `flow`'s request, and its error code (None for a result)."""
        return await encoded_answer(flow, self._serve)

    async def _serve(self, flow: Flow) -> dict[str, Any]:
        method = flow.method
        if method == "ping":
            era.refuse_undefined(flow)  # the 2026-07-28 era has no `ping`
            return {}
        name = (flow.params or {}).get("name") if method == "tools/call" else None
        flow.tool = name if isinstance(name, str) else None
        target = Target(self.name, flow.tool)
        return await self.audit.around(flow, target, self.proxy.hub, flow.endpoint, lambda: self._dispatch(flow))

    async def _dispatch(self, flow: Flow) -> dict[str, Any]:
        method = flow.method
        era.refuse_undefined(flow)
        if method not in _SERVED or (method == era.DISCOVER and not era.is_modern(flow)):
            era.refuse_unserved(flow)
        if method == "initialize":
            return await self._initialize(flow)
        if method == era.DISCOVER:
            result = await era.discover(flow, self.proxy, self._upstream_ready)
            return for_era(flow, method, result, self.proxy)
        if not params_ok(method, flow.params):
            raise invalid_params(method)
        era.refuse_before_handshake(flow)
        raw = outbound_params(flow.params)
        if method == "tools/call":
            params = flow.params or {}
            assert flow.tool is not None
            result = dumped(await self.proxy.call_tool(flow, flow.tool, params.get("arguments") or {}, raw))
        else:
            result = await self.proxy.relay(flow, method, raw)
        return for_era(flow, method, result, self.proxy)

    async def _initialize(self, flow: Flow) -> dict[str, Any]:
        """The handshake, with the upstream's identity and capabilities (`ProxyServer.get_capabilities`)."""
        return await handshake(flow, self.proxy, self._upstream_ready)

    async def _upstream_ready(self) -> None:
        try:
            await self.proxy.upstream.ensure_started()
        except UpstreamUnavailable as exc:
            raise RpcError(jsonrpc.INTERNAL_ERROR, f"Bastion: {exc}") from exc
        self.proxy.adopt_upstream_identity()

    async def notified(self, flow_session: Any, notification: jsonrpc.Notification) -> None:
        """A notification from the agent on a handshake-era session: cancellation, roots changed."""
        method = notification.method
        params = notification.params or {}
        if method == "notifications/cancelled":
            flow_session.cancel(params.get("requestId"))
        elif method == "notifications/roots/list_changed":
            try:
                await self.proxy.upstream.notify("notifications/roots/list_changed", None)
            except Exception:
                logger.exception("could not tell server %r that the agent's roots changed", self.name)


async def encoded_answer(flow: Flow, serve: Callable[[Flow], Awaitable[dict[str, Any]]]) -> tuple[bytes, int | None]:
    """The encoded JSON-RPC answer `serve` gives `flow`'s request, and its error code (None for a result).

    Never raises but cancellation. Errors are mapped as the SDK maps them for the era."""
    request_id = flow.request_id
    assert request_id is not None
    modern = flow.protocol_version in MODERN_PROTOCOL_VERSIONS
    try:
        result = await serve(flow)
    except ValidationError:
        code = jsonrpc.INVALID_PARAMS
        return jsonrpc.error_bytes(request_id, code, "Invalid request parameters", ""), code
    except Exception as exc:
        if (error := rpc_error(exc)) is not None:
            return jsonrpc.error_bytes(request_id, error.code, error.message, error.data), error.code
        logger.exception("handler for %r raised", flow.method)
        if modern:
            code = jsonrpc.INTERNAL_ERROR
            return jsonrpc.error_bytes(request_id, code, "Internal server error"), code
        return jsonrpc.error_bytes(request_id, 0, str(exc)), 0  # what the SDK's dispatcher answers
    return jsonrpc.result_bytes(request_id, result), None


def for_era(flow: Flow, method: str, result: dict[str, Any], server: ServedIdentity) -> dict[str, Any]:
    """A result as the SDK's server sends it in `flow`'s era: what a 2026-era result gains
    (cache hints, private and never cached across agents; `resultType`; `server`'s identity
    stamp in `_meta`), or what a handshake-era one loses (the 2026-only fields)."""
    if flow.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        for key in _MODERN_ONLY_KEYS:  # a 2026-era upstream's, which the handshake-era wire has no room for
            result.pop(key, None)
        return result
    if method in spec_methods.CACHEABLE_METHODS and result.get("resultType") != "input_required":
        result = {"ttlMs": 0, "cacheScope": "private", **result}
    if result.get("resultType") is None:
        result["resultType"] = "complete"
    meta = result.get("_meta")
    if meta is None:
        result["_meta"] = {SERVER_INFO_META_KEY: server.server_info_stamp}
    elif isinstance(meta, dict) and meta.get(SERVER_INFO_META_KEY) is None:
        result["_meta"] = {**meta, SERVER_INFO_META_KEY: server.server_info_stamp}
    return result


async def handshake(
    flow: Flow, server: ServedIdentity, ready: Callable[[], Awaitable[None]] | None = None
) -> dict[str, Any]:
    """`initialize` answered as the SDK's server answers it: version negotiation, the server's
    identity and capabilities (`create_initialization_options`, once `ready` has run).

    The SDK's server also checks the request, and shapes the answer, with the 2025-11-25 era's
    own models (`mcp_types.methods`). Both are no-ops here: the protocol-wide models accept no
    request the era's refuse (they are the stricter of the two), and the era's shaping returns
    an answer built as theirs unchanged. So the era's models, a third of what a `bastion wrap`
    imports, are not loaded for the handshake; the property tests in
    `tests/unit/relay/test_handshake_models.py` hold both facts for the SDK installed. Nor are
    the protocol-wide ones, for a request of the plain shape agents send
    (`handshake_shapes.client_initialize_version`): the answer is built from the served
    identity's wire form, as `InitializeResult` dumps it."""
    version = handshake_shapes.client_initialize_version(flow.params or {})
    if version is None:
        version = types.InitializeRequestParams.model_validate(flow.params or {}, by_name=False).protocol_version
    negotiated = version if version in HANDSHAKE_PROTOCOL_VERSIONS else LATEST_HANDSHAKE_VERSION
    if ready is not None:
        await ready()
    options = server.create_initialization_options()
    answer: dict[str, Any] = {
        "protocolVersion": negotiated,
        "capabilities": options.capabilities,
        "serverInfo": implementation_wire(
            options.server_name,
            options.server_version,
            options.title,
            options.description,
            options.website_url,
            options.icons,
        ),
    }
    if options.instructions is not None:
        answer["instructions"] = options.instructions
    if flow.session.session is not None:
        flow.session.session.protocol_version = negotiated
    return answer


def dumped(result: Any) -> dict[str, Any]:
    """A handler's result as a dict (a model dumped as the wire has it)."""
    if isinstance(result, BaseModel):
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return dict(result)
