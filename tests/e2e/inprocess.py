"""A gateway run inside the test's event loop, for tests that plug in checks or inject faults.

The front door, the upstream servers and the clients stay real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from bastion.gateway.gateway import Gateway


@asynccontextmanager
async def serving(gateway: Gateway) -> AsyncIterator[Gateway]:
    async with gateway.running(), anyio.create_task_group() as tg:
        ready = anyio.Event()
        # The test run keeps SIGINT: one Ctrl-C interrupts it (uvicorn would take it to stop serving).
        tg.start_soon(partial(gateway.serve_http, ready=ready, handle_signals=False))
        await ready.wait()
        yield gateway
        tg.cancel_scope.cancel()


@asynccontextmanager
async def http_client(gateway: Gateway, server: str, bearer: str, mode: str = "legacy") -> AsyncIterator[Client]:
    url = f"{gateway.base_url}/servers/{server}/mcp"
    async with (
        # Generous read timeout: a held call waits for a person (here a CLI process, slow on a busy host).
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=60) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        yield client
