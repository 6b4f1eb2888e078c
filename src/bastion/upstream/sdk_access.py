"""The few places Bastion reads past the MCP SDK's public surface, kept in one file.

`ServerRequestContext` hands handlers a per-request `ServerSession`, but the proxy also
needs the connection it belongs to (to notify that agent later, outside any request).
The Streamable HTTP client transport is typed to take its endpoint as a string, which
httpx2 then parses again for every POST; it hands the value to httpx2 untouched, so a
URL parsed once is accepted too and saves that work on every forwarded call. Bastion's own
Streamable HTTP client follows redirects by the SDK's rule (`stream_within_origin`, kept with
that client in `bastion.upstream.origin` and named here so this file's test covers it).
If an SDK upgrade changes either, `tests/unit/upstream/test_sdk_access.py` fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from bastion.upstream.origin import stream_within_origin as stream_within_origin

if TYPE_CHECKING:  # the SDK's server is loaded by then: these run on its requests only
    from mcp.server.connection import Connection
    from mcp.server.context import ServerRequestContext


def connection_of(ctx: ServerRequestContext[Any, Any]) -> Connection:
    """The connection (one agent session) a request arrived on."""
    from mcp.server.connection import Connection

    connection = ctx.session._connection
    assert isinstance(connection, Connection)
    return connection


def parsed_endpoint(url: str) -> str:
    """`url` parsed once, for `streamable_http_client(url, ...)`: httpx2 takes a parsed URL
    as is, where it would parse a string again on every request (about 45 µs a POST)."""
    import httpx2

    return cast("str", httpx2.URL(url))
