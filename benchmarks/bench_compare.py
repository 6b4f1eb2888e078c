"""This tree's Bastion beside another `bastion` program, call by call: what a change did to a call.

Run: .venv/bin/python benchmarks/bench_compare.py --against PROGRAM [--calls 600] [--mode legacy]
                                                  [--fronts up,wrap] [--durability power]

PROGRAM is another `bastion` (another checkout's: a script that runs `bastion.cli.main` with
that checkout's `src` first on `sys.path`, as `bench_peers.sh`'s `BASTION=` takes). Each program
runs `bastion up` (its `/servers/echo/mcp` in front of the stdio echo server, as in
`bench_peers.sh`) and `bastion wrap` of the same server, on its defaults (audit `power`, the
recommended policy, pinning, the sandbox), with a data folder of its own. The echo server,
called directly over stdio and over HTTP (the SDK's server), is measured alongside as the
baseline. One call goes to each target in turn, so the host's drift (its speed moved by more
than a change's effect between runs a minute apart, docs/performance.md) falls on every target
alike, in an order shuffled for each turn (seeded): in an order rotating from turn to turn,
each target always came after the same other one, and two identical programs measured 110-250 µs
apart at p50, again and again. `--against` this tree's own `bastion` gives the noise floor:
what two identical programs differ by (within about 100 µs over 600 calls on this project's
2-core test machine). `BASTION=PROGRAM2` puts another program in this tree's rows (to swap
the two programs' slots, say).

Printed: p50 and p90 per target, p50 over its direct baseline, and this tree's p50 minus
PROGRAM's for each front door. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))
import bench_gateway as bg  # the sibling benchmark: its processes and clients

WARMUP = 30
THIS = os.environ.get("BASTION", bg.BASTION)
"""The `bastion` program of the `this` rows: this tree's, or `BASTION=...` (the slots swapped, say)."""


def targets(args: argparse.Namespace, stack: contextlib.ExitStack, tmp: Path, log: Any) -> list[bg.Case]:
    """The baselines, then each program's front doors (processes started here, stopped by `stack`)."""
    stdio = [sys.executable, bg.ECHO_SERVER, "stdio"]
    upstream = {"echo": {"command": stdio[0], "args": stdio[1:]}}
    direct = partial(bg.stdio_mcp_client, stdio, args.mode, log)
    found = [bg.Case("direct stdio", "client -stdio-> echo", None, direct)]
    fronts = args.fronts.split(",")
    if "up" in fronts:
        direct = partial(bg.http_client, bg.start_echo_http(stack, log), args.mode)
        found.append(bg.Case("direct http", "client -http-> echo", None, direct))
    for label, program in (("this", THIS), ("against", args.against)):
        if "up" in fronts:
            config = bg.write_config(tmp / f"up-{label}", upstream, args.durability)
            gateway = bg.start_gateway(config, log, [program])
            stack.callback(gateway.stop)
            connect = partial(bg.http_client, gateway.url("echo"), args.mode, gateway.token)
            found.append(bg.Case(f"up {label}", "client -http-> bastion up -stdio-> echo", "direct http", connect))
        if "wrap" in fronts:
            config = bg.write_config(tmp / f"wrap-{label}", upstream, args.durability)
            command = [program, "wrap", "--config", str(config), "--server", "echo"]
            connect = partial(bg.stdio_mcp_client, command, args.mode, log)
            path = "client -stdio-> bastion wrap -stdio-> echo"
            found.append(bg.Case(f"wrap {label}", path, "direct stdio", connect))
    return found


async def measure(found: list[bg.Case], calls: int) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for target in found:
            target.client = await stack.enter_async_context(target.connect())
            for _ in range(WARMUP):
                await bg.call(target.client)
        shuffled = random.Random(0)
        for _ in range(calls):
            order = list(found)
            shuffled.shuffle(order)
            for target in order:
                began = time.perf_counter()
                await bg.call(target.client)
                target.samples.append((time.perf_counter() - began) * 1000.0)


def report(found: list[bg.Case], calls: int) -> None:
    p50 = {case.label: statistics.median(case.samples) for case in found}
    print(f"{calls} calls per target, one to each in turn (shuffled); load average {bg.load_average()}")
    for case in found:
        base = case.baseline
        over = f"   {p50[case.label] / p50[base]:.2f}x {base}" if base is not None else ""
        p90 = bg.pct(case.samples, 0.9)
        print(f"{case.label:<13} p50 {p50[case.label]:6.3f} ms   p90 {p90:6.3f} ms{over}")
    for front in ("up", "wrap"):
        if f"{front} this" in p50:
            change = p50[f"{front} this"] - p50[f"{front} against"]
            print(f"{front}: this tree minus PROGRAM, p50 {change * 1000:+.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", required=True, metavar="PROGRAM", help="the other `bastion` program")
    parser.add_argument("--calls", type=int, default=600, help="measured calls per target (default 600)")
    parser.add_argument("--mode", default="legacy", help="client mode (legacy or 2026-07-28)")
    parser.add_argument("--fronts", default="up,wrap", help="up (HTTP) and/or wrap (stdio)")
    parser.add_argument("--durability", default="power", help="audit.durability of both (default power)")
    args = parser.parse_args()
    print(bg.machine_facts())
    with (
        tempfile.TemporaryDirectory(prefix="bastion-compare-") as folder,
        open(Path(folder) / "log", "w") as log,
        contextlib.ExitStack() as stack,
    ):
        found = targets(args, stack, Path(folder), log)
        anyio.run(measure, found, args.calls, backend="asyncio")
    report(found, args.calls)


if __name__ == "__main__":
    main()
