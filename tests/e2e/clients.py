"""How the tests connect a real SDK client to Bastion through each front door."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp import Client
from mcp.client.sse import sse_client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.conftest import BASTION, RunningGateway

FRONT_DOORS = ("http", "sse", "wrap")
MODES = ("legacy", "2026-07-28")


@asynccontextmanager
async def connect(
    gateway: RunningGateway,
    server: str,
    *,
    front: str = "http",
    mode: str = "legacy",
    token: str | None = None,
    **client_options: Any,
) -> AsyncIterator[Client]:
    """A connected `mcp.Client` reaching `server` through Bastion's `front` door."""
    if front == "http":
        async with httpx2.AsyncClient(headers=gateway.headers(token), timeout=60) as http:
            transport = streamable_http_client(gateway.url(server), http_client=http)
            async with Client(transport, mode=mode, **client_options) as client:
                yield client
    elif front == "sse":
        transport = sse_client(gateway.url(server, "sse"), headers=gateway.headers(token))
        async with Client(transport, mode=mode, **client_options) as client:
            yield client
    elif front == "wrap":
        params = StdioServerParameters(
            command=BASTION, args=["wrap", "--config", str(gateway.config_path), "--server", server]
        )
        async with Client(params, mode=mode, **client_options) as client:
            yield client
    else:
        raise ValueError(front)


def progress_recorder() -> tuple[list[tuple[float, float | None, str | None]], Callable[..., Awaitable[None]]]:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    return seen, on_progress
