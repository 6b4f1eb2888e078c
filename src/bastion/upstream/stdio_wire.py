"""A stdio server as a `Wire`: newline-delimited JSON-RPC on its stdin and stdout, driven by the event loop.

The process is started here (`spawn`: what the SDK's `stdio_client` does, in its own
process group so its children end with it) or adopted already running (`bastion wrap`'s
prestarted sandbox). Its stdout is read by one task, a line at a time, each line parsed
once (`json_codec`); writes go straight onto the stdin pipe. Its stderr goes where it was
pointed at the start (the server's log), untouched.

On exit stdin is closed and the server has a moment to exit, then it (its process group,
when it has its own) is terminated, then killed: the SDK's shutdown sequence.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TextIO

import anyio
import anyio.to_thread

from bastion.mcp_names import default_environment
from bastion.upstream.json_codec import DecodeError, loads
from bastion.upstream.wire import ConnectionLost, Inbox, RequestId

__all__ = ["StdioWire", "spawn", "stdio_wire"]

logger = logging.getLogger(__name__)

_EXIT_GRACE = 2.0
"""Seconds a server has to exit once its stdin is closed, then again after SIGTERM."""

_READ_LIMIT = 1 << 20


def spawn(
    command: str, args: list[str], env: Mapping[str, str] | None, cwd: str | Path | None, errlog: TextIO
) -> subprocess.Popen[bytes]:
    """Start a server as the SDK's `stdio_client` does: the safe default environment plus `env`,
    stderr to `errlog`, in a new session (its own process group). Raises `OSError`."""
    return subprocess.Popen(
        [command, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        env=default_environment() | dict(env or {}),
        cwd=cwd,
        start_new_session=True,
    )


class StdioWire:
    """The pipes of one server process."""

    cancels_by_notification = True

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._inbox: Inbox | None = None

    def attach(self, inbox: Inbox) -> None:
        self._inbox = inbox

    async def send(
        self,
        payload: bytes,
        *,
        method: str | None,
        request_id: RequestId | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        writer = self._writer
        if writer.transport.is_closing():
            raise ConnectionLost("the server's stdin is closed")
        writer.writelines((payload, b"\n"))
        try:
            await writer.drain()
        except (ConnectionError, OSError) as exc:
            raise ConnectionLost(f"writing to the server failed: {exc}") from exc

    async def run(self) -> None:
        """Read lines until the server closes its stdout."""
        inbox = self._inbox
        assert inbox is not None
        reader = self._reader
        while True:
            try:
                line = await reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                line = await _long_line(reader, exc.consumed)
            except asyncio.IncompleteReadError as exc:  # end of output
                line = exc.partial
                if line.strip():
                    _deliver_line(inbox, line)
                return
            if len(line) > 1:
                _deliver_line(inbox, line)


async def _long_line(reader: asyncio.StreamReader, consumed: int) -> bytes:
    """A line longer than the read buffer: its pieces, up to and with its newline (or the end)."""
    chunks = [await reader.readexactly(consumed)]
    while True:
        try:
            chunks.append(await reader.readuntil(b"\n"))
            return b"".join(chunks)
        except asyncio.LimitOverrunError as exc:
            chunks.append(await reader.readexactly(exc.consumed))
        except asyncio.IncompleteReadError as exc:
            chunks.append(exc.partial)
            return b"".join(chunks)


def _deliver_line(inbox: Inbox, line: bytes) -> None:
    try:
        message = loads(line)
    except DecodeError as exc:
        if line.strip():
            logger.warning("unparsable message from the server: %s", exc)
        return
    inbox.deliver(message)


@asynccontextmanager
async def stdio_wire(process: subprocess.Popen[bytes], *, own_group: bool) -> AsyncIterator[StdioWire]:
    """A wire over `process`'s stdin and stdout; on exit the process is stopped.

    `own_group`: it leads its own process group (`spawn`), which is terminated as a whole.
    """
    assert process.stdin is not None
    assert process.stdout is not None
    loop = asyncio.get_running_loop()
    transports: list[asyncio.BaseTransport] = []
    try:
        reader = asyncio.StreamReader(limit=_READ_LIMIT)
        read_transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(os.dup(process.stdout.fileno()), "rb", buffering=0)
        )
        transports.append(read_transport)
        write_transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(os.dup(process.stdin.fileno()), "wb", buffering=0)
        )
        transports.insert(0, write_transport)  # closed first: the server's stdin ends before it is stopped
        process.stdin.close()  # the transports hold their own descriptors
        process.stdout.close()
        yield StdioWire(reader, asyncio.StreamWriter(write_transport, protocol, None, loop))
    finally:
        with anyio.CancelScope(shield=True):
            if transports:
                transports[0].close()
            await _stop(process, own_group)
            for transport in transports:
                transport.close()


async def _stop(process: subprocess.Popen[bytes], own_group: bool) -> None:
    """Wait for `process` to exit after its stdin closed; terminate it, then kill it, if it does not."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if own_group:
                    os.killpg(process.pid, sig)
                else:
                    process.send_signal(sig)
        if await anyio.to_thread.run_sync(_exited_within, process, _EXIT_GRACE, abandon_on_cancel=True):
            return
    logger.warning("server process %d is still alive after SIGKILL; abandoning it", process.pid)


def _exited_within(process: subprocess.Popen[bytes], seconds: float) -> bool:
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        return False
    return True
