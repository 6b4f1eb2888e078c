"""An ASGI app built by its first request, for parts of the gateway few requests reach (the dashboard).

An idle gateway serving agents never renders a page: the dashboard's modules, templates and
their engine (jinja2, about 2 MB resident) are imported when someone first opens it. The
build runs once; a build that fails fails that request (a 500, nothing served) and is tried
again by the next one.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LazyApp"]


class LazyApp:
    """Stands in for the app `build()` returns; the first request builds it (once), every request is its."""

    def __init__(self, build: Callable[[], ASGIApp]) -> None:
        self._build = build
        self._app: ASGIApp | None = None
        self._lock = anyio.Lock()

    @property
    def built(self) -> bool:
        return self._app is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            async with self._lock:
                if self._app is None:
                    self._app = self._build()
                app = self._app
        await app(scope, receive, send)
