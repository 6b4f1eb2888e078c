"""Sustained audit ingest through the real write path (encode + redact + chain + group commit).

Run: .venv/bin/python benchmarks/bench_audit_ingest.py [N] [--postgres URL]
Printed, not asserted: figures depend on the disk's fsync latency and the CPU.

Cases, per backend:
- queued: `record(event, durable=False)` from one task, then a final flush (the path a
  call's completion, verdict and other events take);
- durable: 64 concurrent tasks each awaiting `record(event)` (the write-ahead path of a
  tools/call: every event committed before its caller proceeds), grouped into shared commits.
Each is timed from the first event until the store is closed, so the work done after the
commits (SQLite's full-text index) counts.
Target (issue 5): at least 20,000 events/s on SQLite.

CALIBRATION (`sum(range(1_000_000))`, best of 5, about 15 ms on a current desktop core) is
printed first: on a virtual machine whose speed drifts, it says how fast the CPU was.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import timeit
import uuid
from pathlib import Path

import anyio

from bastion.audit import open_audit_store
from bastion.audit.events import CallRequested
from bastion.audit.store import AuditStore

ARGUMENTS = {"sql": "SELECT id, name FROM customers WHERE id = ?", "params": [42], "limit": 100}
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def event(n: int) -> CallRequested:
    return CallRequested(
        agent="agent",
        server="db",
        correlation_id=f"call-{n}",
        method="tools/call",
        tool="query",
        arguments=ARGUMENTS,
        transport="streamable-http",
    )


async def queued(store: AuditStore, total: int) -> int:
    for n in range(total):
        await store.record(event(n), durable=False)
    await store.flush()
    return total


async def durable(store: AuditStore, total: int, writers: int = 64) -> int:
    per_writer = total // writers

    async def writer(w: int) -> None:
        for i in range(per_writer):
            await store.record(event(w * per_writer + i))

    async with anyio.create_task_group() as tg:
        for w in range(writers):
            tg.start_soon(writer, w)
    return per_writer * writers


async def run_backend(name: str, make: object, total: int) -> None:
    """Each case from the first event to the store closed: SQLite's writer full-text indexes
    the events after their commits, and closing waits for whatever is left of that."""
    for case, measure in (("queued", queued), ("durable, 64 writers", durable)):
        store: AuditStore = make()  # type: ignore[operator]
        await store.open()
        cpu_before, began = time.process_time(), time.perf_counter()
        try:
            recorded = await measure(store, total)
        finally:
            await store.close()
            cpu, elapsed = time.process_time() - cpu_before, time.perf_counter() - began
        commits = getattr(store, "commits", 0)
        print(
            f"{name:<10} {case:<22} {total:>8} events  {recorded / elapsed:>10,.0f} events/s  "
            f"{recorded / cpu:>10,.0f} events/CPU-s  {commits:>6} commits"
        )


def postgres_factory(url: str) -> object:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    made: list[str] = []

    def make() -> AuditStore:
        made.append(schema)
        return open_audit_store(Path("."), url=f"{url}?options=-csearch_path%3D{schema}")

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())

    make.drop = drop  # type: ignore[attr-defined]
    return make


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("total", nargs="?", type=int, default=50_000)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="'' to skip PostgreSQL")
    args = parser.parse_args()
    print(f"audit ingest, redacted mode, hash-chained; SQLite in {tempfile.gettempdir()} (WAL, synchronous=FULL)")
    calibration = min(timeit.repeat("sum(range(1_000_000))", number=1, repeat=5)) * 1000
    print(
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, CALIBRATION {calibration:.0f} ms; "
        "events/CPU-s: per second of this process's CPU"
    )
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(1_000))
        await run_backend("sqlite", lambda: open_audit_store(Path(tmp) / str(next(counter))), args.total)
    if args.postgres:
        try:
            make = postgres_factory(args.postgres)
        except Exception as exc:
            print(f"postgresql SKIPPED: {exc}")
            return
        try:
            await run_backend("postgresql", make, args.total)
        finally:
            make.drop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    anyio.run(main, backend="asyncio")
