"""A uvicorn server for a program that embeds it (a test run, an application): signals stay the host's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn


class EmbeddedServer(uvicorn.Server):
    """Installs no SIGINT/SIGTERM handlers and re-raises none.

    A plain `uvicorn.Server` takes SIGINT for itself while it serves: the first Ctrl-C only
    stops the server, and is re-raised once it has stopped unless its serving was cancelled
    first, when it is lost. Embedded, the host's Ctrl-C interrupts the host at once.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
