"""The egress proxy: HTTP CONNECT (for TLS) and plain HTTP forwarding, on a Unix socket.

One proxy per sandboxed server with `network: allowlist`, so every connection is
attributed to its server. The proxy resolves names itself (there is no DNS inside the
sandbox), checks the name against the allowlist and every resolved address against the
address rules (`EgressPolicy`), and reports each attempt as an `EgressAllowed` or
`EgressBlocked` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bastion.runtime.egress.policy import EgressPolicy
from bastion.runtime.events import EgressAllowed, EgressBlocked, RuntimeEventSink

__all__ = ["EgressProxy", "ResolverForTests"]

logger = logging.getLogger(__name__)

_MAX_HEAD = 64 * 1024
_HEAD_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 10.0
_DROPPED_HEADERS = frozenset({"host", "proxy-connection", "proxy-authorization", "connection", "keep-alive"})


@dataclass(frozen=True, slots=True)
class ResolverForTests:
    """FOR TESTS ONLY: resolve listed names to fixed local addresses, skipping the address rules.

    Lets a test serve an "allowlisted domain" from a local HTTP server. It can only be given
    to `EgressProxy` in code (there is no configuration key for it), so production cannot
    turn it on by accident. Names not listed are resolved normally.
    """

    mapping: Mapping[str, tuple[str, int]]


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class EgressProxy:
    """Serves one server's sandbox on `socket_path` while `serve()` runs."""

    def __init__(
        self,
        server: str,
        policy: EgressPolicy,
        sink: RuntimeEventSink,
        socket_path: Path,
        *,
        resolver: ResolverForTests | None = None,
    ) -> None:
        self.server = server
        self.policy = policy
        self.sink = sink
        self.socket_path = socket_path
        self._resolver = resolver
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.socket_path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._handle, path=str(self.socket_path))
        self.socket_path.chmod(0o600)

    async def close(self) -> None:
        """Stop listening and end every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections))
        self.socket_path.unlink(missing_ok=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._proxy(reader, writer)
        except asyncio.CancelledError:
            # This is the connection's own top-level task (asyncio's server made it): end it
            # quietly, or Python 3.11 logs the cancellation as an error.
            pass
        except Exception:
            logger.debug("egress connection from %s failed", self.server, exc_info=True)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        if len(head) > _MAX_HEAD:
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await _respond(writer, 400, "malformed request line")
            return
        method, target, _version = parts
        try:
            host, port, first = _destination(method, target, lines[1:])
        except _Refused as refused:
            await _respond(writer, refused.status, refused.reason)
            return
        try:
            address, upstream_reader, upstream_writer = await self._open(host, port)
        except _Refused as refused:
            self.sink.emit(EgressBlocked(self.server, host, port, method, refused.reason))
            await _respond(writer, refused.status, refused.reason)
            return
        if method == "CONNECT":
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            bytes_out = 0
        else:
            upstream_writer.write(first)
            bytes_out = len(first)
        counted = _Counts()
        outbound = asyncio.ensure_future(_pipe(reader, upstream_writer, counted, "out"))
        try:
            # The connection lasts as long as the destination talks: once it closes, so does
            # the sandbox's side (a client keeping the proxy connection alive gets nothing more).
            await _pipe(upstream_reader, writer, counted, "back")
        except OSError:
            pass
        finally:
            outbound.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await outbound
            upstream_writer.close()
        self.sink.emit(EgressAllowed(self.server, host, port, method, address, bytes_out + counted.out, counted.back))

    async def _open(self, host: str, port: int) -> tuple[str, asyncio.StreamReader, asyncio.StreamWriter]:
        refusal = self.policy.host_refusal(host)
        if refusal is not None:
            raise _Refused(403, refusal)
        mapped = self._resolver.mapping.get(host.lower().rstrip(".")) if self._resolver else None
        if mapped is not None:
            candidates = [mapped]
        else:
            candidates = await _resolve(host, port)
            for address, _ in candidates:
                if (why := self.policy.address_refusal(address)) is not None:
                    raise _Refused(403, f"{host} resolves to {why}")
        last = "no address"
        for address, target_port in candidates:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(address, target_port), _CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                last = str(exc) or type(exc).__name__
                continue
            return address, reader, writer
        raise _Refused(502, f"cannot connect to {host}:{port}: {last}")


def _destination(method: str, target: str, headers: list[str]) -> tuple[str, int, bytes]:
    """Host, port and (for plain HTTP) the request head to send on."""
    if method == "CONNECT":
        host, sep, port_text = target.rpartition(":")
        if not sep or not port_text.isdigit():
            raise _Refused(400, "CONNECT needs host:port")
        return host.strip("[]"), int(port_text), b""
    url = urlsplit(target)
    if url.scheme != "http" or not url.hostname:
        raise _Refused(400, "only absolute http:// URLs are forwarded; use CONNECT for https")
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    # Host is rewritten to the URL's, so a request cannot name one (allowed) site and ask
    # the server behind it for another one.
    kept = [line for line in headers if line and line.split(":", 1)[0].strip().lower() not in _DROPPED_HEADERS]
    host_header = f"Host: {url.netloc.rpartition('@')[2]}"
    head = "\r\n".join([f"{method} {path} HTTP/1.1", host_header, *kept, "Connection: close", "", ""])
    return url.hostname, url.port or 80, head.encode("latin-1")


async def _resolve(host: str, port: int) -> list[tuple[str, int]]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise _Refused(502, f"cannot resolve {host}: {exc}") from None
    return list(dict.fromkeys((str(info[4][0]), port) for info in infos))


@dataclass
class _Counts:
    out: int = 0
    back: int = 0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, counts: _Counts, way: str) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
            setattr(counts, way, getattr(counts, way) + len(data))
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def _respond(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    phrase = {400: "Bad Request", 403: "Forbidden", 502: "Bad Gateway"}.get(status, "Error")
    body = f"Bastion egress proxy: {reason}\n".encode()
    head = f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
    with contextlib.suppress(Exception):
        await writer.drain()
