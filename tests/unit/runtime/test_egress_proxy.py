"""The egress proxy over a real Unix socket, in front of real local TCP and HTTP servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from bastion.runtime.egress.policy import EgressPolicy
from bastion.runtime.egress.proxy import EgressProxy, ResolverForTests
from bastion.runtime.events import EgressAllowed, EgressBlocked, RecordingSink

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def echo_server() -> AsyncIterator[int]:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(1024):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@asynccontextmanager
async def http_server(seen: list[bytes]) -> AsyncIterator[int]:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@asynccontextmanager
async def proxy(tmp_path: Path, domains: list[str], mapping: dict[str, tuple[str, int]]) -> AsyncIterator[EgressProxy]:
    sink = RecordingSink()
    egress = EgressProxy(
        "srv", EgressPolicy.from_domains(domains), sink, tmp_path / "egress.sock", resolver=ResolverForTests(mapping)
    )
    await egress.start()
    try:
        yield egress
    finally:
        await egress.close()


async def exchange(egress: EgressProxy, request: bytes, then: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_unix_connection(str(egress.socket_path))
    writer.write(request)
    if then:
        head = await reader.readuntil(b"\r\n\r\n")
        writer.write(then)
        writer.write_eof()
        return head + await reader.read()
    answer = await reader.read()
    writer.close()
    return answer


async def test_connect_tunnels_to_an_allowed_name_and_counts_bytes(tmp_path):
    with anyio.fail_after(10):
        async with (
            echo_server() as port,
            proxy(tmp_path, ["secure.test"], {"secure.test": ("127.0.0.1", port)}) as egress,
        ):
            answer = await exchange(
                egress, b"CONNECT secure.test:443 HTTP/1.1\r\nHost: secure.test:443\r\n\r\n", b"ping"
            )
    assert answer == b"HTTP/1.1 200 Connection established\r\n\r\nping"
    [event] = egress.sink.of_type(EgressAllowed)  # type: ignore[attr-defined]
    assert (event.server, event.host, event.port, event.method) == ("srv", "secure.test", 443, "CONNECT")
    assert (event.bytes_out, event.bytes_in) == (4, 4)


async def test_plain_http_is_forwarded_in_origin_form_without_proxy_headers(tmp_path):
    seen: list[bytes] = []
    with anyio.fail_after(10):
        async with (
            http_server(seen) as port,
            proxy(tmp_path, ["site.test"], {"site.test": ("127.0.0.1", port)}) as egress,
        ):
            request = (
                b"GET http://site.test/a?b=1 HTTP/1.1\r\nHost: other-site.test\r\n"
                b"Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\n\r\n"
            )
            answer = await exchange(egress, request)
    assert answer.endswith(b"\r\n\r\nhello")
    [head] = seen
    assert head.startswith(b"GET /a?b=1 HTTP/1.1\r\n")
    assert b"Host: site.test\r\n" in head
    assert b"other-site.test" not in head, "the Host header follows the URL, not the client"
    assert b"Proxy-" not in head
    assert b"Connection: close" in head


@pytest.mark.parametrize(
    ("request_line", "status", "reason"),
    [
        (b"CONNECT evil.test:443 HTTP/1.1", b"403", "evil.test is not on the allowlist"),
        (b"GET http://evil.test/ HTTP/1.1", b"403", "evil.test is not on the allowlist"),
        (b"CONNECT 127.0.0.1:22 HTTP/1.1", b"403", "IP literal 127.0.0.1 is not on the allowlist"),
        (b"CONNECT [::1]:22 HTTP/1.1", b"403", "IP literal ::1 is not on the allowlist"),
        (b"GET http://169.254.169.254/latest/meta-data HTTP/1.1", b"403", "IP literal 169.254.169.254"),
        (b"CONNECT localhost:8750 HTTP/1.1", b"403", "localhost resolves to 127.0.0.1 is a private"),
    ],
)
async def test_refusals_are_answered_and_recorded(tmp_path, request_line, status, reason):
    with anyio.fail_after(10):
        async with proxy(tmp_path, ["site.test", "localhost"], {}) as egress:
            answer = await exchange(egress, request_line + b"\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 " + status)
    [event] = egress.sink.of_type(EgressBlocked)  # type: ignore[attr-defined]
    assert event.reason.startswith(reason)
    assert not egress.sink.of_type(EgressAllowed)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "request_line",
    [b"GET https://site.test/ HTTP/1.1", b"GET /relative HTTP/1.1", b"CONNECT site.test HTTP/1.1", b"nonsense"],
)
async def test_malformed_requests_get_400(tmp_path, request_line):
    with anyio.fail_after(10):
        async with proxy(tmp_path, ["site.test"], {}) as egress:
            answer = await exchange(egress, request_line + b"\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


async def test_the_socket_is_private_to_bastion(tmp_path):
    async with proxy(tmp_path, [], {}) as egress:
        assert egress.socket_path.stat().st_mode & 0o077 == 0
    assert not egress.socket_path.exists()


async def test_the_connection_ends_when_the_destination_closes(tmp_path):
    seen: list[bytes] = []
    with anyio.fail_after(10):
        async with (
            http_server(seen) as port,
            proxy(tmp_path, ["site.test"], {"site.test": ("127.0.0.1", port)}) as egress,
        ):
            reader, writer = await asyncio.open_unix_connection(str(egress.socket_path))
            # A client that keeps its proxy connection open (keep-alive) still gets its answer and an end.
            writer.write(b"GET http://site.test/ HTTP/1.1\r\nHost: site.test\r\n\r\n")
            answer = await reader.read()
            writer.close()
            await egress.sink.wait_for(EgressAllowed)  # type: ignore[attr-defined]
    assert answer.endswith(b"hello")
    [event] = egress.sink.of_type(EgressAllowed)  # type: ignore[attr-defined]
    assert event.bytes_in == len(answer)
