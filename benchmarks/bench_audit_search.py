"""Searching a large audit log (default 1,000,000 events), SQLite and PostgreSQL.

Run: .venv/bin/python benchmarks/bench_audit_search.py [N] [--backend sqlite|postgresql|both] [--keep DIR]
Printed, not asserted. Target (issue 5): searches under 50 ms at p50. Export: bench_audit_export.py.
`--keep DIR` keeps the seeded logs and reuses them (bench_audit_export.py reads the same ones).

SEEDING is not the measured write path: it builds rows directly (varied agents, servers,
tools, verdicts, and argument text from a 5,000-word vocabulary) and appends them through
the backend's own chained append in large transactions, so the log is a real, verifiable
chain. Ingest speed through the real write path is bench_audit_ingest.py's job.

Each search is one page of 50, newest first, through `bastion.audit.search.search` (what
the CLI and admin API call), timed over many runs with varied parameters. On SQLite the
newest 63 events are left out of the full-text index, as a busy gateway's writer leaves
them (they are indexed in batches after their commit), so full-text searches include
indexing those on the fly.
"""

from __future__ import annotations

import argparse
import inspect
import itertools
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import yaml

from bastion.audit import open_audit_store
from bastion.audit.chain import EventRow
from bastion.audit.query import EventQuery
from bastion.audit.search import search
from bastion.audit.sqlite_text_index import INDEX_BATCH
from bastion.audit.store import AuditStore

AGENTS = [f"agent-{n}" for n in range(50)]
SERVERS = [f"server-{n}" for n in range(10)]
TOOLS = [f"tool_{n}" for n in range(40)]
RULES = ["no-bulk-export", "egress-allowlist", "pii-columns", "rate"]
RANDOM = random.Random(7)
WORDS = ["".join(RANDOM.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(RANDOM.randint(4, 9))) for _ in range(5000)]
NOW = time.time()
DAY = 86400
SEED_BATCH = 20_000
UNINDEXED = INDEX_BATCH - 1
"""SQLite: the newest events are left out of the full-text index, the most a busy gateway's
writer leaves there, so full-text searches pay for indexing them on the fly as they would."""
RUNS = 200
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def seed_rows(total: int) -> Iterator[EventRow]:
    """SEEDING: varied rows, one call (requested, verdict, completed) per three events, over 30 days."""
    rng = random.Random(11)
    for n in range(total):
        kind = n % 3
        agent, server, tool = rng.choice(AGENTS), rng.choice(SERVERS), rng.choice(TOOLS)
        at = NOW - 30 * 86400 * (1 - n / total)
        correlation = f"c{n // 3}"
        if kind == 0:
            text = " ".join(rng.choice(WORDS) for _ in range(6))
            data = {"method": "tools/call", "tool": tool, "arguments": {"q": text, "limit": 100}, "transport": "http"}
            yield EventRow(at, "call.requested", agent, server, correlation, tool, None, None, json.dumps(data))
        elif kind == 1:
            deny = rng.random() < 0.05
            rule = rng.choice(RULES) if deny else None
            verdict = "deny" if deny else "allow"
            data = {"tool": tool, "verdict": verdict, "rule": rule, "reason": "policy" if deny else ""}
            yield EventRow(at, "call.verdict", agent, server, correlation, tool, verdict, rule, json.dumps(data))
        else:
            text = " ".join(rng.choice(WORDS) for _ in range(4))
            data = {"method": "tools/call", "tool": tool, "outcome": "allowed", "latency_ms": 3.5,
                    "result": {"content": [{"type": "text", "text": text}]}}  # fmt: skip
            yield EventRow(at, "call.completed", agent, server, correlation, tool, "allowed", None, json.dumps(data))


def seed(store: AuditStore, total: int) -> float:
    """SEEDING through the backend's chained append, in big transactions. Returns seconds."""
    backend: Any = store.backend  # type: ignore[attr-defined]
    if inspect.iscoroutinefunction(backend.append):
        return float(anyio.run(seed_async, backend, total))
    conn = backend.connect()
    began = time.perf_counter()
    rows = seed_rows(total)
    for batch in batched(itertools.islice(rows, max(total - UNINDEXED, 0)), SEED_BATCH):
        backend.append(conn, batch, False, False)  # no health row; not fsynced (seeding only)
    backend.tidy(conn, True)  # the full-text index, as an idle writer brings it up to date
    backend.append(conn, list(rows), False, False)  # the newest, not yet indexed (see UNINDEXED)
    elapsed = time.perf_counter() - began
    conn.execute("PRAGMA optimize")
    conn.execute("ANALYZE")
    backend.discard(conn)
    return elapsed


