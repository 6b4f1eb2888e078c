"""The CPU of the in-process parts of one tool call: the guard pipeline, the result checks, the audit encoding.

Run: .venv/bin/python benchmarks/bench_call_parts.py [--calls N] [--rounds R] [--idle MS [--busy]]

`bench_own_work.py` measures a whole call (the audit writer thread and its commit included),
which on a busy host moves by more than a change to one part. This measures each part on
its own, in the event loop's thread, with the gateway's default configuration (the default
guard pipeline, the audit store's payload policy, metrics on): `evaluate` (every check on an `echo`
call), `check_result` (the result checks on its answer), `encode x3` (the call's three
audit events encoded as the store encodes them, redaction included) and `check_result 1k rows`
(the result checks on a query tool's answer of a thousand rows, about 150 KB). Printed: the median over
`--rounds` of the CPU microseconds per part, and the median wall time of each guard check in
`evaluate`. Compare two checkouts by running this file under each one's `PYTHONPATH=.../src`,
alternately. Figures are printed, not asserted.

`--idle MS` sleeps that long before each part's call, as a gateway idles between an agent's
calls: the same code then takes longer on a host whose processor goes cold while idle (on a
small virtual machine, several times as long after 2-20 ms: see docs/performance.md). With
`--busy` the process busy-waits that long instead, the processor kept running: the control.
Each part's call is then timed alone (the process's CPU, and the wall time, from the call's
start to its end), so the wake-up from the sleep, and what the audit writer thread does
while the loop sleeps, are not counted in it. The wake-up's own CPU (the event loop
thread's, the sleep included, no part run) is printed as `wake-up from idle`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import yaml

from bastion.audit.chain import encode_event
from bastion.audit.events import CallCompleted, CallRequested, VerdictReached
from bastion.audit.redact import PayloadPolicy
from bastion.config import load_config
from bastion.gateway.gateway import Gateway
from bastion.model import Principal, ToolCall

TEXT = "hello from the benchmark"
DEFINITION = {
    "name": "echo",
    "description": "Return the text unchanged.",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}
RESULT = {"content": [{"type": "text", "text": TEXT}], "structuredContent": {"result": TEXT}, "isError": False}
ROWS = [{"id": i, "name": f"customer {i}", "city": "Lyon", "note": "paid on time, no open ticket"} for i in range(1000)]
LARGE = {"content": [{"type": "text", "text": str(ROWS)}], "structuredContent": {"rows": ROWS}, "isError": False}
"""A query tool's answer: a thousand rows, as text and as structured content (about 150 KB)."""
LARGE_EVERY = 20
"""`check_result 1k rows` runs once for every this many calls of the other parts."""


async def measure(calls: int, rounds: int, idle_s: float = 0.0, busy: bool = False) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bastion-call-parts-") as folder:
        config_file = Path(folder) / "bastion.yaml"
        data_dir = str(Path(folder) / "data")
        config = {
            "listen": "127.0.0.1:0",
            "data_dir": data_dir,
            "servers": {},  # the gateway's parts, no server started: the calls name "echo"
            "metrics": {"enabled": True},
        }
        config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
        gateway = Gateway(load_config(config_file))
        async with gateway.running():
            return await _parts(gateway, calls, rounds, idle_s, busy)


def _busy_wait(seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


async def _parts(gateway: Gateway, calls: int, rounds: int, idle_s: float, busy: bool) -> dict[str, float]:
    pipeline, principal, ids = gateway.pipeline, Principal("local"), itertools.count()
    by_check: dict[str, list[float]] = {}
    timer = pipeline.check_timer

    def timed(name: str, seconds: float) -> None:  # each check's wall time, and the metrics as before
        by_check.setdefault(name, []).append(seconds)
        if timer is not None:
            timer(name, seconds)

    pipeline.check_timer = timed
    policy = getattr(getattr(gateway.audit, "inner", gateway.audit), "policy", PayloadPolicy())
    ids_text = "0" * 32
    events = (
        CallRequested(agent="local", server="echo", correlation_id=ids_text, method="tools/call", tool="echo",
                      arguments={"text": TEXT}, transport="http"),
        VerdictReached(agent="local", server="echo", correlation_id=ids_text, tool="echo", verdict="allow"),
        CallCompleted(agent="local", server="echo", correlation_id=ids_text, method="tools/call", tool="echo",
                      outcome="allowed", latency_ms=2.0, is_error=False, result_size=120, result=RESULT),
    )  # fmt: skip

    def call() -> ToolCall:
        return ToolCall(f"call-{next(ids)}", principal, "echo", "echo", {"text": TEXT}, DEFINITION)

    async def evaluate() -> None:
        one = call()
        await pipeline.evaluate(one)
        pipeline.ended(one)

    async def check_result() -> None:
        one = call()
        await pipeline.check_result(one, dict(RESULT))
        pipeline.ended(one)

    async def check_large_result() -> None:
        one = call()
        await pipeline.check_result(one, dict(LARGE))
        pipeline.ended(one)

    async def encode() -> None:
        for event in events:
            encode_event(event, policy)

    parts: dict[str, Callable[[], Awaitable[None]]] = {
        "evaluate": evaluate,
        "check_result": check_result,
        "encode x3": encode,
        "check_result 1k rows": check_large_result,
    }
    runs = {name: calls for name in parts} | {"check_result 1k rows": max(1, calls // LARGE_EVERY)}
    spent: dict[str, list[float]] = {name: [] for name in parts}
    walls: dict[str, list[float]] = {name: [] for name in parts}
    woken: list[float] = []
    for _ in range(rounds):
        for name, part in parts.items():
            if not idle_s:  # back to back: the CPU over the whole round, the stamps' cost spread thin
                began = time.process_time()
                for _ in range(runs[name]):
                    await part()
                spent[name].append((time.process_time() - began) / runs[name] * 1e6)
                continue
            cpu = wall = 0.0
            for _ in range(runs[name]):
                await _idle(idle_s, busy)
                began, started = time.process_time(), time.perf_counter()
                await part()
                wall += time.perf_counter() - started
                cpu += time.process_time() - began
            spent[name].append(cpu / runs[name] * 1e6)
            walls[name].append(wall / runs[name] * 1e6)
        if idle_s and not busy:  # the wake-up alone: the sleep and what the loop does on waking, no part
            began = time.thread_time()
            for _ in range(calls):
                await _idle(idle_s, busy)
            woken.append((time.thread_time() - began) / calls * 1e6)
    checks = {f"evaluate, {name} (wall)": statistics.median(values) * 1e6 for name, values in by_check.items()}
    wall_times = {f"{name} (wall)": statistics.median(values) for name, values in walls.items() if values}
    wake = {"wake-up from idle": statistics.median(woken)} if woken else {}
    return {name: statistics.median(values) for name, values in spent.items()} | wall_times | wake | checks


async def _idle(seconds: float, busy: bool) -> None:
    """Idle as between an agent's calls: asleep in the event loop (no CPU), or busy-waiting (`busy`)."""
    if busy:
        _busy_wait(seconds)
    else:
        await asyncio.sleep(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per part and round (default 500)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds, the median is printed (default 7)")
    parser.add_argument("--idle", type=float, default=0.0, help="milliseconds idle before each call (default 0)")
    parser.add_argument("--busy", action="store_true", help="busy-wait the --idle time instead of sleeping")
    args = parser.parse_args()
    for name, micros in asyncio.run(measure(args.calls, args.rounds, args.idle / 1e3, args.busy)).items():
        print(f"{name}: median {micros:.1f} µs{'' if name.endswith('(wall)') else ' of CPU'} per call")


if __name__ == "__main__":
    main()
