"""What a server sends on its own, read as the SDK's `ClientSession` reads it, for the gateway's handlers.

Server-to-client requests: `ping` is answered here; sampling, elicitation and roots go to
the gateway's request handler, with their params checked and normalised by the protocol
version's own models (`mcp_types.methods`); any other method is refused (METHOD_NOT_FOUND).
Notifications the negotiated version defines go to the notification handler the same
way; progress and cancellation are the session's own business, the rest is dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from bastion.lazy_import import lazy_module
from bastion.mcp_names import METHOD_NOT_FOUND
from bastion.rpc_error import RpcError
from bastion.upstream.jsonrpc_session import NotificationHandler, ServerRequestHandler

if TYPE_CHECKING:
    from mcp_types import methods as spec_methods
else:  # both eras' models: loaded by the first message a server sends on its own, not at start
    spec_methods = lazy_module("mcp_types.methods")

__all__ = ["ServerMessages"]

logger = logging.getLogger(__name__)

_FALLBACK_VERSION = "2025-11-25"
"""Read messages by this version until one is negotiated (the SDK's own fallback)."""


class ServerMessages:
    """Reads a server's requests and notifications for the gateway's handlers."""

    def __init__(self, on_request: ServerRequestHandler, on_notification: NotificationHandler) -> None:
        self._on_request = on_request
        self._on_notification = on_notification
        self.version: str | None = None
        """The negotiated protocol version, once known."""

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """The result of a server-to-client request. Raises `RpcError` (or `ValidationError` for bad params)."""
        try:
            request = spec_methods.parse_server_request(method, self.version or _FALLBACK_VERSION, params)
        except KeyError:
            raise RpcError(METHOD_NOT_FOUND, "Method not found", method) from None
        if method == "ping":
            return {}
        body = request.params.model_dump(by_alias=True, mode="json", exclude_none=True) if request.params else {}
        return await self._on_request(method, body)

    async def notification(self, method: str, params: dict[str, Any]) -> None:
        try:
            notification = spec_methods.parse_server_notification(method, self.version or _FALLBACK_VERSION, params)
        except KeyError:
            logger.debug("dropped %r: not defined at %s", method, self.version)
            return
        except ValidationError:
            logger.warning("Failed to validate notification: %s", method, exc_info=True)
            return
        dumped = notification.model_dump(by_alias=True, mode="json", exclude_none=True)
        await self._on_notification(method, dumped.get("params") or {})
