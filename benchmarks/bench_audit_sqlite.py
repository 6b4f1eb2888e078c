"""Throughput of the SQLite audit store: durable starts (fsync per group commit) and queued ones.

Run: .venv/bin/python benchmarks/bench_audit_sqlite.py [N]
Printed, not asserted: figures depend on the disk's fsync latency.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import anyio

from bastion.audit.sqlite_store import SqliteAuditStore
from bastion.model import CallFinished, CallStarted, Outcome

ARGUMENTS = {"sql": "SELECT id, name FROM customers WHERE id = ?", "params": [42], "limit": 100}


def event(n: int) -> CallStarted:
    return CallStarted(f"call-{n}", time.time(), "agent", "db", "tools/call", "query", ARGUMENTS, "streamable-http")


async def durable_starts(store: SqliteAuditStore, total: int, writers: int) -> float:
    """Starts per second: `writers` tasks, each awaiting its commit, then queueing a finish."""
    per_writer = total // writers

    async def writer(w: int) -> None:
        for i in range(per_writer):
            await store.start(event(w * per_writer + i), durable=True)
            await store.finish(CallFinished(f"call-{w * per_writer + i}", Outcome.ALLOWED, 1.0, is_error=False))

    began = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for w in range(writers):
            tg.start_soon(writer, w)
    await store.flush()
    return per_writer * writers / (time.perf_counter() - began)


async def queued_starts(store: SqliteAuditStore, total: int) -> float:
    """Starts per second with `durable=False`, including the final flush."""
    began = time.perf_counter()
    for n in range(total):
        await store.start(event(n), durable=False)
    await store.flush()
    return total / (time.perf_counter() - began)


async def run(case: str, total: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteAuditStore(Path(tmp) / "audit.db")
        await store.open()
        if case == "non-durable":
            rate = await queued_starts(store, total)
        else:
            rate = await durable_starts(store, total, int(case.split()[0]))
        await store.close()
        print(f"{case:<22} {total:>7} starts  {rate:>10,.0f} starts/s  {store.commits:>6} commits")


async def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000
    print(f"sqlite audit store, synchronous=FULL, WAL, in {tempfile.gettempdir()}")
    await run("1 durable writer", min(total, 1_000))
    await run("64 durable writers", total)
    await run("non-durable", total * 4)


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
