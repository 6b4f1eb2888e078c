"""Fails when an SDK upgrade moves what `bastion.gateway.sdk_access` reads past the public surface."""

from __future__ import annotations

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession

from bastion.gateway.sdk_access import connection_of


class _NoOutbound:
    async def send_raw_request(self, method, params, opts=None):
        raise AssertionError("unused")

    async def notify(self, method, params, opts=None):
        raise AssertionError("unused")


def test_connection_of_returns_the_session_connection():
    connection = Connection(_NoOutbound(), protocol_version="2025-11-25")
    session = ServerSession(_NoOutbound(), connection)  # type: ignore[arg-type]
    ctx = ServerRequestContext(session=session, lifespan_context={}, protocol_version="2025-11-25", method="ping")
    assert connection_of(ctx) is connection
