"""What a durable write costs on this machine as calls come further apart: raw fdatasync and the write-ahead record.

Run: .venv/bin/python benchmarks/bench_fsync_gap.py [--records 200] [--gaps 0,1,3,10,25] [--dir PATH]

Under `audit.durability: power` each lone `tools/call` waits for its write-ahead record's
fsync before it goes on (docs/audit.md). On a disk that sits idle between calls (a virtual
machine's block device in particular) that fsync costs more the longer it was idle. Two
series, each at each gap (milliseconds of idle time before the next write), in one process:

- `fdatasync`: one 4 KB page rewritten in place in a preallocated file, then `os.fdatasync`
  (the floor: no SQLite, no growth of the file);
- `write-ahead`: the audit store's own durable record of a lone call (`SqliteAuditStore`,
  `durability: power`, `record_ahead(..., alone=True)` and its sync awaited, as the gateway
  does before it forwards the call: committed inline, the log synced on io_uring where there
  is one), with the call's verdict and completion queued after it, as the gateway does. Its
  rows also give the largest size the `-wal` file reached (the log restarts from its
  beginning after each checkpoint; a log that grows has each sync extend the file).

Printed: p10/p50/p90 in microseconds, and each p50 over the gap-0 p50 of its series. Files go
in `--dir` (default: a temporary folder in the current directory, so on the filesystem a
`data_dir` here would be on). Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from bastion.audit.events import CallCompleted, CallRequested, VerdictReached
from bastion.audit.sqlite_store import SqliteAuditStore

PAGE = 4096
FILE_PAGES = 1024
WARMUP = 20


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    return tuple(ordered[int(q * (len(ordered) - 1))] * 1e6 for q in (0.1, 0.5, 0.9))  # type: ignore[return-value]


def idle(seconds: float) -> None:
    if seconds:
        time.sleep(seconds)


def raw_fdatasync(folder: Path, gap: float, records: int) -> list[float]:
    path = folder / f"fsync-{uuid.uuid4().hex}.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, b"\0" * PAGE * FILE_PAGES)
        os.fsync(fd)
        took: list[float] = []
        for number in range(WARMUP + records):
            os.pwrite(fd, os.urandom(PAGE), (number % FILE_PAGES) * PAGE)
            began = time.perf_counter()
            os.fdatasync(fd)
            if number >= WARMUP:
                took.append(time.perf_counter() - began)
            idle(gap)
        return took
    finally:
        os.close(fd)
        path.unlink()


async def write_ahead(folder: Path, gap: float, records: int, wal_peak: list[int]) -> list[float]:
    path = folder / f"audit-{uuid.uuid4().hex}.db"
    store = SqliteAuditStore(path, durability="power")
    await store.open()
    wal = path.with_name(path.name + "-wal")
    try:
        took: list[float] = []
        for number in range(WARMUP + records):
            call_id = uuid.uuid4().hex
            arguments = {"text": f"hello {number}"}
            requested = CallRequested(agent="bench", server="echo", correlation_id=call_id, method="tools/call",
                                      tool="echo", arguments=arguments, transport="stdio")  # fmt: skip
            began = time.perf_counter()
            syncing = await store.record_ahead(requested, alone=True)
            if syncing is not None:
                await syncing
            if number >= WARMUP:
                took.append(time.perf_counter() - began)
            store.record_nowait(VerdictReached(agent="bench", server="echo", correlation_id=call_id, tool="echo",
                                               verdict="allow"))  # fmt: skip
            store.record_nowait(CallCompleted(agent="bench", server="echo", correlation_id=call_id,
                                              method="tools/call", tool="echo", outcome="allowed", latency_ms=1.0,
                                              result={"content": [{"type": "text", "text": "hello"}]}))  # fmt: skip
            await asyncio.sleep(gap)  # the writer thread chains what lingers meanwhile, as in a gateway
            wal_peak[0] = max(wal_peak[0], wal.stat().st_size)
        return took
    finally:
        await store.close()


def report(name: str, gaps: list[float], measure: Callable[[float], list[float]], wal_peak: list[int]) -> None:
    base: float | None = None
    for gap in gaps:
        wal_peak[0] = 0
        p10, p50, p90 = percentiles(measure(gap))
        base = p50 if base is None else base
        wal = f"   -wal at most {wal_peak[0] / 1e6:.1f} MB" if wal_peak[0] else ""
        print(f"{name:<12} gap {gap * 1e3:5.1f} ms   p10 {p10:6.0f}   p50 {p50:6.0f}   p90 {p90:6.0f} µs   "
              f"p50 x{p50 / base:4.2f}{wal}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200, help="writes per gap and series (default 200)")
    parser.add_argument("--gaps", default="0,1,3,10,25", help="idle milliseconds between writes, comma-separated")
    parser.add_argument("--dir", type=Path, default=Path.cwd(), help="where the files go (default: here)")
    args = parser.parse_args()
    gaps = [float(g) / 1e3 for g in args.gaps.split(",")]
    with tempfile.TemporaryDirectory(prefix="bastion-fsync-gap-", dir=args.dir) as name:
        folder = Path(name)
        print(f"files in {folder} ({args.records} writes per row; load average {os.getloadavg()[0]:.2f})")
        wal_peak = [0]
        report("fdatasync", gaps, lambda gap: raw_fdatasync(folder, gap, args.records), wal_peak)
        report("write-ahead", gaps, lambda gap: asyncio.run(write_ahead(folder, gap, args.records, wal_peak)), wal_peak)
    print("p50 x: the p50 over the same series' p50 at the first gap (back to back when it is 0).")


if __name__ == "__main__":
    main()
