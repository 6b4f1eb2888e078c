"""`bastion wrap`'s stdin and stdout, read and written by the event loop instead of worker threads.

The SDK's `stdio_server()` reads stdin and writes stdout through anyio worker threads: each
tool call costs three thread round trips (read the request, write the response, flush),
which on a busy machine is a good part of what `bastion wrap` adds to a call. When stdin and
stdout are pipes or sockets (what an agent that launches `bastion wrap` hands it), Bastion
gives `stdio_server()` streams the event loop drives itself; the SDK still does all the
framing, parsing and serialising. Anything else (a terminal, a file) keeps the SDK's own
handling.

Like the SDK, the process's own fd 0 and fd 1 are pointed at /dev/null and stderr while
serving, so nothing else in the process (a stray print, a child that inherits them) can
read the agent's requests or corrupt the responses; they are restored on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

_STDIN, _STDOUT = 0, 1


class PipeLineReader:
    """What `stdio_server(stdin=...)` iterates: the lines of a pipe, as text (UTF-8, bad bytes replaced)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    async def readline(self) -> str:
        """The next line with its newline, or "" at end of input. Lines of any length."""
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(await self._reader.readuntil(b"\n"))
                break
            except asyncio.LimitOverrunError as exc:  # a line longer than the buffer: take what is there
                chunks.append(await self._reader.readexactly(exc.consumed))
            except asyncio.IncompleteReadError as exc:  # end of input
                chunks.append(exc.partial)
                break
        return b"".join(chunks).decode("utf-8", errors="replace")

    async def __aiter__(self) -> AsyncIterator[str]:
        while line := await self.readline():
            yield line


class PipeTextWriter:
    """What `stdio_server(stdout=...)` writes to: text, encoded as UTF-8, onto a pipe."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer

    async def write(self, text: str) -> int:
        self._writer.write(text.encode("utf-8"))
        return len(text)

    async def flush(self) -> None:
        await self._writer.drain()

    async def write_line(self, line: bytes) -> None:
        """`line` and a newline, handed to the transport in one call (so concurrent writers never
        interleave), then flushed (Bastion's own relay writes bytes). `BrokenPipeError` once the
        pipe is closed (the agent went away): uvloop would raise `RuntimeError`, asyncio drop it."""
        writer = self._writer
        if writer.transport.is_closing():
            raise BrokenPipeError("the agent's stdout is closed")
        writer.writelines((line, b"\n"))
        await writer.drain()


def _dup(fd: int) -> int:
    """A close-on-exec duplicate of `fd` above the standard range."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


def _is_pipe_or_socket(fd: int) -> bool:
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


@asynccontextmanager
async def loop_driven_stdio() -> AsyncIterator[tuple[Any, Any]]:
    """`(stdin, stdout)` to pass to `stdio_server()`: loop-driven streams, or `(None, None)`
    (the SDK's default) when stdin and stdout are not both pipes or sockets."""
    if not (_is_pipe_or_socket(_STDIN) and _is_pipe_or_socket(_STDOUT)):
        yield None, None
        return
    loop = asyncio.get_running_loop()
    wire_in, wire_out = _dup(_STDIN), _dup(_STDOUT)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, _STDIN)
    os.close(null)
    os.dup2(2, _STDOUT)
    transports: list[asyncio.BaseTransport] = []
    try:
        # Each transport gets a descriptor of its own, which it closes (uvloop and asyncio
        # differ in when); `wire_in`/`wire_out` stay ours, to put fd 0 and fd 1 back.
        reader = asyncio.StreamReader(limit=1 << 20)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(_dup(wire_in), "rb", buffering=0)
        )
        transports.append(read_transport)
        write_transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(_dup(wire_out), "wb", buffering=0)
        )
        transports.append(write_transport)
        writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
        yield PipeLineReader(reader), PipeTextWriter(writer)
    finally:
        for transport in transports:
            transport.close()
        for wire, fd in ((wire_in, _STDIN), (wire_out, _STDOUT)):
            with contextlib.suppress(OSError):
                os.set_blocking(wire, True)  # the descriptor is shared with whoever passed it to us
                os.dup2(wire, fd)
            with contextlib.suppress(OSError):
                os.close(wire)
