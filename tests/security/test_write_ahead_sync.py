"""The write-ahead rule with the sync handed to io_uring (`audit/disk_sync.py`): a tool call reaches
its server only once its `call.requested` record is on disk, and not at all when the sync fails.

A real gateway, a real sandboxed server (`crashy`'s `note`, which appends a line to a file: the
server's own record of what reached it) and a real client. The disk cannot be made slow or failing
on demand, so the ring's futures are the one thing injected: each sync the store starts runs for
real, but the call sees it done only when the test says so (`Gate`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from bastion.audit import disk_sync
from bastion.audit.store import AuditStoreError
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from tests.e2e.conftest import SERVERS_DIR, write_config
from tests.e2e.inprocess import http_client, serving

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]


class Gate(asyncio.Future[None]):
    """A sync's completion as the caller sees it, held by the test; notes when a call awaits it."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited = asyncio.Event()

    def __await__(self) -> Any:
        self.awaited.set()
        return (yield from super().__await__())


class Syncs:
    """Every sync the store starts: its gate (what the call awaits) and the real sync behind it."""

    def __init__(self) -> None:
        self.started: list[tuple[Gate, asyncio.Future[None]]] = []
        self._new = asyncio.Event()

    def add(self, real: asyncio.Future[None]) -> Gate:
        gate = Gate()
        self.started.append((gate, real))
        self._new.set()
        return gate

    async def next(self) -> tuple[Gate, asyncio.Future[None]]:
        """The next sync started (waits for it)."""
        await self._new.wait()
        self._new.clear()
        return self.started[-1]


@pytest.fixture
def syncs(monkeypatch: pytest.MonkeyPatch) -> Syncs:
    seen = Syncs()
    real_start = disk_sync.BackgroundSync.start

    def start(self: disk_sync.BackgroundSync, path: str) -> asyncio.Future[None] | None:
        real = real_start(self, path)
        return None if real is None else seen.add(real)

    monkeypatch.setattr(disk_sync.BackgroundSync, "start", start)
    return seen


@asynccontextmanager
async def serving_crashy(tmp_path: Path) -> AsyncIterator[tuple[Gateway, str]]:
    """A gateway serving `crashy` (allowed to write under `scratch`), and an agent's token."""
    if disk_sync.for_loop(asyncio.get_running_loop()) is None:
        pytest.skip("SKIPPED LOUDLY: this kernel refuses io_uring; the record is fsynced in its commit instead")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    servers = {
        "crashy": {
            "command": sys.executable,
            "args": [str(SERVERS_DIR / "crashy_server.py")],
            "sandbox": {"writable": [str(scratch)]},
        }
    }
    gateway = Gateway(load_config(write_config(tmp_path, servers)))
    with anyio.fail_after(60):
        async with serving(gateway):
            assert gateway.tokens is not None
            _, token = gateway.tokens.create("agent")
            yield gateway, token


async def test_a_call_reaches_its_server_only_once_its_record_is_synced(tmp_path: Path, syncs: Syncs) -> None:
    note = tmp_path / "scratch" / "reached"
    async with serving_crashy(tmp_path) as (gateway, token):
        async with http_client(gateway, "crashy", token) as client, anyio.create_task_group() as tg:
            answers: list[Any] = []

            async def call() -> None:
                answers.append(await client.call_tool("note", {"path": str(note), "text": "one"}))

            tg.start_soon(call)
            gate, real = await syncs.next()  # the store started the record's sync
            await gate.awaited.wait()  # the call waits on it: judged, not forwarded
            assert not note.exists(), "the server got the call before its write-ahead record was on disk"
            await real  # the real sync, done
            assert not note.exists()
            gate.set_result(None)
        assert note.read_text() == "one\n"
        assert not answers[0].is_error


async def test_a_call_whose_record_cannot_be_synced_is_refused_and_never_reaches_its_server(
    tmp_path: Path, syncs: Syncs
) -> None:
    note = tmp_path / "scratch" / "reached"
    async with serving_crashy(tmp_path) as (gateway, token):
        async with http_client(gateway, "crashy", token) as client, anyio.create_task_group() as tg:
            failures: list[BaseException] = []

            async def call() -> None:
                try:
                    await client.call_tool("note", {"path": str(note), "text": "one"})
                except Exception as exc:
                    failures.append(exc)

            tg.start_soon(call)
            gate, real = await syncs.next()
            await gate.awaited.wait()
            await real
            gate.set_exception(AuditStoreError("fdatasync failed (injected)"))
        assert failures
        assert "audit log cannot be written" in str(failures[0])
        assert not note.exists(), "a call whose record is not on disk reached its server"
        # The next call's record syncs: it is served.
        async with http_client(gateway, "crashy", token) as client, anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "note", {"path": str(note), "text": "two"})
            gate, real = await syncs.next()
            await real
            gate.set_result(None)
        assert note.read_text() == "two\n"
