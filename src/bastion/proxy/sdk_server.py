"""The SDK's lowlevel `Server` for a `ProxyServer` or `AggregateServer`: built on first use.

Bastion's relay serves agents without it; the SDK's stack is the reference path
(`BASTION_RELAY=0`), and serves what the relay hands on (2026-07-28 requests over HTTP it
does not serve itself, such as `server/discover`; over stdio the relay serves both eras). Importing this
module imports the SDK's server stack, so only the `sdk` property of the served servers does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast

import mcp_types as types
from mcp.server.caching import CACHEABLE_METHODS, CacheableMethod, CacheHint
from mcp.server.context import ServerMiddleware
from mcp.server.lowlevel import NotificationOptions, Server

from bastion.proxy.identity import ServedIdentity

SdkHandler = Callable[[Any, Any], Awaitable[Any]]


class SdkServed(Protocol):
    """What the SDK server asks of the Bastion server it adapts."""

    def sdk_requests(self) -> dict[str, tuple[type[types.RequestParams], SdkHandler]]: ...

    def sdk_notifications(self) -> dict[str, SdkHandler]: ...

    def sdk_middleware(self) -> list[ServerMiddleware[Any]]: ...


class SdkServer(Server[Any]):
    """Serves `served` through the SDK: its handlers, middleware, identity and capabilities."""

    def __init__(self, served: ServedIdentity) -> None:
        # Agents may see different tool lists later (policy hides tools), so results are
        # private to their authorization context and never cached across agents.
        private = CacheHint(ttl_ms=0, scope="private")
        hints = {cast("CacheableMethod", method): private for method in CACHEABLE_METHODS}
        # The SDK's Mcp-Param header check would list tools upstream (unauthenticated, unaudited)
        # before every 2026-era call; the upstream validates its own inputs, so it is off.
        super().__init__(served.name, version=served.version, cache_hints=hints, get_tool_input_schema=_no_schema)
        self.served = served
        adapted = cast("SdkServed", served)
        self.middleware = adapted.sdk_middleware()
        for method, (params, handler) in adapted.sdk_requests().items():
            self.add_request_handler(method, params, handler)
        for method, notified in adapted.sdk_notifications().items():
            self.add_notification_handler(method, types.NotificationParams, notified)
        self.copy_identity()

    def copy_identity(self) -> None:
        served = self.served
        self.name = served.name
        self.version = served.version
        self.title = served.title
        self.instructions = served.instructions
        self.__dict__.pop("_server_info_stamp_source", None)

    def get_capabilities(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> types.ServerCapabilities:
        return self.served.get_capabilities(protocol_version=protocol_version)


def _no_schema(tool: str) -> None:
    return None
