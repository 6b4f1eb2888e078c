"""The agent session a request belongs to, as the checks that remember per session name it.

A handshake-era connection is a session: a Streamable HTTP session (named by its
`Mcp-Session-Id`, the same on every replica), a legacy SSE session, a stdio connection (`bastion
wrap`). The stateless 2026 era has no session: each request stands alone, so it has none (the
checks then remember per agent only).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from bastion.mcp_names import MODERN_PROTOCOL_VERSIONS
from bastion.upstream.sdk_access import connection_of

if TYPE_CHECKING:
    from mcp.server.context import ServerRequestContext

_KEY = "bastion.session"


def session_of(ctx: ServerRequestContext[Any, Any]) -> str | None:
    """`mcp:<Mcp-Session-Id>` or `conn:<id>` (a session without a transport id), or None (none)."""
    try:
        connection = connection_of(ctx)
    except (AttributeError, AssertionError):
        return None
    if connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    named = connection.state.get(_KEY)
    if not isinstance(named, str):
        named = f"mcp:{connection.session_id}" if connection.session_id else f"conn:{uuid.uuid4().hex}"
        connection.state[_KEY] = named
    return named
