"""The listening socket: accepted connections must have Nagle's algorithm off.

With Nagle on, a response body written after its headers waits for the client's delayed
ACK: 40 ms per request on a kept-alive connection (measured by benchmarks/bench_gateway.py).
"""

from __future__ import annotations

import asyncio
import socket

from bastion.front.listening import bind_socket


def test_accepted_connections_have_tcp_nodelay():
    async def main() -> int:
        listener = bind_socket("127.0.0.1", 0)
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            accepted.set_result(writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            nodelay = await asyncio.wait_for(accepted, 10)
            writer.close()
        return nodelay

    assert asyncio.run(main()) != 0


def test_the_listening_socket_is_not_inherited():
    """uvloop spawns servers without closing inheritable descriptors: the listener must not be one."""
    listener = bind_socket("127.0.0.1", 0)
    try:
        assert not listener.get_inheritable()
    finally:
        listener.close()
