"""A request's cancel scope after an idle spell: `anyio.CancelScope` against the relay's `RequestCancel`.

Run: .venv/bin/python benchmarks/bench_request_scope.py [--requests N] [--idle MS]

Each request the relay serves (Streamable HTTP, SSE, stdio) runs inside a cancel scope, so
that `notifications/cancelled` can stop it: entered before its write-ahead record is made,
left after its answer is ready. Between an agent's calls the gateway idles, and the scope's
code runs cold. This enters and leaves each kind of scope around an empty awaited body on
uvloop, after `--idle` ms asleep, the kinds (and a body with no scope, the baseline)
alternating request by request in one process. Printed: the p50 of each, less the
baseline's, and the ratio RequestCancel / anyio. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import anyio
import uvloop

from bastion.relay.request_cancel import RequestCancel


async def _body() -> None:
    await asyncio.sleep(0)


async def measure(requests: int, idle_s: float) -> dict[str, float]:
    kinds = ("none", "anyio.CancelScope", "RequestCancel")
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    for index in range(requests * len(kinds)):
        kind = kinds[index % len(kinds)]
        await asyncio.sleep(idle_s)
        began = time.perf_counter()
        if kind == "anyio.CancelScope":
            with anyio.CancelScope():
                await _body()
        elif kind == "RequestCancel":
            with RequestCancel():
                await _body()
        else:
            await _body()
        times[kind].append((time.perf_counter() - began) * 1e6)
    return {kind: statistics.median(values) for kind, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests of each kind (default 400)")
    parser.add_argument("--idle", type=float, default=20.0, help="milliseconds asleep before each (default 20)")
    args = parser.parse_args()
    p50 = uvloop.run(measure(args.requests, args.idle / 1e3))
    base = p50.pop("none")
    print(f"no scope (baseline): p50 {base:.1f} µs")
    for kind, micros in p50.items():
        print(f"{kind}: p50 {micros - base:.1f} µs over the baseline")
    ratio = (p50["RequestCancel"] - base) / (p50["anyio.CancelScope"] - base)
    print(f"RequestCancel / anyio.CancelScope: x{ratio:.2f}")


if __name__ == "__main__":
    main()
