"""How much of Bastion's added latency is the two SDK protocol hops alone.

Run: .venv/bin/python benchmarks/bench_sdk_floor.py [--calls N] [--mode 2026-07-28] [--durability process]

Side by side, in alternating blocks of 50 calls, for each front door (Streamable HTTP with
an HTTP upstream, and stdio with a stdio upstream): the echo server called directly; an
SDK-only proxy (`servers/sdk_proxy.py`: the same SDK server and client stacks Bastion
runs, forwarding only); and Bastion (`bastion up` / `bastion wrap`, everything on). The
SDK-only proxy's added p50 and CPU per call are the floor under Bastion's: what forwarding
through the two SDK stacks costs before any authentication, guard check or audit record.
Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).parent))
import bench_gateway as bg  # the sibling benchmark: its processes, clients and measuring loop

SDK_PROXY = str(Path(__file__).parent / "servers" / "sdk_proxy.py")


def sdk_stdio_pid() -> int | None:
    return next((p for p in bg.children_of(os.getpid()) if f"{SDK_PROXY} stdio" in bg.cmdline(p)), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="measured calls per configuration (default 300)")
    parser.add_argument("--mode", default="2026-07-28", help="client mode (legacy or 2026-07-28)")
    parser.add_argument("--durability", default="process", help="Bastion's audit.durability (power or process)")
    args = parser.parse_args()
    print(bg.machine_facts())
    with (
        tempfile.TemporaryDirectory(prefix="bastion-floor-") as folder,
        contextlib.ExitStack() as stack,
        open(Path(folder) / "log", "w") as log,
    ):
        tmp = Path(folder)
        direct_url = bg.start_echo_http(stack, log)
        port = bg.free_port()
        proxy = subprocess.Popen([sys.executable, SDK_PROXY, "http", direct_url, str(port)], stderr=log, stdout=log)
        stack.callback(proxy.wait, timeout=10)
        stack.callback(proxy.terminate)
        bg.wait_for_port(port, proxy)
        stdio_cmd = [sys.executable, bg.ECHO_SERVER, "stdio"]
        upstreams = {"echo": {"command": stdio_cmd[0], "args": stdio_cmd[1:]}, "echo-http": {"url": direct_url}}
        gateway = bg.start_gateway(bg.write_config(tmp / "up", upstreams, args.durability), log)
        stack.callback(gateway.stop)
        wrap_config = bg.write_config(tmp / "wrap-floor", {"echo": upstreams["echo"]}, args.durability)
        wrap_cmd = [bg.BASTION, "wrap", "--config", str(wrap_config), "--server", "echo"]
        mode = args.mode
        cases = [
            bg.Case("http direct", "client -http-> echo", None, partial(bg.http_client, direct_url, mode)),
            bg.Case(
                "http sdk", "client -http-> SDK-only proxy -http-> echo", "http direct",
                partial(bg.http_client, f"http://127.0.0.1:{port}/mcp", mode), lambda: proxy.pid,
            ),
            bg.Case(
                "http bastion", "client -http-> bastion up -http-> echo", "http direct",
                partial(bg.http_client, gateway.url("echo-http"), mode, gateway.token), lambda: gateway.process.pid,
            ),
            bg.Case("stdio direct", "client -stdio-> echo", None, partial(bg.stdio_mcp_client, stdio_cmd, mode, log)),
            bg.Case(
                "stdio sdk", "client -stdio-> SDK-only proxy -stdio-> echo", "stdio direct",
                partial(bg.stdio_mcp_client, [sys.executable, SDK_PROXY, "stdio", bg.ECHO_SERVER], mode, log),
                sdk_stdio_pid,
            ),
            bg.Case(
                "stdio bastion", "client -stdio-> bastion wrap -stdio-> echo", "stdio direct",
                partial(bg.stdio_mcp_client, wrap_cmd, mode, log), partial(bg.wrap_pid, "wrap-floor"),
            ),
        ]  # fmt: skip
        anyio.run(bg.measure_group, cases, args.calls, backend="asyncio")
    by_label = {case.label: case for case in cases}
    print(f"\n{args.calls} calls per configuration, mode {mode}, Bastion with audit.durability {args.durability}")
    print(f"{'path':<50} {'p50':>6} {'added p50':>10} {'CPU/call':>9}")
    for case in cases:
        p50 = statistics.median(case.samples)
        added = f"+{p50 - statistics.median(by_label[case.baseline].samples):.2f}" if case.baseline else ""
        cpu = f"{case.cpu / len(case.samples) * 1000:.2f}" if case.cpu else ""
        print(f"{case.path:<50} {p50:>6.2f} {added:>10} {cpu:>9}")
    print("ms; CPU/call: the proxy's process (user+sys, all threads) per call, measured around its own blocks")
    print(f"load average at end: {bg.load_average()}")


if __name__ == "__main__":
    main()
