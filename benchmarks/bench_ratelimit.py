"""What rate limiting costs: gateway throughput with limits off, on (memory) and on (Redis),
and the rate-limit check's own cost per call.

Run: .venv/bin/python benchmarks/bench_ratelimit.py [--agents 32] [--calls 20] [--rounds 3]

Throughput: one real upstream (benchmarks/servers/echo_server.py over Streamable HTTP),
three real `bastion up` processes in front of it (no limits; limits in memory; limits in
a private Redis), and N concurrent agents, each with its own token and `mcp.Client`,
making sequential calls. The limits are high enough never to refuse (three counters per
call: per_agent, per_agent_server, global). The configurations take turns, round by
round, so drift on a shared machine hits all alike; the median round is printed.

Check cost: `RateLimitCheck.check_tool_call` alone, in this process, on memory and on the
same Redis, against the cost of no check. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import yaml

from bastion.config import load_config
from bastion.guard.ratelimit import LimitsConfig, RateLimitCheck
from bastion.model import Principal, ToolCall
from bastion.stores import open_token_store
from bench_gateway import (
    Gateway,
    cpu_seconds,
    free_port,
    http_client,
    load_average,
    machine_facts,
    start_echo_http,
    start_gateway,
    throughput,
)

HIGH = {"per_agent": "1000000/minute", "per_agent_server": "1000000/minute", "global": "100000000/minute"}


def start_redis(stack: contextlib.ExitStack, folder: Path) -> str:
    server = shutil.which("redis-server")
    if server is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    args = [
        server,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(folder),
    ]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stack.callback(process.wait, timeout=10)
    stack.callback(process.terminate)
    assert process.stdout is not None
    for line in process.stdout:
        if "Ready to accept connections" in line:
            break
    else:
        sys.exit("redis-server did not start")
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()  # type: ignore[union-attr]
    return f"redis://127.0.0.1:{port}/0"


def write_config(folder: Path, upstream: str, limits: dict[str, Any] | None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "listen": "127.0.0.1:0",
        "data_dir": str(folder / "data"),
        "servers": {"echo": {"url": upstream}},
    }
    if limits is not None:
        config["limits"] = limits
    path = folder / "bastion.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


Setup = tuple[str, list[Gateway], list[str]]
"""A configuration: its label, the gateway replicas, one token per agent."""


async def throughput_table(setups: list[Setup], calls: int, rounds: int, *, first_column: str, ratio: str) -> None:
    """Every setup in turn, round after round; the median round of each, against the first setup.

    Agent i calls replica i mod n (with two replicas, half the agents on each); CPU per call is
    that of all the setup's gateway processes.
    """
    agents = len(setups[0][2])
    print(f"throughput: {agents} concurrent agents (own token each) x {calls} sequential calls, {rounds} rounds")
    header = f"{first_column:<36} {'calls/s':>8} {'p50 ms':>7} {ratio:>8} {'gw CPU/call':>11}"
    print(header + "\n" + "-" * len(header), flush=True)
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label, _, _ in setups}
    for _ in range(rounds):
        for label, replicas, tokens in setups:
            connects: list[Callable[[], Any]] = [
                partial(http_client, replicas[i % len(replicas)].url("echo"), "legacy", t) for i, t in enumerate(tokens)
            ]
            before = sum(cpu_seconds(g.process.pid) for g in replicas)
            rate, p50 = await throughput(connects, calls)
            cpu = (sum(cpu_seconds(g.process.pid) for g in replicas) - before) / (len(tokens) * (calls + 10)) * 1000
            results[label].append((rate, p50, cpu))
    base = statistics.median(r[0] for r in results[setups[0][0]])
    for label, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        p50 = statistics.median(r[1] for r in runs)
        cpu = statistics.median(r[2] for r in runs)
        print(f"{label:<36} {rate:>8.0f} {p50:>7.2f} {rate / base:>7.0%} {cpu:>8.2f} ms", flush=True)


async def check_cost(redis_url: str, calls: int) -> None:
    print(f"\nthe check alone: {calls} sequential check_tool_call per configuration, in this process")
    header = f"{'configuration':<46} {'us/call':>8} {'added':>8}"
    print(header + "\n" + "-" * len(header), flush=True)
    principal = Principal("bench-agent")
    cases: list[tuple[str, RateLimitCheck | None]] = [
        ("no rate-limit check", None),
        ("memory, per_agent only", RateLimitCheck(LimitsConfig.model_validate({"per_agent": HIGH["per_agent"]}))),
        ("memory, 3 levels", RateLimitCheck(LimitsConfig.model_validate(HIGH))),
        (
            "redis, per_agent only",
            RateLimitCheck(LimitsConfig.model_validate({"per_agent": HIGH["per_agent"], "storage": redis_url})),
        ),
        ("redis, 3 levels", RateLimitCheck(LimitsConfig.model_validate({**HIGH, "storage": redis_url}))),
    ]
    base = None
    for label, check in cases:
        for i in range(50):  # warm up: connections, scripts loaded
            if check is not None:
                await check.check_tool_call(ToolCall(f"w{i}", principal, "echo", "echo", {}))
        samples = []
        for _ in range(3):
            began = time.perf_counter()
            for i in range(calls):
                c = ToolCall(f"c{i}", principal, "echo", "echo", {"text": "hi"})
                if check is not None and await check.check_tool_call(c) is not None:
                    raise RuntimeError(f"{label}: a call was refused")
            samples.append((time.perf_counter() - began) / calls * 1e6)
        cost = statistics.median(samples)
        base = cost if base is None else base
        print(f"{label:<46} {cost:>8.1f} {cost - base:>+8.1f}", flush=True)
        if check is not None and check.counters is not None:
            await check.counters.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--calls", type=int, default=20, help="sequential calls per agent per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--check-calls", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ratelimit-") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        log = stack.enter_context(open(tmp / "bench.log", "w"))
        upstream = start_echo_http(stack, log)
        redis_url = start_redis(stack, tmp)
        print(machine_facts())
        setups: list[Setup] = []
        for label, limits in (
            ("off", None),
            ("on: memory (3 levels)", HIGH),
            ("on: redis (3 levels)", {**HIGH, "storage": redis_url}),
        ):
            config = write_config(tmp / f"gateway-{len(setups)}", upstream, limits)
            gateway = start_gateway(config, log)
            stack.callback(gateway.stop)
            store = open_token_store(load_config(config))  # in-process: 32 CLI runs would take minutes
            try:
                tokens = [store.create(f"bench-agent-{i}")[1] for i in range(args.agents)]
            finally:
                store.close()
            setups.append((label, [gateway], tokens))
        anyio.run(
            partial(throughput_table, first_column="limits", ratio="vs off"),
            setups,
            args.calls,
            args.rounds,
            backend="asyncio",
        )
        anyio.run(check_cost, redis_url, args.check_calls, backend="asyncio")
    print("\ncalls/s: all agents together; p50: one call as an agent sees it; gw CPU/call: the gateway process.")
    print("Limits on: per_agent, per_agent_server and global, high enough never to refuse; Redis on loopback.")
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
