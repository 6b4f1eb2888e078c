"""A real webhook receiver for e2e tests: Starlette under uvicorn on loopback, in the test's loop."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.front.embedded_server import EmbeddedServer


@dataclass
class WebhookReceiver:
    url: str = ""
    alerts: list[dict[str, Any]] = field(default_factory=list)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    async def handle(self, request: Request) -> Response:
        self.alerts.append(json.loads(await request.body()))
        self._changed.set()
        self._changed = anyio.Event()
        return Response(status_code=204)

    async def wait_for_kind(self, kind: str) -> dict[str, Any]:
        """The first alert of `kind`, once it arrives (bound the wait with fail_after)."""
        while True:
            for alert in self.alerts:
                if alert["kind"] == kind:
                    return alert
            await self._changed.wait()

    async def wait_for_count(self, kind: str, count: int) -> list[dict[str, Any]]:
        """The alerts of `kind`, once there are at least `count` (bound the wait with fail_after)."""
        while True:
            found = [alert for alert in self.alerts if alert["kind"] == kind]
            if len(found) >= count:
                return found
            await self._changed.wait()


@asynccontextmanager
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    app = Starlette(routes=[Route("/hook", receiver.handle, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    receiver.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    server = EmbeddedServer(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            yield receiver
            server.should_exit = True
    finally:
        sock.close()
