"""A gateway killed with SIGKILL under load leaves no forwarded call unrecorded, and a chain that verifies
(audit log in SQLite, and in PostgreSQL), whichever `audit.durability` it runs with."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sqlite3
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.e2e.clients import connect
from tests.e2e.conftest import SERVERS_DIR, start_gateway, write_config
from tests.unit.audit.postgres import postgres_schema

pytestmark = [pytest.mark.anyio, pytest.mark.e2e]

WORKERS = 8
ANSWERS_BEFORE_KILL = 80


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


def wait_exited(pids: list[int], timeout: float) -> None:
    """Block until every process in `pids` has exited (pidfd: woken by the exit, no polling)."""
    for pid in pids:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            readable, _, _ = select.select([fd], [], [], timeout)
            assert readable, f"process {pid} still running after {timeout} s"
        finally:
            os.close(fd)


def waiting_to_be_chained(database: Path) -> set[str]:
    """The `note` texts of the write-ahead records a killed gateway left in `audit_pending` (SQLite,
    `durability: power`: a lone call's record, on disk before the call was forwarded, which the
    next `bastion up` chains; `bastion audit export` shows the chain only)."""
    if not database.exists():
        return set()
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT data FROM audit_pending WHERE type = 'call.requested' AND tool = 'note'")
        return {json.loads(data)["arguments"]["text"] for (data,) in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_settings(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """The `audit:` section: the default SQLite file, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield {}
        return
    with postgres_schema() as url:
        yield {"url": url}


@pytest.mark.parametrize("durability", ["power", "process"])
async def test_sigkill_under_load_leaves_no_forwarded_call_unrecorded(tmp_path, audit_settings, durability):
    # `process` skips the fsync: a kill of the gateway (not of the machine) must still lose nothing.
    scratch = tmp_path / "scratch"  # the sandboxed server writes its notes here, and nowhere else
    scratch.mkdir()
    crashy = {"command": sys.executable, "args": [str(SERVERS_DIR / "crashy_server.py")]}
    servers = {"crashy": {**crashy, "sandbox": {"writable": [str(scratch)]}}}
    gateway = start_gateway(write_config(tmp_path, servers, audit={**audit_settings, "durability": durability}))
    notes = scratch / "reached-upstream.txt"
    answered = 0
    enough = anyio.Event()

    async def worker(w: int) -> None:
        nonlocal answered
        try:
            async with connect(gateway, "crashy") as client:
                for n in range(1_000_000):
                    await client.call_tool("note", {"path": str(notes), "text": f"w{w}-{n}-{uuid.uuid4().hex[:8]}"})
                    answered += 1
                    if answered >= ANSWERS_BEFORE_KILL:
                        enough.set()
        except Exception:
            return  # the gateway was killed under this client: expected

    try:
        with anyio.fail_after(120):
            async with anyio.create_task_group() as tg:
                for w in range(WORKERS):
                    tg.start_soon(worker, w)
                await enough.wait()
                upstreams = children_of(gateway.process.pid)
                gateway.process.send_signal(signal.SIGKILL)
                gateway.process.wait()
                tg.cancel_scope.cancel()
            # The upstream may still finish a call forwarded just before the kill: wait for it to exit.
            await anyio.to_thread.run_sync(wait_exited, upstreams, 30)
    finally:
        gateway.stop()

    reached = notes.read_text().split()
    requested = [e for e in gateway.audit_events() if e["type"] == "call.requested" and e["tool"] == "note"]
    recorded = {e["arguments"]["text"] for e in requested} | waiting_to_be_chained(tmp_path / "data" / "audit.db")

    assert len(reached) >= ANSWERS_BEFORE_KILL
    assert gateway.process.returncode == -signal.SIGKILL
    assert set(reached) <= recorded, "a call reached the upstream without its audit record"
    done = gateway.cli("audit", "verify")
    assert done.returncode == 0, done.stderr
