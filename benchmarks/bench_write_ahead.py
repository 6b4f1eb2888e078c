"""The write-ahead record of a lone call under `durability: power`: on the event loop's thread, or handed to the writer.

Run: .venv/bin/python benchmarks/bench_write_ahead.py [--records N] [--rounds R]

A real SQLite audit store (`durability: power`) records a call as the gateway does, one
call at a time: the durable `call.requested` record (awaited), then the `call.verdict`
event, a pause standing for the upstream (1.5 ms), the `call.completed` event (both queued,
committed with the next call's record). `handed` is the record made with `alone=False`,
as when other calls are in flight: the writer thread commits it (fsync included) and wakes
the caller; `inline` is `alone=True`, what the recorder asks when no other tool call is in
flight: committed on the caller's thread, fsync included, when the writer is idle, into the
table of records waiting to be chained (`audit/sqlite_pending.py`), which the writer thread
chains within `LINGER_S` (its CPU is in the figure). The two
alternate round by round in one process. Printed: the median over rounds of each one's p50
wall time per durable record and its CPU (all threads) per call, and the ratio inline /
handed. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from bastion.audit.events import CallCompleted, CallRequested, VerdictReached
from bastion.audit.sqlite_store import SqliteAuditStore

UPSTREAM_S = 0.0015
WARMUP = 30


async def one_round(folder: Path, alone: bool, records: int) -> tuple[float, float]:
    """(p50 seconds per durable record, CPU seconds per call) of `records` calls on a fresh store."""
    store = SqliteAuditStore(folder / f"audit-{uuid.uuid4().hex}.db", durability="power")
    await store.open()
    try:
        waits: list[float] = []
        cpu = 0.0
        for number in range(WARMUP + records):
            call_id = uuid.uuid4().hex
            arguments = {"text": f"hello {number}"}
            requested = CallRequested(agent="bench", server="echo", correlation_id=call_id, method="tools/call",
                                      tool="echo", arguments=arguments, transport="stdio")  # fmt: skip
            cpu_began, began = time.process_time(), time.perf_counter()
            await store.record(requested, durable=True, alone=alone)
            waited = time.perf_counter() - began
            store.record_nowait(VerdictReached(agent="bench", server="echo", correlation_id=call_id, tool="echo",
                                               verdict="allow"))  # fmt: skip
            await asyncio.sleep(UPSTREAM_S)
            store.record_nowait(CallCompleted(agent="bench", server="echo", correlation_id=call_id,
                                              method="tools/call", tool="echo", outcome="allowed", latency_ms=1.5,
                                              result={"content": [{"type": "text", "text": "hello"}]}))  # fmt: skip
            if number >= WARMUP:
                waits.append(waited)
                cpu += time.process_time() - cpu_began
        return statistics.median(waits), cpu / records
    finally:
        await store.close()


async def measure(records: int, rounds: int) -> dict[str, tuple[float, float]]:
    results: dict[str, list[tuple[float, float]]] = {"handed": [], "inline": []}
    with tempfile.TemporaryDirectory(prefix="bastion-write-ahead-") as folder:
        for _ in range(rounds):
            for name, alone in (("handed", False), ("inline", True)):
                results[name].append(await one_round(Path(folder), alone, records))
    return {
        name: (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))
        for name, runs in results.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="calls per round (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each, alternating (default 5)")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.records, args.rounds))
    for name, (wait, cpu) in figures.items():
        print(f"{name:<7} durable record p50 {wait * 1e6:6.0f} µs   CPU per call {cpu * 1e6:6.0f} µs")
    (handed_wait, handed_cpu), (inline_wait, inline_cpu) = figures["handed"], figures["inline"]
    print(f"inline / handed: wall {inline_wait / handed_wait:.2f}, CPU {inline_cpu / handed_cpu:.2f}")


if __name__ == "__main__":
    main()
