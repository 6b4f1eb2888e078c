"""A JSON-RPC error reply as Bastion's own code raises and catches it, without the SDK.

The relay and Bastion's upstream client raise `RpcError`. The SDK's `MCPError` is the same
thing on the SDK's side: its server turns one raised by a handler into the error reply (so
Bastion's SDK middleware converts at that boundary, `as_sdk`), and its client raises one for
an error reply (the reference path). `rpc_error` reads either, without importing the SDK:
importing any part of it loads its client and server stacks (about 15 MB resident), and
`mcp_types` (for `error`) is imported by the first use.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp_types import ErrorData

__all__ = ["RpcError", "rpc_error"]


class RpcError(Exception):
    """An error reply: `code`, `message` and `data` as JSON-RPC carries them (the SDK's `MCPError` shape)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(code, message, data)
        self.code = code
        self.message = message
        self.data = data

    @property
    def error(self) -> ErrorData:
        from mcp_types import ErrorData  # the protocol-wide models, not loaded by a wrap's start

        if self.data is None:
            return ErrorData(code=self.code, message=self.message)
        return ErrorData(code=self.code, message=self.message, data=self.data)

    def reply(self) -> dict[str, Any]:
        """The JSON-RPC `error` member."""
        return self.error.model_dump(by_alias=True, mode="json", exclude_none=True)

    def as_sdk(self) -> Exception:
        """The SDK's `MCPError` with the same code, message and data (for the SDK's server to answer with)."""
        from mcp.shared.exceptions import MCPError

        return MCPError(code=self.code, message=self.message, data=self.data)

    @classmethod
    def from_error_data(cls, error: ErrorData) -> RpcError:
        return cls(error.code, error.message, error.data)

    def __str__(self) -> str:
        return self.message


def rpc_error(exc: BaseException) -> RpcError | None:
    """`exc` as an `RpcError` when it is one, or the SDK's `MCPError` (then converted); None otherwise."""
    if isinstance(exc, RpcError):
        return exc
    sdk = sys.modules.get("mcp.shared.exceptions")  # an MCPError exists only once the SDK is loaded
    if sdk is not None and isinstance(exc, sdk.MCPError):
        return RpcError.from_error_data(exc.error)
    return None
