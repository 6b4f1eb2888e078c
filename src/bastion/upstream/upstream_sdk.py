"""An upstream session through the MCP SDK's client stack: the reference, and the legacy HTTP+SSE client.

`Upstream` opens its sessions on Bastion's own JSON-RPC session (`bastion.upstream`) by
default; this is the same session through the SDK's `ClientSession` and dispatcher, which
the differential tests run beside it (`Upstream(..., client="sdk")`) and which serves the
legacy HTTP+SSE transport, an exotic one Bastion does not speak itself.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.dispatcher import CallOptions, ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.jsonrpc_dispatcher import JSONRPCDispatcher
from pydantic import BaseModel

from bastion.mcp_names import REQUEST_TIMEOUT, UNSUPPORTED_PROTOCOL_VERSION
from bastion.rpc_error import RpcError
from bastion.upstream.handshake import UpstreamInfo
from bastion.upstream.jsonrpc_session import NotificationHandler, ServerRequestHandler
from bastion.upstream.sdk_access import parsed_endpoint
from bastion.upstream.wire import RequestId

__all__ = ["SdkSession", "open_sdk_session", "with_client"]

logger = logging.getLogger(__name__)


class SdkSession:
    """A `ClientSession` and its dispatcher, with the call shape of `JsonRpcSession` (error replies: `RpcError`)."""

    failure: BaseException | None = None
    """Always None: a failing SDK transport raises out of the session's context instead."""

    def __init__(self, dispatcher: _WatchedDispatcher, session: ClientSession) -> None:
        self._dispatcher = dispatcher
        self._session = session
        self.closed = dispatcher.closed

    async def request(
        self,
        method: str,
        params: Mapping[str, Any] | None,
        *,
        time_limit: float | None = None,
        on_progress: ProgressFnT | None = None,
        headers: Mapping[str, str] | None = None,
        request_id: RequestId | None = None,
        cancellable: bool = True,
    ) -> dict[str, Any]:
        opts: CallOptions = {"headers": dict(headers or {})}
        if time_limit is not None:
            opts["timeout"] = time_limit
        if on_progress is not None:
            opts["on_progress"] = on_progress
        if request_id is not None:
            opts["request_id"] = request_id
        if not cancellable:
            opts["cancel_on_abandon"] = False
        try:
            return await self._dispatcher.send_raw_request(method, params, opts)
        except MCPError as exc:  # Bastion's code reads error replies as its own `RpcError`
            raise RpcError.from_error_data(exc.error) from exc

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, *, headers: Mapping[str, str] | None = None
    ) -> None:
        notification: types.Notification[Any, Any] = types.Notification(method=method, params=dict(params or {}))
        await self._session.send_notification(notification)  # type: ignore[arg-type]


async def open_sdk_session(
    stack: AsyncExitStack,
    transport: Any,
    *,
    name: str,
    client_info: types.Implementation,
    on_server_request: ServerRequestHandler,
    on_notification: NotificationHandler,
) -> tuple[SdkSession, UpstreamInfo]:
    """Enter `transport` (an SDK client transport) and a `ClientSession` on it; negotiate the era."""
    read, write = await stack.enter_async_context(transport)
    dispatcher = _WatchedDispatcher(read, write)
    callbacks = _Callbacks(name, on_server_request, on_notification)
    session = ClientSession(
        dispatcher=dispatcher,
        sampling_callback=callbacks.sampling,
        elicitation_callback=callbacks.elicitation,
        list_roots_callback=callbacks.list_roots,
        message_handler=callbacks.message,
        client_info=client_info,
    )
    await stack.enter_async_context(session)
    return SdkSession(dispatcher, session), await _negotiate(session)


@asynccontextmanager
async def with_client(client: httpx2.AsyncClient, url: str) -> AsyncIterator[Any]:
    """The SDK's Streamable HTTP transport through `client` (closed on exit)."""
    async with client, streamable_http_client(parsed_endpoint(url), http_client=client) as streams:
        yield streams


class _Callbacks:
    """The `ClientSession` callbacks, handing server requests and notifications to the gateway's handlers."""

    def __init__(self, name: str, on_request: ServerRequestHandler, on_notification: NotificationHandler) -> None:
        self._name = name
        self._on_request = on_request
        self._on_notification = on_notification

    async def sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools:
        raw = await self._relay("sampling/createMessage", params)
        if params.tools:
            return types.CreateMessageResultWithTools.model_validate(raw)
        return types.CreateMessageResult.model_validate(raw)

    async def elicitation(self, context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        raw = await self._relay("elicitation/create", params)
        return types.ElicitResult.model_validate(raw)

    async def list_roots(self, context: ClientRequestContext) -> types.ListRootsResult:
        raw = await self._relay("roots/list", None)
        return types.ListRootsResult.model_validate(raw)

    async def _relay(self, method: str, params: Any) -> dict[str, Any]:
        dumped = params.model_dump(by_alias=True, mode="json", exclude_none=True) if params is not None else {}
        try:
            return await self._on_request(method, dumped)
        except RpcError as exc:  # the SDK answers the server with its own error type only
            raise exc.as_sdk() from exc

    async def message(self, message: Any) -> None:
        if isinstance(message, Exception):
            logger.debug("upstream %s transport error: %r", self._name, message)
            return
        if isinstance(message, types.ProgressNotification):
            return  # routed to the waiting request by the dispatcher
        dumped = message.model_dump(by_alias=True, mode="json", exclude_none=True)
        await self._on_notification(dumped["method"], dumped.get("params") or {})


async def _negotiate(session: ClientSession) -> UpstreamInfo:
    """Speak the newest era the server offers: `server/discover` first, else the handshake."""
    try:
        discovered = await session.discover()
    except MCPError as probe:
        try:
            initialized = await session.initialize()
        except MCPError as refused:
            # A server slow to start (over the SDK's 10 s probe timeout) answers the late probe,
            # which settles it on the stateless era, and then refuses the handshake: probe again.
            if probe.code != REQUEST_TIMEOUT or refused.code != UNSUPPORTED_PROTOCOL_VERSION:
                raise
            discovered = await session.discover()
            return _discovered(session, discovered)
        return UpstreamInfo(
            protocol_version=initialized.protocol_version,
            server_info=_wire(initialized.server_info),
            capabilities=_wire(initialized.capabilities),
            instructions=initialized.instructions,
        )
    return _discovered(session, discovered)


def _discovered(session: ClientSession, discovered: types.DiscoverResult) -> UpstreamInfo:
    return UpstreamInfo(
        protocol_version=session.protocol_version or discovered.supported_versions[-1],
        server_info=_wire(session.server_info) if session.server_info is not None else None,
        capabilities=_wire(discovered.capabilities),
        instructions=discovered.instructions,
    )


def _wire(model: BaseModel) -> dict[str, Any]:
    """What `UpstreamInfo` keeps of a model: its wire form."""
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


class _WatchedDispatcher(JSONRPCDispatcher[Any]):
    """A dispatcher that says when its receive loop has ended (the transport closed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.closed = anyio.Event()

    async def run(self, *args: Any, **kwargs: Any) -> None:
        try:
            await super().run(*args, **kwargs)
        finally:
            self.closed.set()
