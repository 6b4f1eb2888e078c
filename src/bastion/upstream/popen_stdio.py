"""A client transport over a server process that is already running (`runtime.prestart`).

What the SDK's `stdio_client` does after it spawned the process, for a process spawned
before the SDK was loaded: newline-delimited JSON-RPC on its stdin and stdout, parsed and
serialised by the SDK's own message types, driven by the event loop. On exit its stdin is
closed, and the process is given a moment to exit before it is terminated, then killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from bastion.stdio_pipes import PipeLineReader

__all__ = ["popen_client"]

logger = logging.getLogger(__name__)

_EXIT_GRACE = 2.0
"""Seconds a server has to exit once its stdin is closed, then again after SIGTERM."""


Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


@asynccontextmanager
async def popen_client(process: subprocess.Popen[bytes]) -> AsyncIterator[Streams]:
    """`(read_stream, write_stream)` for a `ClientSession`, over `process`'s stdout and stdin."""
    assert process.stdin is not None
    assert process.stdout is not None
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    read_transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(process.stdout.fileno()), "rb", buffering=0)
    )
    write_transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(os.dup(process.stdin.fileno()), "wb", buffering=0)
    )
    process.stdin.close()  # the transports hold their own descriptors
    process.stdout.close()
    writer = asyncio.StreamWriter(write_transport, protocol, None, loop)
    incoming, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    write_stream, outgoing = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_lines() -> None:
        async with incoming:
            async for line in PipeLineReader(reader):
                if line.strip():
                    await incoming.send(_parse(line))

    async def write_lines() -> None:
        async with outgoing:
            async for message in outgoing:
                text = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                writer.write((text + "\n").encode("utf-8"))
                await writer.drain()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_quietly, read_lines)
            tg.start_soon(_quietly, write_lines)
            try:
                yield read_stream, write_stream
            finally:
                tg.cancel_scope.cancel()
    finally:
        write_transport.close()
        with anyio.CancelScope(shield=True):
            await _stop(process)
        read_transport.close()
        for stream in (read_stream, write_stream):
            await stream.aclose()


def _parse(line: str) -> SessionMessage | Exception:
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError as exc:
        logger.warning("unparsable message from the server: %s", exc)
        return exc


async def _quietly(pump: Any) -> None:
    """A pump ends when its pipe or stream does; that is the session's end, not an error."""
    with contextlib.suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError, ConnectionError):
        await pump()


async def _stop(process: subprocess.Popen[bytes]) -> None:
    """Wait for `process` to exit after its stdin closed; terminate it, then kill it, if it does not."""
    for signal_it in (None, process.terminate, process.kill):
        if signal_it is not None:
            with contextlib.suppress(ProcessLookupError):
                signal_it()
        if await anyio.to_thread.run_sync(_exited_within, process, _EXIT_GRACE):
            return


def _exited_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True
