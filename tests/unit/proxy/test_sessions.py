"""The session a request belongs to, for the checks that remember per session (proxy/sessions.py)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mcp.server.connection import Connection

from bastion.proxy.sessions import session_of


def ctx_on(connection: Connection) -> Any:
    return SimpleNamespace(session=SimpleNamespace(_connection=connection))


def connection(version: str, session_id: str | None = None) -> Connection:
    return Connection(SimpleNamespace(), protocol_version=version, session_id=session_id)  # type: ignore[arg-type]


def test_a_streamable_http_session_is_named_by_its_session_id_on_every_replica() -> None:
    assert session_of(ctx_on(connection("2025-11-25", "abc123"))) == "mcp:abc123"
    assert session_of(ctx_on(connection("2025-06-18", "abc123"))) == "mcp:abc123"


def test_a_connection_without_an_id_is_a_session_of_its_own() -> None:
    stdio, other = connection("2025-11-25"), connection("2025-11-25")
    first = session_of(ctx_on(stdio))
    assert first is not None
    assert first.startswith("conn:")
    assert session_of(ctx_on(stdio)) == first, "every request of the connection: the same session"
    assert session_of(ctx_on(other)) != first


def test_the_stateless_era_has_no_session() -> None:
    assert session_of(ctx_on(connection("2026-07-28", "abc123"))) is None


def test_a_request_without_a_connection_has_no_session() -> None:
    assert session_of(SimpleNamespace(session=None)) is None  # type: ignore[arg-type]
