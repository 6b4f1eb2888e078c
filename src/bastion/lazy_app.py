"""An ASGI app built by its first request, for parts of the gateway few requests reach (the dashboard).

An idle gateway serving agents never renders a page: the dashboard's modules, templates and
their engine (jinja2, about 2 MB resident) are imported when someone first opens it, in a
worker thread (the event loop keeps serving agents meanwhile), and the app is then built on
the loop. The build runs once; a build that fails fails that request (a 500, nothing served)
and is tried again by the next one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["LazyApp"]


class LazyApp:
    """Stands in for the app `build()` returns; the first request builds it (once), every request is its."""

    def __init__(self, build: Callable[[], ASGIApp], *, preload: Sequence[str] = ()) -> None:
        """`preload`: modules `build` imports, imported first in a worker thread."""
        self._build = build
        self._preload = tuple(preload)
        self._app: ASGIApp | None = None
        self._lock = anyio.Lock()

    @property
    def built(self) -> bool:
        return self._app is not None

    @property
    def app(self) -> ASGIApp:
        """The app, built now (on this thread) if no request has built it yet: for looking into it, as
        one does through a middleware's `app`; requests go through `__call__`."""
        if self._app is None:
            for module in self._preload:
                importlib.import_module(module)
            self._app = self._build()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self._app
        if app is None:
            async with self._lock:
                if self._app is None:
                    for module in self._preload:
                        await anyio.to_thread.run_sync(importlib.import_module, module)
                    self._app = self._build()
                app = self._app
        await app(scope, receive, send)