async def seed_async(backend: Any, total: int) -> float:
    """SEEDING through an async backend (PostgreSQL)."""
    conn = await backend.connect()
    began = time.perf_counter()
    for batch in batched(seed_rows(total), SEED_BATCH):
        await backend.append(conn, batch, False)
    elapsed = time.perf_counter() - began
    await conn.execute(b"ANALYZE events")
    await backend.discard(conn)
    return elapsed


def batched(rows: Iterator[EventRow], size: int) -> Iterator[list[EventRow]]:
    batch: list[EventRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


QUERIES: list[tuple[str, Callable[[random.Random], EventQuery]]] = [
    ("agent", lambda r: EventQuery(agent=r.choice(AGENTS))),
    ("server + tool", lambda r: EventQuery(server=r.choice(SERVERS), tool=r.choice(TOOLS))),
    ("type + verdict=deny", lambda r: EventQuery(types=("call.verdict",), verdict="deny")),
    ("rule", lambda r: EventQuery(rule=r.choice(RULES))),
    ("agent, last 24 h", lambda r: EventQuery(agent=r.choice(AGENTS), since=NOW - 86400)),
    (
        "agent, a day last week",
        lambda r: EventQuery(agent=r.choice(AGENTS), since=NOW - 8 * 86400, until=NOW - 7 * 86400),
    ),
    ("full text: one word", lambda r: EventQuery(text=r.choice(WORDS))),
    ("full text: two words", lambda r: EventQuery(text=f"{r.choice(WORDS)} {r.choice(WORDS)}")),
    ("full text + agent", lambda r: EventQuery(text=r.choice(WORDS), agent=r.choice(AGENTS))),
]


def measure_searches(store: AuditStore, name: str) -> None:
    rng = random.Random(3)
    for label, make in QUERIES:
        search(store, make(rng))  # warm the cache and the connection path once
        timings = []
        for _ in range(RUNS):
            query = make(rng)
            began = time.perf_counter()
            search(store, query, limit=50)
            timings.append((time.perf_counter() - began) * 1000)
        timings.sort()
        p50, p99 = statistics.median(timings), timings[int(len(timings) * 0.99) - 1]
        print(f"{name:<10} search {label:<24} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")


def prepare(name: str, url: str | None, folder: Path, total: int) -> Path:
    """A config file for a log of `total` events, seeding it unless `folder` already holds one that size."""
    config = folder / f"{name}.yaml"
    audit: dict[str, Any] = {"url": url} if url else {}
    config.write_text(yaml.safe_dump({"data_dir": str(folder / "data"), "audit": audit}), encoding="utf-8")
    store = open_audit_store(folder / "data", url=url)
    try:
        have = store.count(EventQuery())
    except Exception:
        have = 0
    if have == total:
        print(f"{name:<10} reusing a seeded log of {total:,} events")
    else:
        if have:
            raise SystemExit(f"{name}: the kept log holds {have:,} events, not {total:,}; use another --keep folder")
        seconds = seed(store, total)
        print(f"{name:<10} SEEDING {total:,} chained events (bulk path, not measured): {seconds:.1f} s")
    return config


def postgres_url(base: str, keep: Path | None) -> str | None:
    import psycopg

    marker = keep / "postgres-schema" if keep is not None else None
    if marker is not None and marker.exists():
        schema = marker.read_text(encoding="utf-8").strip()
    else:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}".encode())
        except Exception as exc:
            print(f"postgresql SKIPPED: {exc}")
            return None
        if marker is not None:
            marker.write_text(schema, encoding="utf-8")
    return f"{base}?options=-csearch_path%3D{schema}"


def drop_schema(base: str, url: str) -> None:
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE".encode())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("total", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres", default=POSTGRES)
    parser.add_argument("--keep", type=Path, default=None, help="keep (and reuse) the seeded logs in this folder")
    args = parser.parse_args()
    print(f"audit search over {args.total:,} events; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.backend in ("sqlite", "both"):
            prepare("sqlite", None, folder, args.total)
            measure_searches(open_audit_store(folder / "data"), "sqlite")
        if args.backend in ("postgresql", "both"):
            url = postgres_url(args.postgres, args.keep)
            if url is not None:
                try:
                    prepare("postgresql", url, folder, args.total)
                    measure_searches(open_audit_store(folder / "data", url=url), "postgresql")
                finally:
                    if args.keep is None:
                        drop_schema(args.postgres, url)


if __name__ == "__main__":
    main()
