"""Shared state, SQLite files vs PostgreSQL (`database_url`), side by side in one run.

Run: .venv/bin/python benchmarks/bench_shared_state.py [N] [ROUNDS]
(PostgreSQL at $BASTION_TEST_POSTGRES, default postgresql://postgres@127.0.0.1:5432/test;
a schema of its own, dropped afterwards.) Printed, not asserted:

- the token check on every request (`verify`, the in-memory path) per backend, and the
  PostgreSQL/SQLite ratio;
- revocation reach: from `revoke()` returning on one store (as `bastion token revoke` does)
  until `verify()` on another store of its own (as another replica) refuses the token;
- approval release: from `decide()` on one store (the CLI, another replica's admin API)
  until the call waiting on another store returns;
- the pin lookup on every call per backend.

"Another store of its own": on PostgreSQL each has its own pool and LISTEN connection (as
separate processes do); notifications go through the server.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import psycopg

from bastion.approvals.postgres_store import PostgresApprovalStore
from bastion.approvals.sqlite_store import SqliteApprovalStore
from bastion.approvals.store import ApprovalStore
from bastion.auth.postgres_tokens import PostgresTokenStore
from bastion.auth.sqlite_tokens import SqliteTokenStore
from bastion.auth.tokens import TokenStore
from bastion.guard.pinning import fingerprint
from bastion.guard.pinning.postgres_store import PostgresPinStore
from bastion.guard.pinning.sqlite_store import SqlitePinStore
from bastion.guard.pinning.store import PinStore

BASE_URL = os.environ.get("BASTION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
TOOL: dict[str, Any] = {"name": "add", "description": "Adds two numbers.", "inputSchema": {"type": "object"}}


@contextmanager
def postgres_schema() -> Iterator[str]:
    schema = f"bastion_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(BASE_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}".encode())
    try:
        yield f"{BASE_URL}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(BASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


def replica(url: str, name: str) -> str:
    """The same database under another URL: a pool and a listener of its own, like another process."""
    return f"{url}&application_name={name}"


def per_second(n: int, action: Callable[[], object]) -> float:
    began = time.perf_counter()
    for _ in range(n):
        action()
    return n / (time.perf_counter() - began)


def verify_rate(store: TokenStore, n: int) -> float:
    _, token = store.create("bench")
    store.verify(token)
    return per_second(n, lambda: store.verify(token))


def revocation_reach(gateway: TokenStore, cli: TokenStore, rounds: int) -> list[float]:
    reach = []
    for _ in range(rounds):
        info, token = cli.create("bench")
        began = time.perf_counter()
        while gateway.verify(token) is None:  # the new token reaches the gateway first
            if time.perf_counter() - began > 10:
                raise TimeoutError("a created token never reached the other store")
        cli.revoke(info.id)
        began = time.perf_counter()
        while gateway.verify(token) is not None:
            if time.perf_counter() - began > 10:
                raise TimeoutError("a revoked token kept working")
        reach.append(time.perf_counter() - began)
    return reach


async def release_latency(waiting: ApprovalStore, deciding: ApprovalStore, rounds: int) -> list[float]:
    latencies = []
    for n in range(rounds):
        approval = waiting.create(
            agent="bot", server="db", tool="q", arguments={"n": n}, rule="r", reason="x", expire_after=60
        )
        decided_at: list[float] = []

        def decide(approval_id: str = approval.id, decided_at: list[float] = decided_at) -> None:
            decided_at.append(time.perf_counter())
            deciding.decide(approval_id, approve=True, decided_by="bench")

        async with anyio.create_task_group() as tg:

            async def wait(approval_id: str = approval.id, decided_at: list[float] = decided_at) -> None:
                await waiting.wait_for_decision(approval_id, 30)
                latencies.append(time.perf_counter() - decided_at[0])

            tg.start_soon(wait)
            await anyio.sleep(0.02)  # the waiter is parked (a benchmark, not a test)
            await anyio.to_thread.run_sync(decide)
    return latencies


async def lookup_rate(store: PinStore, n: int) -> float:
    await store.observe("s", "add", fingerprint(TOOL), TOOL, ())
    store.lookup("s", "add")
    return per_second(n, lambda: store.lookup("s", "add"))


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    return (
        f"median {statistics.median(ordered) * 1000:7.2f} ms   "
        f"p95 {ordered[int(len(ordered) * 0.95) - 1] * 1000:7.2f} ms   max {ordered[-1] * 1000:7.2f} ms"
    )


async def main(n: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as folder, postgres_schema() as url:
        path = Path(folder)
        sqlite_tokens = (SqliteTokenStore(path / "tokens.db"), SqliteTokenStore(path / "tokens.db"))
        pg_tokens = (PostgresTokenStore(replica(url, "a")), PostgresTokenStore(replica(url, "b")))
        sqlite_approvals = (SqliteApprovalStore(path / "approvals.db"), SqliteApprovalStore(path / "approvals.db"))
        pg_approvals = (PostgresApprovalStore(replica(url, "a")), PostgresApprovalStore(replica(url, "b")))
        sqlite_pins, pg_pins = SqlitePinStore(path / "pins.db"), PostgresPinStore(replica(url, "a"))
        try:
            print(f"token check (verify, cached), {n} calls:")
            sqlite_rate = verify_rate(sqlite_tokens[0], n)
            pg_rate = verify_rate(pg_tokens[0], n)
            print(f"  SQLite      {sqlite_rate:12,.0f} /s")
            print(f"  PostgreSQL  {pg_rate:12,.0f} /s   ({pg_rate / sqlite_rate:.2f}x SQLite)")

            print(f"revocation reach to another store, {rounds} rounds:")
            print(f"  SQLite      {ms(revocation_reach(*sqlite_tokens, rounds))}   (file checked every 0.5 s)")
            print(f"  PostgreSQL  {ms(revocation_reach(*pg_tokens, rounds))}   (NOTIFY)")

            print(f"approval release on another store, {rounds} rounds:")
            print(f"  SQLite      {ms(await release_latency(*sqlite_approvals, rounds))}   (polls every 50 ms)")
            print(f"  PostgreSQL  {ms(await release_latency(*pg_approvals, rounds))}   (NOTIFY)")

            print(f"pin lookup (cached), {n} calls:")
            sqlite_lookups = await lookup_rate(sqlite_pins, n)
            pg_lookups = await lookup_rate(pg_pins, n)
            print(f"  SQLite      {sqlite_lookups:12,.0f} /s")
            print(f"  PostgreSQL  {pg_lookups:12,.0f} /s   ({pg_lookups / sqlite_lookups:.2f}x SQLite)")
        finally:
            for store in (*sqlite_tokens, *pg_tokens, *sqlite_approvals, *pg_approvals, sqlite_pins, pg_pins):
                store.close()


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 200_000, int(sys.argv[2]) if len(sys.argv) > 2 else 40)
