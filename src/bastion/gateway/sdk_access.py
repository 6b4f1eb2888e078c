"""The few places Bastion reads past the MCP SDK's public surface, kept in one file.

`ServerRequestContext` hands handlers a per-request `ServerSession`, but the proxy also
needs the connection it belongs to (to notify that agent later, outside any request).
If an SDK upgrade moves these attributes, `tests/unit/gateway/test_sdk_access.py` fails.
"""

from __future__ import annotations

from typing import Any

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The connection (one agent session) a request arrived on."""
    connection = ctx.session._connection
    assert isinstance(connection, Connection)
    return connection
