"""The gateway's listening sockets: bound here, recorded for `bastion servers`, closed on the way down."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from bastion.config import BastionConfig

if TYPE_CHECKING:  # uvicorn is imported when HTTP is served, not by `bastion wrap`
    import uvicorn


def running_url_file(config: BastionConfig) -> Path:
    """Where a serving gateway records the URL it is reachable at (for `bastion servers`)."""
    return config.data_dir / "gateway.url"


def stop_listening(server: uvicorn.Server) -> None:
    """Stop accepting connections and close the open ones once idle (how uvicorn's shutdown begins)."""
    for listener in getattr(server, "servers", ()):  # set by its startup
        listener.close()
    for connection in list(server.server_state.connections):
        connection.shutdown()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; OSError names the address when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on accepted sockets whose
    # proto says TCP, and without it Nagle holds a response body behind its headers until the
    # client's delayed ACK (40 ms a request on a kept-alive connection).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.listen(2048)
    # Not inheritable (Python's default, said again because uvicorn's own bind_socket marks
    # it inheritable for its worker processes, and this one was once copied from it): Bastion
    # serves it in-process, and a process it spawns must never hold it.
    sock.set_inheritable(False)
    return sock
