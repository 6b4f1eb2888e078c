"""What the provenance memory costs a call: the in-process store against the shared Redis one.

For each store, N calls of the provenance check on a sink carrying a few argument values (the
check looks them up, then notes them as the agent's own, in one round trip), after a poisoned
result taints 50 values; and, for scale, the same number of calls of the rate-limit check with
its counters in the same Redis (`per_agent`). Prints median wall and CPU time per call (this
process's CPU: Redis's own work is not in it), and ratios measured in the same run. Figures
are printed, not asserted. Without `--redis`, a private redis-server is started.

    python benchmarks/bench_taint_store.py [CALLS] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import anyio

from bastion.guard.ratelimit import RateLimitCheck
from bastion.guard.ratelimit.config import LimitsConfig
from bastion.guard.results.config import ResultsConfig
from bastion.guard.results.provenance import ProvenanceCheck
from bastion.guard.results.redis_taint import RedisTaintStore
from bastion.guard.results.taint import MemoryTaintStore, TaintSource, TaintStore, Whose
from bastion.model import Principal, ToolCall
from bench_ratelimit import start_redis

SOURCE = TaintSource("c0ffee", "mail", "read_inbox", "flagged as injection (framing)", 0.0)


async def per_call(store: TaintStore, calls: int) -> tuple[float, float]:
    agent = f"bench-{uuid.uuid4().hex}"
    config = ResultsConfig()
    check = ProvenanceCheck(config, store)
    await store.taint(Whose(agent, "s1"), [f"attacker{i}@evil.example" for i in range(50)], SOURCE)
    walls: list[float] = []
    cpu0 = time.process_time()
    for index in range(calls):
        arguments = {"recipient": f"friend{index}@example.com", "subject": "Minutes", "body": "See you at 10."}
        call = ToolCall(f"c{index}", Principal(agent), "mail", "send_email", arguments, session="s1")
        began = time.perf_counter()
        await check.check_tool_call(call)
        walls.append(time.perf_counter() - began)
    cpu = (time.process_time() - cpu0) / calls
    await store.aclose()
    return statistics.median(walls), cpu


async def rate_limit_per_call(url: str, calls: int) -> tuple[float, float]:
    check = RateLimitCheck(LimitsConfig.model_validate({"per_agent": "100000000/minute", "storage": url}))
    principal = Principal(f"bench-{uuid.uuid4().hex}")
    walls: list[float] = []
    cpu0 = time.process_time()
    for index in range(calls):
        began = time.perf_counter()
        await check.check_tool_call(ToolCall(f"c{index}", principal, "mail", "send_email", {"to": "x"}))
        walls.append(time.perf_counter() - began)
    cpu = (time.process_time() - cpu0) / calls
    assert check.counters is not None
    await check.counters.aclose()
    return statistics.median(walls), cpu


async def run(calls: int, url: str) -> None:
    memory = await per_call(MemoryTaintStore(window=3600, max_values=10000, max_session_values=1000), calls)
    redis = await per_call(RedisTaintStore(url, window=3600, max_values=10000, max_session_values=1000), calls)
    limits = await rate_limit_per_call(url, calls)
    print(f"{calls} sink calls each; load average {os.getloadavg()[0]:.2f} (a loaded host makes wall times noisy)")
    rows = (("provenance, memory", memory), ("provenance, redis", redis), ("rate limit, redis", limits))
    for name, (wall, cpu) in rows:
        print(f"  {name:<20} median wall {wall * 1e6:8.1f} us/call   own CPU {cpu * 1e6:8.1f} us/call")
    print(f"  ratio provenance redis/memory: wall {redis[0] / memory[0]:.1f}x, own CPU {redis[1] / memory[1]:.1f}x")
    print(f"  ratio provenance redis / rate limit redis: own CPU {redis[1] / limits[1]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("calls", nargs="?", type=int, default=2000)
    parser.add_argument("--redis", default=None, help="a Redis URL (default: a private redis-server)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-taint-") as folder, contextlib.ExitStack() as stack:
        url = args.redis or start_redis(stack, Path(folder))
        anyio.run(run, args.calls, url)


if __name__ == "__main__":
    main()
