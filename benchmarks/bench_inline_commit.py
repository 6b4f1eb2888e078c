"""A lone call's inline write-ahead commit after the writer thread's: the connection set back for it, or not.

Run: .venv/bin/python benchmarks/bench_inline_commit.py [--records N] [--idle MS]

Under `durability: power` the writer thread and a lone call's inline commit share one SQLite
connection, and want it set differently: the writer's batch `synchronous=FULL` with a 5 s busy
timeout, the inline commit `NORMAL` (its sync goes to io_uring) with none. The writer sets
them back after its batch (`SqliteBackend._rest`), on its own thread, so that the inline
commit, on the event loop before the record's sync can start, changes nothing. This times
that commit (`append_if_free`, what `record_ahead` runs) after an idle spell, a writer batch
on another thread, and another idle spell, as between an agent's calls: `rested` as the
store does it, `left` with the writer's settings left in force (the tree before), the two
alternating record by record in one process. Printed: p50 and p90 of each, and p50 rested /
left. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

from bastion.audit.chain import encode_event
from bastion.audit.events import CallRequested
from bastion.audit.redact import PayloadPolicy
from bastion.audit.sqlite_store import SqliteBackend


def measure(records: int, idle_s: float, folder: Path) -> dict[str, list[float]]:
    backend = SqliteBackend(folder / "audit.db", fsync=True)
    conn = backend.connect()
    event = CallRequested(agent="a", server="s", correlation_id="c", method="tools/call", tool="t",
                          arguments={"text": "x" * 100})  # fmt: skip
    row = encode_event(event, PayloadPolicy())
    times: dict[str, list[float]] = {"rested": [], "left": []}
    try:
        assert backend.append_if_free(conn, [row], synced=False)
        for index in range(records * 2):
            kind = "rested" if index % 2 else "left"

            def batch(kind: str = kind) -> None:
                if kind == "left":
                    backend._inline_full = None  # as before `_rest`: the writer's settings stay
                backend.append(conn, [row], health=False, sync=True)

            time.sleep(idle_s)
            writer = threading.Thread(target=batch)
            writer.start()
            writer.join()
            time.sleep(idle_s)
            began = time.perf_counter()
            if not backend.append_if_free(conn, [row], synced=False):
                raise RuntimeError("the database was busy")
            times[kind].append((time.perf_counter() - began) * 1e6)
    finally:
        conn.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="inline commits of each kind (default 300)")
    parser.add_argument("--idle", type=float, default=12.0, help="milliseconds idle before and after the batch")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bastion-inline-", dir=".") as folder:
        times = measure(args.records, args.idle / 1e3, Path(folder))
    p50 = {kind: statistics.median(values) for kind, values in times.items()}
    for kind, values in times.items():
        p90 = sorted(values)[int(len(values) * 0.9)]
        print(f"{kind:7s} inline commit p50 {p50[kind]:6.0f} µs   p90 {p90:6.0f} µs")
    print(f"rested / left: p50 x{p50['rested'] / p50['left']:.2f}")


if __name__ == "__main__":
    main()
