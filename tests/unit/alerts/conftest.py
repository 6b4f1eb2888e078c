"""A real webhook receiver: a Starlette app served by uvicorn on loopback, in the test's loop."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.front.embedded_server import EmbeddedServer


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass
class Received:
    body: bytes
    headers: dict[str, str]


@dataclass
class Receiver:
    """Records each POST; answers with `statuses` in turn (then 200)."""

    url: str = ""
    requests: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    async def handle(self, request: Request) -> Response:
        self.requests.append(Received(await request.body(), dict(request.headers)))
        self._changed.set()
        self._changed = anyio.Event()
        return Response(status_code=self.statuses.pop(0) if self.statuses else 200)

    async def wait_for(self, count: int) -> list[Received]:
        """Wait (bounded by the caller's fail_after) until `count` requests arrived."""
        while len(self.requests) < count:
            await self._changed.wait()
        return self.requests


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    made = Receiver()
    app = Starlette(routes=[Route("/hook", made.handle, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    made.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    server = EmbeddedServer(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        yield made
        server.should_exit = True
    sock.close()
