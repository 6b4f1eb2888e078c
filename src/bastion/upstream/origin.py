"""Redirects followed by the SDK's rule: only within the endpoint's origin (a redirect elsewhere
would take the configured headers along). Reads past the SDK's public surface: if an SDK upgrade
changes it, `tests/unit/upstream/test_sdk_access.py` fails."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx2

__all__ = ["stream_within_origin"]


def stream_within_origin(
    client: httpx2.AsyncClient, method: str, url: httpx2.URL | str, **kwargs: Any
) -> AbstractAsyncContextManager[httpx2.Response]:
    """`client.stream(...)` following redirects only within the endpoint's origin, as the SDK's own
    Streamable HTTP transport does. The SDK is imported by the first request (to an HTTP server)."""
    from mcp.shared._httpx_utils import stream_within_origin as _stream_within_origin

    return _stream_within_origin(client, method, url, **kwargs)
